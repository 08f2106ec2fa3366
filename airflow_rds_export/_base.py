"""What every component shares: AWS connection parameters and progress logging.

Kept free of boto3: the hook is imported the first time a task asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_rds_export.decisions import (
    THROTTLING_CODES,
    Decision,
    decide_export,
    decide_permanent_error,
    decide_snapshot,
    normalise_status,
    progress_of,
)
from airflow_rds_export.validation import InvalidParameterError, is_unrendered

if TYPE_CHECKING:
    from airflow_rds_export.hooks import RdsExportHook

__all__ = ["AWS_TEMPLATE_FIELDS", "AwsConnectionMixin", "ProgressLogger", "check_literal"]

# As the Amazon provider's ``aws_template_fields``: the connection can be templated too.
AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name", "verify")


# What a trigger's TaskSuccessEvent / TaskSkippedEvent / TaskFailedEvent carries as payload.
TASK_END_PAYLOADS = frozenset({"success", "skipped", "failed"})


def carry_out(decision: Decision) -> None:
    """Raise what a skip or fail decision means for the task; return for the others."""
    if decision.action == "skip":
        raise AirflowSkipException(decision.reason)
    if decision.action == "fail":
        raise AirflowFailException(decision.reason)


def resume_from_event(
    event: Any, *, log: Any, poll_again: Callable[[], tuple[Decision, Any]]
) -> Any:
    """Apply a trigger's decision where the task resumes on a worker; return the XCom."""
    from airflow_rds_export.triggers import decision_from_event

    if isinstance(event, str) and event in TASK_END_PAYLOADS:
        # The trigger ended the task itself (end_from_trigger), yet a runner resumed it
        # anyway (``airflow dags test`` does): only the state came back, so ask AWS again.
        decision, description = poll_again()
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


def check_literal(value: Any, validate: Any, *args: Any) -> None:
    """At parse time: run ``validate(value, *args)`` unless only rendering can tell."""
    if not is_unrendered(value):
        validate(value, *args)


def fail_on_invalid(value: Any, validate: Any, *args: Any) -> None:
    """After rendering: run ``validate(value, *args)``; a broken rule fails the task at
    once, without retries."""
    try:
        validate(value, *args)
    except InvalidParameterError as exc:
        raise AirflowFailException(f"{exc} (after rendering templates)") from exc


def optional(validate: Any) -> Any:
    """A validator that lets None through (for parameters that may be left out)."""

    def validate_optional(value: Any, *args: Any) -> None:
        if value is not None:
            validate(value, *args)

    return validate_optional


def parse_datetime(value: Any, field: str) -> datetime | None:
    """A rendered ``created_after``: datetime, ISO string or empty; naive means UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidParameterError(field, value, "must be an ISO 8601 date-time") from exc
    if not isinstance(value, datetime):
        raise InvalidParameterError(field, value, "must be a datetime or ISO 8601 string")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def is_transient_error(exc: BaseException) -> bool:
    """Throttling, 5xx answers, timeouts and dropped connections: worth waiting out.

    botocore's retry mode has retried these already; one that still escapes means AWS is
    busy or unreachable for a while, which a wait treats as "not yet", never as an answer.
    """
    import asyncio

    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in THROTTLING_CODES or int(status) >= 500
    return isinstance(exc, (ConnectionError, HTTPClientError, asyncio.TimeoutError, OSError))


def raise_if_permanent(exc: BaseException, resource: str) -> None:
    """Fail the task at once, with the remedy, on a permission or configuration error."""
    from airflow_rds_export.hooks import error_code, error_message

    code = error_code(exc)
    decision = decide_permanent_error(resource, code, error_message(exc)) if code else None
    if decision is not None:
        raise AirflowFailException(decision.reason) from exc


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Capped exponential delay with jitter after ``failures`` transient errors in a row."""
    import random

    ceiling = min(cap, base * 2 ** min(failures, 16))
    return random.uniform(ceiling / 2, ceiling)


class AwsConnectionMixin:
    """The Amazon provider's connection parameters, and the hook built from them.

    :param aws_conn_id: The Airflow connection used for AWS credentials
        (default ``aws_default``); ``None`` uses boto3's default credential chain.
    :param region_name: AWS Region; the connection's or boto3's default when not given.
    :param verify: Whether to verify SSL certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration as a dict. Its ``retries``
        replaces this package's default (``standard`` mode, 5 attempts).
    """

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None

    def _set_connection(
        self,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: dict[str, Any] | None,
    ) -> None:
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        """JSON-friendly connection arguments, handed to triggers as they are."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }

    @cached_property
    def hook(self) -> RdsExportHook:
        from airflow_rds_export.hooks import RdsExportHook

        return RdsExportHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )


class ProgressLogger:
    """Logs an export's status and progress when, and only when, they change."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._last: tuple[Any, ...] | None = None

    def __call__(self, export_task: Mapping[str, Any]) -> None:
        percent, extracted = progress_of(export_task)
        status = normalise_status(export_task.get("Status"))
        seen = (status, percent, extracted)
        if seen == self._last:
            return
        self._last = seen
        self._log.info(
            "Export %s is %s: %s%% done, %s GB extracted",
            export_task.get("ExportTaskIdentifier"),
            (status or "unknown").upper(),
            percent if percent is not None else "?",
            extracted if extracted is not None else "?",
        )


def export_s3_uri(export_task: Mapping[str, Any]) -> str:
    """Where an export writes: ``s3://{S3Bucket}/{S3Prefix}/{ExportTaskIdentifier}/``."""
    prefix = (export_task.get("S3Prefix") or "").strip("/")
    parts = (export_task.get("S3Bucket"), prefix, export_task.get("ExportTaskIdentifier"))
    return "s3://" + "/".join(p for p in parts if p) + "/"


def judge_snapshot(
    snapshot: dict[str, Any] | None, *, requested: str, on_missing: str, on_failure: str
) -> tuple[Decision, dict[str, Any] | None]:
    """The decision for a described snapshot, naming it as found (or as requested)."""
    found = snapshot and (
        snapshot.get("DBSnapshotIdentifier") or snapshot.get("DBClusterSnapshotIdentifier")
    )
    decision = decide_snapshot(
        snapshot, resource=found or requested, on_missing=on_missing, on_failure=on_failure
    )
    return decision, snapshot


def judge_export(
    export_task: dict[str, Any] | None,
    *,
    identifier: str,
    target_statuses: frozenset[str],
    error_statuses: frozenset[str],
    on_missing: str,
    on_failure: str,
) -> tuple[Decision, dict[str, Any] | None]:
    """The decision for a described export task; the description gains ``S3Uri``."""
    if export_task is not None:
        export_task = {**export_task, "S3Uri": export_s3_uri(export_task)}
    decision = decide_export(
        export_task,
        resource=identifier,
        target_statuses=target_statuses,
        error_statuses=error_statuses,
        on_missing=on_missing,
        on_failure=on_failure,
    )
    return decision, export_task
