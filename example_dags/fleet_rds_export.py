"""Nightly export of a whole fleet of RDS instances and Aurora clusters, one DAG.

The fleet is listed in this file (``FLEET``); each night, for every source, dynamic task
mapping (``.expand``) runs the same three steps as ``nightly_rds_export``:

1. wait (deferred) for the night's automated snapshot (the first one created on the
   run's logical day);
2. start its export, identified as ``fleet-<source>-<yyyymmdd>`` (re-runs adopt; the
   ``fleet-`` prefix keeps it apart from a nightly_rds_export of the same source);
3. wait (deferred) for the export to complete.

AWS runs at most 5 exports per account and Region at once, so ``start_and_wait`` has
``max_active_tis_per_dag=5``: a deferred export wait counts as active, so a sixth export
starts only when one of the five has finished. (Several DAGs exporting in the same
account should share a pool of 5 slots created with ``include_deferred``.) AWS also runs
only one export of a snapshot at a time: should ``nightly_rds_export`` be exporting the
same snapshot, the start waits (deferred) for that export to end, then starts.

Who may trigger a DAG may fill in its trigger form, so nothing that decides *what* is
exported *where* comes from there: the bucket, prefix, export role and KMS key come from
the Airflow Variable ``rds_export_target`` (JSON, set by whoever administers Airflow),
and a run's ``sources`` param may only narrow the fleet listed in this file.

Parsing this file touches no AWS and imports no boto3.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_rds_export.operators import RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsSnapshotReadySensor

POLL_SECONDS = float(os.environ.get("RDS_EXPORT_POLL_SECONDS", "60"))
AWS_CONCURRENT_EXPORT_LIMIT = 5
# The sources this DAG may export. A run's "sources" param can pick among them, no more.
FLEET: tuple[dict[str, str], ...] = (
    {"db_instance_identifier": "orders"},
    {"db_instance_identifier": "billing"},
    {"db_instance_identifier": "inventory"},
    {"db_cluster_identifier": "analytics"},
)
# Where exports go comes from the Variable "rds_export_target" (JSON: s3_bucket_name,
# s3_prefix, iam_role_arn, kms_key_id), read when a task runs, never at parse time.
# Wait for the night's snapshot until shortly before the next night's run (the backup
# window may be late in the day, see nightly_rds_export).
SNAPSHOT_WAIT = timedelta(hours=20)

with DAG(
    dag_id="fleet_rds_export",
    description="Export last night's automated snapshot of every instance and cluster",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    tags=["rds", "export"],
    params={
        "sources": Param(
            [dict(source) for source in FLEET],
            type="array",
            description="Which of the fleet's sources to export (default: all of them)",
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
) as dag:

    @task
    def list_sources(params: dict | None = None) -> list[dict[str, str]]:
        """The sources to export tonight, as the sensor's keyword arguments; each must be
        one of FLEET."""
        sources = [
            {k: v for k, v in source.items() if k.endswith("_identifier")}
            for source in (params or {})["sources"]
        ]
        unknown = [source for source in sources if source not in FLEET]
        if unknown:
            raise ValueError(
                f"sources={unknown} are not in this DAG's FLEET {list(FLEET)}: a run may only "
                "export sources listed in the DAG file. To do: add them to FLEET"
            )
        return sources

    @task
    def export_settings(snapshots: list[dict], ds_nodash: str | None = None) -> list[dict]:
        """One start-export argument set per ready snapshot, named by source and date."""
        settings = []
        for snapshot in snapshots:
            source = snapshot.get("DBInstanceIdentifier") or snapshot["DBClusterIdentifier"]
            settings.append(
                {
                    "export_task_identifier": f"fleet-{source}-{ds_nodash}",
                    "source_arn": snapshot["SourceArn"],
                }
            )
        return settings

    wait_for_snapshots = RdsSnapshotReadySensor.partial(
        task_id="wait_for_snapshot",
        snapshot_type="automated",
        created_after="{{ logical_date }}",
        created_before="{{ logical_date + macros.timedelta(days=1) }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=SNAPSHOT_WAIT.total_seconds(),
    ).expand_kwargs(list_sources())

    RdsStartExportTaskOperator.partial(
        task_id="start_and_wait",
        s3_bucket_name="{{ var.json.rds_export_target.s3_bucket_name }}",
        s3_prefix="{{ var.json.rds_export_target.s3_prefix }}",
        iam_role_arn="{{ var.json.rds_export_target.iam_role_arn }}",
        kms_key_id="{{ var.json.rds_export_target.kms_key_id }}",
        wait_for_completion=True,
        waiter_interval=POLL_SECONDS,
        waiter_max_attempts=int(timedelta(hours=12).total_seconds() // POLL_SECONDS),
        # Another export of the same snapshot (nightly_rds_export's, say) is waited out,
        # checking it this often; quota refusals are retried this often too.
        source_wait_interval=POLL_SECONDS,
        deferrable=True,
        max_active_tis_per_dag=AWS_CONCURRENT_EXPORT_LIMIT,
    ).expand_kwargs(export_settings(wait_for_snapshots.output))
