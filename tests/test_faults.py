"""Faults AWS and Airflow really produce: every wait and start still reaches the right end.

Each scenario runs a full export DAG (snapshot wait, start, export wait, clean-up cancel)
through ``airflow dags test`` against the emulator server with a fault switched on, then
checks the outcome and that exactly one export exists: nothing lost, nothing doubled.
The session's summary ("faults and bad input") sums what these tests did.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ExportWorld, Ledger
from scenarios import EXPECTED, lifecycle

from airflow_rds_export.testing.airflow_runs import AirflowHarness, DagRunResult

RunDag = Callable[..., DagRunResult]


def check_outcome(world: ExportWorld, result: DagRunResult, ledger: Ledger) -> None:
    """Right end for every task; exactly one export of the snapshot; no stray traceback."""
    ledger.dag_runs += 1
    exports = world.control.export_tasks()
    ledger.exports_started += len(exports)
    per_source = Counter(task["SourceArn"] for task in exports)
    ledger.exports_doubled += sum(count - 1 for count in per_source.values())
    ledger.exports_lost += int(not exports)
    tracebacks = result.stdout.count("Traceback (most recent call last)")
    ledger.unhandled_tracebacks += tracebacks
    assert result.task_states == EXPECTED, result.stdout[-3000:]
    assert [task["ExportTaskIdentifier"] for task in exports] == ["orders-20240101"]
    assert result.xcom("wait_for_export")["S3Uri"] == "s3://rds-exports/nightly/orders-20240101/"
    assert tracebacks == 0


@pytest.fixture
def paced_world(world: ExportWorld) -> ExportWorld:
    """A snapshot that is creating for 2 polls and an export that takes 4 polls."""
    world.control.create_db_snapshot(
        "orders-snap", db_instance_identifier="orders", ready_after_polls=2
    )
    world.control.pace_export("orders-20240101", starting_polls=1, in_progress_polls=3)
    return world


SCENARIOS: dict[str, tuple[Callable[[Any], None], dict[str, Any]]] = {
    # Half of all RDS calls answer Throttling "Rate exceeded" for a minute.
    "throttle-half-for-a-minute": (
        lambda control: control.throttle(operation="*", fraction=0.5, seconds=60),
        {},
    ),
    # A burst of 20 throttled calls in a row: more than botocore's 5 attempts absorb.
    "throttle-burst-of-20": (lambda control: control.throttle(operation="*", count=20), {}),
    # 503s, more than one call's retries.
    "server-errors-503": (
        lambda control: control.server_error(operation="*", count=8, status=503),
        {},
    ),
    # AWS stops answering the export describes for a while: read timeouts.
    "hang-describe-export": (
        lambda control: control.hang(operation="DescribeExportTasks", count=2, seconds=3),
        {"botocore_config": {"read_timeout": 1, "connect_timeout": 1}},
    ),
    # StartExportTask took effect but its answer was lost; botocore retries the call.
    "lost-start-answer-retried-by-botocore": (
        lambda control: control.lose_response(operation="StartExportTask"),
        {},
    ),
    # The same, with no botocore retry: as if the worker died right after AWS accepted the
    # start. The task's next try (a reschedule) must adopt the running export.
    "lost-start-answer-next-try-adopts": (
        lambda control: control.lose_response(operation="StartExportTask"),
        {"botocore_config": {"retries": {"total_max_attempts": 1, "mode": "standard"}}},
    ),
}


@pytest.mark.parametrize("deferrable", [False, True], ids=["reschedule", "deferrable"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_lifecycle_survives_fault(
    paced_world: ExportWorld, run_dag: RunDag, ledger: Ledger, scenario: str, deferrable: bool
) -> None:
    inject, options = SCENARIOS[scenario]
    inject(paced_world.control)
    ledger.faults_injected += 1
    dag_id = f"fault_{scenario.replace('-', '_')}_{int(deferrable)}"
    result = run_dag(
        lifecycle(paced_world, dag_id, deferrable=deferrable, **options),
        dag_id,
        env=paced_world.env,
        timeout=240,
    )
    check_outcome(paced_world, result, ledger)
    if scenario.startswith("lost-start"):
        assert "adopting it as this run's export" in result.log("start")
        assert paced_world.control.calls()["StartExportTask"] == 2


def test_cleared_finished_run_adopts_and_keeps_s3_uri(
    paced_world: ExportWorld, airflow_harness: AirflowHarness, ledger: Ledger
) -> None:
    source = lifecycle(paced_world, "fault_cleared_rerun", deferrable=True)
    first = airflow_harness.run_dag(source, "fault_cleared_rerun", env=paced_world.env)
    check_outcome(paced_world, first, ledger)
    second = airflow_harness.rerun(first, source, env=paced_world.env)
    check_outcome(paced_world, second, ledger)
    assert "adopting it as this run's export" in second.log("start")
    assert second.xcom("start")["S3Uri"] == first.xcom("start")["S3Uri"]
    assert paced_world.control.export_tasks()[0]["Status"] == "COMPLETE"


def test_two_tasks_racing_for_one_identifier_start_it_once(
    paced_world: ExportWorld, run_dag: RunDag, ledger: Ledger
) -> None:
    """Two start tasks of one run with the same identifier: one starts, one adopts.

    (``airflow dags test`` runs them one after the other; the second meets
    ``ExportTaskAlreadyExists`` exactly as a racing run would.)
    """
    arn = paced_world.control.create_db_snapshot("race-snap", db_instance_identifier="orders")[
        "DBSnapshotArn"
    ]
    start_arguments = (
        f"export_task_identifier='orders-20240101', source_arn={arn!r}, "
        f"s3_bucket_name={paced_world.bucket!r}, iam_role_arn={paced_world.iam_role_arn!r}, "
        f"kms_key_id={paced_world.kms_key_id!r}, s3_prefix='nightly', wait_for_completion=False"
    )
    source = (
        "import pendulum\nfrom airflow.sdk import DAG\n"
        "from airflow_rds_export.operators import RdsStartExportTaskOperator\n"
        'with DAG("fault_race", schedule=None, '
        'start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):\n'
        f"    RdsStartExportTaskOperator(task_id='start', {start_arguments})\n"
        f"    RdsStartExportTaskOperator(task_id='start_twin', {start_arguments})\n"
    )
    result = run_dag(source, "fault_race", env=paced_world.env)
    ledger.dag_runs += 1
    exports = paced_world.control.export_tasks()
    ledger.exports_started += len(exports)
    assert result.task_states["start"] == result.task_states["start_twin"] == "success"
    logs = result.log("start") + result.log("start_twin")
    assert logs.count("Started export orders-20240101") == 1
    assert logs.count("adopting it as this run's export") == 1
    assert len(exports) == 1


BAD_TEMPLATED = [
    ("export_task_identifier", "{{ 'orders_' ~ ds_nodash }}", "letters, digits and hyphens"),
    ("export_task_identifier", "{{ '9' ~ ds_nodash }}", "begin with a letter"),
    ("source_arn", "{{ 'arn:aws:rds:us-east-1:123456789012:db:orders' }}", "DB instance ARN"),
    ("s3_bucket_name", "{{ 'Exports_' ~ ds_nodash }}", "lower-case"),
    ("s3_prefix", "{{ ds_nodash }}/", "must not end with '/'"),
    ("s3_prefix", "nightly:{{ ds_nodash }}", "must not contain ':'"),
    ("iam_role_arn", "{{ 'role-' ~ ds_nodash }}", "must be an ARN"),
    ("kms_key_id", "{{ '' }}", "required by AWS"),
]


def test_bad_templated_values_fail_before_any_aws_call(
    world: ExportWorld, run_dag: RunDag, ledger: Ledger
) -> None:
    good = {
        "export_task_identifier": "orders-1",
        "source_arn": "arn:aws:rds:us-east-1:123456789012:snapshot:s",
        "s3_bucket_name": world.bucket,
        "s3_prefix": "nightly",
        "iam_role_arn": world.iam_role_arn,
        "kms_key_id": world.kms_key_id,
    }
    tasks = []
    for index, (field, value, _rule) in enumerate(BAD_TEMPLATED):
        arguments = {**good, field: value, "task_id": f"bad_{index}", "retries": 2}
        rendered = ", ".join(f"{name}={val!r}" for name, val in arguments.items())
        tasks.append(f"    RdsStartExportTaskOperator({rendered})")
    source = (
        "import pendulum\nfrom airflow.sdk import DAG\n"
        "from airflow_rds_export.operators import RdsStartExportTaskOperator\n"
        'with DAG("bad_templates", schedule=None, '
        'start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):\n' + "\n".join(tasks) + "\n"
    )
    result = run_dag(source, "bad_templates", env=world.env)
    for index, (field, _value, rule) in enumerate(BAD_TEMPLATED):
        ledger.bad_inputs_tried += 1
        task_id = f"bad_{index}"
        log = result.log(task_id)
        assert result.task_states[task_id] == "failed"
        assert result.tries(task_id) == 1
        assert f"{field}=" in log and rule in log and "(after rendering templates)" in log
        assert "botocore" not in log.split("is invalid")[0][-2000:]
        ledger.bad_inputs_with_clear_error += 1
    assert world.control.calls() == {}


@pytest.mark.parametrize("deferrable", [False, True], ids=["reschedule", "deferrable"])
def test_lifecycle_survives_refused_and_reset_connections(
    world: ExportWorld, run_dag: RunDag, ledger: Ledger, deferrable: bool
) -> None:
    """AWS unreachable mid-wait: connections reset, then refused for a while, then back."""
    from airflow_rds_export.testing import FlakyProxy, airflow_connection_env

    world.control.create_db_snapshot(
        "orders-snap", db_instance_identifier="orders", ready_after_polls=2
    )
    world.control.pace_export("orders-20240101", starting_polls=1, in_progress_polls=12)
    port = int(world.server.endpoint_url.rsplit(":", 1)[1])
    with FlakyProxy(port) as proxy:
        env = airflow_connection_env(proxy.endpoint_url, region_name="us-east-1")
        outages = threading.Timer(5.0, lambda: (proxy.go_down(), time.sleep(4), proxy.come_back()))
        outages.start()
        dag_id = f"fault_unreachable_{int(deferrable)}"
        aws = {"connect_timeout": 1, "read_timeout": 2}
        try:
            result = run_dag(
                lifecycle(world, dag_id, deferrable=deferrable, botocore_config=aws),
                dag_id,
                env=env,
                timeout=240,
            )
        finally:
            outages.join()
    ledger.faults_injected += 1
    check_outcome(world, result, ledger)
