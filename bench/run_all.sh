#!/usr/bin/env bash
# Run every benchmark and write bench/RESULTS.md from the measured figures.
# Takes about 45 minutes on a 2-core machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh"
py="$repo/.venv/bin/python"
cd "$repo/bench"
rm -rf results
echo "== 1. parse cost" && "$py" parse_cost.py
echo "== 2-3. AWS calls and worker occupancy (Airflow runs)" && "$py" airflow_runs.py
echo "== 4-5. triggerer scale" && "$py" triggerer_scale.py
echo "== 6. table verification cost" && "$py" verification_cost.py
bash "$repo/scripts/services.sh"
echo "== 7. fleet makespan, shared polling on two triggerers" && "$py" fleet_makespan.py
echo "== 8. event-driven start: latency, triggerer CPU (writes EVENTS.md)" && "$py" event_driven.py
"$py" report.py > /dev/null
echo "wrote $repo/bench/RESULTS.md and $repo/bench/EVENTS.md"
