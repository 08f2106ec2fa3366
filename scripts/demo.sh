#!/usr/bin/env bash
# The demo: the example DAGs, run by real Airflow (`airflow dags test`) against an emulated
# AWS account, showing each situation the package decides (snapshot not ready, re-run
# adopting its export, cancel of a finished export, a failed export's FailureCause).
# Installs the pinned environment first; everything else lives in demo/run_demo.py.
# Extra arguments go to it (e.g. `bash scripts/demo.sh --workdir /tmp/demo`).
# Exit status: 0 when every outcome is as expected, 1 when one differs, 2 on setup failure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "demo: installing the pinned environment (scripts/bootstrap.sh)..." >&2
bash "$repo/scripts/bootstrap.sh"
cd "$repo"
exec "$repo/.venv/bin/python" "$repo/demo/run_demo.py" "$@"
