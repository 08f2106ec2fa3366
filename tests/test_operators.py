"""The operators, run by Airflow (``airflow dags test``) against the emulator server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import ExportWorld
from scenarios import dag

from airflow_rds_export.testing.airflow_runs import AirflowHarness, DagRunResult

RunDag = Callable[..., DagRunResult]


def start_task(world: ExportWorld, source_arn: str, **extra: Any) -> str:
    """Source of a start operator with the world's bucket, role and key."""
    arguments = {
        "task_id": "start",
        "export_task_identifier": "orders-20240101",
        "source_arn": source_arn,
        "s3_bucket_name": world.bucket,
        "s3_prefix": "nightly",
        "iam_role_arn": world.iam_role_arn,
        "kms_key_id": world.kms_key_id,
        **extra,
    }
    rendered = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    return f"RdsStartExportTaskOperator({rendered})"


def snapshot_arn(world: ExportWorld, name: str = "orders-snap", **pacing: Any) -> str:
    snapshot = world.control.create_db_snapshot(name, db_instance_identifier="orders", **pacing)
    return str(snapshot["DBSnapshotArn"])


# --- RdsStartExportTaskOperator -------------------------------------------------------


def test_start_while_snapshot_creating_reschedules_then_starts_once(
    world: ExportWorld, run_dag: RunDag
) -> None:
    run_dag(dag("warm_up", "pass"), "warm_up")  # so the pacing below is not spent on start-up
    # StartExportTask does not describe the snapshot, so it is paced in seconds here.
    timed_arn = snapshot_arn(world, ready_after_seconds=3)
    result = run_dag(
        dag(
            "start_creating",
            start_task(world, timed_arn, wait_for_completion=False, source_wait_interval=1),
        ),
        "start_creating",
        env=world.env,
    )
    result.assert_state("success")
    assert result.reschedules("start") >= 1
    log = result.log("start")
    assert "because the source snapshot is not available yet (InvalidExportSourceState" in log
    assert "on_invalid_state='reschedule' decided to wait and try again" in log
    assert "Started export orders-20240101" in log
    tasks = world.control.export_tasks()
    assert [t["ExportTaskIdentifier"] for t in tasks] == ["orders-20240101"]
    assert world.control.calls()["StartExportTask"] == result.reschedules("start") + 1
    assert result.xcom("start")["S3Uri"] == "s3://rds-exports/nightly/orders-20240101/"


@pytest.mark.parametrize(("policy", "state"), [("skip", "skipped"), ("fail", "failed")])
def test_start_while_snapshot_creating_skip_or_fail(
    world: ExportWorld, run_dag: RunDag, policy: str, state: str
) -> None:
    arn = snapshot_arn(world, ready_after_polls=50)
    result = run_dag(
        dag(
            "start_creating_policy",
            start_task(world, arn, on_invalid_state=policy, retries=2),
        ),
        "start_creating_policy",
        env=world.env,
    )
    assert result.task_states["start"] == state
    assert result.tries("start") == 1
    assert f"on_invalid_state={policy!r} decided to {policy}" in result.log("start")
    assert world.control.export_tasks() == []


def test_start_gives_up_after_source_wait_timeout(world: ExportWorld, run_dag: RunDag) -> None:
    arn = snapshot_arn(world, ready_after_seconds=600)
    result = run_dag(
        dag(
            "start_timeout",
            start_task(world, arn, source_wait_interval=1, source_wait_timeout=3),
        ),
        "start_timeout",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert "gave up after source_wait_timeout=3 s" in result.log("start")
    assert world.control.export_tasks() == []


def test_rerun_with_same_identifier_and_source_adopts(
    world: ExportWorld, airflow_harness: AirflowHarness
) -> None:
    arn = snapshot_arn(world)
    source = dag("start_rerun", start_task(world, arn, wait_for_completion=False))
    first = airflow_harness.run_dag(source, "start_rerun", env=world.env)
    first.assert_state("success")
    second = airflow_harness.rerun(first, source, env=world.env)
    second.assert_state("success")
    assert "adopting it as this run's export instead of starting a second one" in second.log(
        "start"
    )
    assert len(world.control.export_tasks()) == 1
    assert second.xcom("start")["S3Uri"] == first.xcom("start")["S3Uri"]


def test_same_identifier_with_other_source_fails_naming_both(
    world: ExportWorld, run_dag: RunDag
) -> None:
    first_arn = snapshot_arn(world, "orders-a")
    other_arn = snapshot_arn(world, "orders-b")
    run_dag(
        dag("start_first", start_task(world, first_arn, wait_for_completion=False)),
        "start_first",
        env=world.env,
    ).assert_state("success")
    result = run_dag(
        dag("start_other", start_task(world, other_arn, wait_for_completion=False, retries=2)),
        "start_other",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert result.tries("start") == 1
    log = result.log("start")
    assert f"existing source={first_arn}" in log
    assert f"this task's source={other_arn}" in log
    assert len(world.control.export_tasks()) == 1


def test_if_exists_fail(world: ExportWorld, run_dag: RunDag) -> None:
    arn = snapshot_arn(world)
    body = start_task(world, arn, wait_for_completion=False, if_exists="fail")
    run_dag(dag("start_once", body), "start_once", env=world.env).assert_state("success")
    result = run_dag(dag("start_twice", body), "start_twice", env=world.env)
    assert result.task_states["start"] == "failed"
    assert "if_exists='fail' decided to fail" in result.log("start")


def test_wait_for_completion_logs_progress_and_returns_s3_uri(
    world: ExportWorld, run_dag: RunDag
) -> None:
    arn = snapshot_arn(world)
    world.control.pace_export("orders-20240101", starting_polls=1, in_progress_polls=3)
    result = run_dag(
        dag("start_wait", start_task(world, arn, waiter_interval=0.2)),
        "start_wait",
        env=world.env,
    )
    result.assert_state("success")
    log = result.log("start")
    for percent in (25, 50, 75):
        assert f"Export orders-20240101 is IN_PROGRESS: {percent}% done" in log
    xcom = result.xcom("start")
    assert xcom["Status"].upper() == "COMPLETE"
    assert xcom["S3Uri"] == "s3://rds-exports/nightly/orders-20240101/"


def test_wait_for_completion_fails_with_failure_cause(world: ExportWorld, run_dag: RunDag) -> None:
    arn = snapshot_arn(world)
    world.control.fail_export("orders-20240101", cause="KMS key disabled mid-export")
    result = run_dag(
        dag("start_wait_failed", start_task(world, arn, waiter_interval=0.2, retries=2)),
        "start_wait_failed",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert result.tries("start") == 1
    assert "AWS reports status FAILED (KMS key disabled mid-export)" in result.log("start")


def test_wait_for_completion_gives_up_after_max_attempts(
    world: ExportWorld, run_dag: RunDag
) -> None:
    arn = snapshot_arn(world)
    world.control.pace_export("orders-20240101", starting_polls=100)
    result = run_dag(
        dag(
            "start_wait_attempts",
            start_task(world, arn, waiter_interval=0.1, waiter_max_attempts=3),
        ),
        "start_wait_attempts",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert "still not COMPLETE after 3 checks" in result.log("start")
    assert world.control.calls()["DescribeExportTasks"] == 3


def test_wait_for_completion_deferred(world: ExportWorld, run_dag: RunDag) -> None:
    arn = snapshot_arn(world)
    world.control.pace_export("orders-20240101", starting_polls=1, in_progress_polls=2)
    result = run_dag(
        dag(
            "start_deferred",
            start_task(world, arn, waiter_interval=0.2, deferrable=True),
        ),
        "start_deferred",
        env=world.env,
    )
    result.assert_state("success")
    assert "running trigger in line" in result.stdout
    assert "Export orders-20240101 is IN_PROGRESS: 33% done" in result.stdout
    assert result.xcom("start")["S3Uri"] == "s3://rds-exports/nightly/orders-20240101/"


@pytest.mark.parametrize(
    ("override", "code", "remedy"),
    [
        (
            {"iam_role_arn": "arn:aws:iam::123456789012:role/missing-role"},
            "IamRoleNotFound",
            "create it (trusted by export.rds.amazonaws.com)",
        ),
        (
            {"kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/0000-missing"},
            "KMSKeyNotAccessibleFault",
            "key policy lets the Airflow connection's identity call kms:CreateGrant",
        ),
        ({"s3_bucket_name": "no-such-bucket"}, "InvalidS3BucketFault", "create it in this Region"),
    ],
)
def test_configuration_errors_fail_at_once_with_remedy(
    world: ExportWorld, run_dag: RunDag, override: dict[str, str], code: str, remedy: str
) -> None:
    arn = snapshot_arn(world)
    result = run_dag(
        dag("start_misconfigured", start_task(world, arn, retries=3, **override)),
        "start_misconfigured",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert result.tries("start") == 1
    log = result.log("start")
    assert f"AWS refused the call ({code}:" in log
    assert "permanent configuration error, not retried" in log
    assert remedy in log
    assert world.control.calls()["StartExportTask"] == 1


def test_templated_bad_prefix_fails_before_any_aws_call(
    world: ExportWorld, run_dag: RunDag
) -> None:
    arn = snapshot_arn(world)
    world.control.reset_calls()
    result = run_dag(
        dag("start_bad_prefix", start_task(world, arn, s3_prefix="{{ ds_nodash }}/", retries=2)),
        "start_bad_prefix",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert result.tries("start") == 1
    assert "s3_prefix='20240101/' is invalid: must not end with '/'" in result.log("start")
    assert world.control.calls() == {}


def test_invalid_identifier_in_dag_file_is_an_import_error(
    world: ExportWorld, dag_import_errors: Callable[..., str]
) -> None:
    errors = dag_import_errors(
        dag(
            "bad_identifier",
            start_task(world, "arn:aws:rds:us-east-1:123456789012:snapshot:s", task_id="s").replace(
                "orders-20240101", "orders_2024--01"
            ),
        )
    )
    assert "export_task_identifier='orders_2024--01' is invalid" in errors
    assert "two consecutive hyphens" in errors


# --- RdsCancelExportTaskOperator ------------------------------------------------------


def _export(world: ExportWorld, identifier: str, **pacing: Any) -> None:
    """An export started through the emulator's own S3/IAM/KMS-checked API."""
    if pacing:
        world.control.pace_export(identifier, **pacing)
    client = world.rds_client()
    client.start_export_task(
        ExportTaskIdentifier=identifier,
        SourceArn=snapshot_arn(world, f"{identifier}-snap"),
        S3BucketName=world.bucket,
        IamRoleArn=world.iam_role_arn,
        KmsKeyId=world.kms_key_id,
    )
    for _ in range(10):  # poll it forward to the wanted state
        status = client.describe_export_tasks(ExportTaskIdentifier=identifier)["ExportTasks"][0]
        if status["Status"].upper() in ("IN_PROGRESS", "COMPLETE"):
            break


def cancel_task(identifier: str, **extra: Any) -> str:
    arguments = {"task_id": "cancel", "export_task_identifier": identifier, **extra}
    return (
        "RdsCancelExportTaskOperator("
        + ", ".join(f"{name}={value!r}" for name, value in arguments.items())
        + ")"
    )


def test_cancel_of_complete_export_skips_with_status(world: ExportWorld, run_dag: RunDag) -> None:
    _export(world, "done-1", starting_polls=0, in_progress_polls=0)
    assert world.control.export_tasks()[0]["Status"] == "COMPLETE"
    result = run_dag(dag("cancel_done", cancel_task("done-1")), "cancel_done", env=world.env)
    assert result.task_states["cancel"] == "skipped"
    assert (
        "Export task done-1: AWS reports status COMPLETE, which cannot be canceled; "
        "on_invalid_state='skip' decided to skip. Nothing to do: the export already finished"
    ) in result.log("cancel")
    assert "CancelExportTask" not in world.control.calls()


def test_cancel_of_complete_export_fails_when_asked(world: ExportWorld, run_dag: RunDag) -> None:
    _export(world, "done-2", starting_polls=0, in_progress_polls=0)
    result = run_dag(
        dag("cancel_done_fail", cancel_task("done-2", on_invalid_state="fail", retries=2)),
        "cancel_done_fail",
        env=world.env,
    )
    assert result.task_states["cancel"] == "failed"
    assert result.tries("cancel") == 1
    assert "status COMPLETE, which cannot be canceled" in result.log("cancel")


def test_cancel_of_in_progress_export_waits_for_canceled(
    world: ExportWorld, run_dag: RunDag
) -> None:
    _export(world, "running-1", starting_polls=0, in_progress_polls=50)
    result = run_dag(
        dag("cancel_running", cancel_task("running-1", check_interval=0.2)),
        "cancel_running",
        env=world.env,
    )
    result.assert_state("success")
    assert result.xcom("cancel")["Status"].upper() == "CANCELED"
    assert "Asked AWS to cancel export running-1; it is CANCELING" in result.log("cancel")
    assert world.control.calls()["CancelExportTask"] == 1


def test_cancel_of_in_progress_export_deferred(world: ExportWorld, run_dag: RunDag) -> None:
    _export(world, "running-2", starting_polls=0, in_progress_polls=50)
    result = run_dag(
        dag("cancel_deferred", cancel_task("running-2", check_interval=0.2, deferrable=True)),
        "cancel_deferred",
        env=world.env,
    )
    result.assert_state("success")
    assert "running trigger in line" in result.stdout
    assert result.xcom("cancel")["Status"].upper() == "CANCELED"


def test_cancel_of_canceling_export_succeeds_without_second_cancel(
    world: ExportWorld, run_dag: RunDag
) -> None:
    _export(world, "running-3", starting_polls=0, in_progress_polls=50)
    world.control.pace_export("running-3", canceling_polls=3)
    world.rds_client().cancel_export_task(ExportTaskIdentifier="running-3")
    world.control.reset_calls()
    result = run_dag(
        dag("cancel_canceling", cancel_task("running-3", check_interval=0.2)),
        "cancel_canceling",
        env=world.env,
    )
    result.assert_state("success")
    assert "Export task running-3 is already CANCELING" in result.log("cancel")
    assert "CancelExportTask" not in world.control.calls()
    assert result.xcom("cancel")["Status"].upper() == "CANCELED"


@pytest.mark.parametrize(("on_missing", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_cancel_of_missing_export_follows_on_missing(
    world: ExportWorld, run_dag: RunDag, on_missing: str, state: str
) -> None:
    result = run_dag(
        dag("cancel_missing", cancel_task("never-started", on_missing=on_missing, retries=2)),
        "cancel_missing",
        env=world.env,
    )
    assert result.task_states["cancel"] == state
    assert result.tries("cancel") == 1
    assert (
        "Export task never-started: AWS reports it does not exist, nothing to cancel; "
        f"on_missing={on_missing!r} decided to {on_missing}" in result.log("cancel")
    )


def test_killed_while_waiting_cancels_its_export(world: ExportWorld, run_dag: RunDag) -> None:
    arn = snapshot_arn(world)
    world.control.pace_export("orders-20240101", starting_polls=1000)
    result = run_dag(
        dag(
            "start_killed",
            start_task(world, arn, waiter_interval=0.2, execution_timeout="@TIMEOUT@").replace(
                "'@TIMEOUT@'", "timedelta(seconds=3)"
            ),
        ),
        "start_killed",
        env=world.env,
    )
    assert result.task_states["start"] == "failed"
    assert "Task killed: canceled export orders-20240101, which it was waiting for" in (
        result.log("start")
    )
    assert world.control.calls()["CancelExportTask"] == 1
    assert world.control.export_tasks()[0]["Status"] in ("CANCELING", "CANCELED")


def test_start_while_snapshot_creating_defers_then_starts_once(
    world: ExportWorld, run_dag: RunDag
) -> None:
    arn = snapshot_arn(world, ready_after_polls=3)
    result = run_dag(
        dag(
            "start_source_deferred",
            start_task(
                world,
                arn,
                deferrable=True,
                wait_for_completion=False,
                source_wait_interval=0.2,
            ),
        ),
        "start_source_deferred",
        env=world.env,
    )
    result.assert_state("success")
    assert result.reschedules("start") == 0
    assert "running trigger in line" in result.stdout
    assert "Snapshot orders-snap is 'creating', not available yet; waiting" in result.stdout
    assert [t["ExportTaskIdentifier"] for t in world.control.export_tasks()] == ["orders-20240101"]
    assert world.control.calls()["StartExportTask"] == 2  # refused once, then started
