"""How a decision ends (or goes on with) a task running on a worker.

The worker-side half of every driver: raise what ``skip`` and ``fail`` mean, fail a task
whose rendered arguments break a rule, and resume from a trigger's event. Imports
neither boto3 nor ``airflow.triggers``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_rds_export.decisions import Decision
from airflow_rds_export.validation import InvalidParameterError

__all__ = ["carry_out", "default_deferrable", "fail_on_invalid", "rendered", "resume_from_event"]

if TYPE_CHECKING:
    from typing import TypeVar

    from airflow_rds_export.waits import Check, Wait

    W = TypeVar("W", bound="Wait")


def carry_out(decision: Decision) -> None:
    """Raise what a skip or fail decision means for the task; return for the others."""
    if decision.action == "skip":
        raise AirflowSkipException(decision.reason)
    if decision.action == "fail":
        raise AirflowFailException(decision.reason)


def fail_on_invalid(value: Any, validate: Callable[..., Any], *args: Any) -> None:
    """After rendering: run ``validate(value, *args)``; a broken rule fails the task at
    once, without retries."""
    try:
        validate(value, *args)
    except InvalidParameterError as exc:
        raise AirflowFailException(f"{exc} (after rendering templates)") from exc


def rendered(wait_cls: type[W], values: Mapping[str, Any]) -> W:
    """The wait spec for a task's rendered arguments; a broken rule fails the task."""
    wait_cls.check_arguments(values, fail_on_invalid)
    return wait_cls.from_kwargs(values)


def resume_from_event(event: Any, *, log: Any, check_again: Callable[[], Check]) -> Any:
    """Apply a trigger's decision where the task resumes on a worker; return the XCom."""
    from airflow_rds_export.events import TASK_END_PAYLOADS, decision_from_event

    if isinstance(event, str) and event in TASK_END_PAYLOADS:
        # The trigger ended the task itself (end_from_trigger), yet a runner resumed it
        # anyway (``airflow dags test`` does): only the state came back, so ask AWS again.
        check = check_again()
        decision, description = check.decision, check.description
    else:
        decision, description = decision_from_event(event)
    carry_out(decision)
    if decision.action != "done":
        raise AirflowFailException(decision.reason)
    log.info("%s", decision.reason)
    return description


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, as the Amazon provider reads it."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)
