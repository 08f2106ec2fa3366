"""Sensors that wait for an RDS snapshot to be exportable and for an export to finish.

Both default to ``mode="reschedule"`` (no worker slot held between pokes), can defer to the
triggerer (``deferrable=True``), and can even start and end in the triggerer
(``start_from_trigger=True, end_from_trigger=True``) so the wait never touches a worker.
Every state decision comes from :mod:`airflow_rds_export.decisions`.

Importing this module does not import boto3; the hook is built when the task runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.triggers.base import StartTriggerArgs

from airflow_rds_export._base import (
    AWS_TEMPLATE_FIELDS,
    AwsConnectionMixin,
    ProgressLogger,
    carry_out,
    check_literal,
    default_deferrable,
    fail_on_invalid,
    is_transient_error,
    judge_export,
    judge_snapshot,
    optional,
    parse_datetime,
    raise_if_permanent,
    resume_from_event,
)
from airflow_rds_export.decisions import (
    EXPORT_ERROR_STATUSES,
    POLICIES,
    Decision,
    decide_transient_error,
)
from airflow_rds_export.validation import (
    SNAPSHOT_TYPES,
    InvalidParameterError,
    is_unrendered,
    validate_db_identifier,
    validate_disjoint,
    validate_export_task_identifier,
    validate_policy,
    validate_snapshot_identifier,
    validate_statuses,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["RdsExportTaskStateSensor", "RdsSnapshotReadySensor"]


class _DeferrableSensor(AwsConnectionMixin, BaseSensorOperator):
    """Common ground of both sensors: the deferral pair and triggerer start / end."""

    trigger_path: str = ""

    def _init_deferral(
        self, deferrable: bool | None, start_from_trigger: bool, end_from_trigger: bool
    ) -> None:
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = end_from_trigger
        self.start_from_trigger = start_from_trigger
        if start_from_trigger:
            # Airflow 3.3 renders the trigger's templated fields in the triggerer, so every
            # templated argument goes to the trigger as written in the DAG file.
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=self.trigger_path,
                trigger_kwargs=self.trigger_kwargs(),
                next_method="execute_complete",
                next_kwargs=None,
                timeout=timedelta(seconds=self.timeout) if self.timeout else None,
            )

    def trigger_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self._validate_rendered()
        # Decide once on the worker: if the answer is already known, no trigger is needed.
        decision, description = self._poll_through_transient_errors()
        carry_out(decision)
        if decision.action == "done":
            self.log.info("%s", decision.reason)
            return description
        self.log.info("%s; deferring to the triggerer", decision.reason)
        from airflow_rds_export import triggers

        trigger_cls = getattr(triggers, self.trigger_path.rsplit(".", 1)[1])
        self.defer(
            trigger=trigger_cls(**self.trigger_kwargs()),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: apply its decision as a poke would."""
        return resume_from_event(
            event, log=self.log, poll_again=self._poll_through_transient_errors
        )

    def poke(self, context: Context) -> PokeReturnValue:
        self._validate_rendered()
        decision, description = self._poll_through_transient_errors()
        carry_out(decision)
        self.log.info("%s", decision.reason)
        return PokeReturnValue(is_done=decision.action == "done", xcom_value=description)

    def _poll_through_transient_errors(self) -> tuple[Decision, dict[str, Any] | None]:
        """Poll; AWS busy or unreachable (after botocore's retries) means "not yet"."""
        try:
            return self._poll()
        except Exception as exc:
            if not is_transient_error(exc):
                raise_if_permanent(exc, self.task_id)
                raise
            return decide_transient_error(self.task_id, str(exc)), None

    def _validate_rendered(self) -> None:
        raise NotImplementedError

    def _poll(self) -> tuple[Decision, dict[str, Any] | None]:
        raise NotImplementedError


class RdsSnapshotReadySensor(_DeferrableSensor):
    """Wait until an RDS DB snapshot or Aurora cluster snapshot is ``available``.

    Name the snapshot (``db_snapshot_identifier``: name or ARN, instance or cluster
    snapshot), or name its source (``db_instance_identifier`` / ``db_cluster_identifier``)
    to wait for the newest snapshot of that source, e.g. the nightly automated one.

    * ``creating`` / ``copying``: not ready yet, keep waiting;
    * not found: ``on_missing`` (default ``"reschedule"``: keep waiting);
    * ``failed``, ``deleted``, ``incompatible-*``: ``on_failure`` (default ``"fail"``).

    :param db_snapshot_identifier: Snapshot name or ARN. (templated)
    :param db_instance_identifier: Wait for the newest snapshot of this instance. (templated)
    :param db_cluster_identifier: Wait for the newest snapshot of this cluster. (templated)
    :param snapshot_type: With an instance / cluster: ``"automated"`` (default),
        ``"manual"``, ``"shared"``, ``"public"`` or ``"awsbackup"``. (templated)
    :param created_after: With an instance / cluster: only snapshots created at or after
        this time count, e.g. ``"{{ data_interval_end }}"``. (templated)
    :param db_type: ``"instance"`` or ``"cluster"`` to look a snapshot name up in one
        kind only; by default DB snapshots are looked up first, then cluster snapshots.
    :param on_missing: ``"reschedule"`` (default), ``"skip"`` or ``"fail"``.
    :param on_failure: ``"fail"`` (default) or ``"skip"``.
    :param deferrable: Wait in the triggerer (default ``[operators] default_deferrable``).
    :param start_from_trigger: Start in the triggerer, never on a worker (Airflow 3.3+).
    :param end_from_trigger: Let the trigger end the task, pushing the same XCom.
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``).

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
    )
    trigger_path = "airflow_rds_export.triggers.RdsSnapshotReadyTrigger"
    ui_color = "#ddbb77"

    def __init__(
        self,
        *,
        db_snapshot_identifier: str | None = None,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: Any = None,
        db_type: str | None = None,
        on_missing: str = "reschedule",
        on_failure: str = "fail",
        deferrable: bool | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self._set_connection(aws_conn_id, region_name, verify, botocore_config)
        named = [
            name
            for name, value in (
                ("db_snapshot_identifier", db_snapshot_identifier),
                ("db_instance_identifier", db_instance_identifier),
                ("db_cluster_identifier", db_cluster_identifier),
            )
            if value
        ]
        if len(named) != 1:
            raise InvalidParameterError(
                "db_snapshot_identifier",
                db_snapshot_identifier,
                "give exactly one of db_snapshot_identifier, db_instance_identifier, "
                f"db_cluster_identifier (got {named or 'none'})",
            )
        self.db_snapshot_identifier = db_snapshot_identifier
        self.db_instance_identifier = db_instance_identifier
        self.db_cluster_identifier = db_cluster_identifier
        self.snapshot_type = snapshot_type
        self.created_after = created_after
        self.db_type = validate_policy(db_type, "db_type", (None, "instance", "cluster"))
        self.on_missing = validate_policy(on_missing, "on_missing", POLICIES)
        self.on_failure = validate_policy(on_failure, "on_failure", ("fail", "skip"))
        self._validate(check_literal)
        self._init_deferral(deferrable, start_from_trigger, end_from_trigger)

    def _validate(self, check: Any) -> None:
        check(self.db_snapshot_identifier, optional(validate_snapshot_identifier))
        check(
            self.db_instance_identifier, optional(validate_db_identifier), "db_instance_identifier"
        )
        check(self.db_cluster_identifier, optional(validate_db_identifier), "db_cluster_identifier")
        check(self.snapshot_type, validate_policy, "snapshot_type", SNAPSHOT_TYPES)
        check(self.created_after, parse_datetime, "created_after")

    def _validate_rendered(self) -> None:
        self._validate(fail_on_invalid)

    def trigger_kwargs(self) -> dict[str, Any]:
        created_after = self.created_after
        if created_after is not None and not isinstance(created_after, str):
            created_after = created_after.isoformat()
        return {
            "db_snapshot_identifier": self.db_snapshot_identifier,
            "db_instance_identifier": self.db_instance_identifier,
            "db_cluster_identifier": self.db_cluster_identifier,
            "snapshot_type": self.snapshot_type,
            "created_after": created_after,
            "db_type": self.db_type,
            "on_missing": self.on_missing,
            "on_failure": self.on_failure,
            "poke_interval": float(self.poke_interval),
            "end_from_trigger": self.end_from_trigger,
            **self.connection_kwargs,
        }

    @property
    def resource(self) -> str:
        if self.db_snapshot_identifier:
            return str(self.db_snapshot_identifier)
        source = self.db_instance_identifier or self.db_cluster_identifier
        return f"(newest {self.snapshot_type} snapshot of {source})"

    def _poll(self) -> tuple[Decision, dict[str, Any] | None]:
        if self.db_snapshot_identifier:
            kind = {"instance": "db", "cluster": "cluster"}.get(self.db_type or "")
            snapshot = self.hook.describe_snapshot(self.db_snapshot_identifier, kind)
        else:
            snapshot = self.hook.find_latest_snapshot(
                db_instance_identifier=self.db_instance_identifier,
                db_cluster_identifier=self.db_cluster_identifier,
                snapshot_type=self.snapshot_type,
                created_after=parse_datetime(self.created_after, "created_after"),
            )
        return judge_snapshot(
            snapshot,
            requested=self.resource,
            on_missing=self.on_missing,
            on_failure=self.on_failure,
        )


class RdsExportTaskStateSensor(_DeferrableSensor):
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
    :param deferrable: Wait in the triggerer (default ``[operators] default_deferrable``).
    :param start_from_trigger: Start in the triggerer, never on a worker (Airflow 3.3+).
    :param end_from_trigger: Let the trigger end the task, pushing the same XCom.
    :param aws_conn_id: Airflow connection for AWS (default ``aws_default``).

    Returns (XCom) the export task's description, with ``S3Uri``
    (``s3://bucket/prefix/identifier/``).
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "export_task_identifier",
        "target_statuses",
        "error_statuses",
    )
    trigger_path = "airflow_rds_export.triggers.RdsExportTaskStateTrigger"
    ui_color = "#ddbb77"

    def __init__(
        self,
        *,
        export_task_identifier: str,
        target_statuses: Sequence[str] = ("complete",),
        error_statuses: Sequence[str] = tuple(sorted(EXPORT_ERROR_STATUSES)),
        on_failure: str = "fail",
        on_missing: str = "reschedule",
        deferrable: bool | None = None,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self._set_connection(aws_conn_id, region_name, verify, botocore_config)
        self.export_task_identifier = export_task_identifier
        self.target_statuses = _as_list(target_statuses)
        self.error_statuses = _as_list(error_statuses)
        self.on_failure = validate_policy(on_failure, "on_failure", ("fail", "skip"))
        self.on_missing = validate_policy(on_missing, "on_missing", POLICIES)
        self._validate(check_literal)
        self._init_deferral(deferrable, start_from_trigger, end_from_trigger)

    def _validate(self, check: Any) -> None:
        check(self.export_task_identifier, validate_export_task_identifier)
        check(self.target_statuses, validate_statuses, "target_statuses")
        check(self.error_statuses, validate_statuses, "error_statuses")
        if not is_unrendered(self.target_statuses) and not is_unrendered(self.error_statuses):
            check(self.error_statuses, self._check_disjoint)

    def _check_disjoint(self, error_statuses: Any) -> None:
        validate_disjoint(
            validate_statuses(self.target_statuses, "target_statuses"),
            validate_statuses(error_statuses, "error_statuses"),
            error_field="error_statuses",
            value=error_statuses,
        )

    def _validate_rendered(self) -> None:
        self._validate(fail_on_invalid)

    def trigger_kwargs(self) -> dict[str, Any]:
        return {
            "export_task_identifier": self.export_task_identifier,
            "target_statuses": self.target_statuses,
            "error_statuses": self.error_statuses,
            "on_missing": self.on_missing,
            "on_failure": self.on_failure,
            "poll_interval": float(self.poke_interval),
            "max_attempts": None,
            "end_from_trigger": self.end_from_trigger,
            **self.connection_kwargs,
        }

    def _poll(self) -> tuple[Decision, dict[str, Any] | None]:
        export_task = self.hook.describe_export_task(self.export_task_identifier)
        if export_task is not None:
            self._show_progress(export_task)
        return judge_export(
            export_task,
            identifier=self.export_task_identifier,
            target_statuses=validate_statuses(self.target_statuses, "target_statuses"),
            error_statuses=validate_statuses(self.error_statuses, "error_statuses"),
            on_missing=self.on_missing,
            on_failure=self.on_failure,
        )

    @cached_property
    def _show_progress(self) -> ProgressLogger:
        return ProgressLogger(self.log)


def _as_list(statuses: Any) -> Any:
    """Literal status sequences as lists (JSON-friendly); templates left as they are."""
    return statuses if is_unrendered(statuses) or isinstance(statuses, str) else list(statuses)
