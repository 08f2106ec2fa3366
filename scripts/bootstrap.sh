#!/usr/bin/env bash
# Create .venv from uv.lock (the pinned dependency tree), installing uv first if needed.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again (a no-op when in sync).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.8"
export UV_PYTHON_DOWNLOADS=never   # use the machine's Python 3.11; never fetch interpreters

if ! python3 -m uv --version 2>/dev/null | grep -q "uv ${UV_VERSION}"; then
    echo "bootstrap: installing uv ${UV_VERSION} from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
python3 -m uv sync --quiet --locked --extra testing --python 3.11 --project "$repo"
