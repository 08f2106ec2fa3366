"""Triggers that wait for a snapshot or an export in the triggerer, holding no worker.

They poll with aiobotocore through :class:`~airflow_rds_export.hooks.RdsExportHook` (no
blocking call on the event loop), decide with :mod:`airflow_rds_export.decisions` exactly
as the sensors do, back off on throttling and transient errors with capped exponential
delay and jitter, and yield one event carrying the decision and the final description.
With ``end_from_trigger`` they end the task themselves (success with the same XCom, skip,
or failure), so the task never returns to a worker.

Waits for an export task, or for a snapshot named by identifier, share their polling with
every other such wait of the same connection in the triggerer's event loop
(:mod:`airflow_rds_export.polling`): one batched describe call per poll cycle for up to 100
waits, instead of one call per wait. The newest-automated-snapshot lookup and snapshots
named by ARN poll on their own.

A trigger may be run more than once (triggerer restart, HA): ``run()`` only reads AWS
state and keeps no state outside its own loop (the shared poller lives in the event loop's
memory only), so repeating it is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from airflow_rds_export._base import (
    ProgressLogger,
    is_transient_error,
    judge_export,
    judge_snapshot,
    optional,
    parse_datetime,
)
from airflow_rds_export._base import backoff_delay as capped_backoff
from airflow_rds_export.decisions import Decision
from airflow_rds_export.validation import (
    SNAPSHOT_TYPES,
    InvalidParameterError,
    validate_db_identifier,
    validate_export_task_identifier,
    validate_policy,
    validate_snapshot_identifier,
    validate_statuses,
)

__all__ = ["RdsExportTaskStateTrigger", "RdsSnapshotReadyTrigger", "decision_from_event"]

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
#: Whether waits that can share their polling do (see :mod:`airflow_rds_export.polling`).
#: Set to False to make every trigger poll on its own (benchmarks compare both).
SHARED_POLLING = True


def decision_from_event(event: dict[str, Any] | None) -> tuple[Decision, Any]:
    """The decision and description a trigger event carries (validated)."""
    if not isinstance(event, dict) or "decision" not in event:
        return Decision("fail", f"Unexpected trigger event {event!r}"), None
    return Decision.from_dict(event["decision"]), event.get("description")


def backoff_delay(failures: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """The triggers' delay after ``failures`` transient errors in a row (capped, jittered)."""
    return capped_backoff(failures, base=base, cap=BACKOFF_CAP_SECONDS)


class _RdsPollingTrigger(BaseTrigger):
    """Poll AWS until a decision other than ``wait``; then yield it once."""

    def __init__(
        self,
        *,
        poll_interval: float,
        end_from_trigger: bool,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: dict[str, Any] | None,
        max_attempts: int | None = None,
    ) -> None:
        super().__init__()
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.end_from_trigger = end_from_trigger
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def _common_kwargs(self) -> dict[str, Any]:
        return {
            "poll_interval": self.poll_interval,
            "max_attempts": self.max_attempts,
            "end_from_trigger": self.end_from_trigger,
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }

    def _hook(self) -> Any:
        from airflow_rds_export.hooks import RdsExportHook

        return RdsExportHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )

    async def _poll(self, hook: Any, client: Any) -> tuple[Decision, Any]:
        raise NotImplementedError

    def _check(self) -> None:
        """Validate rendered arguments (they may have been templated in the triggerer)."""

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            self._check()
        except InvalidParameterError as exc:
            async for event in self._finish(Decision("fail", str(exc)), None):
                yield event
            return
        decision, description = await self._wait()
        async for event in self._finish(decision, description):
            yield event

    def _shared_request(self) -> tuple[str, str, str | None] | None:
        """``(poller kind, identifier, snapshot kind)`` when this wait can share polling."""
        return None

    async def _judge(self, description: dict[str, Any] | None) -> tuple[Decision, Any]:
        """The decision for a description from the shared poller."""
        raise NotImplementedError

    async def _wait(self) -> tuple[Decision, Any]:
        shared = self._shared_request() if SHARED_POLLING else None
        if shared is None:
            hook = self._hook()
            async with await hook.get_async_conn() as client:
                return await self._wait_loop(
                    lambda: self._poll(hook, client), asyncio.sleep, asyncio.sleep
                )
        from airflow_rds_export import polling

        kind, identifier, snapshot_kind = shared
        async with polling.join(
            kind,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
            interval=self.poll_interval,
        ) as member:

            async def poll() -> tuple[Decision, Any]:
                return await self._judge(await member.describe(identifier, snapshot_kind))

            async def wait(seconds: float) -> None:
                member.wait(seconds)  # the next describe() waits for its cycle

            async def back_off(seconds: float) -> None:
                member.back_off(seconds)

            return await self._wait_loop(poll, wait, back_off)

    async def _wait_loop(
        self,
        poll: Callable[[], Awaitable[tuple[Decision, Any]]],
        wait: Callable[[float], Awaitable[None]],
        back_off: Callable[[float], Awaitable[None]],
    ) -> tuple[Decision, Any]:
        attempts = 0
        failures = 0
        while True:
            try:
                decision, description = await poll()
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                failures += 1
                delay = backoff_delay(failures)
                self.log.warning("Transient AWS error (%s); next poll in %.1f s", exc, delay)
                await back_off(delay)
                continue
            failures = 0
            if decision.action != "wait":
                return decision, description
            attempts += 1
            if self.max_attempts is not None and attempts >= self.max_attempts:
                return Decision(
                    "fail",
                    f"{decision.reason}; still waiting after {attempts} checks "
                    f"{self.poll_interval:g} s apart. To do: raise the attempts limit",
                ), description
            await wait(self.poll_interval)

    def _log_wait(self, decision: Decision) -> None:
        """Log why the wait goes on, once per change (thousands of waits share a log)."""
        if decision.action == "wait" and decision.reason != getattr(self, "_last_reason", None):
            self.log.info("%s", decision.reason)
        self._last_reason = decision.reason

    async def _finish(self, decision: Decision, description: Any) -> AsyncIterator[TriggerEvent]:
        if not self.end_from_trigger:
            yield TriggerEvent({"decision": decision.to_dict(), "description": description})
            return
        # The task ends here, without a worker: the reason goes to the task's log.
        if decision.action == "done":
            self.log.info("%s", decision.reason)
            yield TaskSuccessEvent(xcoms={"return_value": description})
        elif decision.action == "skip":
            self.log.info("Skipping: %s", decision.reason)
            yield TaskSkippedEvent()
        else:
            self.log.error("Failing: %s", decision.reason)
            yield TaskFailedEvent()


class RdsSnapshotReadyTrigger(_RdsPollingTrigger):
    """Wait in the triggerer until a DB or cluster snapshot is ``available``.

    Arguments as :class:`~airflow_rds_export.sensors.RdsSnapshotReadySensor`'s, all
    JSON-friendly; ``created_after`` is an ISO 8601 string.
    """

    def __init__(
        self,
        *,
        db_snapshot_identifier: str | None = None,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: str | None = None,
        db_type: str | None = None,
        on_missing: str = "reschedule",
        on_failure: str = "fail",
        poke_interval: float = 60.0,
        max_attempts: int | None = None,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float | None = None,
    ) -> None:
        super().__init__(
            poll_interval=poll_interval or poke_interval,
            max_attempts=max_attempts,
            end_from_trigger=end_from_trigger,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
        self.db_snapshot_identifier = db_snapshot_identifier
        self.db_instance_identifier = db_instance_identifier
        self.db_cluster_identifier = db_cluster_identifier
        self.snapshot_type = snapshot_type
        self.created_after = created_after
        self.db_type = db_type
        self.on_missing = on_missing
        self.on_failure = on_failure

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "db_snapshot_identifier": self.db_snapshot_identifier,
                "db_instance_identifier": self.db_instance_identifier,
                "db_cluster_identifier": self.db_cluster_identifier,
                "snapshot_type": self.snapshot_type,
                "created_after": self.created_after,
                "db_type": self.db_type,
                "on_missing": self.on_missing,
                "on_failure": self.on_failure,
                **self._common_kwargs(),
            },
        )

    def _check(self) -> None:
        # With start_from_trigger these were rendered here, never seen by a worker.
        optional(validate_snapshot_identifier)(self.db_snapshot_identifier)
        optional(validate_db_identifier)(self.db_instance_identifier, "db_instance_identifier")
        optional(validate_db_identifier)(self.db_cluster_identifier, "db_cluster_identifier")
        validate_policy(self.snapshot_type, "snapshot_type", SNAPSHOT_TYPES)
        parse_datetime(self.created_after, "created_after")

    def _snapshot_kind(self) -> str | None:
        return {"instance": "db", "cluster": "cluster"}.get(self.db_type or "")

    def _shared_request(self) -> tuple[str, str, str | None] | None:
        identifier = self.db_snapshot_identifier
        # ARNs (possibly another account's shared snapshot) are looked up on their own.
        if not identifier or identifier.startswith("arn:"):
            return None
        return "snapshot", identifier, self._snapshot_kind()

    async def _judge(self, description: dict[str, Any] | None) -> tuple[Decision, Any]:
        return self._decide(description, str(self.db_snapshot_identifier))

    def _decide(self, snapshot: dict[str, Any] | None, requested: str) -> tuple[Decision, Any]:
        decision, described = judge_snapshot(
            snapshot, requested=requested, on_missing=self.on_missing, on_failure=self.on_failure
        )
        self._log_wait(decision)
        return decision, described

    async def _poll(self, hook: Any, client: Any) -> tuple[Decision, Any]:
        if self.db_snapshot_identifier:
            kind = self._snapshot_kind()
            snapshot = await hook.describe_snapshot_async(client, self.db_snapshot_identifier, kind)
            requested = self.db_snapshot_identifier
        else:
            snapshot = await hook.find_latest_snapshot_async(
                client,
                db_instance_identifier=self.db_instance_identifier,
                db_cluster_identifier=self.db_cluster_identifier,
                snapshot_type=self.snapshot_type,
                created_after=parse_datetime(self.created_after, "created_after"),
            )
            source = self.db_instance_identifier or self.db_cluster_identifier
            requested = f"(newest {self.snapshot_type} snapshot of {source})"
        return self._decide(snapshot, requested)


class RdsExportTaskStateTrigger(_RdsPollingTrigger):
    """Wait in the triggerer until an export task reaches a target or error status.

    Arguments as :class:`~airflow_rds_export.sensors.RdsExportTaskStateSensor`'s, all
    JSON-friendly. Progress (``PercentProgress``, extracted GB) is logged as it changes.
    """

    def __init__(
        self,
        *,
        export_task_identifier: str,
        target_statuses: Sequence[str] = ("complete",),
        error_statuses: Sequence[str] = ("canceled", "failed"),
        on_missing: str = "reschedule",
        on_failure: str = "fail",
        poll_interval: float = 30.0,
        max_attempts: int | None = None,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            poll_interval=poll_interval,
            max_attempts=max_attempts,
            end_from_trigger=end_from_trigger,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
        self.export_task_identifier = export_task_identifier
        self.target_statuses = (
            target_statuses if isinstance(target_statuses, str) else list(target_statuses)
        )
        self.error_statuses = (
            error_statuses if isinstance(error_statuses, str) else list(error_statuses)
        )
        self.on_missing = on_missing
        self.on_failure = on_failure

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "export_task_identifier": self.export_task_identifier,
                "target_statuses": self.target_statuses,
                "error_statuses": self.error_statuses,
                "on_missing": self.on_missing,
                "on_failure": self.on_failure,
                **self._common_kwargs(),
            },
        )

    def _check(self) -> None:
        validate_export_task_identifier(self.export_task_identifier)
        self._targets = validate_statuses(self.target_statuses, "target_statuses")
        self._errors = validate_statuses(self.error_statuses, "error_statuses")

    def _shared_request(self) -> tuple[str, str, str | None] | None:
        return "export", self.export_task_identifier, None

    async def _judge(self, description: dict[str, Any] | None) -> tuple[Decision, Any]:
        return self._decide(description)

    async def _poll(self, hook: Any, client: Any) -> tuple[Decision, Any]:
        export_task = await hook.describe_export_task_async(client, self.export_task_identifier)
        return self._decide(export_task)

    def _decide(self, export_task: dict[str, Any] | None) -> tuple[Decision, Any]:
        if export_task is not None:
            self._show_progress(export_task)
        decision, described = judge_export(
            export_task,
            identifier=self.export_task_identifier,
            target_statuses=self._targets,
            error_statuses=self._errors,
            on_missing=self.on_missing,
            on_failure=self.on_failure,
        )
        if export_task is None:
            self._log_wait(decision)
        return decision, described

    @property
    def _show_progress(self) -> ProgressLogger:
        if not hasattr(self, "_progress_logger"):
            self._progress_logger = ProgressLogger(self.log)
        return self._progress_logger
