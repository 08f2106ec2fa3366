"""The demo's scenario: what the emulated AWS account holds, which runs happen, and what
each run must end with.

One night (logical date ``2026-11-21``) in an account with:

* instance ``orders``: last night's automated snapshot is still ``creating`` (ready after
  3 polls) and yesterday's one is ``available`` (the sensor must not export it);
* instances ``billing`` and ``inventory`` and Aurora cluster ``analytics`` with tonight's
  automated snapshots (``analytics``'s still ``creating`` for two polls);
* a bucket, an export role and a KMS key; ``inventory``'s export is set to fail, and
  ``billing``'s to skip the table ``billing.public.customers`` (PERMISSIONS_DO_NOT_EXIST).

Runs, each a real ``airflow dags test``:

1. ``nightly_rds_export`` for ``orders``: the sensor defers while the snapshot is
   ``creating``, the export starts, progress is logged while it runs, the COMPLETE
   export is verified table by table (4 tables, 20 GB), and the teardown's cancel skips
   because the export is already ``COMPLETE``;
2. the same DAG and logical date again (``dags test`` clears and re-runs): the start task
   adopts the existing export instead of failing or starting a second one;
3. ``fleet_rds_export`` for ``billing``, ``inventory`` and ``analytics``: three exports
   end, ``inventory``'s FAILED: its task fails once (no retries) with AWS's
   ``FailureCause`` in the message; ``billing``'s is COMPLETE but skipped a table: its
   task fails once, verification naming the table and the reason. ``analytics``'s
   passes. The run as a whole ends ``failed``, as expected.

Everything the demo checks is declared here (:func:`build_runs`, :func:`world_checks`),
so the demo doubles as a smoke test of the example DAGs against the package.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "Check",
    "RunSpec",
    "TaskExpectation",
    "World",
    "build_runs",
    "seed",
    "world_checks",
]

LOGICAL_DATE = "2026-11-21"
BUCKET = "rds-exports"
ROLE_NAME = "rds-s3-export"
KMS_ALIAS = "alias/rds-exports"
NIGHTLY_INSTANCE = "orders"
FLEET_SOURCES: tuple[dict[str, str], ...] = (
    {"db_instance_identifier": "billing"},
    {"db_instance_identifier": "inventory"},
    {"db_cluster_identifier": "analytics"},
)
FAILING_SOURCE = "inventory"
FAILURE_CAUSE = (
    "Access Denied writing to s3://rds-exports/fleet/: the bucket policy does not allow "
    "s3:PutObject for the export role"
)
SNAPSHOT_CREATING_POLLS = 3
# A COMPLETE export that left a table out: RDS could not read it (the user guide's
# "Troubleshooting PostgreSQL permissions errors"); verification names it.
PARTIAL_SOURCE = "billing"
SKIPPED_TABLE = "billing.public.customers"
SKIP_REASON = "PERMISSIONS_DO_NOT_EXIST"


def source_name(source: Mapping[str, str]) -> str:
    """The instance or cluster identifier of a fleet source."""
    return source.get("db_instance_identifier") or source["db_cluster_identifier"]


# ------------------------------------------------------------------ the world


@dataclasses.dataclass(frozen=True)
class World:
    """What :func:`seed` created, as the runs and checks need it."""

    logical_date: str
    bucket: str
    iam_role_arn: str
    kms_key_id: str
    nightly_snapshot: dict[str, Any]
    """Tonight's automated snapshot of ``orders`` (as created: ``creating``)."""
    stale_snapshot: dict[str, Any]
    """Yesterday's automated snapshot of ``orders`` (``available``; must not be used)."""

    @property
    def ds_nodash(self) -> str:
        """The logical date as ``YYYYMMDD`` (Airflow's ``ds_nodash``)."""
        return self.logical_date.replace("-", "")

    def export_id(self, source: str) -> str:
        """The export identifier nightly_rds_export derives: ``<source>-<ds_nodash>``."""
        return f"{source}-{self.ds_nodash}"

    def fleet_export_id(self, source: str) -> str:
        """The export identifier fleet_rds_export derives: ``fleet-<source>-<ds_nodash>``."""
        return f"fleet-{source}-{self.ds_nodash}"

    def variables(self) -> dict[str, str]:
        """The Airflow Variables the example DAGs read, as ``AIRFLOW_VAR_*`` environment:
        fleet_rds_export takes its bucket, prefix, role and key from ``rds_export_target``
        (never from the trigger form)."""
        target = {
            "s3_bucket_name": self.bucket,
            "s3_prefix": "fleet",
            "iam_role_arn": self.iam_role_arn,
            "kms_key_id": self.kms_key_id,
        }
        return {"AIRFLOW_VAR_RDS_EXPORT_TARGET": json.dumps(target)}

    def describe(self) -> list[str]:
        """One line per seeded fact, for the demo's setup output."""
        return [
            f"bucket {self.bucket}, role {self.iam_role_arn}, KMS key {self.kms_key_id}",
            f"instance {NIGHTLY_INSTANCE}: tonight's automated snapshot "
            f"{self.nightly_snapshot['DBSnapshotIdentifier']} is "
            f"'{self.nightly_snapshot['Status']}' (ready after {SNAPSHOT_CREATING_POLLS} "
            f"polls); yesterday's {self.stale_snapshot['DBSnapshotIdentifier']} is available",
            "fleet: instances billing, inventory and cluster analytics, each with tonight's "
            "automated snapshot (analytics' still 'creating' for 2 polls)",
            f"export {self.fleet_export_id(FAILING_SOURCE)} will fail: {FAILURE_CAUSE}",
        ]


def seed(control: Any, logical_date: str = LOGICAL_DATE) -> World:
    """Create the scenario's resources through the emulator's control interface.

    Automated snapshots are stamped at the logical date, 00:00 UTC: Airflow 3 gives a
    ``dags test`` run of an ``@daily`` DAG the data interval ``[logical date, logical
    date]``, and the DAGs' sensors only accept snapshots created at or after
    ``data_interval_start``.
    """
    night = datetime.fromisoformat(logical_date).replace(tzinfo=timezone.utc)
    prereq = control.seed_export_prerequisites(
        bucket=BUCKET, role_name=ROLE_NAME, kms_alias=KMS_ALIAS
    )
    control.create_db_instance(NIGHTLY_INSTANCE)
    stale = control.create_automated_snapshot(
        NIGHTLY_INSTANCE, created_at=night - timedelta(days=1), ready_after_polls=0
    )
    tonight = control.create_automated_snapshot(
        NIGHTLY_INSTANCE, created_at=night, ready_after_polls=SNAPSHOT_CREATING_POLLS
    )
    world = World(
        logical_date=logical_date,
        bucket=prereq["bucket"],
        iam_role_arn=prereq["iam_role_arn"],
        kms_key_id=prereq["kms_key_id"],
        nightly_snapshot=tonight,
        stale_snapshot=stale,
    )
    # Four polls of progress (25 % steps) so the log shows the export moving.
    control.pace_export(world.export_id(NIGHTLY_INSTANCE), starting_polls=1, in_progress_polls=3)
    for source in FLEET_SOURCES:
        name = source_name(source)
        if "db_instance_identifier" in source:
            control.create_db_instance(name)
            control.create_automated_snapshot(name, created_at=night, ready_after_polls=0)
        else:
            control.create_db_cluster(name)
            control.create_automated_cluster_snapshot(name, created_at=night, ready_after_polls=2)
    control.fail_export(world.fleet_export_id(FAILING_SOURCE), cause=FAILURE_CAUSE, after_polls=1)
    control.skip_source_tables(PARTIAL_SOURCE, [SKIPPED_TABLE], reason=SKIP_REASON)
    return world


# ------------------------------------------------------------------ expectations


@dataclasses.dataclass(frozen=True)
class Check:
    """One expected outcome and whether the run met it."""

    subject: str
    expected: str
    ok: bool
    actual: str = ""


@dataclasses.dataclass(frozen=True)
class TaskExpectation:
    """How one task instance must end, and what its log must say."""

    task_id: str
    state: str
    map_index: int = -1
    label: str = ""
    """How the summary names it (defaults to ``task_id`` / ``task_id[map_index]``)."""
    log_contains: tuple[str, ...] = ()
    min_deferrals: int = 0
    tries: int | None = None
    """The final ``try_number`` (1: decided once, never retried)."""
    s3_uri: str | None = None
    """The ``S3Uri`` its return-value XCom must carry."""
    xcom_fields: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        """The summary's name for the task."""
        if self.label:
            return self.label
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One ``airflow dags test`` run of the scenario and its expected outcome."""

    key: str
    """Short name, used for the log file (``<n>-<key>.log``)."""
    title: str
    dag_file: str
    dag_id: str
    conf: Mapping[str, Any]
    shows: str
    """What the run demonstrates, in one line."""
    expected_state: str
    tasks: tuple[TaskExpectation, ...]
    after: Callable[[Any], list[Check]] | None = None
    """Checks against the emulator (its control interface) right after the run."""
    inspect: Callable[[Any], list[Check]] | None = None
    """Checks against the run as the metadata DB recorded it (a
    :class:`~airflow_rds_export.testing.airflow_runs.DagRunRecord`)."""

    def expectation(self, task_id: str, map_index: int) -> TaskExpectation | None:
        """The expectation for a task instance, if the scenario has one."""
        for task in self.tasks:
            if task.task_id == task_id and task.map_index == map_index:
                return task
        return None


#: The asset alias nightly_rds_export's export wait announces its exports through.
NIGHTLY_ALIAS = "rds-export:nightly_rds_export.wait_for_export"


def build_runs(world: World) -> list[RunSpec]:
    """The scenario's runs, in order, with the conf that points the DAGs at ``world``."""
    orders_id = world.export_id(NIGHTLY_INSTANCE)
    target = {
        "s3_bucket_name": world.bucket,
        "iam_role_arn": world.iam_role_arn,
        "kms_key_id": world.kms_key_id,
    }
    nightly_conf = {"db_instance_identifier": NIGHTLY_INSTANCE, **target}
    snapshot_name = world.nightly_snapshot["DBSnapshotIdentifier"]
    nightly_uri = f"s3://{world.bucket}/nightly/{orders_id}/"
    cancel_skips = TaskExpectation(
        "cancel_if_unfinished",
        "skipped",
        log_contains=(
            "AWS reports status COMPLETE, which cannot be canceled",
            "Nothing to do: the export already finished",
        ),
    )

    def one_orders_export(control: Any) -> list[Check]:
        found = [t for t in control.export_tasks() if t["ExportTaskIdentifier"] == orders_id]
        return [
            Check(
                f"export {orders_id}",
                "exists once (the re-run adopted it)",
                len(found) == 1,
                f"{len(found)} export(s)",
            )
        ]

    def export_announced(record: Any) -> list[Check]:
        events = [e for e in record.asset_events if e.task_id == "wait_for_export"]
        extra = events[0].extra if len(events) == 1 else {}
        return [
            Check(
                f"asset event {nightly_uri.rstrip('/')}",
                f"one, through {NIGHTLY_ALIAS}, extra naming export {orders_id}",
                len(events) == 1
                and events[0].uri == nightly_uri.rstrip("/")
                and events[0].aliases == (NIGHTLY_ALIAS,)
                and extra.get("export_task_identifier") == orders_id
                and (extra.get("tables") or {}).get("Complete") == 4,
                "; ".join(f"{e.uri} via {', '.join(e.aliases)}" for e in events) or "none",
            )
        ]

    def snapshot_in_data_interval(record: Any) -> list[Check]:
        taken = _utc(world.nightly_snapshot["SnapshotCreateTime"])
        start, end = _utc(record.data_interval_start), _utc(record.data_interval_end)
        inside = start is not None and end is not None and start <= taken <= max(start, end)
        return [
            Check(
                f"snapshot {snapshot_name}",
                "taken inside the run's data interval",
                bool(inside),
                f"taken {taken:%Y-%m-%d %H:%M}, interval [{start}, {end}]",
            )
        ]

    first = RunSpec(
        key="nightly-first",
        title=f"nightly_rds_export {world.logical_date}, first run",
        dag_file="nightly_rds_export.py",
        dag_id="nightly_rds_export",
        conf=nightly_conf,
        shows="snapshot still creating -> deferral; export progress; teardown cancel skips",
        expected_state="success",
        tasks=(
            TaskExpectation(
                "wait_for_snapshot",
                "success",
                log_contains=(
                    f"Snapshot {snapshot_name} is 'creating', not available yet; waiting",
                    f"Snapshot {snapshot_name} is available",
                ),
                min_deferrals=1,
                xcom_fields={"DBSnapshotIdentifier": snapshot_name},
            ),
            TaskExpectation(
                "start_export",
                "success",
                log_contains=(f"Started export {orders_id}",),
                tries=1,
            ),
            TaskExpectation(
                "wait_for_export",
                "success",
                log_contains=(
                    f"Export {orders_id} is IN_PROGRESS: 50% done",
                    f"Export task {orders_id} is complete: 4 tables, 20 GB verified",
                ),
                min_deferrals=1,
                s3_uri=nightly_uri,
            ),
            cancel_skips,
        ),
        inspect=lambda record: snapshot_in_data_interval(record) + export_announced(record),
    )
    rerun = RunSpec(
        key="nightly-rerun",
        title=f"nightly_rds_export {world.logical_date}, re-run of the same date",
        dag_file="nightly_rds_export.py",
        dag_id="nightly_rds_export",
        conf=nightly_conf,
        shows="a re-run adopts the export it already started; no second export",
        expected_state="success",
        tasks=(
            TaskExpectation(
                "wait_for_snapshot",
                "success",
                log_contains=(f"Snapshot {snapshot_name} is available",),
            ),
            TaskExpectation(
                "start_export",
                "success",
                log_contains=("adopting it as this run's export",),
                tries=1,
            ),
            TaskExpectation("wait_for_export", "success", s3_uri=nightly_uri),
            cancel_skips,
        ),
        after=one_orders_export,
    )
    fleet_tasks: list[TaskExpectation] = [
        TaskExpectation("list_sources", "success"),
        TaskExpectation("export_settings", "success"),
    ]
    for index, source in enumerate(FLEET_SOURCES):
        name = source_name(source)
        fleet_tasks.append(
            TaskExpectation(
                "wait_for_snapshot",
                "success",
                map_index=index,
                label=f"wait_for_snapshot[{name}]",
                min_deferrals=1 if "db_cluster_identifier" in source else 0,
            )
        )
        export_id = world.fleet_export_id(name)
        if name == FAILING_SOURCE:
            fleet_tasks.append(
                TaskExpectation(
                    "start_and_wait",
                    "failed",
                    map_index=index,
                    label=f"start_and_wait[{name}]",
                    log_contains=(
                        f"Started export {export_id}",
                        f"Export task {export_id}: AWS reports status FAILED ({FAILURE_CAUSE})",
                    ),
                    tries=1,
                )
            )
        elif name == PARTIAL_SOURCE:
            fleet_tasks.append(
                TaskExpectation(
                    "start_and_wait",
                    "failed",
                    map_index=index,
                    label=f"start_and_wait[{name}]",
                    log_contains=(
                        f"Export task {export_id}: AWS reports it COMPLETE, but not every "
                        "table was exported",
                        f"{SKIPPED_TABLE} skipped (WarningMessage skippedTables: {SKIP_REASON})",
                    ),
                    tries=1,
                )
            )
        else:
            fleet_tasks.append(
                TaskExpectation(
                    "start_and_wait",
                    "success",
                    map_index=index,
                    label=f"start_and_wait[{name}]",
                    log_contains=(f"Started export {export_id}",),
                    s3_uri=f"s3://{world.bucket}/fleet/{export_id}/",
                )
            )
    fleet = RunSpec(
        key="fleet",
        title=f"fleet_rds_export {world.logical_date}",
        dag_file="fleet_rds_export.py",
        dag_id="fleet_rds_export",
        conf={"sources": [dict(s) for s in FLEET_SOURCES]},
        shows=(
            "one export fails with AWS's FailureCause; one is COMPLETE but skipped a table, "
            "which verification names"
        ),
        expected_state="failed",
        tasks=tuple(fleet_tasks),
    )
    consumer = RunSpec(
        key="consumer",
        title="nightly_export_consumer, downstream of the nightly export's asset",
        dag_file="nightly_export_consumer.py",
        dag_id="nightly_export_consumer",
        conf={},
        shows="a downstream DAG reads the export's asset event: where, what, how big",
        expected_state="success",
        tasks=(
            TaskExpectation(
                "plan_load",
                "success",
                log_contains=(
                    f"Load {nightly_uri} (export {orders_id} of",
                    "4 tables, 20 GB",
                ),
            ),
        ),
    )
    return [first, rerun, consumer, fleet]


def _utc(value: Any) -> Any:
    """An ISO or SQLite date-time string as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def world_checks(world: World, export_tasks: Sequence[Mapping[str, Any]]) -> list[Check]:
    """After all runs: exactly the expected exports exist, each in its expected status."""
    expected = {world.export_id(NIGHTLY_INSTANCE): "COMPLETE"}
    for source in FLEET_SOURCES:
        name = source_name(source)
        expected[world.fleet_export_id(name)] = "FAILED" if name == FAILING_SOURCE else "COMPLETE"
    actual: dict[str, list[str]] = {}
    for task in export_tasks:
        actual.setdefault(task["ExportTaskIdentifier"], []).append(str(task["Status"]).upper())
    checks = [
        Check(
            f"export {identifier}",
            f"one export, {status}",
            actual.get(identifier) == [status],
            ", ".join(actual.get(identifier, [])) or "missing",
        )
        for identifier, status in expected.items()
    ]
    unexpected = sorted(set(actual) - set(expected))
    checks.append(
        Check("exports", "no other export", not unexpected, ", ".join(unexpected) or "none")
    )
    return checks
