"""Sensors that wait for an RDS snapshot to be exportable and for an export to finish.

Both default to ``mode="reschedule"`` (no worker slot held between pokes), can defer to the
triggerer (``deferrable=True``), and can even start and end in the triggerer
(``start_from_trigger=True, end_from_trigger=True``) so the wait never touches a worker.
They are thin drivers of a wait spec (:mod:`airflow_rds_export.waits`): ``poke``, the
check before deferring, ``execute_complete`` and the trigger all decide through it.

Importing this module imports neither boto3 nor ``airflow.triggers``; the hook is built
when the task runs, the trigger when it defers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_rds_export.connection import AWS_TEMPLATE_FIELDS, AwsConnectionMixin
from airflow_rds_export.decisions import (
    DEFAULT_EXPORT_ERROR_STATUSES,
    SNAPSHOT_READY_STATUS,
    Decision,
)
from airflow_rds_export.outcomes import carry_out, default_deferrable, rendered, resume_from_event
from airflow_rds_export.outputs import ConsoleLinks, ExportOutputsMixin
from airflow_rds_export.validation import check_literal, is_unrendered
from airflow_rds_export.wait_arguments import ExportStateArguments, SnapshotReadyArguments

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_rds_export.progress import ProgressLogger
    from airflow_rds_export.waits import Check, Wait

__all__ = [
    "RdsExportTaskExistenceSensor",
    "RdsExportTaskStateSensor",
    "RdsSnapshotExistenceSensor",
    "RdsSnapshotReadySensor",
]


class _WaitSensor(AwsConnectionMixin, BaseSensorOperator):
    """A sensor driving one wait spec, on a worker or in the triggerer."""

    #: The wait's arguments and their rules: what parsing the DAG file needs.
    arguments_cls: ClassVar[type[SnapshotReadyArguments] | type[ExportStateArguments]]
    #: The wait spec (in :mod:`.waits`), loaded once the task runs.
    wait_name: ClassVar[str]
    trigger_path: ClassVar[str]

    def _init_wait(
        self, deferrable: bool | None, start_from_trigger: bool, end_from_trigger: bool
    ) -> None:
        """Check the literal arguments (parse time) and set up deferral."""
        self.arguments_cls.check_arguments(self.wait_arguments(), check_literal)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = end_from_trigger
        self.start_from_trigger = start_from_trigger
        if start_from_trigger:
            from airflow.triggers.base import StartTriggerArgs

            # Airflow 3.3 renders the trigger's templated fields in the triggerer, so every
            # templated argument goes to the trigger as written in the DAG file.
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=self.trigger_path,
                trigger_kwargs=self.trigger_kwargs(),
                next_method="execute_complete",
                next_kwargs=None,
                timeout=self._deferral_timeout,
            )

    def wait_arguments(self) -> dict[str, Any]:
        """The wait spec's arguments as this task holds them (rendered once it runs)."""
        return {name: getattr(self, name) for name in self.arguments_cls._fields}

    def trigger_kwargs(self) -> dict[str, Any]:
        return {
            **self.wait_arguments(),
            "poll_interval": float(self.poke_interval),
            "end_from_trigger": self.end_from_trigger,
            "soft_fail": self.soft_fail,
            "resume_on_success": self.resumes_to_announce,
            **self.connection_kwargs,
        }

    @property
    def resumes_to_announce(self) -> bool:
        """Whether a trigger ending this task resumes it on a worker for its outputs."""
        return False

    def _seen(self, context: Context, description: dict[str, Any] | None) -> None:
        """A check described the resource: persist the console link(s)."""

    def _announce(self, context: Context, description: dict[str, Any]) -> None:
        """The wait ended successfully with ``description``: emit what the task outputs."""

    @property
    def _deferral_timeout(self) -> timedelta | None:
        return timedelta(seconds=self.timeout) if self.timeout else None

    @cached_property
    def _progress(self) -> ProgressLogger:
        from airflow_rds_export.progress import ProgressLogger

        return ProgressLogger(self.log)

    def _check(self) -> Check:
        """One check of the rendered wait (a broken rule fails the task first)."""
        from airflow_rds_export import waits

        wait_cls: type[Wait] = getattr(waits, self.wait_name)
        check = rendered(wait_cls, self.wait_arguments()).check(self.hook)
        self._progress(check.description)
        for warning in check.warnings:
            self.log.warning("%s", warning)
        return check

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # Decide once on the worker: if the answer is already known, no trigger is needed.
        check = self._check()
        self._seen(context, check.description)
        self._carry_out(check.decision)
        if check.decision.action == "done":
            self.log.info("%s", check.decision.reason)
            self._announce(context, check.description or {})
            return check.description
        self.log.info("%s; deferring to the triggerer", check.decision.reason)
        from airflow_rds_export import triggers

        trigger_cls = getattr(triggers, self.trigger_path.rsplit(".", 1)[1])
        self.defer(
            trigger=trigger_cls(**self.trigger_kwargs()),
            method_name="execute_complete",
            timeout=self._deferral_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: apply its decision as a poke would."""
        try:
            description = resume_from_event(event, log=self.log, check_again=self._check)
        except AirflowFailException as exc:
            if self.soft_fail:
                raise AirflowSkipException(f"soft_fail=True: {exc}") from exc
            raise
        self._seen(context, description)
        self._announce(context, description)
        return description

    def _carry_out(self, decision: Decision) -> None:
        """Raise what a skip or fail decision means; ``soft_fail`` turns a failure into a
        skip, as ``BaseSensorOperator`` does, but keeping the reason in the log."""
        if decision.action == "fail" and self.soft_fail:
            raise AirflowSkipException(f"soft_fail=True: {decision.reason}")
        carry_out(decision)

    def poke(self, context: Context) -> PokeReturnValue:
        check = self._check()
        self._seen(context, check.description)
        self._carry_out(check.decision)
        self.log.info("%s", check.decision.reason)
        done = check.decision.action == "done"
        if done:
            self._announce(context, check.description or {})
        return PokeReturnValue(is_done=done, xcom_value=check.description)


class RdsSnapshotReadySensor(_WaitSensor):
    """Wait until an RDS DB snapshot or Aurora cluster snapshot is ``available``.

    Name the snapshot (``db_snapshot_identifier``: name or ARN, instance or cluster
    snapshot; a live Aurora cluster's ARN waits for the cluster), or name its source
    (``db_instance_identifier`` / ``db_cluster_identifier``) to wait for the run's snapshot
    of that source, e.g. the nightly automated one: the earliest created at or after
    ``created_after`` (and before ``created_before``), so a cleared or backfilled run picks
    its own night's snapshot, never a later one; the newest without ``created_after``.

    * ``creating`` / ``copying``: not ready yet, keep waiting;
    * not found: ``on_missing`` (default ``"reschedule"``: keep waiting);
    * ``failed``, ``deleted``, ``incompatible-*``: ``on_failure`` (default ``"fail"``).

    :param db_snapshot_identifier: Snapshot name or ARN. (templated)
    :param db_instance_identifier: Wait for a snapshot of this instance. (templated)
    :param db_cluster_identifier: Wait for a snapshot of this cluster. (templated)
    :param snapshot_type: With an instance / cluster: ``"automated"`` (default),
        ``"manual"``, ``"shared"``, ``"public"`` or ``"awsbackup"``. (templated)
    :param created_after: With an instance / cluster: the earliest snapshot created at or
        after this time, e.g. ``"{{ logical_date }}"``. (templated)
    :param created_before: With an instance / cluster: only snapshots created before this
        time count, e.g. ``"{{ logical_date + macros.timedelta(days=1) }}"``. With
        Airflow 3's default timetable the data interval has zero length (start == end ==
        the logical date), so give the night's window explicitly. (templated)
    :param db_type: ``"instance"`` or ``"cluster"`` to look a snapshot name up in one
        kind only; by default DB snapshots are looked up first, then cluster snapshots.
    :param target_statuses: Statuses that end the wait (default ``["available"]``, the
        only one an export can start from). (templated)
    :param on_missing: ``"reschedule"`` (default), ``"skip"`` or ``"fail"``.
    :param on_failure: ``"fail"`` (default) or ``"skip"``.
    :param deferrable: Wait in the triggerer (default ``[operators] default_deferrable``).
    :param start_from_trigger: Start in the triggerer, never on a worker (Airflow 3.3+).
    :param end_from_trigger: Let the trigger end the task, pushing the same XCom.
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``);
        ``region_name`` (or ``region``), ``verify``, ``botocore_config`` and ``hook_params``
        as the Amazon provider takes them.

    Returns (XCom) the snapshot's description as a JSON-friendly dict, with ``SourceArn``
    (the snapshot's ARN) ready to hand to ``RdsStartExportTaskOperator``.
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "db_snapshot_identifier",
        "db_instance_identifier",
        "db_cluster_identifier",
        "snapshot_type",
        "created_after",
        "created_before",
        "target_statuses",
    )
    arguments_cls = SnapshotReadyArguments
    wait_name = "SnapshotReadyWait"
    trigger_path = "airflow_rds_export.triggers.RdsSnapshotReadyTrigger"
    operator_extra_links = ConsoleLinks("SNAPSHOT_LINKS")
    ui_color = "#ddbb77"

    def __init__(
        self,
        *,
        db_snapshot_identifier: str | None = None,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: Any = None,
        created_before: Any = None,
        db_type: str | None = None,
        target_statuses: Sequence[str] = (SNAPSHOT_READY_STATUS,),
        on_missing: str = "reschedule",
        on_failure: str = "fail",
        deferrable: bool | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        region: str | None = None,
        hook_params: dict[str, Any] | None = None,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self._set_connection(
            aws_conn_id,
            region_name,
            verify,
            botocore_config,
            region=region,
            hook_params=hook_params,
        )
        self.target_statuses = _as_list(target_statuses)
        self.db_snapshot_identifier = db_snapshot_identifier
        self.db_instance_identifier = db_instance_identifier
        self.db_cluster_identifier = db_cluster_identifier
        self.snapshot_type = snapshot_type
        self.created_after = created_after
        self.created_before = created_before
        self.db_type = db_type
        self.on_missing = on_missing
        self.on_failure = on_failure
        self._init_wait(deferrable, start_from_trigger, end_from_trigger)

    def _seen(self, context: Context, description: dict[str, Any] | None) -> None:
        from airflow_rds_export.links import persist_snapshot_link

        persist_snapshot_link(context, description, self.region_name)

    def wait_arguments(self) -> dict[str, Any]:
        arguments = super().wait_arguments()
        for name in ("created_after", "created_before"):
            if isinstance(arguments[name], datetime):  # JSON-friendly for the trigger
                arguments[name] = arguments[name].isoformat()
        return arguments


class RdsExportTaskStateSensor(ExportOutputsMixin, _WaitSensor):
    """Wait for an RDS snapshot export to reach a status (``COMPLETE`` by default).

    * a status in ``target_statuses``: success;
    * a status in ``error_statuses``: ``on_failure`` (default ``"fail"``, with AWS's
      ``FailureCause`` in the message; or ``"skip"``);
    * not found: ``on_missing`` (default ``"reschedule"``: keep waiting);
    * anything else: keep waiting; progress is logged as it changes.

    Statuses compare case-insensitively (AWS says ``COMPLETE``, moto ``complete``).

    :param export_task_identifier: The export to watch. (templated)
    :param target_statuses: Statuses that end the wait successfully (default
        ``("complete",)``). (templated)
    :param error_statuses: Statuses that trigger ``on_failure`` (default
        ``("failed", "canceled")``). (templated)
    :param on_failure: ``"fail"`` (default) or ``"skip"``.
    :param on_missing: ``"reschedule"`` (default), ``"skip"`` or ``"fail"``.
    :param verify_tables: Once COMPLETE, verify the export table by table from its
        ``WarningMessage`` and the metadata files it wrote to S3 (default True).
    :param expected_tables: Tables or patterns (``db.schema.table``, ``db.public.*``)
        that must be exported COMPLETE. (templated)
    :param on_table_failure: A failed, skipped or missing table: ``"fail"`` (default),
        ``"warn"`` or ``"skip"``.
    :param deferrable: Wait in the triggerer (default ``[operators] default_deferrable``).
    :param start_from_trigger: Start in the triggerer, never on a worker (Airflow 3.3+).
    :param end_from_trigger: Let the trigger end the task, pushing the same XCom. A
        COMPLETE export with ``emit_asset`` still resumes on a worker, briefly, to emit
        the asset event (Airflow 3.3's trigger end events cannot carry one).
    :param emit_asset: When the wait ends on a COMPLETE export, emit an asset event for
        ``s3://{bucket}/{prefix}/{id}/`` through ``asset_alias``, with the export's
        identifier, source ARN, snapshot time, GB and tables verdict in its ``extra``
        (default True). ``outlets`` you declare are emitted as usual.
    :param asset_alias: The ``AssetAlias`` to emit through, among the task's outlets
        (default ``rds-export:{dag_id}.{task_id}``): schedule downstream DAGs on it.
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``);
        ``region_name`` (or ``region``), ``verify``, ``botocore_config`` and ``hook_params``
        as the Amazon provider takes them.

    Returns (XCom) the export task's description, with ``S3Uri``
    (``s3://bucket/prefix/identifier/``) and, once verified, ``Tables`` (counts, failed /
    skipped tables with reasons, missing ones, total GB).
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "export_task_identifier",
        "target_statuses",
        "error_statuses",
        "expected_tables",
    )
    arguments_cls = ExportStateArguments
    wait_name = "ExportStateWait"
    trigger_path = "airflow_rds_export.triggers.RdsExportTaskStateTrigger"
    ui_color = "#ddbb77"

    def __init__(
        self,
        *,
        export_task_identifier: str,
        target_statuses: Sequence[str] = ("complete",),
        error_statuses: Sequence[str] = DEFAULT_EXPORT_ERROR_STATUSES,
        on_failure: str = "fail",
        on_missing: str = "reschedule",
        verify_tables: bool = True,
        expected_tables: Sequence[str] = (),
        on_table_failure: str = "fail",
        deferrable: bool | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        emit_asset: bool = True,
        asset_alias: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        region: str | None = None,
        hook_params: dict[str, Any] | None = None,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self._set_connection(
            aws_conn_id,
            region_name,
            verify,
            botocore_config,
            region=region,
            hook_params=hook_params,
        )
        self.end_from_trigger = end_from_trigger  # read by _init_outputs' resume rule
        self._init_outputs(emit_asset, asset_alias, completes=True)
        self.export_task_identifier = export_task_identifier
        self.target_statuses = _as_list(target_statuses)
        self.error_statuses = _as_list(error_statuses)
        self.on_failure = on_failure
        self.on_missing = on_missing
        self.verify_tables = verify_tables
        self.expected_tables = _as_list(expected_tables)
        self.on_table_failure = on_table_failure
        self._init_wait(deferrable, start_from_trigger, end_from_trigger)


class RdsSnapshotExistenceSensor(RdsSnapshotReadySensor):
    """The Amazon provider's ``RdsSnapshotExistenceSensor``, deciding as this package does.

    Same name, parameters, defaults and template fields as
    ``airflow.providers.amazon.aws.sensors.rds.RdsSnapshotExistenceSensor`` (9.39.0):
    wait until the snapshot ``db_snapshot_identifier`` of ``db_type`` (``"instance"`` or
    ``"cluster"``) has a status in ``target_statuses`` (default ``["available"]``); a
    snapshot that does not exist yet keeps the wait going; ``mode`` defaults to
    ``"poke"`` as there. Underneath: a ``failed`` / ``deleted`` / ``incompatible-*``
    snapshot not in ``target_statuses`` fails at once instead of waiting for the
    timeout, transient AWS errors are waited out, permission errors fail with the
    remedy, and ``deferrable=True`` waits in the triggerer. Every parameter of
    :class:`RdsSnapshotReadySensor` is accepted too.

    :param db_type: ``"instance"`` or ``"cluster"``.
    :param db_snapshot_identifier: The snapshot's name or ARN. (templated)
    :param target_statuses: Statuses that end the wait (default ``["available"]``).
        (templated)
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "db_snapshot_identifier",
        "target_statuses",
    )

    def __init__(
        self,
        *,
        db_type: str,
        db_snapshot_identifier: str,
        target_statuses: list[str] | None = None,
        mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            db_type=db_type,
            db_snapshot_identifier=db_snapshot_identifier,
            target_statuses=target_statuses or [SNAPSHOT_READY_STATUS],
            mode=mode,
            **kwargs,
        )


class RdsExportTaskExistenceSensor(RdsExportTaskStateSensor):
    """The Amazon provider's ``RdsExportTaskExistenceSensor``, deciding as this package does.

    Same name, parameters, defaults and template fields as
    ``airflow.providers.amazon.aws.sensors.rds.RdsExportTaskExistenceSensor`` (9.39.0):
    wait until the export exists with a status in ``target_statuses`` (default: any but
    ``failed``: starting, in_progress, complete, canceling, canceled); a status in
    ``error_statuses`` (default ``["failed"]``) fails the task, here with AWS's
    ``FailureCause``; an export not found yet keeps the wait going; ``mode`` defaults
    to ``"poke"`` as there. Every parameter of :class:`RdsExportTaskStateSensor` is
    accepted too (``deferrable``, ``on_failure``, ...).

    :param export_task_identifier: The export to watch. (templated)
    :param target_statuses: Statuses that end the wait successfully. (templated)
    :param error_statuses: Statuses that fail the task. (templated)
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "export_task_identifier",
        "target_statuses",
        "error_statuses",
    )

    def __init__(
        self,
        *,
        export_task_identifier: str,
        target_statuses: list[str] | None = None,
        error_statuses: list[str] | None = None,
        mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            export_task_identifier=export_task_identifier,
            target_statuses=target_statuses or list(EXPORT_EXISTS_STATUSES),
            error_statuses=error_statuses or ["failed"],
            mode=mode,
            **kwargs,
        )


#: The Amazon provider's ``RdsExportTaskExistenceSensor`` default ``target_statuses``.
EXPORT_EXISTS_STATUSES = ("starting", "in_progress", "complete", "canceling", "canceled")


def _as_list(statuses: Any) -> Any:
    """Literal status sequences as lists (JSON-friendly); templates left as they are."""
    return statuses if is_unrendered(statuses) or isinstance(statuses, str) else list(statuses)
