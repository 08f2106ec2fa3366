"""The control surface of the emulator: what a test can set up, change and observe.

:class:`EmulatorControl` acts on moto's backends in *this* process. In-process tests get
it through :class:`~airflow_rds_export.testing.RdsEmulator`; the emulator server runs one
and exposes every method listed in :data:`CONTROL_METHODS` over HTTP, where
:class:`~airflow_rds_export.testing.server.RemoteControl` forwards to it. So a test
written against ``emu`` runs unchanged against ``srv.control``.

Every return value is JSON-friendly (datetimes as ISO-8601 strings) so the two modes
return the same thing. Every failure is an :class:`EmulatorControlError`.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import ServiceException
from moto.rds.models import DBCluster, DBClusterSnapshot, DBSnapshot, RDSBackend, rds_backends

from .backend import (
    STATE,
    EmulatedExportTask,
    ExportSource,
    PendingFailure,
    StatusOverride,
    announce_snapshot,
    describe_export_source,
    normalize_export_task_identifier,
    pin_cluster_status,
    set_snapshot_progress,
    snapshot_stages,
    tables_of_source,
)
from .errors import EmulatorControlError
from .export_output import (
    DEFAULT_FAIL_REASON,
    DEFAULT_SKIP_REASON,
    DEFAULT_WARNING,
    ExportTable,
    OutputFault,
    format_warning_message,
    parse_table_name,
    table_from_spec,
)
from .faults import FaultRule
from .notifications import NOTIFIER
from .pacing import Stage

__all__ = ["CONTROL_METHODS", "EmulatorControl", "automated_snapshot_identifier"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The public control methods; the server exposes exactly these.
CONTROL_METHODS: tuple[str, ...] = (
    "seed_export_prerequisites",
    "create_db_instance",
    "create_db_cluster",
    "create_db_snapshot",
    "create_automated_snapshot",
    "create_db_cluster_snapshot",
    "create_automated_cluster_snapshot",
    "set_cluster_status",
    "set_snapshot_status",
    "set_snapshot_pacing",
    "set_export_pacing",
    "pace_export",
    "fail_export",
    "set_export_status_override",
    "clear_export_status_override",
    "set_source_tables",
    "source_tables",
    "fail_source_tables",
    "skip_source_tables",
    "warn_source_tables",
    "set_export_warning_message",
    "break_export_output",
    "throttle",
    "server_error",
    "refuse",
    "hang",
    "lose_response",
    "clear_faults",
    "calls",
    "reset_calls",
    "export_tasks",
    "subscribe_to_rds_events",
    "route_rds_events_to_eventbridge",
    "publish_rds_event",
    "rds_events",
    "reset",
)

_ASSUME_ROLE_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "export.rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)


def automated_snapshot_identifier(resource_identifier: str, created_at: datetime) -> str:
    """``rds:<instance or cluster>-<yyyy-mm-dd-hh-mm>``, as RDS names automated snapshots."""
    return f"rds:{resource_identifier}-{_utc_naive(created_at):%Y-%m-%d-%H-%M}"


def _utc_naive(value: datetime | str) -> datetime:
    """A UTC datetime without tzinfo (moto's convention); naive input is taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _iso(value: datetime) -> str:
    return _utc_naive(value).replace(tzinfo=timezone.utc).isoformat()


def _control_errors(method: _F) -> _F:
    """Turn moto's and the emulator's exceptions into :class:`EmulatorControlError`."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except EmulatorControlError:
            raise
        except (ServiceException, ValueError, KeyError, TypeError) as error:
            raise EmulatorControlError(f"{method.__name__}: {error}") from error

    return cast(_F, wrapper)


def _creating_stage(polls: int | None, seconds: float | None) -> Stage:
    if seconds is not None:
        return Stage("creating", seconds=float(seconds))
    if polls is not None:
        return Stage("creating", polls=int(polls))
    return STATE.snapshot_creating


class EmulatorControl:
    """Set up and steer the emulated RDS of one account and Region in this process.

    :param region_name: the Region whose moto backends the methods act on.
    :param account_id: the account (moto's default account unless you changed it).
    """

    def __init__(
        self, region_name: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID
    ) -> None:
        self.region_name = region_name
        self.account_id = account_id

    @property
    def _rds(self) -> RDSBackend:
        return rds_backends[self.account_id][self.region_name]

    # ------------------------------------------------------------ fixtures

    @_control_errors
    def seed_export_prerequisites(
        self,
        bucket: str = "rds-exports",
        role_name: str = "rds-s3-export",
        kms_alias: str = "alias/rds-export",
    ) -> dict[str, str]:
        """Create what StartExportTask needs besides a snapshot.

        An S3 bucket, an IAM role that ``export.rds.amazonaws.com`` may assume, and a KMS
        key (with ``kms_alias``). Returns ``{"bucket", "iam_role_arn", "kms_key_id"}``,
        where ``kms_key_id`` is the key ARN.
        """
        from moto.iam.models import iam_backends
        from moto.kms.models import kms_backends
        from moto.s3.models import s3_backends

        partition = self._rds.partition
        s3_backends[self.account_id][partition].create_bucket(bucket, self.region_name)
        role = iam_backends[self.account_id][partition].create_role(
            role_name=role_name,
            assume_role_policy_document=_ASSUME_ROLE_POLICY,
            path="/",
            permissions_boundary=None,
            description="Role RDS assumes to write snapshot exports to S3",
            tags=[],
            max_session_duration=None,
        )
        kms = kms_backends[self.account_id][self.region_name]
        key = kms.create_key(
            policy=None,
            key_usage="ENCRYPT_DECRYPT",
            key_spec="SYMMETRIC_DEFAULT",
            description="RDS snapshot export key",
            tags=None,
        )
        if kms_alias:
            kms.create_alias(key.id, kms_alias)
        return {"bucket": bucket, "iam_role_arn": role.arn, "kms_key_id": key.arn}

    @_control_errors
    def create_db_instance(
        self,
        db_instance_identifier: str,
        engine: str = "postgres",
        allocated_storage: int = 20,
        initial_automated_snapshot: bool = False,
        db_name: str | None = None,
    ) -> dict[str, Any]:
        """Create an ``available`` DB instance.

        moto takes an automated snapshot stamped "now" when an instance is created; it is
        removed unless ``initial_automated_snapshot`` is true, so a test decides every
        automated snapshot (and its time) itself. ``db_name`` (``DBName``) names the
        database its exports hold; without it, the instance identifier does (see
        :meth:`source_tables`).
        """
        before = set(self._rds.database_snapshots)
        database = self._rds.create_db_instance(
            {
                "db_instance_identifier": db_instance_identifier,
                "engine": engine,
                "db_instance_class": "db.t3.micro",
                "allocated_storage": allocated_storage,
                "master_username": "emulator",
                "master_user_password": "emulator-password",
                "db_name": db_name,
            }
        )
        if not initial_automated_snapshot:
            for name in set(self._rds.database_snapshots) - before:
                del self._rds.database_snapshots[name]
        database.status = "available"
        return {
            "DBInstanceIdentifier": database.db_instance_identifier,
            "DBInstanceArn": database.db_instance_arn,
            "Engine": database.engine,
            "DBInstanceStatus": database.status,
            "AllocatedStorage": database.allocated_storage,
        }

    @_control_errors
    def create_db_cluster(
        self,
        db_cluster_identifier: str,
        engine: str = "aurora-postgresql",
        initial_automated_snapshot: bool = False,
        db_name: str | None = None,
    ) -> dict[str, Any]:
        """Create an ``available`` DB cluster (see :meth:`create_db_instance` on snapshots
        and ``db_name``, the cluster's ``DatabaseName``)."""
        before = set(self._rds.cluster_snapshots)
        cluster = self._rds.create_db_cluster(
            {
                "db_cluster_identifier": db_cluster_identifier,
                "engine": engine,
                "master_username": "emulator",
                "master_user_password": "emulator-password",
                "database_name": db_name,
            }
        )
        if not initial_automated_snapshot:
            for name in set(self._rds.cluster_snapshots) - before:
                del self._rds.cluster_snapshots[name]
        cluster.status = "available"
        return _describe_cluster(cluster)

    @_control_errors
    def create_db_snapshot(
        self,
        db_snapshot_identifier: str,
        db_instance_identifier: str,
        ready_after_polls: int | None = None,
        ready_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Create a manual DB snapshot, ``creating`` until ready.

        ``ready_after_polls=3``: three DescribeDBSnapshots calls that return it report
        ``creating``, the fourth ``available``. ``ready_after_seconds`` instead counts
        wall-clock time. ``0`` means available now; neither means the default pacing
        (:meth:`set_snapshot_pacing`, initially available now).
        """
        snapshot = self._rds.create_db_snapshot(db_instance_identifier, db_snapshot_identifier)
        return self._pace_snapshot(snapshot, ready_after_polls, ready_after_seconds)

    @_control_errors
    def create_automated_snapshot(
        self,
        db_instance_identifier: str,
        created_at: datetime | str,
        ready_after_polls: int | None = None,
        ready_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Create an automated snapshot ``rds:<instance>-<yyyy-mm-dd-hh-mm>`` taken at
        ``created_at`` (UTC; naive datetimes are taken as UTC). Pacing as
        :meth:`create_db_snapshot`."""
        taken_at = _utc_naive(created_at)
        snapshot = self._rds.create_db_snapshot(
            db_instance_identifier,
            automated_snapshot_identifier(db_instance_identifier, taken_at),
            snapshot_type="automated",
            original_created_at=taken_at,
        )
        snapshot.created = taken_at
        return self._pace_snapshot(snapshot, ready_after_polls, ready_after_seconds)

    @_control_errors
    def create_db_cluster_snapshot(
        self,
        db_cluster_snapshot_identifier: str,
        db_cluster_identifier: str,
        ready_after_polls: int | None = None,
        ready_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Create a manual DB cluster snapshot. Pacing as :meth:`create_db_snapshot`."""
        snapshot = self._rds.create_db_cluster_snapshot(
            db_cluster_identifier, db_cluster_snapshot_identifier
        )
        return self._pace_snapshot(snapshot, ready_after_polls, ready_after_seconds)

    @_control_errors
    def create_automated_cluster_snapshot(
        self,
        db_cluster_identifier: str,
        created_at: datetime | str,
        ready_after_polls: int | None = None,
        ready_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Create an automated cluster snapshot ``rds:<cluster>-<yyyy-mm-dd-hh-mm>``."""
        taken_at = _utc_naive(created_at)
        snapshot = self._rds.create_db_cluster_snapshot(
            db_cluster_identifier,
            automated_snapshot_identifier(db_cluster_identifier, taken_at),
            snapshot_type="automated",
        )
        snapshot.created = taken_at
        return self._pace_snapshot(snapshot, ready_after_polls, ready_after_seconds)

    @_control_errors
    def set_snapshot_status(
        self, snapshot_identifier: str, status: str, cluster: bool | None = None
    ) -> dict[str, Any] | None:
        """Put a DB or cluster snapshot in ``status`` for good (``failed``, ``copying``, ...).

        ``"deleted"`` removes the snapshot: afterwards RDS answers ``DBSnapshotNotFound``
        (``DBClusterSnapshotNotFoundFault``), as it does once a deletion has finished;
        returns ``None`` then. ``cluster`` picks the kind when both kinds share the name.
        """
        with STATE.lock:
            name = snapshot_identifier.lower()
            rds = self._rds
            if cluster is not True and name in rds.database_snapshots:
                pool: MutableMapping[str, Any] = rds.database_snapshots
            elif cluster is not False and name in rds.cluster_snapshots:
                pool = rds.cluster_snapshots
            else:
                raise EmulatorControlError(f"no snapshot named {snapshot_identifier!r}")
            if status == "deleted":
                del pool[name]
                return None
            set_snapshot_progress(pool[name], [Stage(status)])
            announce_snapshot(pool[name])
            return _describe_snapshot(pool[name])

    @_control_errors
    def set_cluster_status(self, db_cluster_identifier: str, status: str) -> dict[str, Any]:
        """Put a DB cluster in ``status`` (``stopped``, ``creating``, ``backing-up`` ...).

        The status stays until it is set again (by this method or by an RDS call that
        changes it, such as StopDBCluster). StartExportTask with the cluster's ARN
        (a live-cluster export, SourceType ``CLUSTER``) answers ``InvalidExportSourceState``
        unless the status is ``available``. Returns the cluster as
        :meth:`create_db_cluster` does.
        """
        with STATE.lock:
            clusters = self._rds.clusters
            cluster = clusters.get(db_cluster_identifier) or clusters.get(
                db_cluster_identifier.lower()
            )
            if cluster is None:
                raise EmulatorControlError(f"no DB cluster named {db_cluster_identifier!r}")
            pin_cluster_status(cluster, status)
            return _describe_cluster(cluster)

    @_control_errors
    def set_snapshot_pacing(
        self, ready_after_polls: int | None = None, ready_after_seconds: float | None = None
    ) -> None:
        """Default ``creating`` time for new snapshots, including ones made through the
        API (CreateDBSnapshot) and moto's own automated ones. Initially 0 (available)."""
        with STATE.lock:
            STATE.snapshot_creating = _creating_stage(ready_after_polls, ready_after_seconds)

    # ------------------------------------------------------------- exports

    @_control_errors
    def set_export_pacing(
        self,
        starting_polls: int | None = None,
        in_progress_polls: int | None = None,
        canceling_polls: int | None = None,
        starting_seconds: float | None = None,
        in_progress_seconds: float | None = None,
        canceling_seconds: float | None = None,
    ) -> None:
        """Default pacing of exports started from now on (initially 1, 2 and 1 polls).

        ``starting_polls=N``: N DescribeExportTasks polls report ``STARTING`` (the
        StartExportTask answer itself always says ``STARTING``). Likewise
        ``in_progress_polls`` and ``canceling_polls`` (polls after CancelExportTask that
        still say ``CANCELING``). A ``*_seconds`` value paces that stage by wall-clock
        time instead. Stages not given keep their current setting.
        """
        with STATE.lock:
            STATE.export_pacing = STATE.export_pacing.updated(
                starting_polls=starting_polls,
                in_progress_polls=in_progress_polls,
                canceling_polls=canceling_polls,
                starting_seconds=starting_seconds,
                in_progress_seconds=in_progress_seconds,
                canceling_seconds=canceling_seconds,
            )

    @_control_errors
    def pace_export(
        self,
        export_task_identifier: str,
        starting_polls: int | None = None,
        in_progress_polls: int | None = None,
        canceling_polls: int | None = None,
        starting_seconds: float | None = None,
        in_progress_seconds: float | None = None,
        canceling_seconds: float | None = None,
    ) -> None:
        """Pacing for one export (arguments as :meth:`set_export_pacing`).

        Before the task exists: used when it is started. On a running task: its current
        stage restarts with the new length.
        """
        with STATE.lock:
            base = STATE.pacing_for(export_task_identifier)
            pacing = base.updated(
                starting_polls=starting_polls,
                in_progress_polls=in_progress_polls,
                canceling_polls=canceling_polls,
                starting_seconds=starting_seconds,
                in_progress_seconds=in_progress_seconds,
                canceling_seconds=canceling_seconds,
            )
            key = normalize_export_task_identifier(export_task_identifier)
            STATE.export_overrides[key] = pacing
            task = self._rds.export_tasks.get(key)
            if isinstance(task, EmulatedExportTask):
                task.repace(pacing)

    @_control_errors
    def fail_export(
        self,
        export_task_identifier: str,
        cause: str = "The export failed.",
        after_polls: int | None = None,
        after_seconds: float | None = None,
    ) -> None:
        """Make an export end ``FAILED`` with ``FailureCause`` = ``cause``.

        Now (neither ``after_*``), or once ``after_polls`` more polls have reported its
        normal progress, or after ``after_seconds``. Registered before the task exists, it
        applies from StartExportTask on. A task that is already finished is an error.
        """
        failure = PendingFailure(cause, after_polls, after_seconds)
        key = normalize_export_task_identifier(export_task_identifier)
        with STATE.lock:
            task = self._rds.export_tasks.get(key)
            if task is None:
                STATE.pending_failures[key] = failure
                return
            if not isinstance(task, EmulatedExportTask) or not task.is_active:
                raise EmulatorControlError(
                    f"export {export_task_identifier!r} is {task.status}; it cannot fail now"
                )
            task.schedule_failure(failure)

    @_control_errors
    def set_export_status_override(
        self, export_task_identifier: str, status: str | None, polls: int | None = None
    ) -> None:
        """Make DescribeExportTasks report ``status`` as the export's ``Status``.

        For clients facing a status they do not know (one AWS might add) or none at all:
        ``status`` is reported verbatim (any string, e.g. ``"PAUSED"`` or ``"complete"``);
        ``None`` leaves the ``Status`` key out of the task's description. Other fields
        (``PercentProgress`` ...) are reported as usual.

        ``polls``: the next N DescribeExportTasks answers that include the task report the
        override, then the real status again; ``None`` keeps it until
        :meth:`clear_export_status_override` (or :meth:`reset`). Each such answer still
        counts as a poll, so the export goes on underneath (its pacing, failures and
        cancelation are unchanged); a ``status`` filter sees the reported status. The
        StartExportTask and CancelExportTask answers and :meth:`export_tasks` show the real
        status. Registered before the task exists, it applies from its first describe.
        A new call replaces the previous override. The identifier is case-insensitive.
        """
        if polls is not None and polls < 1:
            raise EmulatorControlError("polls must be at least 1 (or None: until cleared)")
        with STATE.lock:
            key = normalize_export_task_identifier(export_task_identifier)
            STATE.status_overrides[key] = StatusOverride(status, polls)

    @_control_errors
    def clear_export_status_override(self, export_task_identifier: str) -> None:
        """Report the export's real status again (no error if there was no override)."""
        with STATE.lock:
            key = normalize_export_task_identifier(export_task_identifier)
            STATE.status_overrides.pop(key, None)

    # ------------------------------------------------------- export output

    @_control_errors
    def set_source_tables(
        self, source_identifier: str, tables: list[str | dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Set the tables a source holds, for exports started from now on.

        ``source_identifier``: a DB snapshot, DB cluster snapshot, DB cluster or DB
        instance, by identifier or ARN (looked up in that order). Tables set for an
        instance or cluster are those of its snapshots, unless a snapshot has its own.

        ``tables``: names (1 GB, ``COMPLETE``) or objects ``{"name", "size_gb" (1.0),
        "status" ("COMPLETE"), "warning_message" (None)}``. A name is
        ``database.schema.table`` or ``database.table`` (PostgreSQL: schema ``public``;
        MySQL: the schema is the database). ``status`` ``FAILED`` (``warning_message`` the
        reason), ``SKIPPED`` (the reason), ``COMPLETE`` (an optional warning) or any other
        string, written as the table's status. Only ``COMPLETE`` tables get data and count
        in ``sizeGB`` / ``TotalExtractedDataInGB``.

        An export takes its source's tables when it starts (then narrows them by
        ``ExportOnly``). Returns the tables as :meth:`source_tables` does.
        """
        source = self._table_source(source_identifier)
        resolved = tuple(table_from_spec(spec, mysql=source.mysql) for spec in tables)
        targets = [t.target for t in resolved]
        duplicates = sorted({t for t in targets if targets.count(t) > 1})
        if duplicates:
            raise EmulatorControlError(f"tables named twice: {duplicates}")
        with STATE.lock:
            STATE.source_tables[source.key] = resolved
        return [t.to_dict() for t in resolved]

    @_control_errors
    def source_tables(self, source_identifier: str) -> list[dict[str, Any]]:
        """The tables an export of the source would export (before ``ExportOnly``).

        Each ``{"name": "db.schema.table", "size_gb", "status", "warning_message"}``.
        Unless set (:meth:`set_source_tables`), four tables in the source's database
        (its ``DBName``, else its instance or cluster identifier with ``-`` as ``_``):
        ``public.orders`` 10 GB, ``public.customers`` 4, ``public.order_items`` 3,
        ``audit.events`` 3; a MySQL or MariaDB database has them without schemas
        (``db.db.orders``, as it exports them under ``db/db.orders/``).
        """
        return [t.to_dict() for t in tables_of_source(self._table_source(source_identifier))]

    @_control_errors
    def fail_source_tables(
        self, source_identifier: str, tables: list[str], reason: str = DEFAULT_FAIL_REASON
    ) -> list[dict[str, Any]]:
        """Make the named tables of a source fail in its exports (the export stays COMPLETE).

        They are listed in ``export_tables_info`` with ``"status": "FAILED"`` and
        ``"warningMessage": reason``, ``sizeGB`` 0, and get no data. Names as in
        :meth:`set_source_tables`; each must be one of :meth:`source_tables`. Returns
        the source's tables.
        """
        return self._restatus(source_identifier, tables, "FAILED", reason)

    @_control_errors
    def skip_source_tables(
        self, source_identifier: str, tables: list[str], reason: str = DEFAULT_SKIP_REASON
    ) -> list[dict[str, Any]]:
        """Make exports skip the named tables of a source (the export stays COMPLETE).

        A skipped table gets no data and no ``perTableStatus`` entry; the task's
        ``WarningMessage`` names it: ``{"skippedTables":[{"target":"db.schema.table",
        "reason":reason}],"skippedObjectives":[],"general":[]}`` (unless a test set the
        message, :meth:`set_export_warning_message`). Returns the source's tables.
        """
        return self._restatus(source_identifier, tables, "SKIPPED", reason)

    @_control_errors
    def warn_source_tables(
        self, source_identifier: str, tables: list[str], message: str = DEFAULT_WARNING
    ) -> list[dict[str, Any]]:
        """Give the named tables of a source a warning: exported (``COMPLETE``, with
        data), with ``"warningMessage": message`` in their ``perTableStatus`` entry."""
        return self._restatus(source_identifier, tables, "COMPLETE", message)

    @_control_errors
    def set_export_warning_message(
        self, export_task_identifier: str, message: str | dict[str, Any] | None
    ) -> None:
        """Make DescribeExportTasks report ``message`` as the export's ``WarningMessage``.

        Text as given, or an object as compact JSON, e.g. the form the RDS user guide
        shows: ``{"skippedTables": [], "skippedObjectives": [], "general": [{"reason":
        "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}]}``. Reported from now on (from
        StartExportTask on if registered before the task exists), in place of what the
        export itself says (the skipped tables, once COMPLETE). ``None`` goes back to that.
        """
        text = format_warning_message(message)
        key = normalize_export_task_identifier(export_task_identifier)
        with STATE.lock:
            task = self._rds.export_tasks.get(key)
            if isinstance(task, EmulatedExportTask):
                task.set_warning_message(text)
            else:
                STATE.pending_warnings[key] = text

    @_control_errors
    def break_export_output(
        self, export_task_identifier: str, fault: str, status: str | None = None
    ) -> None:
        """Make the export write broken output when it completes (it still says COMPLETE).

        ``fault`` (several may be combined, one call each):

        * ``"truncated_json"``: every metadata file cut to half its bytes;
        * ``"wrong_types"``: valid JSON with wrong types (``status`` a list, ``sizeGB`` and
          ``percentProgress`` strings, ``target`` an object, ``tableStatistics`` a string,
          ``null`` and a string among the ``perTableStatus`` entries);
        * ``"unknown_status"``: every table's status is ``status`` (default
          ``"NOT_A_STATUS"``);
        * ``"no_tables_files"``: no ``export_tables_info_*`` file;
        * ``"extra_tables_file"``: one more tables file, ``_from_{n+1}_to_{n+1}``, listing
          a COMPLETE table ``{db}.{schema}.emulator_extra_table`` that has no data;
        * ``"no_export_info"``: no ``export_info_*`` file;
        * ``"no_objects"``: nothing at all under the export's prefix;
        * ``"missing_data"``: the first COMPLETE table's data object is not written.

        Registered before the task exists, it applies from StartExportTask on. A task
        that has already finished is an error (its output is written).
        """
        output_fault = OutputFault(fault, status)
        key = normalize_export_task_identifier(export_task_identifier)
        with STATE.lock:
            task = self._rds.export_tasks.get(key)
            if task is None:
                STATE.pending_output_faults.setdefault(key, []).append(output_fault)
                return
            if not isinstance(task, EmulatedExportTask) or not task.is_active:
                raise EmulatorControlError(
                    f"export {export_task_identifier!r} is {task.status}; its output is final"
                )
            task.output_faults.append(output_fault)

    @_control_errors
    def export_tasks(self) -> list[dict[str, Any]]:
        """Every export task of this Region, as DescribeExportTasks shows it.

        Without counting a poll, and with the real status (no status override).
        """
        with STATE.lock:
            return [
                task.to_dict()
                for task in self._rds.export_tasks.values()
                if isinstance(task, EmulatedExportTask)
            ]

    # ------------------------------------------------------------- events

    @_control_errors
    def subscribe_to_rds_events(
        self,
        queue_name: str = "rds-events",
        raw_message_delivery: bool = False,
        source_type: str | None = None,
        event_categories: list[str] | None = None,
        source_ids: list[str] | None = None,
        subscription_name: str | None = None,
    ) -> dict[str, str]:
        """An RDS event subscription delivering to an SQS queue through an SNS topic.

        Creates the SQS queue ``queue_name`` (if new), an SNS topic ``<queue_name>-topic``
        subscribed by the queue (``RawMessageDelivery`` as given), and the RDS event
        subscription (``CreateEventSubscription``: ``source_type`` such as
        ``db-snapshot``, ``event_categories``, ``source_ids``; none means all). From then
        on the emulator publishes its RDS events to it (see :mod:`.notifications`).
        Returns ``{"QueueUrl", "QueueName", "TopicArn", "SubscriptionName"}``; the URL is
        AWS's form (``https://sqs.<region>.amazonaws.com/<account>/<name>``), which a
        client pointed at the emulator uses as it is.
        """
        from moto.sns.models import sns_backends

        queue_url = self._queue(queue_name)
        sns = sns_backends[self.account_id][self.region_name]
        topic = sns.create_topic(f"{queue_name}-topic")
        queue_arn = self._queue_arn(queue_name)
        subscription = sns.subscribe(topic.arn, queue_arn, "sqs")
        if raw_message_delivery:
            sns.set_subscription_attributes(subscription.arn, "RawMessageDelivery", "true")
        name = subscription_name or f"{queue_name}-subscription"
        self._rds.create_event_subscription(
            {
                "subscription_name": name,
                "sns_topic_arn": topic.arn,
                "source_type": source_type,
                "event_categories": list(event_categories or []),
                "source_ids": list(source_ids or []),
                "enabled": True,
            }
        )
        return {
            "QueueUrl": queue_url,
            "QueueName": queue_name,
            "TopicArn": topic.arn,
            "SubscriptionName": name,
        }

    @_control_errors
    def route_rds_events_to_eventbridge(
        self, queue_name: str = "rds-events-eventbridge"
    ) -> dict[str, str]:
        """An EventBridge rule on the default bus (``{"source": ["aws.rds"]}``) sending
        every RDS event to the SQS queue ``queue_name`` (created if new). Returns
        ``{"QueueUrl", "QueueName", "RuleArn"}``."""
        from moto.events.models import events_backends

        queue_url = self._queue(queue_name)
        events = events_backends[self.account_id][self.region_name]
        rule = events.put_rule(
            f"{queue_name}-rule", event_pattern=json.dumps({"source": ["aws.rds"]})
        )
        queue_arn = self._queue_arn(queue_name)
        events.put_targets(rule.name, "default", [{"Id": "sqs", "Arn": queue_arn}])
        return {"QueueUrl": queue_url, "QueueName": queue_name, "RuleArn": rule.arn}

    @_control_errors
    def publish_rds_event(
        self,
        event_id: str,
        source_id: str,
        source_arn: str | None = None,
        source_type: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Publish an RDS event now, as RDS would (a duplicate, an unrelated one ...).

        ``source_arn`` defaults to the DB snapshot ARN of ``source_id`` in this Region and
        account. Returns its record (see :meth:`rds_events`).
        """
        arn = source_arn or (
            f"arn:{self._rds.partition}:rds:{self.region_name}:{self.account_id}:"
            f"snapshot:{source_id}"
        )
        with STATE.lock:
            return NOTIFIER.publish(
                account_id=self.account_id,
                region=self.region_name,
                event_id=event_id,
                source_id=source_id,
                source_arn=arn,
                source_type=source_type,
                message=message,
            )

    @_control_errors
    def rds_events(self) -> list[dict[str, Any]]:
        """Every RDS event published so far: ``{"EventId", "SourceType",
        "SourceIdentifier", "SourceArn", "Message", "PublishedAt" (epoch seconds),
        "EventTime", "Deliveries" (topics / buses it went to)}``, oldest first."""
        with NOTIFIER.lock:
            return [dict(record) for record in NOTIFIER.published]

    def _queue_arn(self, queue_name: str) -> str:
        return f"arn:{self._rds.partition}:sqs:{self.region_name}:{self.account_id}:{queue_name}"

    def _queue(self, queue_name: str) -> str:
        from moto.sqs.models import sqs_backends

        sqs = sqs_backends[self.account_id][self.region_name]
        if queue_name not in sqs.queues:
            sqs.create_queue(queue_name)
        return f"https://sqs.{self.region_name}.amazonaws.com/{self.account_id}/{queue_name}"

    # -------------------------------------------------------------- faults

    @_control_errors
    def throttle(
        self,
        operation: str = "*",
        count: int | None = None,
        fraction: float | None = None,
        seconds: float | None = None,
    ) -> None:
        """Answer calls of ``operation`` (an action name or ``"*"``) with ``Throttling``.

        ``count``: the next N matching calls. ``fraction``: that share of matching calls
        (deterministic: 0.5 throttles every second call). ``seconds``: only for that long.
        With none of them, the next call only.
        """
        if fraction is not None and not 0 < fraction <= 1:
            raise EmulatorControlError("fraction must be in (0, 1]")
        if count is None and fraction is None and seconds is None:
            count = 1
        STATE.faults.add(
            FaultRule("throttle", operation, count, fraction, _deadline(seconds), status=400)
        )

    @_control_errors
    def server_error(self, operation: str = "*", count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` calls of ``operation`` with HTTP ``status`` (5xx)."""
        if not 500 <= status <= 599:
            raise EmulatorControlError("status must be a 5xx code")
        STATE.faults.add(FaultRule("server_error", operation, count, status=status))

    @_control_errors
    def refuse(
        self,
        operation: str = "*",
        *,
        code: str,
        message: str | None = None,
        status: int = 400,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` calls of ``operation`` with the AWS error ``code``.

        The answer is an RDS Query-protocol error (``<ErrorResponse>``, HTTP ``status``,
        4xx) carrying ``code`` and ``message``, so botocore raises ``ClientError`` with
        them. For permission and configuration errors, e.g.
        ``refuse("DescribeExportTasks", code="AccessDenied", message="User: ... is not
        authorized to perform: rds:DescribeExportTasks ...", status=403)`` or
        ``refuse("DescribeDBSnapshots", code="KMSKeyNotAccessibleFault", message=...)``.
        The request is not carried out. ``message`` defaults to ``"Injected <code>"``.
        """
        if not code:
            raise EmulatorControlError("code must name an AWS error code")
        if not 400 <= status <= 499:
            raise EmulatorControlError(
                "status must be a 4xx code (use server_error for 5xx answers)"
            )
        if count < 1:
            raise EmulatorControlError("count must be at least 1")
        text = f"Injected {code}" if message is None else message
        STATE.faults.add(
            FaultRule("refuse", operation, count, status=status, code=code, message=text)
        )

    @_control_errors
    def hang(self, operation: str = "*", count: int = 1, seconds: float = 5.0) -> None:
        """Stop answering the next ``count`` calls of ``operation`` for ``seconds``.

        Server mode: the request is held ``seconds`` and then answered normally, so a
        client whose read timeout is shorter sees ``ReadTimeoutError``. In-process there
        is no socket: the call blocks ``seconds`` and then raises botocore's
        ``ReadTimeoutError``, as a client with a shorter read timeout would see it.
        """
        STATE.faults.add(FaultRule("hang", operation, count, hang_seconds=seconds))

    @_control_errors
    def lose_response(self, operation: str = "*", count: int = 1) -> None:
        """Let the next ``count`` calls of ``operation`` take effect, then answer HTTP 500.

        The request is carried out (an export is started, a cancel accepted) but the
        caller never hears so: as when a connection drops, or a worker dies, right after
        AWS accepted a request. A retried start must then adopt, not double, the export.
        """
        STATE.faults.add(FaultRule("lose_response", operation, count, status=500))

    @_control_errors
    def clear_faults(self) -> None:
        """Remove every injected fault."""
        STATE.faults.clear()

    @_control_errors
    def calls(self) -> dict[str, int]:
        """RDS actions received so far, by action name (faulted calls included)."""
        return STATE.calls.snapshot()

    @_control_errors
    def reset_calls(self) -> None:
        """Start counting calls from zero."""
        STATE.calls.reset()

    @_control_errors
    def reset(self) -> None:
        """Forget everything: all moto resources (every service), pacing, faults, counts."""
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data

        with STATE.lock:
            BackendDict.reset()
            reset_model_data()
            STATE.reset()

    # ------------------------------------------------------------- helpers

    def _table_source(self, identifier: str) -> ExportSource:
        """The source ``identifier`` names: snapshot, cluster snapshot, cluster, instance."""
        rds = self._rds
        pools: list[tuple[str, Any]] = [
            ("snapshot", rds.database_snapshots),
            ("cluster-snapshot", rds.cluster_snapshots),
            ("cluster", rds.clusters),
            ("db", rds.databases),
        ]
        name = identifier
        if identifier.startswith("arn:"):
            parts = identifier.split(":", 6)
            if len(parts) != 7:
                raise EmulatorControlError(f"not an RDS ARN: {identifier!r}")
            pools = [pool for pool in pools if pool[0] == parts[5]]
            name = parts[6]
        with STATE.lock:
            for _, pool in pools:
                resource = pool.get(name) or pool.get(name.lower())
                if resource is not None:
                    return describe_export_source(resource)
        raise EmulatorControlError(
            f"no DB snapshot, cluster snapshot, cluster or instance named {identifier!r}"
        )

    def _restatus(
        self, source_identifier: str, names: list[str], status: str, message: str
    ) -> list[dict[str, Any]]:
        source = self._table_source(source_identifier)
        with STATE.lock:
            tables = list(tables_of_source(source))
            by_target = {t.target: index for index, t in enumerate(tables)}
            for name in names:
                target = ".".join(parse_table_name(name, mysql=source.mysql))
                if target not in by_target:
                    raise EmulatorControlError(
                        f"{source_identifier!r} has no table {name!r}; it has {sorted(by_target)}"
                    )
                index = by_target[target]
                tables[index] = tables[index].with_status(status, message)
            resolved: tuple[ExportTable, ...] = tuple(tables)
            STATE.source_tables[source.key] = resolved
        return [t.to_dict() for t in resolved]

    def _pace_snapshot(
        self,
        snapshot: DBSnapshot | DBClusterSnapshot,
        ready_after_polls: int | None,
        ready_after_seconds: float | None,
    ) -> dict[str, Any]:
        with STATE.lock:
            creating = _creating_stage(ready_after_polls, ready_after_seconds)
            set_snapshot_progress(snapshot, snapshot_stages(creating))
            announce_snapshot(snapshot)
            return _describe_snapshot(snapshot)


def _deadline(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def _describe_cluster(cluster: DBCluster) -> dict[str, Any]:
    return {
        "DBClusterIdentifier": cluster.db_cluster_identifier,
        "DBClusterArn": cluster.db_cluster_arn,
        "Engine": cluster.engine,
        "Status": cluster.status,
    }


def _describe_snapshot(snapshot: DBSnapshot | DBClusterSnapshot) -> dict[str, Any]:
    if isinstance(snapshot, DBSnapshot):
        return {
            "DBSnapshotIdentifier": snapshot.db_snapshot_identifier,
            "DBSnapshotArn": snapshot.db_snapshot_arn,
            "DBInstanceIdentifier": snapshot.db_instance_identifier,
            "SnapshotType": snapshot.snapshot_type,
            "Status": snapshot.status,
            "SnapshotCreateTime": _iso(snapshot.snapshot_create_time),
        }
    return {
        "DBClusterSnapshotIdentifier": snapshot.db_cluster_snapshot_identifier,
        "DBClusterSnapshotArn": snapshot.db_cluster_snapshot_arn,
        "DBClusterIdentifier": snapshot.db_cluster_identifier,
        "SnapshotType": snapshot.snapshot_type,
        "Status": snapshot.status,
        "SnapshotCreateTime": _iso(snapshot.snapshot_create_time),
    }
