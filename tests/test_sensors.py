"""The sensors, run by Airflow (``airflow dags test``) against the emulator server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import ExportWorld
from scenarios import dag

from airflow_rds_export.testing.airflow_runs import DagRunResult

RunDag = Callable[..., DagRunResult]


# --- RdsSnapshotReadySensor -----------------------------------------------------------


def test_snapshot_creating_then_available_succeeds_with_source_arn(
    world: ExportWorld, run_dag: RunDag
) -> None:
    snapshot = world.control.create_db_snapshot(
        "orders-manual", db_instance_identifier="orders", ready_after_polls=3
    )
    result = run_dag(
        dag(
            "snapshot_ready",
            'RdsSnapshotReadySensor(task_id="wait", db_snapshot_identifier="orders-manual",'
            " poke_interval=1)",
        ),
        "snapshot_ready",
        env=world.env,
    )
    result.assert_state("success")
    assert result.task_states["wait"] == "success"
    assert result.reschedules("wait") == 3
    xcom = result.xcom("wait")
    assert xcom["SourceArn"] == snapshot["DBSnapshotArn"]
    assert xcom["Status"] == "available"
    log = result.log("wait")
    assert "Snapshot orders-manual is 'creating', not available yet; waiting" in log
    assert "Snapshot orders-manual is available" in log


def test_the_nights_own_snapshot_even_when_a_later_one_is_ready(
    world: ExportWorld, run_dag: RunDag
) -> None:
    """Backfilling night D while D-1's and D+1's snapshots exist: D's is picked, and
    waited for, although D+1's is already available (the newest would be the wrong day)."""
    tonight = world.control.create_automated_snapshot(
        "orders", created_at="2024-01-01T03:00:00+00:00", ready_after_polls=2
    )
    old = world.control.create_automated_snapshot("orders", created_at="2023-12-31T03:00:00+00:00")
    later = world.control.create_automated_snapshot(
        "orders", created_at="2024-01-02T03:00:00+00:00"
    )
    result = run_dag(
        dag(
            "latest_snapshot",
            """
RdsSnapshotReadySensor(
    task_id="wait",
    db_instance_identifier="orders",
    created_after="{{ logical_date }}",
    created_before="{{ logical_date + macros.timedelta(days=1) }}",
    poke_interval=1,
)
""",
        ),
        "latest_snapshot",
        env=world.env,
    )
    result.assert_state("success")
    xcom = result.xcom("wait")
    assert xcom["DBSnapshotIdentifier"] == "rds:orders-2024-01-01-03-00"
    assert xcom["SourceArn"] == tonight["DBSnapshotArn"]
    assert xcom["SourceArn"] not in (old["DBSnapshotArn"], later["DBSnapshotArn"])
    assert xcom["SnapshotType"] == "automated"
    assert result.reschedules("wait") == 2


def test_cluster_snapshot_by_name(world: ExportWorld, run_dag: RunDag) -> None:
    world.control.create_db_cluster("analytics")
    snapshot = world.control.create_db_cluster_snapshot(
        "analytics-snap", db_cluster_identifier="analytics", ready_after_polls=1
    )
    result = run_dag(
        dag(
            "cluster_snapshot",
            'RdsSnapshotReadySensor(task_id="wait", db_snapshot_identifier="analytics-snap",'
            ' db_type="cluster", poke_interval=1)',
        ),
        "cluster_snapshot",
        env=world.env,
    )
    result.assert_state("success")
    assert result.xcom("wait")["SourceArn"] == snapshot["DBClusterSnapshotArn"]


@pytest.mark.parametrize(("on_failure", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_failed_snapshot_follows_on_failure(
    world: ExportWorld, run_dag: RunDag, on_failure: str, state: str
) -> None:
    world.control.create_db_snapshot("orders-broken", db_instance_identifier="orders")
    world.control.set_snapshot_status("orders-broken", "failed")
    result = run_dag(
        dag(
            "snapshot_failed",
            f'RdsSnapshotReadySensor(task_id="wait", db_snapshot_identifier="orders-broken",'
            f" on_failure={on_failure!r}, poke_interval=1, retries=2)",
        ),
        "snapshot_failed",
        env=world.env,
    )
    assert result.task_states["wait"] == state
    assert result.tries("wait") == 1  # a decided failure is not retried
    assert (
        f"Snapshot orders-broken: AWS reports status 'failed'; on_failure={on_failure!r} "
        f"decided to {on_failure}. To do: take a new snapshot" in result.log("wait")
    )


@pytest.mark.parametrize(("on_missing", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_missing_snapshot_follows_on_missing(
    world: ExportWorld, run_dag: RunDag, on_missing: str, state: str
) -> None:
    result = run_dag(
        dag(
            "snapshot_missing",
            f'RdsSnapshotReadySensor(task_id="wait", db_snapshot_identifier="nope",'
            f" on_missing={on_missing!r}, poke_interval=1)",
        ),
        "snapshot_missing",
        env=world.env,
    )
    assert result.task_states["wait"] == state
    assert f"Snapshot nope: AWS reports it does not exist; on_missing={on_missing!r}" in (
        result.log("wait")
    )


def test_missing_snapshot_keeps_waiting_by_default_until_timeout(
    world: ExportWorld, run_dag: RunDag
) -> None:
    result = run_dag(
        dag(
            "snapshot_never",
            'RdsSnapshotReadySensor(task_id="wait", db_snapshot_identifier="later",'
            " poke_interval=1, timeout=3)",
        ),
        "snapshot_never",
        env=world.env,
    )
    assert result.task_states["wait"] == "failed"
    assert result.reschedules("wait") >= 2
    log = result.log("wait")
    assert "on_missing='reschedule' decided to keep waiting" in log
    assert "Sensor has timed out" in log


# --- RdsExportTaskStateSensor ---------------------------------------------------------


def _start_export(world: ExportWorld, identifier: str) -> None:
    """Start an export directly through boto3 against the emulator."""
    snapshot = world.control.create_db_snapshot(
        f"{identifier}-snap", db_instance_identifier="orders"
    )
    client = world.rds_client()
    client.start_export_task(
        ExportTaskIdentifier=identifier,
        SourceArn=snapshot["DBSnapshotArn"],
        S3BucketName=world.bucket,
        S3Prefix="nightly",
        IamRoleArn=world.iam_role_arn,
        KmsKeyId=world.kms_key_id,
    )


def test_export_in_progress_then_complete_succeeds_with_s3_uri(
    world: ExportWorld, run_dag: RunDag
) -> None:
    world.control.pace_export("orders-1", starting_polls=1, in_progress_polls=3)
    _start_export(world, "orders-1")
    result = run_dag(
        dag(
            "export_state",
            'RdsExportTaskStateSensor(task_id="wait", export_task_identifier="orders-1",'
            " poke_interval=1)",
        ),
        "export_state",
        env=world.env,
    )
    result.assert_state("success")
    xcom = result.xcom("wait")
    assert xcom["S3Uri"] == "s3://rds-exports/nightly/orders-1/"
    assert xcom["Status"].upper() == "COMPLETE"
    log = result.log("wait")
    assert "Export orders-1 is IN_PROGRESS: 25% done" in log
    assert "Export task orders-1 is complete" in log
    assert result.reschedules("wait") == 4  # STARTING, 3x IN_PROGRESS


@pytest.mark.parametrize(("on_failure", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_failed_export_reports_failure_cause(
    world: ExportWorld, run_dag: RunDag, on_failure: str, state: str
) -> None:
    world.control.fail_export("orders-2", cause="S3 bucket policy denies access", after_polls=1)
    _start_export(world, "orders-2")
    result = run_dag(
        dag(
            "export_failed",
            'RdsExportTaskStateSensor(task_id="wait", export_task_identifier="orders-2",'
            f" on_failure={on_failure!r}, poke_interval=1, retries=2)",
        ),
        "export_failed",
        env=world.env,
    )
    assert result.task_states["wait"] == state
    assert result.tries("wait") == 1
    assert (
        "Export task orders-2: AWS reports status FAILED (S3 bucket policy denies access); "
        f"on_failure={on_failure!r} decided to {on_failure}" in result.log("wait")
    )


def test_templated_bad_identifier_fails_before_any_aws_call(
    world: ExportWorld, run_dag: RunDag
) -> None:
    result = run_dag(
        dag(
            "export_bad_template",
            'RdsExportTaskStateSensor(task_id="wait", '
            "export_task_identifier=\"{{ dag_run.conf.get('id', 'bad_id--') }}\","
            " poke_interval=1, retries=2)",
        ),
        "export_bad_template",
        env=world.env,
    )
    assert result.task_states["wait"] == "failed"
    assert result.tries("wait") == 1
    assert "export_task_identifier='bad_id--' is invalid" in result.log("wait")
    assert world.control.calls() == {}


def test_export_wait_started_and_ended_in_the_triggerer(
    world: ExportWorld, run_dag: RunDag
) -> None:
    world.control.pace_export("orders-3", starting_polls=1, in_progress_polls=2)
    _start_export(world, "orders-3")
    result = run_dag(
        dag(
            "export_state_triggerer",
            'RdsExportTaskStateSensor(task_id="wait", export_task_identifier="orders-{{ 1 + 2 }}",'
            " poke_interval=0.2, deferrable=True, start_from_trigger=True,"
            " end_from_trigger=True)",
        ),
        "export_state_triggerer",
        env=world.env,
    )
    result.assert_state("success")
    assert "running trigger in line" in result.stdout
    assert "Export task orders-3 is complete" in result.stdout
    assert result.reschedules("wait") == 0


# --- The Amazon provider's names: RdsSnapshotExistenceSensor, RdsExportTaskExistenceSensor --


def test_export_existence_sensor_waits_for_existence_as_the_official_one(
    world: ExportWorld, run_dag: RunDag
) -> None:
    """Official defaults: any status but FAILED ends the wait, so an export still
    STARTING is enough; a missing one keeps the wait going (poke mode, as there)."""
    world.control.pace_export("orders-4", starting_polls=50)
    _start_export(world, "orders-4")
    result = run_dag(
        dag(
            "export_exists",
            'RdsExportTaskExistenceSensor(task_id="exists", export_task_identifier="orders-4",'
            ' poke_interval=1, hook_params={"region_name": "us-east-1"})\n'
            'RdsExportTaskExistenceSensor(task_id="absent", export_task_identifier="orders-9",'
            " poke_interval=0.5, timeout=2)",
        ),
        "export_exists",
        env=world.env,
    )
    assert result.task_states["exists"] == "success"
    assert result.xcom("exists")["Status"].upper() == "STARTING"
    assert result.reschedules("exists") == 0
    assert result.task_states["absent"] == "failed"
    assert result.reschedules("absent") == 0  # poke mode: the official default
    assert "Sensor has timed out" in result.log("absent")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_export_existence_sensor_fails_on_failed_with_the_cause(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    world.control.fail_export("orders-5", cause="The IAM role lacks s3:PutObject", after_polls=1)
    _start_export(world, "orders-5")
    result = run_dag(
        dag(
            "export_exists_failed",
            'RdsExportTaskExistenceSensor(task_id="exists", export_task_identifier="orders-5",'
            f' target_statuses=["complete"], poke_interval=0.5, deferrable={deferrable})',
        ),
        "export_exists_failed",
        env=world.env,
    )
    assert result.task_states["exists"] == "failed"
    assert "AWS reports status FAILED (The IAM role lacks s3:PutObject)" in result.log("exists")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_snapshot_existence_sensor_soft_fail_skips_a_broken_snapshot(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    """``soft_fail`` keeps its official meaning on every path: a failure becomes a skip."""
    world.control.create_db_snapshot("orders-gone", db_instance_identifier="orders")
    world.control.set_snapshot_status("orders-gone", "failed")
    result = run_dag(
        dag(
            "snapshot_exists_soft",
            'RdsSnapshotExistenceSensor(task_id="exists", db_type="instance",'
            ' db_snapshot_identifier="orders-gone", target_statuses=["available"],'
            f" soft_fail=True, poke_interval=0.5, deferrable={deferrable})",
        ),
        "snapshot_exists_soft",
        env=world.env,
    )
    assert result.task_states["exists"] == "skipped"
    assert "AWS reports status 'failed'" in result.log("exists")


def test_snapshot_existence_sensor_accepts_other_target_statuses(
    world: ExportWorld, run_dag: RunDag
) -> None:
    world.control.create_db_snapshot(
        "orders-soon", db_instance_identifier="orders", ready_after_polls=50
    )
    result = run_dag(
        dag(
            "snapshot_exists_creating",
            'RdsSnapshotExistenceSensor(task_id="exists", db_type="instance",'
            ' db_snapshot_identifier="orders-soon", target_statuses=["creating", "available"],'
            " poke_interval=0.5)",
        ),
        "snapshot_exists_creating",
        env=world.env,
    )
    assert result.task_states["exists"] == "success"
    assert result.xcom("exists")["Status"] == "creating"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('db_type="database", db_snapshot_identifier="s"', "db_type='database' is invalid"),
        (
            'db_type="instance", db_snapshot_identifier="s", target_statuses=["ready"]',
            "unknown status 'ready'",
        ),
        (
            'db_type="instance", db_snapshot_identifier="s", hook_params={"retries": 3}',
            "hook_params={'retries': 3} is invalid: unknown key(s) ['retries']",
        ),
    ],
)
def test_official_sensor_arguments_are_checked_when_the_dag_is_parsed(
    dag_import_errors: Callable[..., str], arguments: str, message: str
) -> None:
    errors = dag_import_errors(
        dag("snapshot_exists_bad", f'RdsSnapshotExistenceSensor(task_id="x", {arguments})')
    )
    assert message in errors
