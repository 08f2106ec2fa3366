"""Logging a wait's progress, once per change (thousands of waits may share a log)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_rds_export.decisions import EXPORT_STATUSES, Decision, normalise_status, progress_of

__all__ = ["ProgressLogger"]


class ProgressLogger:
    """Logs an export's status and progress, and why a wait goes on, when they change."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._last_progress: tuple[Any, ...] | None = None
        self._last_reason: str | None = None
        self._unknown_statuses: set[str] = set()

    def __call__(self, export_task: Mapping[str, Any] | None) -> None:
        """Log an export task's status and progress if they changed (other descriptions:
        nothing)."""
        if export_task is None or "ExportTaskIdentifier" not in export_task:
            return
        percent, extracted = progress_of(export_task)
        status = normalise_status(export_task.get("Status"))
        if status and status not in EXPORT_STATUSES and status not in self._unknown_statuses:
            self._unknown_statuses.add(status)
            self._log.warning(
                "Export %s reports status %r, which this package does not know (AWS may have "
                "added one); waiting for a known status",
                export_task.get("ExportTaskIdentifier"),
                export_task.get("Status"),
            )
        seen = (status, percent, extracted)
        if seen == self._last_progress:
            return
        self._last_progress = seen
        self._log.info(
            "Export %s is %s: %s%% done, %s GB extracted",
            export_task.get("ExportTaskIdentifier"),
            (status or "unknown").upper(),
            percent if percent is not None else "?",
            extracted if extracted is not None else "?",
        )

    def report(self, decision: Decision, description: Mapping[str, Any] | None) -> None:
        """After a check: an export's progress, else why the wait goes on."""
        if description is not None and "ExportTaskIdentifier" in description:
            self(description)
        else:
            self.waiting(decision)

    def waiting(self, decision: Decision) -> None:
        """Log why the wait goes on, unless that is what was logged last."""
        if decision.action == "wait" and decision.reason != self._last_reason:
            self._log.info("%s", decision.reason)
        self._last_reason = decision.reason
