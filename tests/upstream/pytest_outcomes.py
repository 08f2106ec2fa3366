"""A pytest plugin that writes each test's outcome to JSON (for scripts/upstream_tests.py).

Loaded with ``-p pytest_outcomes`` in the pytest run of the official provider's tests;
the file to write is ``$UPSTREAM_TESTS_OUTCOMES``. Per node id: ``"passed"``, ``"failed"``
(a failing setup, call or teardown) or ``"skipped"``, and the failure text.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["pytest_runtest_logreport", "pytest_sessionfinish"]

_OUTCOMES: dict[str, dict[str, str]] = {}


def pytest_runtest_logreport(report: Any) -> None:
    entry = _OUTCOMES.setdefault(report.nodeid, {"outcome": "passed", "text": ""})
    if report.failed:
        entry["outcome"] = "failed"
        entry["text"] += f"--- {report.when} ---\n{report.longreprtext}\n"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["text"] += f"--- {report.when} ---\n{report.longreprtext}\n"


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("UPSTREAM_TESTS_OUTCOMES")
    if path:
        with open(path, "w") as out:
            json.dump(_OUTCOMES, out, indent=2, sort_keys=True)
