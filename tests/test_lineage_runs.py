"""OpenLineage through Airflow: each component's COMPLETE event, as the provider emits it.

With apache-airflow-providers-openlineage installed (the ``openlineage`` extra, in the
lock file) and its file transport configured, ``airflow dags test`` runs the DAG against
the emulator and the provider's listener writes every event to a file; the tests read the
COMPLETE event of each task. The expected names are built from what the emulator reports
(the instance's endpoint), not copied from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REGION, ExportWorld
from scenarios import dag
from test_reruns import tonight

from airflow_rds_export.testing.airflow_runs import DagRunResult

pytest.importorskip("airflow.providers.openlineage", reason="the openlineage extra")

RunDag = Callable[..., DagRunResult]
EXPORT_ID = "orders-20240101"
GB = 2**30
# The emulator's default tables of an instance "orders" (control.source_tables), in GB.
TABLES = {
    "orders.public.orders": 10,
    "orders.public.customers": 4,
    "orders.public.order_items": 3,
    "orders.audit.events": 3,
}


def lineage_env(world: ExportWorld, events: Path) -> dict[str, str]:
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    return {
        **world.env,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "rds-export-tests",
        # Emit from the task's own process, before it exits (no forked emitter to wait for).
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "true",
    }


def complete_events(events: Path, dag_id: str) -> dict[str, dict[str, Any]]:
    """The COMPLETE event of each task of ``dag_id``, by task id."""
    found = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        name = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and name.startswith(f"{dag_id}."):
            found[name.removeprefix(f"{dag_id}.")] = event
    return found


def endpoint(world: ExportWorld) -> str:
    """``postgres://host:port`` of the instance ``orders``, as the emulator describes it."""
    (instance,) = world.rds_client().describe_db_instances(DBInstanceIdentifier="orders")[
        "DBInstances"
    ]
    return f"postgres://{instance['Endpoint']['Address']}:{instance['Endpoint']['Port']}"


def datasets(entries: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["namespace"], d["name"]): d for d in entries}


def run_components(
    world: ExportWorld, run_dag: RunDag, tmp_path: Path, *, deferrable: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """One DAG with every component, all COMPLETE; returns (events by task, snapshot)."""
    snapshot = tonight(world)
    world.control.pace_export(EXPORT_ID, starting_polls=1, in_progress_polls=1)
    source = dag(
        "lineage_components",
        f"""
snapshot = RdsSnapshotReadySensor(
    task_id="snapshot", db_snapshot_identifier="{snapshot["DBSnapshotIdentifier"]}",
    snapshot_type="automated", poke_interval=1, deferrable={deferrable},
)
start = RdsStartExportTaskOperator(
    task_id="start",
    export_task_identifier="{EXPORT_ID}",
    source_arn="{snapshot["DBSnapshotArn"]}",
    s3_bucket_name="{world.bucket}",
    s3_prefix="nightly",
    iam_role_arn="{world.iam_role_arn}",
    kms_key_id="{world.kms_key_id}",
    waiter_interval=1,
    deferrable={deferrable},
)
state = RdsExportTaskStateSensor(
    task_id="state", export_task_identifier="{EXPORT_ID}", poke_interval=1,
    deferrable={deferrable},
)
existence = RdsExportTaskExistenceSensor(
    task_id="existence", export_task_identifier="{EXPORT_ID}", poke_interval=1,
    target_statuses=["complete"],
)
cancel = RdsCancelExportTaskOperator(
    task_id="cancel", export_task_identifier="{EXPORT_ID}", wait_for_completion=False,
)
snapshot >> start >> [state, existence] >> cancel
""",
    )
    events = tmp_path / "openlineage.jsonl"
    result = run_dag(source, "lineage_components", env=lineage_env(world, events))
    result.assert_state("success")
    assert result.task_states["cancel"] == "skipped"  # the export is COMPLETE already
    return complete_events(events, "lineage_components"), snapshot


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_each_export_component_reports_the_database_read_and_the_tables_written(
    world: ExportWorld, run_dag: RunDag, tmp_path: Path, deferrable: bool
) -> None:
    by_task, snapshot = run_components(world, run_dag, tmp_path, deferrable=deferrable)
    namespace = endpoint(world)
    folder = f"nightly/{EXPORT_ID}"
    for task_id in ("start", "state", "existence"):
        event = by_task[task_id]
        inputs = datasets(event["inputs"])
        assert sorted(inputs) == sorted((namespace, table) for table in TABLES), task_id
        for dataset in inputs.values():
            assert dataset["facets"]["version"]["datasetVersion"] == snapshot["DBSnapshotArn"]
            described = dataset["facets"]["rdsSnapshot"]
            assert described["snapshotArn"] == snapshot["DBSnapshotArn"]
            assert described["snapshotTime"].startswith("2024-01-01T03:00:00")
            assert described["engine"] == "postgres"
        outputs = datasets(event["outputs"])
        expected = {
            (f"s3://{world.bucket}", f"{folder}/{database}/{rest}"): size
            for table, size in TABLES.items()
            for database, rest in [table.split(".", 1)]
        }
        assert sorted(outputs) == sorted(expected), task_id
        for key, size in expected.items():
            assert outputs[key]["outputFacets"]["outputStatistics"]["size"] == size * GB
        assert event["run"]["facets"]["externalQuery"]["externalQueryId"] == EXPORT_ID
    # The snapshot sensor read no data and wrote none; a cancel exports nothing.
    assert (by_task["snapshot"]["inputs"], by_task["snapshot"]["outputs"]) == ([], [])


def test_without_the_source_instance_inputs_are_named_by_arn(
    world: ExportWorld, run_dag: RunDag, tmp_path: Path
) -> None:
    """The instance is gone (or not describable): the documented fallback, by ARN. (A
    manual snapshot: deleting an instance deletes its automated ones.)"""
    snapshot = world.control.create_db_snapshot("orders-kept", "orders", ready_after_polls=0)
    world.rds_client().delete_db_instance(DBInstanceIdentifier="orders", SkipFinalSnapshot=True)
    source = dag(
        "lineage_fallback",
        f"""
RdsStartExportTaskOperator(
    task_id="start",
    export_task_identifier="{EXPORT_ID}",
    source_arn="{snapshot["DBSnapshotArn"]}",
    s3_bucket_name="{world.bucket}",
    iam_role_arn="{world.iam_role_arn}",
    kms_key_id="{world.kms_key_id}",
    waiter_interval=1,
)
""",
    )
    events = tmp_path / "openlineage.jsonl"
    run_dag(source, "lineage_fallback", env=lineage_env(world, events)).assert_state("success")
    event = complete_events(events, "lineage_fallback")["start"]
    account = snapshot["DBSnapshotArn"].split(":")[4]
    inputs = datasets(event["inputs"])
    assert sorted(inputs) == sorted(
        (f"arn:aws:rds:{REGION}:{account}", f"db:orders/{table}") for table in TABLES
    )
    outputs = datasets(event["outputs"])
    assert len(outputs) == len(TABLES)
