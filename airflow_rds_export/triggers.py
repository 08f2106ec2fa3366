"""Triggers: the triggerer's driver of a wait spec, holding no worker.

A trigger rebuilds its wait spec (:mod:`airflow_rds_export.waits`) from its JSON kwargs,
validates it (Airflow may have rendered templates in the triggerer), and checks it until
the decision is no longer ``wait``: through the shared poller of its connection
(:mod:`airflow_rds_export.polling`: one batched describe per cycle for up to 100 waits),
or alone with aiobotocore. Transient errors back off with the package's one retry policy
(:mod:`airflow_rds_export.retry`); permission and configuration errors fail at once with
the remedy, as on a worker. It yields one event carrying the decision and description, or
with ``end_from_trigger`` ends the task itself (success with the same XCom, skip, or
failure), so the task never returns to a worker.

A trigger may be run more than once (triggerer restart, HA): ``run()`` only reads AWS
state and keeps no state outside its own loop, so repeating it is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from airflow_rds_export import polling, retry
from airflow_rds_export.connection import AwsConnectionMixin
from airflow_rds_export.decisions import Decision, export_wrote_data
from airflow_rds_export.events import decision_from_event, event_payload
from airflow_rds_export.progress import ProgressLogger
from airflow_rds_export.validation import InvalidParameterError
from airflow_rds_export.waits import Check, ExportStateWait, SnapshotReadyWait, Wait

__all__ = [
    "RdsExportTaskStateTrigger",
    "RdsSnapshotReadyTrigger",
    "RdsStartedExportTrigger",
    "RdsWaitTrigger",
    "decision_from_event",
    "timer",
]

BACKOFF_BASE_SECONDS = retry.BACKOFF_BASE_SECONDS
#: Whether waits that can share their polling do (see :mod:`airflow_rds_export.polling`).
#: Set to False to make every trigger poll on its own (benchmarks compare both).
SHARED_POLLING = True

Pause = Callable[[float], Awaitable[None]]


def backoff_delay(failures: int, base: float | None = None) -> float:
    """The triggers' delay after ``failures`` transient errors in a row (capped, jittered)."""
    return retry.backoff_delay(failures, BACKOFF_BASE_SECONDS if base is None else base)


def timer(moment: datetime) -> BaseTrigger:
    """A trigger that fires at ``moment`` (Airflow's own ``DateTimeTrigger``)."""
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    return DateTimeTrigger(moment=moment)


class RdsWaitTrigger(AwsConnectionMixin, BaseTrigger):
    """Check a wait spec until it decides; see the module docstring.

    The spec's arguments are the trigger's own attributes, so Airflow can render the
    templated ones in the triggerer (``start_from_trigger``) before :meth:`run` reads them.

    :param poll_interval: Seconds between checks.
    :param max_attempts: Checks before giving up (failing); None: until the task's timeout.
    :param end_from_trigger: End the task from the triggerer instead of resuming it.
    :param soft_fail: With ``end_from_trigger``: a failing decision skips the task, as a
        sensor's ``soft_fail`` does on a worker.
    :param resume_on_success: With ``end_from_trigger``: a wait that ends on a COMPLETE
        export still resumes the task on a worker, which emits the export's asset event
        (Airflow 3.3's ``TaskSuccessEvent`` carries XComs, not asset events).
    :param aws_conn_id: Airflow connection for AWS; ``region_name``, ``verify`` and
        ``botocore_config`` as :class:`~airflow_rds_export.connection.AwsConnection`.
    :param poke_interval: Accepted for triggers serialized by earlier versions; use
        ``poll_interval``.
    """

    wait_cls: ClassVar[type[Wait]]
    default_poll_interval: ClassVar[float]

    def __init__(
        self,
        *,
        poll_interval: float | None = None,
        max_attempts: int | None = None,
        end_from_trigger: bool = False,
        soft_fail: bool = False,
        resume_on_success: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poke_interval: float | None = None,
        **arguments: Any,
    ) -> None:
        super().__init__()
        unknown = set(arguments) - set(self.wait_cls.argument_names())
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unknown)}")
        defaults = self.wait_cls().to_kwargs()
        for name in self.wait_cls.argument_names():
            setattr(self, name, arguments.get(name, defaults.get(name)))
        self.poll_interval = float(poll_interval or poke_interval or self.default_poll_interval)
        self.max_attempts = max_attempts
        self.end_from_trigger = end_from_trigger
        self.soft_fail = soft_fail
        self.resume_on_success = resume_on_success
        self._set_connection(aws_conn_id, region_name, verify, botocore_config)

    def wait_arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.wait_cls.argument_names()}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.wait_arguments(),
                "poll_interval": self.poll_interval,
                "max_attempts": self.max_attempts,
                "end_from_trigger": self.end_from_trigger,
                "soft_fail": self.soft_fail,
                "resume_on_success": self.resume_on_success,
                **self.connection_kwargs,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            wait = self.wait_cls.from_kwargs(self.wait_arguments()).validated()
        except InvalidParameterError as exc:
            check = Check(Decision("fail", str(exc)))
        else:
            check = await self._wait(wait)
        async for event in self._finish(check):
            yield event

    async def _wait(self, wait: Wait) -> Check:
        """Check until decided, then conclude (verify an export's tables); a conclusion
        AWS was too busy for is tried again after a backoff, from a fresh check."""
        failures = 0
        while True:
            check = await self._decide(wait)
            if check.decision.action == "done":
                check = await wait.conclude_async(check, self.connection.hook())
            for warning in check.warnings:
                self.log.warning("%s", warning)
            if not check.transient:
                return check
            failures += 1
            delay = backoff_delay(failures)
            self.log.warning("%s; trying again in %.1f s", check.decision.reason, delay)
            await asyncio.sleep(delay)

    async def _decide(self, wait: Wait) -> Check:
        shared = wait.shared_request() if SHARED_POLLING else None
        if shared is None:
            hook = self.connection.hook()
            async with await hook.get_async_conn() as client:
                return await self._check_until_decided(
                    wait, lambda: wait.describe_async(hook, client), asyncio.sleep, asyncio.sleep
                )
        async with polling.join(
            shared.kind, **self.connection_kwargs, interval=self.poll_interval
        ) as member:

            async def wait_cycle(seconds: float) -> None:
                member.wait(seconds)  # the next describe() waits for its cycle

            async def back_off(seconds: float) -> None:
                member.back_off(seconds)

            return await self._check_until_decided(
                wait,
                lambda: member.describe(shared.identifier, shared.snapshot_kind),
                wait_cycle,
                back_off,
            )

    async def _check_until_decided(
        self,
        wait: Wait,
        describe: Callable[[], Awaitable[dict[str, Any] | None]],
        pause: Pause,
        back_off: Pause,
    ) -> Check:
        report = ProgressLogger(self.log)
        attempts = 0
        failures = 0
        while True:
            check = await wait.check_async(describe)
            if check.transient:
                failures += 1
                delay = backoff_delay(failures)
                self.log.warning("%s; next poll in %.1f s", check.decision.reason, delay)
                await back_off(delay)
                continue
            failures = 0
            report.report(check.decision, check.description)
            if check.decision.action != "wait":
                return check
            attempts += 1
            if self.max_attempts is not None and attempts >= self.max_attempts:
                return Check(
                    Decision(
                        "fail",
                        f"{check.decision.reason}; still waiting after {attempts} checks "
                        f"{self.poll_interval:g} s apart. To do: raise the attempts limit",
                    ),
                    check.description,
                )
            await pause(self.poll_interval)

    async def _finish(self, check: Check) -> AsyncIterator[TriggerEvent]:
        decision = check.decision
        announce = (
            self.resume_on_success
            and decision.action == "done"
            and export_wrote_data(check.description)
        )
        if not self.end_from_trigger or announce:
            if announce:
                self.log.info(
                    "%s; resuming the task on a worker to emit its asset event", decision.reason
                )
            yield TriggerEvent(event_payload(decision, check.description))
            return
        # The task ends here, without a worker: the reason goes to the task's log.
        if decision.action == "done":
            self.log.info("%s", decision.reason)
            yield TaskSuccessEvent(xcoms={"return_value": check.description})
        elif decision.action == "skip":
            self.log.info("Skipping: %s", decision.reason)
            yield TaskSkippedEvent()
        elif self.soft_fail:
            self.log.warning("Skipping (soft_fail): %s", decision.reason)
            yield TaskSkippedEvent()
        else:
            self.log.error("Failing: %s", decision.reason)
            yield TaskFailedEvent()


class RdsSnapshotReadyTrigger(RdsWaitTrigger):
    """Wait in the triggerer until a DB or cluster snapshot is ``available``.

    Arguments: those of :class:`~airflow_rds_export.waits.SnapshotReadyWait`
    (``created_after`` as an ISO 8601 string) and of :class:`RdsWaitTrigger`.
    """

    wait_cls = SnapshotReadyWait
    default_poll_interval = 60.0


class RdsExportTaskStateTrigger(RdsWaitTrigger):
    """Wait in the triggerer until an export task reaches a target or error status.

    Arguments: those of :class:`~airflow_rds_export.waits.ExportStateWait` and of
    :class:`RdsWaitTrigger`. Progress (``PercentProgress``, extracted GB) is logged as it
    changes.
    """

    wait_cls = ExportStateWait
    default_poll_interval = 30.0


class RdsStartedExportTrigger(RdsExportTaskStateTrigger):
    """The start operator's deferred wait for the export it started or adopted.

    Waits as :class:`RdsExportTaskStateTrigger`; in addition, when a user ends the
    deferred task (marks it failed or success) it cancels the export, as the operator's
    ``on_kill`` does on a worker (:mod:`airflow_rds_export.user_kill`). A cleared task
    hands the export over to its next try, which adopts it; a triggerer shutting down or
    a trigger moving to another triggerer cancels nothing.
    """

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_rds_export import user_kill

        user_kill.prepare(getattr(self, "task_instance", None))
        async for event in super().run():
            yield event

    async def on_kill(self) -> None:
        from airflow_rds_export.user_kill import cancel_on_user_kill

        await cancel_on_user_kill(
            self.connection,
            getattr(self, "task_instance", None),
            str(self.wait_arguments()["export_task_identifier"]),
            self.log,
        )
