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
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowRescheduleException,
)

from airflow_rds_export.connection import AWS_TEMPLATE_FIELDS, AwsConnectionMixin
from airflow_rds_export.decisions import (
    EXPORT_ERROR_STATUSES,
    EXPORT_TERMINAL_STATUSES,
    TABLE_FAILURE_POLICIES,
    Decision,
    cancel_raced,
    decide_adoption,
    decide_cancel,
    decide_start_error,
    describe_unknown_refusal,
    other_export_of,
    start_refusal,
)
from airflow_rds_export.identifiers import MAX_EXPORT_ATTEMPTS, attempt_identifier
from airflow_rds_export.outcomes import (
    carry_out,
    default_deferrable,
    fail_on_invalid,
    resume_from_event,
)
from airflow_rds_export.outputs import ExportOutputsMixin
from airflow_rds_export.records import Record
from airflow_rds_export.validation import (
    InvalidParameterError,
    check_literal,
    is_unrendered,
    optional,
    region_of_arn,
    source_arn_of,
    validate_bucket_name,
    validate_export_only,
    validate_export_task_identifier,
    validate_flag,
    validate_iam_role_arn,
    validate_kms_key_id,
    validate_policy,
    validate_positive_int,
    validate_positive_interval,
    validate_region_agrees,
    validate_s3_prefix,
    validate_source_arn,
    validate_table_names,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_rds_export.waits import Check, ExportStateWait

__all__ = ["RdsCancelExportTaskOperator", "RdsStartExportTaskOperator"]


class _ExportWaitMixin(ExportOutputsMixin, AwsConnectionMixin, BaseOperator):
    """Waiting for an export task to reach a status, on a worker or in the triggerer;
    linking the export, and announcing its data once COMPLETE (:mod:`.outputs`)."""

    export_task_identifier: str
    deferrable: bool
    end_from_trigger: bool
    wait_target_statuses: frozenset[str]
    # Table verification once COMPLETE (the start operator's parameters; off otherwise).
    verify_tables: bool = False
    expected_tables: Sequence[str] | None = None
    on_table_failure: str = "fail"
    #: The trigger class (in :mod:`.triggers`) a deferred export wait runs in.
    export_trigger: ClassVar[str] = "RdsExportTaskStateTrigger"

    def __init__(self, **kwargs: Any) -> None:
        # Without an __init__ of its own, Airflow's operator metaclass reads this class's
        # defaults from BaseOperator's and maps inlets/outlets to None in .partial().
        super().__init__(**kwargs)
        #: The export this task acts on: export_task_identifier, or its re-export's.
        self._export_id: str | None = None

    @property
    def export_id(self) -> str:
        """The identifier of the export this task started, adopted or waits for."""
        return self._export_id or self.export_task_identifier

    def _export_wait(self) -> ExportStateWait:
        """The wait spec: a target status done; FAILED / CANCELED otherwise fail with
        the cause; a task not describable yet keeps the wait going."""
        from airflow_rds_export.waits import ExportStateWait

        return ExportStateWait(
            export_task_identifier=self.export_id,
            target_statuses=tuple(sorted(self.wait_target_statuses)),
            error_statuses=tuple(sorted(EXPORT_ERROR_STATUSES - self.wait_target_statuses)),
            on_missing="reschedule",
            on_failure="fail",
            verify_tables=self.verify_tables,
            expected_tables=tuple(self.expected_tables or ()),
            on_table_failure=self.on_table_failure,
        )

    def _check_export(self) -> Check:
        check = self._export_wait().check(self.hook)
        for warning in check.warnings:
            self.log.warning("%s", warning)
        return check

    def _wait_for_export(self, *, interval: float, max_attempts: int) -> dict[str, Any]:
        """Check until a target status: on this worker, or deferred once the first check
        could not decide. Transient AWS errors back off without using up attempts."""
        from airflow_rds_export.progress import ProgressLogger
        from airflow_rds_export.retry import backoff_delay

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
        from airflow_rds_export import triggers

        trigger_cls = getattr(triggers, self.export_trigger)
        self.log.info("Export %s: deferring the wait to the triggerer", self.export_id)
        self.defer(
            trigger=trigger_cls(
                **self._export_wait().to_kwargs(),
                poll_interval=interval,
                max_attempts=max_attempts,
                end_from_trigger=self.end_from_trigger,
                resume_on_success=self.resumes_to_announce,
                **self.connection_kwargs,
            ),
            method_name="execute_complete",
            kwargs={"export_id": self.export_id},
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], export_id: str | None = None
    ) -> dict[str, Any]:
        """Resume after a deferred wait: apply the trigger's decision as a check would."""
        self._export_id = export_id or self._export_id
        export_task = resume_from_event(event, log=self.log, check_again=self._check_export)
        self._announce(context, export_task)
        return export_task


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
        export; ``RdsSnapshotReadySensor`` returns it as ``SourceArn``. A description
        carrying ``SourceArn`` is taken too: that sensor's XCom, or a snapshot an RDS
        event announced (``announcements.AnnouncedSnapshot`` or its ``to_dict()``).
        (templated)
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
    :param verify_tables: Once the export is COMPLETE (``wait_for_completion``), verify
        it table by table from its ``WarningMessage`` and the metadata files it wrote to
        S3 (default True; needs ``s3:ListBucket`` and ``s3:GetObject`` on the export's
        folder, else only the WarningMessage is judged, with a warning).
    :param expected_tables: Tables (``db.schema.table`` / ``db.table``, or patterns such
        as ``db.public.*``) that must be exported COMPLETE. (templated)
    :param on_table_failure: A failed, skipped or missing table: ``"fail"`` (default,
        naming up to 20 tables with the reasons), ``"warn"`` (log them, succeed) or
        ``"skip"``.
    :param source_wait_interval: Time between tries while the source is not ready
        (seconds or timedelta; default 5 minutes).
    :param source_wait_timeout: How long after the first try to keep waiting for the
        source (seconds or timedelta; default 6 hours).
    :param deferrable: Wait in the triggerer instead of holding a worker slot, for the
        source and for completion (default ``[operators] default_deferrable``).
    :param end_from_trigger: With ``deferrable``, let the trigger end the task itself, so
        the completion wait costs no second worker start-up (default False). A COMPLETE
        export with ``emit_asset`` still resumes on a worker, briefly, to emit the asset
        event (Airflow 3.3's trigger end events cannot carry one).
    :param emit_asset: Once the export is COMPLETE (``wait_for_completion``), emit an
        asset event for ``s3://{bucket}/{prefix}/{id}/`` through ``asset_alias``, with
        the export's identifier, source ARN, snapshot time, GB and tables verdict in its
        ``extra`` (default True). ``outlets`` you declare are emitted as usual.
    :param asset_alias: The ``AssetAlias`` to emit through, among the task's outlets
        (default ``rds-export:{dag_id}.{task_id}``, see
        :func:`~airflow_rds_export.identifiers.export_asset_alias`): schedule downstream
        DAGs on it.
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``).
    :param region_name: AWS Region (``region`` is accepted as an alias, as upstream).
    :param verify: SSL verification, or a CA bundle path.
    :param botocore_config: botocore client configuration dict.

    Returns (XCom) the export task's description as a JSON-friendly dict, with ``S3Uri``.
    """

    wait_target_statuses = frozenset({"complete"})
    # Its trigger cancels the export when a user kills the deferred task.
    export_trigger = "RdsStartedExportTrigger"
    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "export_task_identifier",
        "source_arn",
        "s3_bucket_name",
        "iam_role_arn",
        "kms_key_id",
        "s3_prefix",
        "export_only",
        "expected_tables",
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
        verify_tables: bool = True,
        expected_tables: Sequence[str] | None = None,
        on_table_failure: str = "fail",
        source_wait_interval: timedelta | float = timedelta(minutes=5),
        source_wait_timeout: timedelta | float = timedelta(hours=6),
        deferrable: bool | None = None,
        end_from_trigger: bool = False,
        emit_asset: bool = True,
        asset_alias: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_connection(aws_conn_id, region_name, verify, botocore_config, region=region)
        self._init_outputs(emit_asset, asset_alias, completes=wait_for_completion)
        self.export_task_identifier = export_task_identifier
        self.source_arn = source_arn_of(source_arn)
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
        self.verify_tables = validate_flag(verify_tables, "verify_tables")
        self.expected_tables = expected_tables
        self.on_table_failure = validate_policy(
            on_table_failure, "on_table_failure", TABLE_FAILURE_POLICIES
        )
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
        check(self.expected_tables, optional(validate_table_names), "expected_tables")
        if not is_unrendered(self.source_arn):
            check(self.region_name, partial(validate_region_agrees, self.source_arn))

    def execute(
        self, context: Context, first_try: str | None = None, last_try: str | None = None
    ) -> dict[str, Any]:
        from airflow_rds_export.descriptions import with_s3_uri

        self.source_arn = source_arn_of(self.source_arn)  # an XCom or announced snapshot
        self._validate(fail_on_invalid)
        self._settle_region()
        export_task = with_s3_uri(self._start_or_adopt(context, _Tries(first_try, last_try)))
        self._export_id = export_task.get("ExportTaskIdentifier") or self.export_id
        self._started_or_adopted = self.export_id
        self._seen(context, export_task)  # linked before the wait may defer
        if self.wait_for_completion:
            export_task = with_s3_uri(
                self._wait_for_export(
                    interval=float(self.waiter_interval), max_attempts=self.waiter_max_attempts
                )
            )
            self._announce(context, export_task)
        return export_task

    def _settle_region(self) -> None:
        """Export in the source's Region: taken from source_arn when neither the task nor
        its connection names one; a different one fails before any AWS call."""
        try:
            validate_region_agrees(self.source_arn, self.region_name)
            if not self.region_name:
                validate_region_agrees(
                    self.source_arn, self.connection.hook().region_name, "the connection's Region"
                )
        except InvalidParameterError as exc:
            raise AirflowFailException(str(exc)) from exc
        self.region_name = self.region_name or region_of_arn(self.source_arn)

    def _start_or_adopt(self, context: Context, tries: _Tries) -> dict[str, Any]:
        """Start this run's export, or adopt it; a dead one is exported again as ``-r2``..."""
        for attempt in range(1, MAX_EXPORT_ATTEMPTS + 1):
            identifier = attempt_identifier(self.export_task_identifier, attempt)
            started = self._start(context, identifier, tries)
            if started is not None:
                return started
        raise AirflowFailException(
            f"Export task {self.export_task_identifier}: {MAX_EXPORT_ATTEMPTS} exports of this "
            "run exist and every one is FAILED or CANCELED; not starting another. To do: fix "
            "what their FailureCause says, then use a new export_task_identifier"
        )

    def _start(self, context: Context, identifier: str, tries: _Tries) -> dict[str, Any] | None:
        """Start (or adopt) the export ``identifier``; None: it is dead, try the next one."""
        from airflow_rds_export.errors import AwsError

        self.log.info(
            "Starting export %s of %s to s3://%s/%s",
            identifier,
            self.source_arn,
            self.s3_bucket_name,
            self.s3_prefix,
        )
        try:
            export_task = self.hook.start_export_task(
                export_task_identifier=identifier,
                source_arn=self.source_arn,
                s3_bucket_name=self.s3_bucket_name,
                iam_role_arn=self.iam_role_arn,
                kms_key_id=self.kms_key_id,
                s3_prefix=self.s3_prefix,
                export_only=self.export_only,
            )
        except Exception as exc:
            error = AwsError.of(exc)
            if error.transient:
                # The request may have taken effect: the next try adopts it if so.
                self._wait_and_retry(context, error.decide(f"Export task {identifier}"), tries)
            refusal = start_refusal(error.code, error.message)
            if refusal == "exists":
                return self._adopt(identifier)
            decision = decide_start_error(
                error.code or "",
                error.message,
                resource=identifier,
                on_invalid_state=self.on_invalid_state,
            )
            if decision is None:
                raise AirflowException(
                    describe_unknown_refusal(f"Export task {identifier}", error.code, error.message)
                ) from exc
            carry_out(decision)
            self._wait_and_retry(context, decision, tries, refusal, error.message)
            raise  # unreachable: the wait above raises
        self.log.info("Started export %s (status %s)", identifier, export_task.get("Status"))
        return export_task

    def _adopt(self, identifier: str) -> dict[str, Any] | None:
        existing = self.hook.describe_export_task(identifier)
        decision = decide_adoption(
            existing,
            resource=identifier,
            if_exists=self.if_exists,
            source_arn=self.source_arn,
            s3_bucket_name=self.s3_bucket_name,
            s3_prefix=self.s3_prefix,
            export_only=self.export_only,
        )
        carry_out(decision)
        if decision.action == "wait":
            raise AirflowRescheduleException(_utcnow() + timedelta(seconds=5))
        if decision.action == "restart":
            self.log.warning("%s", decision.reason)
            return None
        self.log.info("%s", decision.reason)
        assert existing is not None
        return existing

    def _wait_and_retry(
        self,
        context: Context,
        decision: Decision | None,
        tries: _Tries,
        refusal: str | None = None,
        message: str = "",
    ) -> None:
        """Not startable yet: wait, then try again, until source_wait_timeout after the
        first try (counted across reschedules and deferrals alike), then fail.

        Deferred: for the source to be ready, for the export that holds the same snapshot
        to end, or (quota, AWS busy) for ``source_wait_interval``; never sooner than
        ``source_wait_interval`` after the previous try. Otherwise rescheduled.
        """
        assert decision is not None
        now = _utcnow()
        first = tries.first or context["ti"].get_first_reschedule_date(context) or now
        remaining = self.source_wait_timeout - (now - first).total_seconds()
        if remaining <= 0:
            raise AirflowFailException(
                f"{decision.reason}; gave up after source_wait_timeout="
                f"{self.source_wait_timeout:g} s. To do: check the source, or raise "
                "source_wait_timeout"
            )
        interval = min(self.source_wait_interval, remaining)
        self.log.info("%s; next try in at most %g s", decision.reason, interval)
        if not self.deferrable:
            raise AirflowRescheduleException(now + timedelta(seconds=interval))
        from airflow_rds_export import triggers

        other = other_export_of(message) if refusal == "source_busy" else None
        too_soon = tries.last is not None and (now - tries.last).total_seconds() < interval
        waiting_for, trigger = "timer", triggers.timer(now + timedelta(seconds=interval))
        if refusal == "source_not_ready" and not too_soon:
            waiting_for = "source"
            trigger = triggers.RdsSnapshotReadyTrigger(
                db_snapshot_identifier=self.source_arn,
                on_missing="reschedule",
                on_failure="fail",
                poll_interval=self.source_wait_interval,
                **self.connection_kwargs,
            )
        elif other is not None and not too_soon:
            waiting_for = "other export"
            trigger = triggers.RdsExportTaskStateTrigger(
                export_task_identifier=other,
                target_statuses=sorted(EXPORT_TERMINAL_STATUSES),
                error_statuses=[],
                on_missing="skip",
                poll_interval=self.source_wait_interval,
                **self.connection_kwargs,
            )
        self.defer(
            trigger=trigger,
            method_name="execute_after_source_ready",
            kwargs={
                "first_try": first.isoformat(),
                "last_try": now.isoformat(),
                "waiting_for": waiting_for,
            },
            timeout=timedelta(seconds=remaining),
        )

    def execute_after_source_ready(
        self,
        context: Context,
        event: Any,
        first_try: str | None = None,
        last_try: str | None = None,
        waiting_for: str = "source",
    ) -> dict[str, Any]:
        """Resume after waiting to try again: try again, unless the source's own wait
        decided it can never be exported (failed or skipped)."""
        from airflow_rds_export.events import decision_from_event

        if waiting_for == "source":
            decision, _ = decision_from_event(event)
            carry_out(decision)
        else:
            self.log.info("Waited for the %s; trying to start again", waiting_for)
        return self.execute(context, first_try=first_try, last_try=last_try)

    def execute_complete(
        self, context: Context, event: dict[str, Any], export_id: str | None = None
    ) -> dict[str, Any]:
        from airflow_rds_export.descriptions import with_s3_uri

        result = with_s3_uri(super().execute_complete(context, event, export_id))
        self._started_or_adopted = self.export_id
        return result

    def on_kill(self) -> None:
        """Cancel the export this task started or adopted, so none runs unwatched."""
        from airflow_rds_export.errors import AwsError

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
    reports_lineage = False
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
        self._set_connection(aws_conn_id, region_name, verify, botocore_config, region=region)
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
        self._init_outputs(False, None, completes=False)  # links only: a cancel exports nothing
        check_literal(export_task_identifier, validate_export_task_identifier)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_rds_export.descriptions import with_s3_uri

        fail_on_invalid(self.export_task_identifier, validate_export_task_identifier)
        export_task = self.hook.describe_export_task(self.export_task_identifier)
        self._seen(context, with_s3_uri(export_task) if export_task else None)
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
        from airflow_rds_export.errors import AwsError

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


class _Tries(Record):
    """When this run first tried to start its export, and when it tried last (ISO 8601,
    carried through deferrals)."""

    first_iso: str | None = None
    last_iso: str | None = None

    @property
    def first(self) -> datetime | None:
        return datetime.fromisoformat(self.first_iso) if self.first_iso else None

    @property
    def last(self) -> datetime | None:
        return datetime.fromisoformat(self.last_iso) if self.last_iso else None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
