#!/usr/bin/env bash
# The test command: installs the pinned environment, then runs the whole suite.
# Any extra arguments go to pytest (e.g. `bash scripts/test.sh -k emulator`).
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh" || exit 1
bash "$repo/scripts/services.sh" || exit 1   # PostgreSQL + Redis for tests/test_e2e_production.py
bash "$repo/scripts/docs_setup.sh" || exit 1   # mermaid.js and Chromium for tests/test_docs.py
cd "$repo"
.venv/bin/ruff check . || exit 1
.venv/bin/mypy || exit 1
.venv/bin/pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$rc"
