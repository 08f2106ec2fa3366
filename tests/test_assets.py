"""A COMPLETE export is announced as an Airflow asset event, through the task's alias.

Every case runs a DAG with ``airflow dags test`` against the emulator and reads the
``asset_event`` rows (with the aliases they came through) from the metadata DB, as the
scheduler would see them. The example consumer DAG then reads the event back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ExportWorld
from scenarios import dag
from test_reruns import FLEET, NIGHT, NIGHTLY_EXPORT, example_env, run_nightly, tonight

from airflow_rds_export.assets import EXTRA_KEYS
from airflow_rds_export.identifiers import export_asset_alias
from airflow_rds_export.testing.airflow_runs import AirflowHarness, AssetEventInfo, DagRunResult
from airflow_rds_export.validation import InvalidParameterError

RunDag = Callable[..., DagRunResult]
REPO = Path(__file__).resolve().parent.parent
CONSUMER = (REPO / "example_dags" / "nightly_export_consumer.py").read_text()
NIGHTLY_ALIAS = "rds-export:nightly_rds_export.wait_for_export"
EXPORT_ID = "orders-20240101"


def start_and_wait(world: ExportWorld, options: str) -> str:
    """A start operator waiting for completion of the export of ``dag_run.conf['arn']``,
    with ``options`` (keyword arguments as Python source)."""
    return dag(
        "assets_start",
        f"""
from airflow.sdk import Asset
RdsStartExportTaskOperator(
    task_id="export",
    export_task_identifier="{EXPORT_ID}",
    source_arn="{{{{ dag_run.conf['arn'] }}}}",
    s3_bucket_name="{world.bucket}",
    s3_prefix="nightly",
    iam_role_arn="{world.iam_role_arn}",
    kms_key_id="{world.kms_key_id}",
    waiter_interval=1,
    {options}
)
""",
    )


def ready_snapshot(world: ExportWorld) -> str:
    return str(tonight(world)["DBSnapshotArn"])


def events_of(result: DagRunResult, task_id: str) -> list[AssetEventInfo]:
    return [event for event in result.asset_events if event.task_id == task_id]


def test_the_nightly_example_announces_its_export_and_the_consumer_reads_it(
    world: ExportWorld, airflow_harness: AirflowHarness
) -> None:
    """The acceptance case: the nightly example's wait (deferred, ending in the triggerer)
    emits one event for the export's folder through its alias, with the export's facts;
    the example consumer DAG reads them back."""
    snapshot = tonight(world, "2026-11-21")
    result = run_nightly(airflow_harness, world)
    result.assert_state("success")

    uri = f"s3://{world.bucket}/nightly/{NIGHTLY_EXPORT}/"
    asset_uri = uri.rstrip("/")  # as Airflow stores an s3:// asset
    (event,) = result.asset_events
    assert (event.uri, event.task_id, event.aliases) == (
        asset_uri,
        "wait_for_export",
        (NIGHTLY_ALIAS,),
    )
    assert sorted(event.extra) == sorted(EXTRA_KEYS)
    assert event.extra["export_task_identifier"] == NIGHTLY_EXPORT
    assert event.extra["source_arn"] == snapshot["DBSnapshotArn"]
    assert event.extra["snapshot_time"].startswith("2026-11-21T03:00:00")
    assert event.extra["s3_uri"] == uri
    assert event.extra["total_extracted_gb"] == 20
    assert event.extra["tables"]["Clean"] is True
    assert event.extra["tables"]["Complete"] == 4
    log = result.log("wait_for_export")
    assert "resuming the task on a worker to emit its asset event" in log
    assert f"Asset event for {asset_uri} through asset alias {NIGHTLY_ALIAS!r}" in log

    consumer = airflow_harness.run_dag(
        CONSUMER, "nightly_export_consumer", env=world.env, logical_date=NIGHT
    )
    consumer.assert_state("success")
    assert consumer.task_states == {"plan_load": "success"}
    (plan,) = consumer.xcom("plan_load")
    assert plan == {
        "s3_uri": uri,
        "export_task_identifier": NIGHTLY_EXPORT,
        "snapshot": snapshot["DBSnapshotArn"],
        "snapshot_time": event.extra["snapshot_time"],
        "total_extracted_gb": 20,
        "tables_complete": 4,
        "tables_clean": True,
    }
    assert f"Load {uri} (export {NIGHTLY_EXPORT} of" in consumer.log("plan_load")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "end-from-trigger"])
def test_start_operator_emits_through_its_alias_and_declared_outlets_still_fire(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    """A custom alias name, next to a static outlet the user declared: both get an event;
    deferred with ``end_from_trigger``, the task still resumes to emit."""
    arn = ready_snapshot(world)
    world.control.pace_export(EXPORT_ID, starting_polls=1, in_progress_polls=2)
    source = start_and_wait(
        world,
        f'asset_alias="orders-exports", deferrable={deferrable}, end_from_trigger={deferrable}, '
        'outlets=[Asset("s3://rds-exports/orders-latest")],',
    )
    result = run_dag(source, "assets_start", env=world.env, conf={"arn": arn})
    result.assert_state("success")
    by_uri = {event.uri: event for event in events_of(result, "export")}
    exported = f"s3://{world.bucket}/nightly/{EXPORT_ID}"
    assert sorted(by_uri) == [exported, "s3://rds-exports/orders-latest"]
    assert by_uri[exported].aliases == ("orders-exports",)
    assert by_uri[exported].extra["export_task_identifier"] == EXPORT_ID
    assert by_uri["s3://rds-exports/orders-latest"].aliases == ()


def test_no_event_without_completion_or_when_switched_off(
    world: ExportWorld, run_dag: RunDag
) -> None:
    """An export still STARTING (the existence sensor's default targets), a start operator
    not waiting, and ``emit_asset=False``: no event, and the first says why."""
    arn = ready_snapshot(world)
    world.control.pace_export(EXPORT_ID, starting_polls=1000)
    source = dag(
        "assets_none",
        f"""
start = RdsStartExportTaskOperator(
    task_id="start",
    export_task_identifier="{EXPORT_ID}",
    source_arn="{arn}",
    s3_bucket_name="{world.bucket}",
    iam_role_arn="{world.iam_role_arn}",
    kms_key_id="{world.kms_key_id}",
    wait_for_completion=False,
)
exists = RdsExportTaskExistenceSensor(
    task_id="exists", export_task_identifier="{EXPORT_ID}", poke_interval=1
)
quiet = RdsExportTaskExistenceSensor(
    task_id="quiet", export_task_identifier="{EXPORT_ID}", poke_interval=1, emit_asset=False
)
start >> [exists, quiet]
""",
    )
    result = run_dag(source, "assets_none", env=world.env)
    result.assert_state("success")
    assert result.asset_events == ()
    assert f"Export {EXPORT_ID} is STARTING: no data to announce, no asset event" in result.log(
        "exists"
    )
    assert "asset event" not in result.log("quiet")


def test_every_mapped_export_of_the_fleet_is_announced_once(
    world: ExportWorld, run_dag: RunDag
) -> None:
    """Mapped tasks are built on the worker, so their alias is declared there: each
    COMPLETE export of the fleet gets one event, through the default alias."""
    world.control.create_db_instance("billing")
    sources = [{"db_instance_identifier": name} for name in ("orders", "billing")]
    for source in sources:
        world.control.create_automated_snapshot(
            source["db_instance_identifier"], created_at="2026-11-21T03:00:00+00:00"
        )
    result = run_dag(
        FLEET,
        "fleet_rds_export",
        env=example_env(world),
        conf={"sources": sources},
        logical_date=NIGHT,
    )
    result.assert_state("success")
    alias = export_asset_alias("fleet_rds_export", "start_and_wait")
    events = events_of(result, "start_and_wait")
    assert sorted((e.map_index, e.uri, e.aliases) for e in events) == [
        (0, f"s3://{world.bucket}/fleet/fleet-orders-20261121", (alias,)),
        (1, f"s3://{world.bucket}/fleet/fleet-billing-20261121", (alias,)),
    ]


def test_the_alias_is_declared_at_parse_time_and_checked() -> None:
    """The default alias is among the task's outlets as the DAG is parsed (the scheduler
    registers it there); a bad name is refused then, naming the field."""
    from airflow.sdk import DAG, AssetAlias

    from airflow_rds_export.operators import RdsCancelExportTaskOperator
    from airflow_rds_export.sensors import RdsExportTaskStateSensor, RdsSnapshotReadySensor

    with DAG("parsed", schedule=None):
        waited = RdsExportTaskStateSensor(task_id="wait", export_task_identifier="e")
        quiet = RdsExportTaskStateSensor(
            task_id="quiet", export_task_identifier="e", emit_asset=False
        )
        cancel = RdsCancelExportTaskOperator(task_id="cancel", export_task_identifier="e")
        snapshot = RdsSnapshotReadySensor(task_id="snap", db_snapshot_identifier="s")
    assert waited.outlets == [AssetAlias("rds-export:parsed.wait")]
    assert quiet.outlets == [] and cancel.outlets == [] and snapshot.outlets == []
    for bad in ("", " padded", 42):
        with pytest.raises(InvalidParameterError, match="asset_alias="):
            RdsExportTaskStateSensor(task_id="bad", export_task_identifier="e", asset_alias=bad)
    with pytest.raises(InvalidParameterError, match="emit_asset='yes'"):
        RdsExportTaskStateSensor(task_id="bad", export_task_identifier="e", emit_asset="yes")
