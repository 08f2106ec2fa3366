"""Nightly re-runs and backfills as they happen on a real account, through Airflow.

The example DAGs themselves (``example_dags/``) and small DAGs around the start operator
run with ``airflow dags test`` against the emulator, which behaves as AWS documents:
identifiers are never reusable, one export of a snapshot at a time, automated snapshots
are found by name only with ``SnapshotType``. Each case runs on a worker and deferred.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ExportWorld
from scenarios import dag

from airflow_rds_export.testing.airflow_runs import AirflowHarness, DagRunResult

RunDag = Callable[..., DagRunResult]
REPO = Path(__file__).resolve().parent.parent
NIGHTLY = (REPO / "example_dags" / "nightly_rds_export.py").read_text()
FLEET = (REPO / "example_dags" / "fleet_rds_export.py").read_text()
# The example DAGs start on 2026-11-01: their runs are for a night after that.
NIGHT = "2026-11-21T00:00:00+00:00"
NIGHTLY_EXPORT = "orders-20261121"
# The small DAGs of this module run for the harness's default night, 2024-01-01.
EXPORT_ID = "orders-20240101"


def example_env(world: ExportWorld) -> dict[str, str]:
    target = {
        "s3_bucket_name": world.bucket,
        "s3_prefix": "fleet",
        "iam_role_arn": world.iam_role_arn,
        "kms_key_id": world.kms_key_id,
    }
    return {
        **world.env,
        "RDS_EXPORT_POLL_SECONDS": "1",
        "AIRFLOW_VAR_RDS_EXPORT_TARGET": json.dumps(target),
    }


def nightly_conf(world: ExportWorld) -> dict[str, str]:
    return {
        "db_instance_identifier": "orders",
        "s3_bucket_name": world.bucket,
        "iam_role_arn": world.iam_role_arn,
        "kms_key_id": world.kms_key_id,
    }


def exports(world: ExportWorld) -> dict[str, str]:
    """Every export task: identifier -> status."""
    return {t["ExportTaskIdentifier"]: t["Status"].upper() for t in world.control.export_tasks()}


def tonight(world: ExportWorld, day: str = "2024-01-01", **pacing: Any) -> dict[str, Any]:
    """The automated snapshot of ``orders`` taken at 03:00 UTC on ``day``."""
    return dict(
        world.control.create_automated_snapshot(
            "orders", created_at=f"{day}T03:00:00+00:00", **pacing
        )
    )


def start_export(world: ExportWorld, identifier: str, source_arn: str, **pacing: Any) -> None:
    """Start an export outside Airflow (another DAG's, say), paced as given."""
    if pacing:
        world.control.pace_export(identifier, **pacing)
    world.rds_client().start_export_task(
        ExportTaskIdentifier=identifier,
        SourceArn=source_arn,
        S3BucketName=world.bucket,
        S3Prefix="nightly",
        IamRoleArn=world.iam_role_arn,
        KmsKeyId=world.kms_key_id,
    )


def run_nightly(harness: AirflowHarness, world: ExportWorld, **kwargs: Any) -> DagRunResult:
    kwargs.setdefault("logical_date", NIGHT)
    return harness.run_dag(
        NIGHTLY, "nightly_rds_export", env=example_env(world), conf=nightly_conf(world), **kwargs
    )


# --- clearing a night whose export died ----------------------------------------------------


def test_cleared_night_whose_export_failed_exports_again(
    world: ExportWorld, airflow_harness: AirflowHarness
) -> None:
    tonight(world, "2026-11-21")
    world.control.fail_export(NIGHTLY_EXPORT, cause="The S3 bucket policy denies the role.")
    first = run_nightly(airflow_harness, world)
    first.assert_state("failed")
    assert "The S3 bucket policy denies the role." in first.log("wait_for_export")
    assert exports(world) == {NIGHTLY_EXPORT: "FAILED"}

    second = run_nightly(airflow_harness, world)
    second.assert_state("success")
    log = second.log("start_export")
    assert f"Export task {NIGHTLY_EXPORT} already exists" in log and "is FAILED" in log
    assert f"Started export {NIGHTLY_EXPORT}-r2" in log
    assert second.xcom("start_export")["ExportTaskIdentifier"] == f"{NIGHTLY_EXPORT}-r2"
    assert second.task_states["wait_for_export"] == "success"
    assert exports(world) == {NIGHTLY_EXPORT: "FAILED", f"{NIGHTLY_EXPORT}-r2": "COMPLETE"}


def test_cleared_night_whose_export_the_teardown_canceled_exports_again(
    world: ExportWorld, airflow_harness: AirflowHarness
) -> None:
    """The export wait fails while the export runs (a permission change, say); the teardown
    cancels the export; clearing the night exports again under a new identifier."""
    tonight(world, "2026-11-21")
    world.control.pace_export(NIGHTLY_EXPORT, in_progress_polls=1000, canceling_polls=0)
    world.control.refuse(
        "DescribeExportTasks",
        code="AccessDenied",
        message="User: arn:aws:sts::123456789012:assumed-role/airflow/w is not authorized "
        "to perform: rds:DescribeExportTasks",
        status=403,
        count=1,
    )
    first = run_nightly(airflow_harness, world)
    first.assert_state("failed")
    assert "rds:DescribeExportTasks" in first.log("wait_for_export")
    assert first.task_states["cancel_if_unfinished"] == "success"
    # CANCELING until RDS is asked again (the emulator moves on when a describe polls it).
    assert exports(world) in ({NIGHTLY_EXPORT: "CANCELING"}, {NIGHTLY_EXPORT: "CANCELED"})

    second = run_nightly(airflow_harness, world)
    second.assert_state("success")
    assert "is CANCELED" in second.log("start_export") or "is CANCELING" in second.log(
        "start_export"
    )
    assert second.xcom("start_export")["ExportTaskIdentifier"] == f"{NIGHTLY_EXPORT}-r2"
    assert second.task_states["cancel_if_unfinished"] == "skipped"  # r2 is COMPLETE
    after = exports(world)
    assert after.pop(f"{NIGHTLY_EXPORT}-r2") == "COMPLETE"
    assert after in ({NIGHTLY_EXPORT: "CANCELING"}, {NIGHTLY_EXPORT: "CANCELED"})


def test_cleared_night_whose_export_completed_adopts_it(
    world: ExportWorld, airflow_harness: AirflowHarness
) -> None:
    tonight(world, "2026-11-21")
    first = run_nightly(airflow_harness, world)
    first.assert_state("success")
    second = run_nightly(airflow_harness, world)
    second.assert_state("success")
    assert "adopting it as this run's export" in second.log("start_export")
    assert exports(world) == {NIGHTLY_EXPORT: "COMPLETE"}
    assert world.control.calls()["StartExportTask"] == 2  # one start, one refused re-start


START_AND_WAIT = """
RdsStartExportTaskOperator(
    task_id="start",
    export_task_identifier="orders-{{{{ ds_nodash }}}}",
    source_arn={source_arn!r},
    s3_bucket_name={bucket!r},
    s3_prefix="nightly",
    iam_role_arn={role!r},
    kms_key_id={key!r},
    wait_for_completion=True,
    waiter_interval=0.5,
    deferrable={deferrable},
    source_wait_interval=1,
    source_wait_timeout=120,
    {extra}
)
"""


def start_and_wait(world: ExportWorld, source_arn: str, deferrable: bool, extra: str = "") -> str:
    return dag(
        "start_and_wait",
        START_AND_WAIT.format(
            source_arn=source_arn,
            bucket=world.bucket,
            role=world.iam_role_arn,
            key=world.kms_key_id,
            deferrable=deferrable,
            extra=extra,
        ),
    )


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_failed_export_then_cleared_exports_again_with_wait_for_completion(
    world: ExportWorld, airflow_harness: AirflowHarness, deferrable: bool
) -> None:
    arn = tonight(world)["DBSnapshotArn"]
    world.control.fail_export(EXPORT_ID, cause="Export failed: out of space.", after_polls=1)
    source = start_and_wait(world, arn, deferrable)
    first = airflow_harness.run_dag(source, "start_and_wait", env=world.env)
    first.assert_state("failed")
    assert "out of space" in first.log("start")
    second = airflow_harness.rerun(first, source, env=world.env)
    second.assert_state("success")
    assert second.xcom("start")["ExportTaskIdentifier"] == f"{EXPORT_ID}-r2"
    assert second.xcom("start")["S3Uri"].endswith(f"/nightly/{EXPORT_ID}-r2/")
    assert exports(world) == {EXPORT_ID: "FAILED", f"{EXPORT_ID}-r2": "COMPLETE"}


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_if_exists_fail_still_fails_on_a_dead_export(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    arn = tonight(world)["DBSnapshotArn"]
    world.control.fail_export(EXPORT_ID, cause="boom")
    start_export(world, EXPORT_ID, arn)
    result = run_dag(
        start_and_wait(world, arn, deferrable, extra='if_exists="fail",'),
        "start_and_wait",
        env=world.env,
    )
    result.assert_state("failed")
    assert "if_exists='fail' decided to fail" in result.log("start")
    assert len(exports(world)) == 1


# --- backfills pick their own night's snapshot -----------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_backfilled_night_exports_its_own_snapshot(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    """Night D is run after D+1's snapshot exists: D's snapshot is exported, not D+1's."""
    days = ("2026-11-20", "2026-11-21", "2026-11-22")
    snapshots = {day: tonight(world, day) for day in days}
    source = NIGHTLY.replace("deferrable=True,", f"deferrable={deferrable},", 1)
    result = run_dag(
        source,
        "nightly_rds_export",
        env=example_env(world),
        conf=nightly_conf(world),
        logical_date=NIGHT,
    )
    result.assert_state("success")
    snapshot = result.xcom("wait_for_snapshot")
    assert snapshot["DBSnapshotIdentifier"] == "rds:orders-2026-11-21-03-00"
    (task,) = world.control.export_tasks()
    assert task["ExportTaskIdentifier"] == NIGHTLY_EXPORT
    assert task["SourceArn"] == snapshots["2026-11-21"]["DBSnapshotArn"]


# --- automated snapshots by name ------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_automated_snapshot_waited_on_by_name(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    """AWS answers "not found" for an ``rds:`` name without SnapshotType (the emulator
    refuses the call): the sensor must pass it, alone and through the shared poller."""
    snapshot = tonight(world, ready_after_polls=2)
    name = snapshot["DBSnapshotIdentifier"]
    assert name.startswith("rds:")
    body = f"""
RdsSnapshotReadySensor(
    task_id="wait",
    db_snapshot_identifier={name!r},
    poke_interval=0.5,
    deferrable={deferrable},
    on_missing="fail",
)
"""
    result = run_dag(dag("by_name", body), "by_name", env=world.env)
    result.assert_state("success")
    assert result.xcom("wait")["SourceArn"] == snapshot["DBSnapshotArn"]
    arn = snapshot["DBSnapshotArn"]
    by_arn = body.replace(repr(name), repr(arn))
    result = run_dag(dag("by_arn", by_arn), "by_arn", env=world.env)
    result.assert_state("success")


# --- Regions ----------------------------------------------------------------------------------

OTHER_REGION_ARN = "arn:aws:rds:eu-west-1:123456789012:snapshot:orders-snap"


def test_region_mismatch_in_the_dag_file_is_an_import_error(
    world: ExportWorld, airflow_harness: AirflowHarness
) -> None:
    body = START_AND_WAIT.format(
        source_arn=OTHER_REGION_ARN,
        bucket=world.bucket,
        role=world.iam_role_arn,
        key=world.kms_key_id,
        deferrable=False,
        extra='region_name="us-east-1",',
    )
    errors = airflow_harness.dag_import_errors(dag("region_literal", body), env=world.env)
    assert "eu-west-1" in errors and "us-east-1" in errors
    assert "region_name" in errors


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_region_mismatch_after_rendering_fails_before_any_aws_call(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    """The connection is in us-east-1; the templated source is a eu-west-1 snapshot."""
    templated = "{{ 'arn:aws:rds:eu-west-1:123456789012:snapshot:orders-snap' }}"
    result = run_dag(start_and_wait(world, templated, deferrable), "start_and_wait", env=world.env)
    result.assert_state("failed")
    log = result.log("start")
    assert "Region 'eu-west-1'" in log and "Region 'us-east-1'" in log
    assert world.control.calls() == {}


# --- two exports of one snapshot --------------------------------------------------------------


def test_nightly_and_fleet_on_one_night_take_turns_on_the_snapshot(
    world: ExportWorld, run_dag: RunDag
) -> None:
    """nightly_rds_export's export of tonight's ``orders`` snapshot is still running when
    fleet_rds_export starts its own: AWS refuses a second concurrent export of a snapshot,
    so the fleet waits (deferred) for the nightly one to end, then starts: no hot loop."""
    snapshot = tonight(world, "2026-11-21")
    # Paced by the clock: the nightly export moves on whether or not anyone looks at it.
    start_export(
        world,
        NIGHTLY_EXPORT,
        snapshot["DBSnapshotArn"],
        starting_seconds=1,
        in_progress_seconds=5,
    )
    world.control.reset_calls()
    result = run_dag(
        FLEET,
        "fleet_rds_export",
        env=example_env(world),
        conf={"sources": [{"db_instance_identifier": "orders"}]},
        logical_date=NIGHT,
    )
    result.assert_state("success")
    log = result.log("start_and_wait", map_index=0)
    assert f"export {NIGHTLY_EXPORT} of the same source is still running" in log
    assert exports(world) == {NIGHTLY_EXPORT: "COMPLETE", "fleet-orders-20261121": "COMPLETE"}
    calls = world.control.calls()
    assert calls["StartExportTask"] == 2, calls  # refused once, then started
    # The nightly export was watched every second for about 6 s, the fleet's for its run.
    assert calls["DescribeExportTasks"] <= 30, calls


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_busy_snapshot_is_retried_no_faster_than_the_source_wait_interval(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    snapshot = tonight(world)
    other = "someone-elses-export"
    start_export(world, other, snapshot["DBSnapshotArn"], starting_seconds=1, in_progress_seconds=4)
    world.control.reset_calls()
    result = run_dag(
        start_and_wait(world, snapshot["DBSnapshotArn"], deferrable),
        "start_and_wait",
        env=world.env,
    )
    result.assert_state("success")
    assert f"export {other} of the same source is still running" in result.log("start")
    starts = world.control.calls()["StartExportTask"]
    seconds = result.duration
    # source_wait_interval=1: at most one try per second of the run, plus the first.
    assert 2 <= starts <= seconds + 1, (starts, seconds)
    if deferrable:
        assert starts == 2  # deferred on the other export itself: one refusal, one start


# --- a live Aurora cluster as the source --------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_live_cluster_exports_once_it_is_available(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    cluster = world.control.create_db_cluster("analytics")
    world.control.set_cluster_status("analytics", "modifying")
    world.control.reset_calls()

    def available_after_the_first_refusal() -> None:
        deadline = time.monotonic() + 60
        while not world.control.calls().get("StartExportTask") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)
        world.control.set_cluster_status("analytics", "available")

    flip = threading.Thread(target=available_after_the_first_refusal)
    flip.start()
    try:
        result = run_dag(
            start_and_wait(world, cluster["DBClusterArn"], deferrable),
            "start_and_wait",
            env=world.env,
        )
    finally:
        flip.join()
    result.assert_state("success")
    assert "source snapshot is not available yet" in result.log("start")
    (task,) = world.control.export_tasks()
    assert task["SourceArn"] == cluster["DBClusterArn"]
    assert task["SourceType"] == "CLUSTER"
    assert task["Status"].upper() == "COMPLETE"


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_missing_cluster_fails_at_once_with_the_remedy(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    arn = "arn:aws:rds:us-east-1:123456789012:cluster:nowhere"
    result = run_dag(start_and_wait(world, arn, deferrable), "start_and_wait", env=world.env)
    result.assert_state("failed")
    log = result.log("start")
    assert "DBClusterNotFoundFault" in log and "the source DB cluster does not exist" in log
    assert result.tries("start") == 1
    assert world.control.calls()["StartExportTask"] == 1


# --- export statuses AWS might add, or leave out ---------------------------------------------

EXPORT_WAIT = """
RdsExportTaskStateSensor(
    task_id="wait",
    export_task_identifier="orders-20240101",
    poke_interval=0.5,
    deferrable={deferrable},
    timeout=60,
)
"""


def started_export(world: ExportWorld, **pacing: Any) -> None:
    start_export(world, EXPORT_ID, tonight(world)["DBSnapshotArn"], **pacing)


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_an_unknown_status_is_warned_about_once_and_waited_on(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    started_export(world, starting_polls=0, in_progress_polls=0)
    world.control.set_export_status_override(EXPORT_ID, "VALIDATING", polls=4)
    result = run_dag(
        dag("unknown_status", EXPORT_WAIT.format(deferrable=deferrable)),
        "unknown_status",
        env=world.env,
    )
    result.assert_state("success")
    log = result.log("wait")
    assert "'VALIDATING', which this package does not know" in log
    if deferrable:  # once on the worker's first check, once in the trigger: not per poll
        assert log.count("which this package does not know (AWS may have added one)") == 2


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_description_without_status_fails_showing_it(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    started_export(world, starting_polls=0, in_progress_polls=0)
    world.control.set_export_status_override(EXPORT_ID, None)
    result = run_dag(
        dag("no_status", EXPORT_WAIT.format(deferrable=deferrable)), "no_status", env=world.env
    )
    result.assert_state("failed")
    log = result.log("wait")
    assert "AWS returned a description without a Status" in log
    assert f"'ExportTaskIdentifier': '{EXPORT_ID}'" in log
