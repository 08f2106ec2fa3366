"""The trigger event protocol: what a trigger hands back to the task it defers.

A trigger that does not end the task itself yields one event whose payload is
``{"decision": {"action", "reason"}, "description": ...}``: the same
:class:`~airflow_rds_export.decisions.Decision` a worker would have reached, and the
description the task returns as its XCom. Pure: no Airflow, no AWS.
"""

from __future__ import annotations

from typing import Any

from airflow_rds_export.decisions import Decision

__all__ = ["TASK_END_PAYLOADS", "decision_from_event", "event_payload"]

#: What a runner hands ``execute_complete`` when the trigger ended the task itself
#: (``TaskSuccessEvent`` / ``TaskSkippedEvent`` / ``TaskFailedEvent``): only the state.
TASK_END_PAYLOADS = frozenset({"success", "skipped", "failed"})


def event_payload(decision: Decision, description: Any) -> dict[str, Any]:
    """The JSON-friendly payload of a trigger event carrying a decision."""
    return {"decision": decision.to_dict(), "description": description}


def decision_from_event(event: Any) -> tuple[Decision, Any]:
    """The decision and description a trigger event carries (validated)."""
    if not isinstance(event, dict) or "decision" not in event:
        return Decision("fail", f"Unexpected trigger event {event!r}"), None
    return Decision.from_dict(event["decision"]), event.get("description")
