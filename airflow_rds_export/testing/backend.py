"""moto's RDS backend, patched to behave as real RDS does for snapshots and exports.

This is not a parallel fake: requests still go through moto's ``RDSResponse`` and land in
moto's ``RDSBackend``; :func:`install` swaps a few of their methods (and :func:`uninstall`
puts the originals back):

=================================  =========================================================
patched                            what changes
=================================  =========================================================
``RDSResponse.call_action``        counts every RDS action; injected faults answer first
``RDSResponse.describe_export_``   honours ``SourceArn``, ``SourceType``, ``Filters``,
``tasks``                          ``Marker``/``MaxRecords``; one call = one poll per task
``RDSResponse.describe_db_``       automated snapshot named without ``SnapshotType``:
``(cluster_)snapshots``            ``InvalidParameterCombination``; ``SnapshotType``
                                   narrows filters; one call = one poll per snapshot
``RDSBackend.create_db_``          new snapshots start ``creating`` per the default pacing
``(cluster_)snapshot``
``RDSBackend.describe_db_``        take a snapshot ARN (of this Region and account only)
``(cluster_)snapshots``
``RDSBackend.start_export_task``   AWS validation (identifier, ExportOnly, prefix, source,
                                   bucket, role, KMS key, limits), :class:`EmulatedExportTask`
                                   (which, on reaching ``COMPLETE``, writes what RDS writes
                                   to S3: see :mod:`.export_output`)
``RDSBackend.cancel_export_task``  ``CANCELING`` -> ``CANCELED``; errors as AWS sends them
``RDSBackend.describe_export_``    filters (no polling: the response layer polls)
``tasks``
``DBCluster.status``               a status set by ``set_cluster_status`` stays (moto turns
                                   ``creating`` into ``available`` when it is read)
=================================  =========================================================

Export task identifiers are case-insensitive and kept in lower case (see
:func:`normalize_export_task_identifier`). An ARN of another Region, account or partition
names nothing here: describes and StartExportTask answer it as a missing resource.

Polls are counted at the API action level: the response method advances each resource
it reports by exactly one :meth:`Progress.poll`, then sets plain attributes that moto's
serializer reads (so reading ``.status`` several times while rendering changes nothing).

The emulator's settings live in one process-wide :data:`STATE`, like moto's backends.

What an export exports: the tables of its source (:func:`tables_of_source`; a default set per
engine unless a test sets them, see :func:`.export_output.default_tables`), as they are
when StartExportTask is called, narrowed by ``ExportOnly``. Only an export that reaches
``COMPLETE`` writes to S3 (data objects and metadata, at once, when the status turns);
``FAILED`` and ``CANCELED`` exports write nothing.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.rds.exceptions import (
    DBClusterNotFoundError,
    DBClusterSnapshotNotFoundError,
    DBSnapshotNotFoundFault,
    ExportTaskAlreadyExistsError,
    ExportTaskNotFoundError,
    InvalidParameterCombination,
    InvalidParameterValue,
)
from moto.rds.models import DBCluster, DBClusterSnapshot, DBSnapshot, ExportTask, RDSBackend
from moto.rds.responses import RDSResponse

from .errors import (
    IamRoleNotFoundFault,
    InvalidExportOnlyFault,
    InvalidExportSourceStateFault,
    InvalidExportTaskStateFault,
    InvalidS3BucketFault,
    KMSKeyNotAccessibleFault,
    UnmodelledRdsError,
)
from .export_output import (
    ExportOutput,
    ExportTable,
    OutputFault,
    database_name,
    default_tables,
    exported_size_gb,
    is_mysql_engine,
    select_tables,
    skipped_tables_warning,
    write_export_output,
)
from .faults import (
    CallLog,
    FaultInjector,
    HangRequested,
    ResponseLost,
    query_error_response,
)
from .notifications import NOTIFIER, listening
from .pacing import Progress, Stage

__all__ = [
    "ACTIVE_EXPORT_STATUSES",
    "CONCURRENT_EXPORT_ERROR_CODE",
    "CONCURRENT_EXPORT_MESSAGE",
    "CONCURRENT_EXPORT_MESSAGE_RE",
    "EXPORT_LIMIT_ERROR_CODE",
    "EXPORT_LIMIT_MESSAGE",
    "EXPORT_STATUSES",
    "MAX_CONCURRENT_EXPORTS",
    "MAX_EXPORT_TASK_IDENTIFIER_LENGTH",
    "STATE",
    "EmulatedExportTask",
    "EmulatorState",
    "ExportPacing",
    "ExportSource",
    "PendingFailure",
    "StatusOverride",
    "announce_snapshot",
    "describe_export_source",
    "install",
    "normalize_export_task_identifier",
    "pin_cluster_status",
    "poll_snapshot",
    "refresh_snapshot",
    "set_snapshot_progress",
    "tables_of_source",
    "tick",
    "uninstall",
    "validate_export_task_identifier",
]

#: Every status AWS documents for an export task (ExportTask.Status, API reference), in the
#: upper case DescribeExportTasks returns. The emulator reports nothing else, unless a
#: test asks for another string with ``set_export_status_override``.
EXPORT_STATUSES = frozenset(
    {"STARTING", "IN_PROGRESS", "COMPLETE", "CANCELING", "CANCELED", "FAILED"}
)
#: Statuses during which an export counts against the concurrency limit.
ACTIVE_EXPORT_STATUSES = frozenset({"STARTING", "IN_PROGRESS"})
#: Statuses CancelExportTask accepts.
CANCELABLE_EXPORT_STATUSES = ACTIVE_EXPORT_STATUSES
#: "You can have up to five concurrent export tasks in progress" (RDS user guide).
MAX_CONCURRENT_EXPORTS = 5
#: ASSUMPTION: the API reference gives no length bound for ExportTaskIdentifier; 60 is
#: the bound the project's contract chose (AWS_CONTRACT.md). Change it here only.
MAX_EXPORT_TASK_IDENTIFIER_LENGTH = 60
#: ASSUMPTION: botocore's RDS model lists no fault for "too many concurrent exports".
#: The emulator answers with this code (HTTP 400) so clients can tell it apart from a
#: real parameter error; code that must run against AWS should also treat unknown 400s
#: on StartExportTask with care.
EXPORT_LIMIT_ERROR_CODE = "LimitExceeded"
#: The message of the :data:`EXPORT_LIMIT_ERROR_CODE` refusal (``{limit}`` is
#: :data:`MAX_CONCURRENT_EXPORTS`). ASSUMPTION: the wording is the emulator's own; it
#: always contains "export tasks in progress", so a client can match on that phrase.
EXPORT_LIMIT_MESSAGE = "You can't have more than {limit} export tasks in progress at the same time."
#: "No two concurrent exports of the same snapshot" (RDS user guide, Considerations).
#: ASSUMPTION (unverified): AWS documents the rule but not the error it answers; the
#: emulator answers with the code of ``InvalidExportSourceStateFault`` (HTTP 400) and
#: :data:`CONCURRENT_EXPORT_MESSAGE`.
CONCURRENT_EXPORT_ERROR_CODE = "InvalidExportSourceState"
#: The message of that refusal: ``{export_task_identifier}`` is the running export's
#: identifier (lower case, as RDS keeps it), ``{source_arn}`` the SourceArn as given.
#: Neither can contain a space, so :data:`CONCURRENT_EXPORT_MESSAGE_RE` reads both back.
CONCURRENT_EXPORT_MESSAGE = (
    "Export task {export_task_identifier} is already exporting {source_arn}; wait for it to finish."
)
#: Matches :data:`CONCURRENT_EXPORT_MESSAGE`; groups ``export_task_identifier`` and
#: ``source_arn``.
CONCURRENT_EXPORT_MESSAGE_RE = re.compile(
    r"^Export task (?P<export_task_identifier>\S+) is already exporting "
    r"(?P<source_arn>\S+); wait for it to finish\.$"
)

_IDENTIFIER_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*$")
_EXPORT_ONLY_PART_RE = re.compile(r"^[A-Za-z0-9_$\-]+$")
_DESCRIBE_FILTERS = frozenset({"export-task-identifier", "s3-bucket", "source-arn", "status"})
_PROGRESS_ATTR = "_rds_emulator_progress"
_PINNED_STATUS_ATTR = "_rds_emulator_pinned_status"
_ANNOUNCED_ATTR = "_rds_emulator_announced"


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class ExportPacing:
    """How long an export spends in each non-final status.

    Each is a :class:`Stage` with ``polls`` or ``seconds``; see :mod:`.pacing`.
    """

    starting: Stage = field(default_factory=lambda: Stage("STARTING", polls=1))
    in_progress: Stage = field(default_factory=lambda: Stage("IN_PROGRESS", polls=2))
    canceling: Stage = field(default_factory=lambda: Stage("CANCELING", polls=1))

    def updated(
        self,
        *,
        starting_polls: int | None = None,
        in_progress_polls: int | None = None,
        canceling_polls: int | None = None,
        starting_seconds: float | None = None,
        in_progress_seconds: float | None = None,
        canceling_seconds: float | None = None,
    ) -> ExportPacing:
        """A copy with the given stages changed (seconds win over polls for a stage)."""
        return ExportPacing(
            starting=_stage(self.starting, starting_polls, starting_seconds),
            in_progress=_stage(self.in_progress, in_progress_polls, in_progress_seconds),
            canceling=_stage(self.canceling, canceling_polls, canceling_seconds),
        )


def _stage(current: Stage, polls: int | None, seconds: float | None) -> Stage:
    if seconds is not None:
        return Stage(current.status, seconds=float(seconds))
    if polls is not None:
        return Stage(current.status, polls=int(polls))
    return current


@dataclass(frozen=True)
class PendingFailure:
    """A failure registered for an export: now, after some polls, or after some seconds."""

    cause: str
    after_polls: int | None = None
    after_seconds: float | None = None


@dataclass
class StatusOverride:
    """What DescribeExportTasks reports as an export's ``Status`` instead of the real one.

    ``status=None``: the ``Status`` key is left out. ``describes``: how many more
    DescribeExportTasks answers that include the task report it (``None``: until cleared).
    """

    status: str | None
    describes: int | None = None


@dataclass
class EmulatorState:
    """Everything the emulator adds to moto, for this process.

    ``hang_mode`` says what an injected hang does: ``"sleep"`` (server mode: the socket
    stays silent, the client's read timeout decides) or ``"timeout"`` (in-process, where
    there is no socket: sleep, then raise botocore's ``ReadTimeoutError``).
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    export_pacing: ExportPacing = field(default_factory=ExportPacing)
    snapshot_creating: Stage = field(default_factory=lambda: Stage("creating", polls=0))
    export_overrides: dict[str, ExportPacing] = field(default_factory=dict)
    pending_failures: dict[str, PendingFailure] = field(default_factory=dict)
    status_overrides: dict[str, StatusOverride] = field(default_factory=dict)
    faults: FaultInjector = field(default_factory=FaultInjector)
    calls: CallLog = field(default_factory=CallLog)
    hang_mode: Literal["sleep", "timeout"] = "timeout"
    #: Tables set for a source, by :attr:`ExportSource.key`.
    source_tables: dict[tuple[str, str], tuple[ExportTable, ...]] = field(default_factory=dict)
    #: ``WarningMessage`` set for exports not started yet, by identifier.
    pending_warnings: dict[str, str | None] = field(default_factory=dict)
    #: Output faults registered for exports not started yet, by identifier.
    pending_output_faults: dict[str, list[OutputFault]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget pacing, pending failures, tables, faults and counts (not ``hang_mode``)."""
        with self.lock:
            self.export_pacing = ExportPacing()
            self.snapshot_creating = Stage("creating", polls=0)
            self.export_overrides.clear()
            self.pending_failures.clear()
            self.status_overrides.clear()
            self.faults.clear()
            self.calls.reset()
            self.source_tables.clear()
            self.pending_warnings.clear()
            self.pending_output_faults.clear()
            NOTIFIER.reset()

    def pacing_for(self, export_task_identifier: str) -> ExportPacing:
        key = normalize_export_task_identifier(export_task_identifier)
        return self.export_overrides.get(key, self.export_pacing)

    def reported_status(self, export_task_identifier: str, status: str) -> tuple[bool, str | None]:
        """Count one DescribeExportTasks answer for a task: ``(overridden, status)``.

        Consumes one use of the task's :class:`StatusOverride`, if any.
        """
        key = normalize_export_task_identifier(export_task_identifier)
        override = self.status_overrides.get(key)
        if override is None:
            return False, status
        if override.describes is not None:
            override.describes -= 1
            if override.describes <= 0:
                del self.status_overrides[key]
        return True, override.status


#: The one emulator state of this process (moto's backends are process-wide too).
STATE = EmulatorState()


# ----------------------------------------------------------------------- snapshots


def set_snapshot_progress(
    snapshot: DBSnapshot | DBClusterSnapshot, stages: Sequence[Stage]
) -> None:
    """Give a snapshot its own walk through ``stages`` and show the first one now."""
    progress = Progress(stages)
    setattr(snapshot, _PROGRESS_ATTR, progress)
    _sync_snapshot(snapshot, progress)


def snapshot_stages(creating: Stage) -> list[Stage]:
    """``creating`` (if it lasts at all) then ``available``."""
    if creating.is_empty:
        return [Stage("available")]
    return [creating, Stage("available")]


def poll_snapshot(snapshot: DBSnapshot | DBClusterSnapshot) -> None:
    """Count one describe call of ``snapshot``."""
    progress: Progress | None = getattr(snapshot, _PROGRESS_ATTR, None)
    if progress is not None:
        progress.poll()
        _sync_snapshot(snapshot, progress)
        announce_snapshot(snapshot)


def refresh_snapshot(snapshot: DBSnapshot | DBClusterSnapshot) -> None:
    """Bring a time-paced snapshot up to date without counting a poll."""
    progress: Progress | None = getattr(snapshot, _PROGRESS_ATTR, None)
    if progress is not None:
        _sync_snapshot(snapshot, progress)
        announce_snapshot(snapshot)


def announce_snapshot(snapshot: DBSnapshot | DBClusterSnapshot) -> None:
    """Publish the RDS events of what the snapshot did since it was last announced: its
    "creating" event once, its "created" event once it is ``available`` (both at once
    for a snapshot available at once, as RDS sends both). See :mod:`.notifications`."""
    announced: str | None = getattr(snapshot, _ANNOUNCED_ATTR, None)
    status = snapshot.status
    if announced == "available" or (announced == "creating" and status != "available"):
        return
    automated = snapshot.snapshot_type == "automated"
    if isinstance(snapshot, DBClusterSnapshot):
        cluster = True
        name, arn = snapshot.db_cluster_snapshot_identifier, snapshot.db_cluster_snapshot_arn
    else:
        cluster = False
        name, arn = snapshot.db_snapshot_identifier, snapshot.db_snapshot_arn
    creating_id, created_id = {
        (False, False): ("RDS-EVENT-0040", "RDS-EVENT-0042"),
        (False, True): ("RDS-EVENT-0090", "RDS-EVENT-0091"),
        (True, False): ("RDS-EVENT-0074", "RDS-EVENT-0075"),
        (True, True): ("RDS-EVENT-0168", "RDS-EVENT-0169"),
    }[(cluster, automated)]
    events = [] if announced == "creating" else [creating_id]
    if status == "available":
        events.append(created_id)
    setattr(snapshot, _ANNOUNCED_ATTR, "available" if status == "available" else "creating")
    for event_id in events:
        NOTIFIER.publish(
            account_id=snapshot.backend.account_id,
            region=snapshot.backend.region_name,
            event_id=event_id,
            source_id=str(name),
            source_arn=str(arn),
        )


def tick() -> None:
    """Bring every time-paced snapshot and export up to date, publishing the events of
    what changed (the server calls this a few times a second, so an event goes out
    when its resource changes, not when someone next describes it). Nothing to do while
    no event subscription or EventBridge rule exists."""
    from moto.rds.models import rds_backends

    if not listening():
        return
    with STATE.lock:
        for regions in list(rds_backends.values()):
            for rds in list(regions.values()):
                snapshots: list[Any] = [
                    *rds.database_snapshots.values(),
                    *rds.cluster_snapshots.values(),
                ]
                for snapshot in snapshots:
                    refresh_snapshot(snapshot)
                for task in _export_tasks(rds):
                    task.refresh()


def _sync_snapshot(snapshot: DBSnapshot | DBClusterSnapshot, progress: Progress) -> None:
    status = progress.status
    snapshot.status = status
    # moto's DBSnapshot has no percent_progress; the serializer reads it when present.
    percent = int(100 * progress.fraction()) if status == "creating" else 100
    snapshot.percent_progress = percent  # type: ignore[union-attr]


# ------------------------------------------------------------------------ clusters


def pin_cluster_status(cluster: DBCluster, status: str) -> None:
    """Make ``cluster`` report ``status`` until something sets its status again.

    moto's ``DBCluster.status`` turns ``creating`` into ``available`` the first time it is
    read; a pinned status stays (see :func:`_pinnable_cluster_status`).
    """
    cluster.status = status
    setattr(cluster, _PINNED_STATUS_ATTR, status)


def _pinnable_cluster_status(original: property) -> property:
    """``DBCluster.status`` that honours :func:`pin_cluster_status`.

    Setting the status (moto's own StopDBCluster, StartDBCluster ...) removes the pin.
    """
    getter, setter = original.fget, original.fset
    assert getter is not None and setter is not None

    def get_status(self: DBCluster) -> str:
        pinned: str | None = getattr(self, _PINNED_STATUS_ATTR, None)
        return pinned if pinned is not None else str(getter(self))

    def set_status(self: DBCluster, value: str) -> None:
        setattr(self, _PINNED_STATUS_ATTR, None)
        setter(self, value)

    return property(get_status, set_status, doc=original.__doc__)


# ------------------------------------------------------------------ export sources


@dataclass(frozen=True)
class ExportSource:
    """What the emulator needs to know about a source's data: its tables' home and engine.

    ``kind`` is ``snapshot``, ``cluster-snapshot``, ``cluster`` or ``instance``; ``parent``
    is the key of the instance or cluster a snapshot was taken of (whose tables it holds
    unless its own are set).
    """

    kind: str
    identifier: str
    engine: str
    database: str
    parent: tuple[str, str] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.identifier.lower())

    @property
    def mysql(self) -> bool:
        return is_mysql_engine(self.engine)


def describe_export_source(resource: Any) -> ExportSource:
    """The :class:`ExportSource` of a DB snapshot, cluster snapshot, cluster or instance."""
    if isinstance(resource, DBSnapshot):
        instance = str(resource.db_instance_identifier)
        db_name = getattr(resource.database, "db_name", None)
        return ExportSource(
            "snapshot",
            str(resource.db_snapshot_identifier),
            str(resource.engine),
            database_name(db_name, instance),
            ("instance", instance.lower()),
        )
    if isinstance(resource, DBClusterSnapshot):
        cluster = str(resource.db_cluster_identifier)
        db_name = getattr(resource.cluster, "database_name", None)
        return ExportSource(
            "cluster-snapshot",
            str(resource.db_cluster_snapshot_identifier),
            str(resource.engine),
            database_name(db_name, cluster),
            ("cluster", cluster.lower()),
        )
    if isinstance(resource, DBCluster):
        cluster = str(resource.db_cluster_identifier)
        return ExportSource(
            "cluster", cluster, str(resource.engine), database_name(resource.database_name, cluster)
        )
    instance = str(resource.db_instance_identifier)
    return ExportSource(
        "instance", instance, str(resource.engine), database_name(resource.db_name, instance)
    )


def tables_of_source(source: ExportSource) -> tuple[ExportTable, ...]:
    """The tables of ``source``: set for it, else for its parent, else the defaults."""
    with STATE.lock:
        for key in (source.key, source.parent):
            if key is not None and key in STATE.source_tables:
                return STATE.source_tables[key]
    return default_tables(source.engine, source.database)


# ---------------------------------------------------------------------- export task


class EmulatedExportTask(ExportTask):
    """moto's ``ExportTask`` with AWS's lifecycle.

    ``STARTING`` -> ``IN_PROGRESS`` (``PercentProgress`` and ``TotalExtractedDataInGB``
    rising) -> ``COMPLETE``; or ``CANCELING`` -> ``CANCELED`` after a cancel; or
    ``FAILED`` with ``FailureCause``. Statuses are upper case, as AWS returns them.

    ``tables`` are what it exports (already narrowed by ``ExportOnly``); on reaching
    ``COMPLETE`` it writes them and their metadata to S3 (:meth:`_complete`), with the
    ``output_faults`` applied. ``TotalExtractedDataInGB`` rises to the sum of the tables'
    ``sizeGB``, rounded down (the API field is an integer).
    """

    def __init__(
        self,
        backend: RDSBackend,
        source: DBSnapshot | DBClusterSnapshot | DBCluster,
        kwargs: dict[str, Any],
        pacing: ExportPacing,
        failure: PendingFailure | None = None,
        *,
        tables: tuple[ExportTable, ...] = (),
        warning_message: str | None = None,
        output_faults: list[OutputFault] | None = None,
    ) -> None:
        # moto's ExportTask only reads the source's type; a live cluster works as well.
        super().__init__(backend, source, kwargs)  # type: ignore[arg-type]
        self.snapshot_time: datetime | None = (
            None if isinstance(source, DBCluster) else source.snapshot_create_time
        )
        # AWS: ExportSourceType is SNAPSHOT | CLUSTER, "the type of source for the export";
        # the API reference speaks of "a snapshot or cluster export", the Aurora guide of
        # "exporting DB cluster data" (a live cluster) apart from "exporting DB cluster
        # snapshot data". ASSUMPTION: AWS does not say which type a DB *cluster snapshot*
        # export reports; the emulator says SNAPSHOT (it is a snapshot export), where plain
        # moto says CLUSTER. Only a live cluster's export is CLUSTER.
        self.source_type = "CLUSTER" if isinstance(source, DBCluster) else "SNAPSHOT"
        self.source = source
        self.export_only = list(kwargs.get("export_only") or [])
        self.s3_prefix = kwargs.get("s3_prefix") or None
        self.task_start_time = utcnow()
        self.task_end_time: datetime | None = None
        self.failure_cause: str | None = None
        self.warning_message: str | None = warning_message
        self.percent_progress = 0
        self.total_extracted_data_in_gb = 0
        self.export_source = describe_export_source(source)
        self.tables = tuple(tables)
        self.output_faults: list[OutputFault] = list(output_faults or [])
        #: The keys written to S3 on completion (``None``: nothing written yet).
        self.output_keys: list[str] | None = None
        self._explicit_warning = warning_message is not None
        self._size_gb = exported_size_gb(self.tables)
        self._fail_after_polls: int | None = None
        self._fail_at: float | None = None
        self._fail_cause = ""
        # apache/airflow#46555: a trailing "/" in S3Prefix is accepted by StartExportTask,
        # but the export then fails. The FailureCause wording is the emulator's own.
        self._broken_prefix = bool(self.s3_prefix and self.s3_prefix.endswith("/"))
        self.progress = Progress([pacing.starting, pacing.in_progress, Stage("COMPLETE")])
        self._end_announced = False
        self._sync()
        if failure is not None:
            self.schedule_failure(failure)

    @property
    def resource_id(self) -> str:
        return str(self.export_task_identifier)

    @property
    def is_active(self) -> bool:
        self.refresh()
        return self.status in ACTIVE_EXPORT_STATUSES

    def poll(self) -> None:
        """Count one describe call of this task."""
        self.refresh()
        if self.status in ACTIVE_EXPORT_STATUSES and self._fail_after_polls is not None:
            if self._fail_after_polls == 0:
                self.fail(self._fail_cause)
                return
            self._fail_after_polls -= 1
        self.progress.poll()
        self._sync()

    def refresh(self) -> None:
        """Apply time-paced transitions and failures without counting a poll."""
        due = self._fail_at is not None and time.monotonic() >= self._fail_at
        if due and self.progress.status in ACTIVE_EXPORT_STATUSES:
            self.fail(self._fail_cause)
            return
        self._sync()

    def cancel(self, pacing: ExportPacing) -> None:
        """Start canceling: ``CANCELING`` now, ``CANCELED`` after the canceling stage."""
        self.progress.replace([pacing.canceling, Stage("CANCELED")])
        self._fail_after_polls = self._fail_at = None
        self._sync()

    def fail(self, cause: str) -> None:
        """Fail now with ``FailureCause`` = ``cause``."""
        self.progress.replace([Stage("FAILED")])
        self.failure_cause = cause
        self._fail_after_polls = self._fail_at = None
        self._sync()

    def schedule_failure(self, failure: PendingFailure) -> None:
        """Fail now, after ``failure.after_polls`` more polls, or ``after_seconds``."""
        if failure.after_polls is None and failure.after_seconds is None:
            self.fail(failure.cause)
            return
        self._fail_cause = failure.cause
        if failure.after_polls is not None:
            self._fail_after_polls = failure.after_polls
        if failure.after_seconds is not None:
            self._fail_at = time.monotonic() + failure.after_seconds

    def repace(self, pacing: ExportPacing) -> None:
        """Apply new pacing to a running task, restarting its current stage."""
        status = self.progress.status
        if status == "STARTING":
            self.progress.replace([pacing.starting, pacing.in_progress, Stage("COMPLETE")])
        elif status == "IN_PROGRESS":
            self.progress.replace([pacing.in_progress, Stage("COMPLETE")])
        elif status == "CANCELING":
            self.progress.replace([pacing.canceling, Stage("CANCELED")])
        self._sync()

    def set_warning_message(self, message: str | None) -> None:
        """Report ``message`` as ``WarningMessage``; ``None``: what the export itself says."""
        self._explicit_warning = message is not None
        if message is None and self.output_keys is not None:
            message = skipped_tables_warning(self.tables)
        self.warning_message = message

    def _sync(self) -> None:
        status = self.progress.status
        if status == "IN_PROGRESS" and self._broken_prefix:
            self._fail_now(
                f"The export could not write to S3Prefix {self.s3_prefix!r}: "
                "a prefix must not end with '/'."
            )
            status = "FAILED"
        if status == "COMPLETE" and self.output_keys is None:
            status = self._complete()
        self.status = status
        if status == "STARTING":
            self.percent_progress = 0
        elif status == "IN_PROGRESS":
            self.percent_progress = max(1, int(100 * self.progress.fraction()))
        elif status == "COMPLETE":
            self.percent_progress = 100
        # round() first: 3 GB * 100 / 100 must not floor to 2 through float error.
        extracted = round(self._size_gb * self.percent_progress / 100, 6)
        self.total_extracted_data_in_gb = math.floor(extracted)
        if status in {"COMPLETE", "FAILED", "CANCELED"} and self.task_end_time is None:
            self.task_end_time = utcnow()
        if status in {"COMPLETE", "FAILED", "CANCELED"} and not self._end_announced:
            self._end_announced = True
            self._announce_end(status)

    def _announce_end(self, status: str) -> None:
        """Publish the RDS event of this export's end (see :mod:`.notifications`)."""
        kind = self.export_source.kind
        first = {"snapshot": 159, "cluster-snapshot": 162, "cluster": 234}.get(kind, 159)
        offset = {"FAILED": 0, "CANCELED": 1, "COMPLETE": 2}[status]
        source_arn = str(self.source_arn)
        NOTIFIER.publish(
            account_id=self.backend.account_id,
            region=self.backend.region_name,
            event_id=f"RDS-EVENT-{first + offset:04d}",
            source_id=source_arn.split(":", 6)[-1],
            source_arn=source_arn,
            message=(
                f"Snapshot export task {self.export_task_identifier} "
                f"{status.lower().replace('complete', 'completed')}"
            ),
        )

    def _fail_now(self, cause: str) -> None:
        self.progress.replace([Stage("FAILED")])
        self.failure_cause = cause

    def _complete(self) -> str:
        """Write the export's output; the status it ends in (``FAILED`` if the bucket is gone).

        ASSUMPTION: AWS does not document what a deleted bucket does to a running export;
        the emulator fails it with its own ``FailureCause`` wording.
        """
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import s3_backends

        if self.task_end_time is None:
            self.task_end_time = utcnow()
        s3 = s3_backends[self.backend.account_id][self.backend.partition]
        try:
            self.output_keys = write_export_output(s3, self.output())
        except MissingBucket:
            self.output_keys = []
            self._fail_now(
                f"The export could not write to S3 bucket {self.s3_bucket}: "
                "the bucket does not exist."
            )
            return "FAILED"
        if not self._explicit_warning:
            self.warning_message = skipped_tables_warning(self.tables)
        return "COMPLETE"

    def output(self) -> ExportOutput:
        """What this export writes (its times as they are now)."""
        return ExportOutput(
            export_task_identifier=str(self.export_task_identifier),
            source_arn=str(self.source_arn),
            export_only=tuple(self.export_only),
            snapshot_time=self.snapshot_time,
            task_start_time=self.task_start_time,
            task_end_time=self.task_end_time or utcnow(),
            s3_bucket=str(self.s3_bucket),
            s3_prefix=self.s3_prefix,
            iam_role_arn=str(self.iam_role_arn),
            kms_key_id=str(self.kms_key_id),
            database=self.export_source.database,
            mysql=self.export_source.mysql,
            tables=self.tables,
            faults=tuple(self.output_faults),
        )

    def to_dict(self) -> dict[str, Any]:
        """The task as DescribeExportTasks reports it (JSON-friendly: ISO datetimes)."""
        self.refresh()
        return {
            "ExportTaskIdentifier": self.export_task_identifier,
            "SourceArn": self.source_arn,
            "SourceType": self.source_type,
            "ExportOnly": list(self.export_only),
            "SnapshotTime": _iso(self.snapshot_time),
            "TaskStartTime": _iso(self.task_start_time),
            "TaskEndTime": _iso(self.task_end_time),
            "S3Bucket": self.s3_bucket,
            "S3Prefix": self.s3_prefix,
            "IamRoleArn": self.iam_role_arn,
            "KmsKeyId": self.kms_key_id,
            "Status": self.status,
            "PercentProgress": self.percent_progress,
            "TotalExtractedDataInGB": self.total_extracted_data_in_gb,
            "FailureCause": self.failure_cause,
            "WarningMessage": self.warning_message,
        }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


# ------------------------------------------------------------------- validation


def validate_export_task_identifier(identifier: str) -> None:
    """Raise ``InvalidParameterValue`` unless ``identifier`` follows AWS's rules.

    Begins with a letter; ASCII letters, digits and hyphens only; no trailing hyphen;
    no two consecutive hyphens; at most :data:`MAX_EXPORT_TASK_IDENTIFIER_LENGTH` chars.
    """
    problem = None
    if not identifier:
        problem = "must not be empty"
    elif len(identifier) > MAX_EXPORT_TASK_IDENTIFIER_LENGTH:
        problem = f"must be at most {MAX_EXPORT_TASK_IDENTIFIER_LENGTH} characters"
    elif not identifier[0].isascii() or not identifier[0].isalpha():
        problem = "must begin with a letter"
    elif identifier.endswith("-"):
        problem = "must not end with a hyphen"
    elif not _IDENTIFIER_RE.match(identifier):
        problem = (
            "must contain only ASCII letters, digits and hyphens, without two consecutive hyphens"
        )
    if problem:
        raise InvalidParameterValue(
            f"The parameter ExportTaskIdentifier is not a valid identifier: it {problem}."
        )


def normalize_export_task_identifier(identifier: str) -> str:
    """An export task identifier as RDS keeps it: lower case.

    ASSUMPTION: the API reference does not say how ExportTaskIdentifier is stored or
    compared. RDS documents its other identifiers (DBInstanceIdentifier,
    DBSnapshotIdentifier, DBClusterIdentifier ...) as "stored as a lowercase string" and
    treats them case-insensitively; the emulator does the same for export tasks (plain
    moto keeps them as given). So ``Orders-X`` and ``orders-x`` are one task, described
    as ``orders-x``, and its data lands under ``.../orders-x/``.
    """
    return identifier.lower()


def _validate_export_only(entries: Iterable[str]) -> None:
    for entry in entries:
        parts = str(entry).split(".")
        if not 1 <= len(parts) <= 4 or not all(_EXPORT_ONLY_PART_RE.match(p) for p in parts):
            raise InvalidExportOnlyFault(
                f"The ExportOnly entry {entry!r} is not valid. Use database, database.table, "
                "database.schema or database.schema.table."
            )


@dataclass(frozen=True)
class _RdsArn:
    """``arn:<partition>:rds:<region>:<account>:<type>:<name>``, split."""

    partition: str
    region: str
    account: str
    resource_type: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> _RdsArn | None:
        parts = arn.split(":", 6)
        if len(parts) != 7 or parts[0] != "arn" or parts[2] != "rds":
            return None
        return cls(parts[1], parts[3], parts[4], parts[5], parts[6])

    def is_local_to(self, backend: RDSBackend) -> bool:
        """Whether the ARN names something in ``backend``'s partition, Region and account."""
        return (self.partition, self.region, self.account) == (
            backend.partition,
            backend.region_name,
            backend.account_id,
        )


# RDS in one Region of one account looks resources up there only. ASSUMPTION: AWS
# documents no answer for an ARN of another Region or account (cross-account shared
# snapshots aside, which the emulator does not model); the emulator answers as RDS does
# for a resource that does not exist: DBSnapshotNotFound / DBClusterSnapshotNotFoundFault /
# DBClusterNotFoundFault, HTTP 404, naming the whole ARN.
_NOT_FOUND_FAULTS: dict[str, Callable[[str], Exception]] = {
    "snapshot": DBSnapshotNotFoundFault,
    "cluster-snapshot": DBClusterSnapshotNotFoundError,
    "cluster": DBClusterNotFoundError,
}


def _local_pool(backend: RDSBackend, resource_type: str) -> Mapping[str, Any]:
    pools: dict[str, Mapping[str, Any]] = {
        "snapshot": backend.database_snapshots,
        "cluster-snapshot": backend.cluster_snapshots,
        "cluster": backend.clusters,
    }
    return pools[resource_type]


def _find_export_source(
    backend: RDSBackend, source_arn: str
) -> DBSnapshot | DBClusterSnapshot | DBCluster:
    arn = _RdsArn.parse(source_arn)
    if arn is None:
        raise InvalidParameterValue(f"The parameter SourceArn is not a valid ARN: {source_arn}")
    if arn.resource_type not in _NOT_FOUND_FAULTS:
        raise InvalidParameterValue(
            f"The SourceArn {source_arn} is not a DB snapshot, DB cluster snapshot or DB cluster."
        )
    not_found = _NOT_FOUND_FAULTS[arn.resource_type]
    if not arn.is_local_to(backend):
        raise not_found(source_arn)
    pool = _local_pool(backend, arn.resource_type)
    # RDS identifiers are case-insensitive (stored in lower case).
    source = pool.get(arn.name, pool.get(arn.name.lower()))
    if source is None:
        raise not_found(arn.name)
    return source


def _check_source_available(source: DBSnapshot | DBClusterSnapshot | DBCluster) -> None:
    """``InvalidExportSourceState`` unless the snapshot or live cluster is ``available``."""
    if not isinstance(source, DBCluster):
        refresh_snapshot(source)
    status = source.status
    if status != "available":
        raise InvalidExportSourceStateFault(
            f"Export source should be 'available' but current status is {status}."
        )


def _check_bucket(backend: RDSBackend, bucket: str) -> None:
    from moto.s3.models import s3_backends

    if bucket not in s3_backends[backend.account_id][backend.partition].buckets:
        raise InvalidS3BucketFault(f"The specified S3 bucket {bucket} does not exist.")


def _check_role(backend: RDSBackend, role_arn: str) -> None:
    from moto.iam.models import iam_backends

    iam = iam_backends[backend.account_id][backend.partition]
    if not any(role.arn == role_arn for role in iam.get_roles()):
        raise IamRoleNotFoundFault(f"The IAM role {role_arn} is not found.")


def _check_kms_key(backend: RDSBackend, key_id: str) -> None:
    from moto.kms.models import kms_backends

    kms = kms_backends[backend.account_id][backend.region_name]
    try:
        raw_id = kms.any_id_to_key_id(key_id)
    except Exception:  # moto raises several types for unknown aliases
        raw_id = None
    key = kms.keys.get(raw_id) if raw_id else None
    if key is None or key.key_state != "Enabled":
        raise KMSKeyNotAccessibleFault(
            f"The KMS key {key_id} is not accessible: it does not exist or is not enabled."
        )


# --------------------------------------------------------------- backend methods


def _start_export_task(self: RDSBackend, kwargs: dict[str, Any]) -> ExportTask:
    validate_export_task_identifier(str(kwargs.get("export_task_identifier") or ""))
    identifier = normalize_export_task_identifier(str(kwargs["export_task_identifier"]))
    kwargs = {**kwargs, "export_task_identifier": identifier}
    prefix = kwargs.get("s3_prefix")
    if prefix and ":" in prefix:
        raise InvalidParameterValue("The parameter S3Prefix must not contain ':'.")
    _validate_export_only(kwargs.get("export_only") or [])
    with STATE.lock:
        if identifier in self.export_tasks:
            raise ExportTaskAlreadyExistsError(identifier)
        source_arn = str(kwargs.get("source_arn") or "")
        source = _find_export_source(self, source_arn)
        _check_source_available(source)
        active = [task for task in _export_tasks(self) if task.is_active]
        for task in active:
            # The same resource, however its ARN was spelled.
            if task.source is source:
                raise InvalidExportSourceStateFault(
                    CONCURRENT_EXPORT_MESSAGE.format(
                        export_task_identifier=task.export_task_identifier,
                        source_arn=source_arn,
                    )
                )
        if len(active) >= MAX_CONCURRENT_EXPORTS:
            raise UnmodelledRdsError(
                EXPORT_LIMIT_ERROR_CODE,
                EXPORT_LIMIT_MESSAGE.format(limit=MAX_CONCURRENT_EXPORTS),
            )
        _check_bucket(self, str(kwargs.get("s3_bucket_name") or ""))
        _check_role(self, str(kwargs.get("iam_role_arn") or ""))
        _check_kms_key(self, str(kwargs.get("kms_key_id") or ""))
        export_source = describe_export_source(source)
        task = EmulatedExportTask(
            self,
            source,
            kwargs,
            STATE.pacing_for(identifier),
            STATE.pending_failures.pop(identifier, None),
            tables=select_tables(
                tables_of_source(export_source),
                kwargs.get("export_only") or [],
                mysql=export_source.mysql,
            ),
            warning_message=STATE.pending_warnings.pop(identifier, None),
            output_faults=STATE.pending_output_faults.pop(identifier, None),
        )
        self.export_tasks[identifier] = task
        return task


def _cancel_export_task(self: RDSBackend, export_task_identifier: str) -> ExportTask:
    with STATE.lock:
        task = self.export_tasks.get(normalize_export_task_identifier(export_task_identifier))
        if task is None:
            raise ExportTaskNotFoundError(export_task_identifier)
        if isinstance(task, EmulatedExportTask):
            task.refresh()
            if task.status not in CANCELABLE_EXPORT_STATUSES:
                raise InvalidExportTaskStateFault(
                    f"Cannot cancel export task {task.export_task_identifier} because it is in "
                    f"status {task.status}."
                )
            task.cancel(STATE.pacing_for(export_task_identifier))
        return task


def _describe_export_tasks(
    self: RDSBackend,
    export_task_identifier: str | None = None,
    source_arn: str | None = None,
    source_type: str | None = None,
    filters: dict[str, list[str]] | None = None,
    poll: bool = False,
) -> list[ExportTask]:
    """Select export tasks as DescribeExportTasks does.

    With ``poll=True`` every task the query selects (all criteria but ``status``) counts
    one poll, and one use of its :class:`StatusOverride`, before the ``status`` filter is
    applied, so the filter sees the status the response reports. The tasks returned then
    carry the reported status (an overridden task is returned as a copy).

    ``ExportTaskIdentifier`` is compared case-insensitively (ASSUMPTION, see
    :func:`normalize_export_task_identifier`). Filter values are compared as given: "Filter
    names and values are case-sensitive" (DescribeExportTasks API reference), so an
    ``export-task-identifier`` filter matches the lower-case identifier only.
    """
    filters = dict(filters or {})
    unknown = set(filters) - _DESCRIBE_FILTERS
    if unknown:
        raise InvalidParameterValue(f"Unrecognized filter name: {sorted(unknown)[0]}")
    with STATE.lock:
        wanted_identifier = (
            normalize_export_task_identifier(export_task_identifier)
            if export_task_identifier
            else None
        )
        if wanted_identifier and wanted_identifier not in self.export_tasks:
            raise ExportTaskNotFoundError(str(export_task_identifier))
        tasks = list(self.export_tasks.values())
        if wanted_identifier:
            tasks = [t for t in tasks if t.export_task_identifier == wanted_identifier]
        if source_arn:
            tasks = [t for t in tasks if t.source_arn == source_arn]
        if source_type:
            tasks = [t for t in tasks if t.source_type == source_type.upper()]
        for name, attribute in (
            ("export-task-identifier", "export_task_identifier"),
            ("s3-bucket", "s3_bucket"),
            ("source-arn", "source_arn"),
        ):
            if name in filters:
                tasks = [t for t in tasks if getattr(t, attribute) in filters[name]]
        for task in tasks:
            if isinstance(task, EmulatedExportTask) and poll:
                task.poll()
            elif isinstance(task, EmulatedExportTask):
                task.refresh()
        if poll:
            tasks = [_as_reported(task) for task in tasks]
        if "status" in filters:
            # AWS: the status filter "must be lowercase"; statuses are reported upper case.
            wanted = {value.upper() for value in filters["status"]}
            tasks = [t for t in tasks if t.status is not None and str(t.status).upper() in wanted]
        return tasks


def _as_reported(task: ExportTask) -> ExportTask:
    """The task as this DescribeExportTasks answer reports it (see :class:`StatusOverride`).

    An override is applied to a shallow copy, so the task's own status (and its lifecycle,
    which goes on underneath) is untouched; ``None`` leaves the ``Status`` key out, since
    moto's serializer skips attributes that are ``None``.
    """
    overridden, status = STATE.reported_status(str(task.export_task_identifier), task.status)
    if not overridden:
        return task
    reported = copy.copy(task)
    reported.status = status  # type: ignore[assignment]
    return reported


def _export_tasks(backend: RDSBackend) -> list[EmulatedExportTask]:
    return [t for t in backend.export_tasks.values() if isinstance(t, EmulatedExportTask)]


def _wrap_create_snapshot(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_snapshot(self: RDSBackend, *args: Any, **kwargs: Any) -> Any:
        snapshot = original(self, *args, **kwargs)
        with STATE.lock:
            set_snapshot_progress(snapshot, snapshot_stages(STATE.snapshot_creating))
        return snapshot

    create_snapshot.__doc__ = original.__doc__
    return create_snapshot


# -------------------------------------------------------------- response methods


def _paginate(
    items: list[Any], marker: str | None, max_records: int | None
) -> tuple[list[Any], str | None]:
    """Page ``items`` as RDS does: ``MaxRecords`` 20-100 (default 100), opaque ``Marker``.

    The marker is the identifier of the first task of the next page.
    """
    limit = 100 if max_records is None else int(max_records)
    if not 20 <= limit <= 100:
        raise InvalidParameterValue(
            f"Invalid value {limit} for MaxRecords. Must be between 20 and 100."
        )
    start = 0
    if marker:
        names = [item.export_task_identifier for item in items]
        if marker not in names:
            raise InvalidParameterValue(f"The marker {marker} is not valid.")
        start = names.index(marker)
    page = items[start : start + limit]
    rest = items[start + limit :]
    return page, (rest[0].export_task_identifier if rest else None)


def _describe_export_tasks_response(self: RDSResponse) -> ActionResult:
    params = self.params
    filters: dict[str, list[str]] = {}
    for entry in params.get("Filters") or []:
        filters.setdefault(entry["Name"], []).extend(entry["Values"])
    tasks = _describe_export_tasks(
        self.backend,
        export_task_identifier=params.get("ExportTaskIdentifier"),
        source_arn=params.get("SourceArn"),
        source_type=params.get("SourceType"),
        filters=filters,
        poll=True,
    )
    page, marker = _paginate(tasks, params.get("Marker"), params.get("MaxRecords"))
    return ActionResult({"ExportTasks": page, "Marker": marker})


@dataclass(frozen=True)
class _SnapshotApi:
    """What tells DescribeDBSnapshots and DescribeDBClusterSnapshots apart."""

    identifier_parameter: str  # DBSnapshotIdentifier / DBClusterSnapshotIdentifier
    source_parameter: str  # DBInstanceIdentifier / DBClusterIdentifier
    backend_method: str
    result_key: str


_DB_SNAPSHOTS = _SnapshotApi(
    "DBSnapshotIdentifier",
    "DBInstanceIdentifier",
    "describe_db_snapshots",
    "DBSnapshots",
)
_CLUSTER_SNAPSHOTS = _SnapshotApi(
    "DBClusterSnapshotIdentifier",
    "DBClusterIdentifier",
    "describe_db_cluster_snapshots",
    "DBClusterSnapshots",
)
#: SnapshotType values that select by the snapshot's own type (moto unions them with a
#: ``snapshot-type`` filter; AWS applies both).
_OWN_SNAPSHOT_TYPES = frozenset({"automated", "manual"})


def _snapshot_name(identifier: str) -> str:
    """The snapshot name in an identifier: the name itself, or an ARN's last part.

    ``arn:aws:rds:<region>:<account>:snapshot:rds:orders-2026-11-20-03-00`` ->
    ``rds:orders-2026-11-20-03-00`` (the name of an automated snapshot holds a ``:``).
    """
    if identifier.startswith("arn:"):
        parts = identifier.split(":", 6)
        if len(parts) == 7:
            return parts[6]
    return identifier


def _names_automated_snapshot(identifier: str) -> bool:
    """Whether a snapshot name or ARN is an automated snapshot's (``rds:...``)."""
    return _snapshot_name(identifier).lower().startswith("rds:")


def _refuse_automated_without_type(api: _SnapshotApi, identifier: str) -> None:
    # "If this identifier is for an automated snapshot, the SnapshotType parameter must
    # also be specified" (API reference, DescribeDB(Cluster)Snapshots). ASSUMPTION: the
    # reference names the rule but not the error; the emulator answers with RDS's code for
    # parameters that do not go together (HTTP 400) and its own message.
    raise InvalidParameterCombination(
        f"{api.identifier_parameter} {identifier} is for an automated snapshot, so the "
        "SnapshotType parameter must also be specified (SnapshotType=automated)."
    )


def _describe_snapshots_response(api: _SnapshotApi) -> Callable[[RDSResponse], ActionResult]:
    """DescribeDB(Cluster)Snapshots as AWS answers it; one call = one poll per snapshot.

    On top of moto: an automated snapshot named without ``SnapshotType`` is refused; and
    ``SnapshotType`` narrows a ``snapshot-type`` filter instead of adding to it. Without
    ``SnapshotType`` "both automated and manual snapshots are returned" (API reference),
    filtered by id or not.
    """

    def describe(self: RDSResponse) -> ActionResult:
        params = self.params
        identifier = params.get(api.identifier_parameter)
        snapshot_type = params.get("SnapshotType")
        if identifier and snapshot_type is None and _names_automated_snapshot(identifier):
            _refuse_automated_without_type(api, identifier)
        filters: dict[str, list[str]] = {}
        for entry in params.get("Filters") or []:
            filters.setdefault(entry["Name"], []).extend(entry.get("Values") or [])
        with STATE.lock:
            snapshots = getattr(self.backend, api.backend_method)(
                params.get(api.source_parameter),
                identifier,
                snapshot_type,
                {name: list(values) for name, values in filters.items()},
            )
            if snapshot_type in _OWN_SNAPSHOT_TYPES:
                wanted = set(filters.get("snapshot-type") or [snapshot_type]) & {snapshot_type}
                snapshots = [s for s in snapshots if s.snapshot_type in wanted]
            for snapshot in snapshots:
                poll_snapshot(snapshot)
        return ActionResult({api.result_key: snapshots})

    describe.__name__ = api.backend_method
    describe.__doc__ = getattr(RDSResponse, api.backend_method).__doc__
    return describe


def _accept_arn(original: Callable[..., Any], resource_type: str) -> Callable[..., Any]:
    """Let DescribeDB(Cluster)Snapshots take a snapshot ARN, as AWS does (moto wants a name).

    Only an ARN of this backend's partition, Region and account is looked up; any other
    answers as a missing snapshot (see :data:`_NOT_FOUND_FAULTS`).
    """
    not_found = _NOT_FOUND_FAULTS[resource_type]

    def describe(
        self: RDSBackend,
        source_identifier: str | None,
        db_snapshot_identifier: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if db_snapshot_identifier:
            arn = _RdsArn.parse(db_snapshot_identifier)
            if arn is not None and not arn.is_local_to(self):
                raise not_found(db_snapshot_identifier)
            db_snapshot_identifier = _snapshot_name(db_snapshot_identifier)
        return original(self, source_identifier, db_snapshot_identifier, *args, **kwargs)

    describe.__doc__ = original.__doc__
    return describe


def _wrap_call_action(original: Callable[[RDSResponse], Any]) -> Callable[[RDSResponse], Any]:
    def call_action(self: RDSResponse) -> Any:
        action = self._get_action()
        STATE.calls.record(action)
        try:
            injected = STATE.faults.before_action(action)
        except HangRequested as hang:
            time.sleep(hang.seconds)
            if STATE.hang_mode == "timeout":
                from botocore.exceptions import ReadTimeoutError

                raise ReadTimeoutError(endpoint_url=getattr(self, "uri", "")) from None
            injected = None
        except ResponseLost:
            original(self)
            return query_error_response(
                "InternalFailure", "Injected: the request was processed, its answer lost", 500
            )
        if injected is not None:
            return injected
        return original(self)

    return call_action


# ------------------------------------------------------------------ install


_MISSING = object()
_installed: list[tuple[type, str, Any]] = []
_install_count = 0


def _patch(owner: type, name: str, replacement: Any) -> None:
    _installed.append((owner, name, owner.__dict__.get(name, _MISSING)))
    setattr(owner, name, replacement)


def install() -> None:
    """Patch moto's RDS classes (idempotent, reference-counted)."""
    global _install_count
    with STATE.lock:
        _install_count += 1
        if _install_count > 1:
            return
        _patch(RDSResponse, "call_action", _wrap_call_action(RDSResponse.call_action))
        _patch(RDSResponse, "describe_export_tasks", _describe_export_tasks_response)
        _patch(RDSResponse, "describe_db_snapshots", _describe_snapshots_response(_DB_SNAPSHOTS))
        _patch(
            RDSResponse,
            "describe_db_cluster_snapshots",
            _describe_snapshots_response(_CLUSTER_SNAPSHOTS),
        )
        _patch(
            RDSBackend,
            "describe_db_snapshots",
            _accept_arn(RDSBackend.describe_db_snapshots, "snapshot"),
        )
        _patch(
            RDSBackend,
            "describe_db_cluster_snapshots",
            _accept_arn(RDSBackend.describe_db_cluster_snapshots, "cluster-snapshot"),
        )
        _patch(DBCluster, "status", _pinnable_cluster_status(DBCluster.__dict__["status"]))
        _patch(RDSBackend, "start_export_task", _start_export_task)
        _patch(RDSBackend, "cancel_export_task", _cancel_export_task)
        _patch(RDSBackend, "describe_export_tasks", _describe_export_tasks)
        _patch(
            RDSBackend, "create_db_snapshot", _wrap_create_snapshot(RDSBackend.create_db_snapshot)
        )
        _patch(
            RDSBackend,
            "create_db_cluster_snapshot",
            _wrap_create_snapshot(RDSBackend.create_db_cluster_snapshot),
        )


def uninstall() -> None:
    """Undo :func:`install` once the last user is done."""
    global _install_count
    with STATE.lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count:
            return
        while _installed:
            owner, name, original = _installed.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
