"""Operators that start and cancel RDS snapshot exports.

Drop-in supersets of :mod:`airflow.providers.amazon.aws.operators.rds`'s classes of the same
names: every parameter of the official operators is accepted with the same default, so
switching is changing the import. What they add is an explicit decision for every state
AWS refuses: see :mod:`airflow_rds_export.decisions`.

Importing this module does not import boto3; the hook is built when the task runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from airflow_rds_export.connection import AWS_TEMPLATE_FIELDS, AwsConnectionMixin
from airflow_rds_export.decisions import (
    EXPORT_ERROR_STATUSES,
    Decision,
    cancel_raced,
    decide_adoption,
    decide_cancel,
    decide_start_error,
    export_already_exists,
    source_not_ready,
)
from airflow_rds_export.descriptions import with_s3_uri
from airflow_rds_export.errors import AwsError
from airflow_rds_export.events import decision_from_event
from airflow_rds_export.outcomes import (
    carry_out,
    default_deferrable,
    fail_on_invalid,
    resume_from_event,
)
from airflow_rds_export.progress import ProgressLogger
from airflow_rds_export.retry import backoff_delay
from airflow_rds_export.validation import (
    check_literal,
    validate_bucket_name,
    validate_export_only,
    validate_export_task_identifier,
    validate_iam_role_arn,
    validate_kms_key_id,
    validate_policy,
    validate_positive_int,
    validate_positive_interval,
    validate_s3_prefix,
    validate_source_arn,
)
from airflow_rds_export.waits import Check, ExportStateWait

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["RdsCancelExportTaskOperator", "RdsStartExportTaskOperator"]


class _ExportWaitMixin(AwsConnectionMixin, BaseOperator):
    """Waiting for an export task to reach a status, on a worker or in the triggerer."""

    export_task_identifier: str
    deferrable: bool
    end_from_trigger: bool
    wait_target_statuses: frozenset[str]

    def __init__(self, **kwargs: Any) -> None:
        # Without an __init__ of its own, Airflow's operator metaclass reads this class's
        # defaults from BaseOperator's and maps inlets/outlets to None in .partial().
        super().__init__(**kwargs)

    def _export_wait(self) -> ExportStateWait:
        """The wait spec: a target status done; FAILED / CANCELED otherwise fail with
        the cause; a task not describable yet keeps the wait going."""
        return ExportStateWait(
            export_task_identifier=self.export_task_identifier,
            target_statuses=tuple(sorted(self.wait_target_statuses)),
            error_statuses=tuple(sorted(EXPORT_ERROR_STATUSES - self.wait_target_statuses)),
            on_missing="reschedule",
            on_failure="fail",
        )

    def _check_export(self) -> Check:
        return self._export_wait().check(self.hook)

    def _wait_for_export(self, *, interval: float, max_attempts: int) -> dict[str, Any]:
        """Check until a target status: on this worker, or deferred once the first check
        could not decide. Transient AWS errors back off without using up attempts."""
        show_progress = ProgressLogger(self.log)
        attempt = 0
        failures = 0
        while True:
            check = self._check_export()
            show_progress(check.description)
            carry_out(check.decision)
            if check.decision.action == "done":
                assert check.description is not None
                self.log.info("%s", check.decision.reason)
                return check.description
            if self.deferrable:
                self._defer_export_wait(interval, max_attempts)
            if check.transient:
                failures += 1
                self.log.warning("%s", check.decision.reason)
                time.sleep(backoff_delay(failures, base=interval, cap=max(interval, 60.0)))
                continue
            failures = 0
            attempt += 1
            if attempt >= max_attempts:
                raise AirflowFailException(
                    f"{check.decision.reason}; still not "
                    f"{'/'.join(sorted(self.wait_target_statuses)).upper()} after "
                    f"{max_attempts} checks {interval:g} s apart; the export goes on in AWS. "
                    "To do: raise the attempts limit, use deferrable=True, or wait with "
                    "RdsExportTaskStateSensor"
                )
            time.sleep(interval)

    def _defer_export_wait(self, interval: float, max_attempts: int) -> None:
        from airflow_rds_export.triggers import RdsExportTaskStateTrigger

        self.log.info("Export %s: deferring the wait to the triggerer", self.export_task_identifier)
        self.defer(
            trigger=RdsExportTaskStateTrigger(
                **self._export_wait().to_kwargs(),
                poll_interval=interval,
                max_attempts=max_attempts,
                end_from_trigger=self.end_from_trigger,
                **self.connection_kwargs,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after a deferred wait: apply the trigger's decision as a check would."""
        return resume_from_event(event, log=self.log, check_again=self._check_export)


class RdsStartExportTaskOperator(_ExportWaitMixin):
    """Start an export of an RDS / Aurora snapshot to Amazon S3, safely re-runnable.

    Accepts every parameter of the Amazon provider's ``RdsStartExportTaskOperator`` with
    the same default, and decides explicitly what each refusal from AWS means:

    * the source snapshot is not ``available`` yet (``InvalidExportSourceState``):
      ``on_invalid_state``;
    * an export with this identifier exists already (``ExportTaskAlreadyExists``, e.g. a
      retried or cleared task): ``if_exists``;
    * the IAM role, KMS key, bucket or ``ExportOnly`` entries are wrong: the task fails
      at once, without retries, with the remedy in the message.

    :param export_task_identifier: Identifier of the export, unique in the account and
        Region forever: derive it from the source and the logical date so a re-run adopts
        instead of failing. (templated)
    :param source_arn: ARN of the DB snapshot, DB cluster snapshot or DB cluster to
        export; ``RdsSnapshotReadySensor`` returns it as ``SourceArn``. (templated)
    :param s3_bucket_name: Bucket the export writes to. (templated)
    :param iam_role_arn: Role RDS assumes to write to the bucket. (templated)
    :param kms_key_id: KMS key that encrypts the exported data. (templated)
    :param s3_prefix: Prefix inside the bucket, without a trailing ``/``. (templated)
    :param export_only: Databases / tables to export; everything when empty. (templated)
    :param wait_for_completion: Wait until the export is ``COMPLETE`` (default True);
        ``FAILED`` or ``CANCELED`` fail the task with the ``FailureCause``.
    :param waiter_interval: Seconds between status checks while waiting (default 30).
    :param waiter_max_attempts: Status checks before giving up (default 40, i.e. 20
        minutes, as the official operator; real exports take hours: raise it, or use
        ``deferrable=True``).
    :param on_invalid_state: When the source snapshot is not available yet:
        ``"reschedule"`` (default: try again every ``source_wait_interval`` until
        ``source_wait_timeout`` after the first try, then fail), ``"skip"`` or ``"fail"``.
    :param if_exists: When the identifier is taken: ``"adopt"`` (default: if the existing
        export has the same source, bucket and prefix, it is this run's export: carry on
        with it; otherwise fail naming both) or ``"fail"``.
    :param source_wait_interval: Time between tries while the source is not ready
        (seconds or timedelta; default 5 minutes).
    :param source_wait_timeout: How long after the first try to keep waiting for the
        source (seconds or timedelta; default 6 hours).
    :param deferrable: Wait in the triggerer instead of holding a worker slot, for the
        source and for completion (default ``[operators] default_deferrable``).
    :param end_from_trigger: With ``deferrable``, let the trigger end the task itself, so
        the completion wait costs no second worker start-up (default False).
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``).
    :param region_name: AWS Region (``region`` is accepted as an alias, as upstream).
    :param verify: SSL verification, or a CA bundle path.
    :param botocore_config: botocore client configuration dict.

    Returns (XCom) the export task's description as a JSON-friendly dict, with ``S3Uri``.
    """

    wait_target_statuses = frozenset({"complete"})
    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "export_task_identifier",
        "source_arn",
        "s3_bucket_name",
        "iam_role_arn",
        "kms_key_id",
        "s3_prefix",
        "export_only",
    )
    ui_color = "#eeaa88"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        export_task_identifier: str,
        source_arn: str,
        s3_bucket_name: str,
        iam_role_arn: str,
        kms_key_id: str,
        s3_prefix: str = "",
        export_only: list[str] | None = None,
        wait_for_completion: bool = True,
        waiter_interval: int = 30,
        waiter_max_attempts: int = 40,
        on_invalid_state: str = "reschedule",
        if_exists: str = "adopt",
        source_wait_interval: timedelta | float = timedelta(minutes=5),
        source_wait_timeout: timedelta | float = timedelta(hours=6),
        deferrable: bool | None = None,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_connection(aws_conn_id, region_name or region, verify, botocore_config)
        self.export_task_identifier = export_task_identifier
        self.source_arn = source_arn
        self.s3_bucket_name = s3_bucket_name
        self.iam_role_arn = iam_role_arn
        self.kms_key_id = kms_key_id
        self.s3_prefix = s3_prefix
        self.export_only = export_only or []
        self.wait_for_completion = wait_for_completion
        self.waiter_interval = waiter_interval
        self.waiter_max_attempts = waiter_max_attempts
        self.on_invalid_state = validate_policy(
            on_invalid_state, "on_invalid_state", ("reschedule", "skip", "fail")
        )
        self.if_exists = validate_policy(if_exists, "if_exists", ("adopt", "fail"))
        self.source_wait_interval = validate_positive_interval(
            source_wait_interval, "source_wait_interval"
        )
        self.source_wait_timeout = validate_positive_interval(
            source_wait_timeout, "source_wait_timeout"
        )
        validate_positive_interval(waiter_interval, "waiter_interval")
        validate_positive_int(waiter_max_attempts, "waiter_max_attempts")
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = end_from_trigger
        self._started_or_adopted: str | None = None
        self._validate(check_literal)

    def _validate(self, check: Any) -> None:
        check(self.export_task_identifier, validate_export_task_identifier)
        check(self.source_arn, validate_source_arn)
        check(self.s3_bucket_name, validate_bucket_name)
        check(self.iam_role_arn, validate_iam_role_arn)
        check(self.kms_key_id, validate_kms_key_id)
        check(self.s3_prefix, validate_s3_prefix)
        check(self.export_only, validate_export_only)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate(fail_on_invalid)
        export_task = self._start_or_adopt(context)
        self._started_or_adopted = self.export_task_identifier
        if self.wait_for_completion:
            export_task = self._wait_for_export(
                interval=float(self.waiter_interval), max_attempts=self.waiter_max_attempts
            )
        return with_s3_uri(export_task)

    def _start_or_adopt(self, context: Context) -> dict[str, Any]:
        self.log.info(
            "Starting export %s of %s to s3://%s/%s",
            self.export_task_identifier,
            self.source_arn,
            self.s3_bucket_name,
            self.s3_prefix,
        )
        try:
            export_task = self.hook.start_export_task(
                export_task_identifier=self.export_task_identifier,
                source_arn=self.source_arn,
                s3_bucket_name=self.s3_bucket_name,
                iam_role_arn=self.iam_role_arn,
                kms_key_id=self.kms_key_id,
                s3_prefix=self.s3_prefix,
                export_only=self.export_only,
            )
        except Exception as exc:
            error = AwsError.of(exc)
            busy = error.decide(self.export_task_identifier) if error.transient else None
            if busy is not None:
                # The request may have taken effect: the next try adopts it if so.
                self._wait_and_retry(context, busy, defer=False)
            if error.code is None:
                raise
            if export_already_exists(error.code):
                return self._adopt()
            decision = decide_start_error(
                error.code,
                error.message,
                resource=self.export_task_identifier,
                on_invalid_state=self.on_invalid_state,
            )
            if decision is None:
                raise
            carry_out(decision)
            # Only a snapshot can be waited for in the triggerer; a full quota is retried.
            self._wait_and_retry(context, decision, defer=source_not_ready(error.code))
            raise  # unreachable: the wait above raises
        self.log.info(
            "Started export %s (status %s)",
            self.export_task_identifier,
            export_task.get("Status"),
        )
        return export_task

    def _adopt(self) -> dict[str, Any]:
        existing = self.hook.describe_export_task(self.export_task_identifier)
        decision = decide_adoption(
            existing,
            resource=self.export_task_identifier,
            if_exists=self.if_exists,
            source_arn=self.source_arn,
            s3_bucket_name=self.s3_bucket_name,
            s3_prefix=self.s3_prefix,
        )
        carry_out(decision)
        if decision.action == "wait":
            raise AirflowRescheduleException(_utcnow() + timedelta(seconds=5))
        self.log.info("%s", decision.reason)
        assert existing is not None
        return existing

    def _wait_and_retry(self, context: Context, decision: Decision, *, defer: bool) -> None:
        """Not startable yet: reschedule (or defer) until source_wait_timeout, then fail."""
        ti = context["ti"]
        first_try = ti.get_first_reschedule_date(context) or _utcnow()
        waited = (_utcnow() - first_try).total_seconds()
        remaining = self.source_wait_timeout - waited
        if remaining <= 0:
            raise AirflowFailException(
                f"{decision.reason}; gave up after source_wait_timeout="
                f"{self.source_wait_timeout:g} s. To do: check the snapshot, or raise "
                "source_wait_timeout"
            )
        self.log.info("%s; next try in %g s", decision.reason, self.source_wait_interval)
        if self.deferrable and defer:
            from airflow_rds_export.triggers import RdsSnapshotReadyTrigger

            self.defer(
                trigger=RdsSnapshotReadyTrigger(
                    db_snapshot_identifier=self.source_arn,
                    on_missing="reschedule",
                    on_failure="fail",
                    poll_interval=self.source_wait_interval,
                    **self.connection_kwargs,
                ),
                method_name="execute_after_source_ready",
                timeout=timedelta(seconds=remaining),
            )
        raise AirflowRescheduleException(
            _utcnow() + timedelta(seconds=min(self.source_wait_interval, remaining))
        )

    def execute_after_source_ready(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume once the deferred wait for the source snapshot ended."""
        decision, _ = decision_from_event(event)
        carry_out(decision)
        return self.execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self._started_or_adopted = self.export_task_identifier
        return with_s3_uri(super().execute_complete(context, event))

    def on_kill(self) -> None:
        """Cancel the export this task started or adopted, so none runs unwatched."""
        identifier = self._started_or_adopted
        if not identifier or not self.wait_for_completion:
            return
        try:
            self.hook.cancel_export_task(identifier)
        except Exception as exc:
            self.log.warning(
                "Task killed; could not cancel export %s (%s): it may still run in AWS",
                identifier,
                AwsError.of(exc).code or exc,
            )
        else:
            self.log.warning(
                "Task killed: canceled export %s, which it was waiting for", identifier
            )


class RdsCancelExportTaskOperator(_ExportWaitMixin):
    """Cancel an RDS snapshot export, with explicit decisions for the states AWS refuses.

    Accepts every parameter of the Amazon provider's ``RdsCancelExportTaskOperator`` with
    the same default. It checks the export's state before calling CancelExportTask (as
    AWS advises) and still handles the race where the state changes in between:

    * ``STARTING`` / ``IN_PROGRESS``: cancel it;
    * ``CANCELING``: a cancel is underway already, which is this task's goal: success
      (after waiting for ``CANCELED`` if ``wait_for_completion``);
    * ``COMPLETE`` / ``FAILED`` / ``CANCELED``: nothing to cancel: ``on_invalid_state``;
    * no such export: ``on_missing``.

    :param export_task_identifier: The export to cancel. (templated)
    :param wait_for_completion: Wait until the export is ``CANCELED`` (default True).
    :param check_interval: Seconds between status checks while waiting (default 30).
    :param max_attempts: Status checks before giving up (default 40).
    :param on_invalid_state: ``"skip"`` (default; the skip message says the status) or
        ``"fail"``.
    :param on_missing: ``"fail"`` (default) or ``"skip"``.
    :param deferrable: Wait for ``CANCELED`` in the triggerer (default
        ``[operators] default_deferrable``).
    :param end_from_trigger: With ``deferrable``, the trigger ends the task.
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``).
    :param region_name: AWS Region (``region`` is accepted as an alias, as upstream).
    :param verify: SSL verification, or a CA bundle path.
    :param botocore_config: botocore client configuration dict.

    Returns (XCom) the export task's description as a JSON-friendly dict.
    """

    wait_target_statuses = frozenset({"canceled"})
    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "export_task_identifier")
    ui_color = "#eeaa88"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        export_task_identifier: str,
        wait_for_completion: bool = True,
        check_interval: int = 30,
        max_attempts: int = 40,
        on_invalid_state: str = "skip",
        on_missing: str = "fail",
        deferrable: bool | None = None,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_connection(aws_conn_id, region_name or region, verify, botocore_config)
        self.export_task_identifier = export_task_identifier
        self.wait_for_completion = wait_for_completion
        self.check_interval = check_interval
        self.max_attempts = max_attempts
        self.on_invalid_state = validate_policy(
            on_invalid_state, "on_invalid_state", ("skip", "fail")
        )
        self.on_missing = validate_policy(on_missing, "on_missing", ("skip", "fail"))
        validate_positive_interval(check_interval, "check_interval")
        validate_positive_int(max_attempts, "max_attempts")
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = end_from_trigger
        check_literal(export_task_identifier, validate_export_task_identifier)

    def execute(self, context: Context) -> dict[str, Any]:
        fail_on_invalid(self.export_task_identifier, validate_export_task_identifier)
        export_task = self.hook.describe_export_task(self.export_task_identifier)
        decision = self._decide(export_task)
        assert export_task is not None  # a missing export was skipped or failed just above
        if decision.action == "wait":
            export_task = self._cancel()
            self.log.info(
                "Asked AWS to cancel export %s; it is %s",
                self.export_task_identifier,
                export_task.get("Status"),
            )
        else:
            self.log.info("%s", decision.reason)
        if self.wait_for_completion:
            export_task = self._wait_for_export(
                interval=float(self.check_interval), max_attempts=self.max_attempts
            )
        return export_task

    def _decide(self, export_task: dict[str, Any] | None) -> Decision:
        decision = decide_cancel(
            export_task,
            resource=self.export_task_identifier,
            on_invalid_state=self.on_invalid_state,
            on_missing=self.on_missing,
        )
        carry_out(decision)
        return decision

    def _cancel(self) -> dict[str, Any]:
        try:
            return self.hook.cancel_export_task(self.export_task_identifier)
        except Exception as exc:
            error = AwsError.of(exc)
            if not cancel_raced(error.code):
                raise
            # The state changed between our describe and the cancel: decide on the new one.
            current = self.hook.describe_export_task(self.export_task_identifier)
            self.log.info(
                "Export %s changed state before the cancel reached AWS (%s)",
                self.export_task_identifier,
                error.code,
            )
            decision = self._decide(None if error.not_found else current)
            if decision.action == "wait" or current is None:
                raise
            return current


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
