"""Nightly export of a whole fleet of RDS instances and Aurora clusters, one DAG.

The list of sources is a param; each night, for every source, dynamic task mapping
(``.expand``) runs the same three steps as ``nightly_rds_export``:

1. wait (deferred) for tonight's automated snapshot (created at or after the data
   interval start);
2. start its export, identified as ``fleet-<source>-<yyyymmdd>`` (re-runs adopt; the
   ``fleet-`` prefix keeps it apart from a nightly_rds_export of the same source);
3. wait (deferred) for the export to complete.

AWS runs at most 5 exports per account and Region at once, so ``start_and_wait`` has
``max_active_tis_per_dag=5``: a deferred export wait counts as active, so a sixth export
starts only when one of the five has finished. (Several DAGs exporting in the same
account should share a pool of 5 slots created with ``include_deferred``.)

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
            [
                {"db_instance_identifier": "orders"},
                {"db_instance_identifier": "billing"},
                {"db_cluster_identifier": "analytics"},
            ],
            type="array",
            description="One object per source: db_instance_identifier or db_cluster_identifier",
        ),
        "s3_bucket_name": Param("rds-exports", type="string"),
        "s3_prefix": Param("fleet", type="string"),
        "iam_role_arn": Param("arn:aws:iam::123456789012:role/rds-s3-export", type="string"),
        "kms_key_id": Param("alias/rds-exports", type="string"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
) as dag:

    @task
    def list_sources(params: dict | None = None) -> list[dict[str, str]]:
        """The sources to export tonight, as the sensor's keyword arguments."""
        sources = (params or {})["sources"]
        return [
            {k: v for k, v in source.items() if k.endswith("_identifier")} for source in sources
        ]

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
        created_after="{{ data_interval_start }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=6).total_seconds(),
    ).expand_kwargs(list_sources())

    RdsStartExportTaskOperator.partial(
        task_id="start_and_wait",
        s3_bucket_name="{{ params.s3_bucket_name }}",
        s3_prefix="{{ params.s3_prefix }}",
        iam_role_arn="{{ params.iam_role_arn }}",
        kms_key_id="{{ params.kms_key_id }}",
        wait_for_completion=True,
        waiter_interval=POLL_SECONDS,
        waiter_max_attempts=int(timedelta(hours=12).total_seconds() // POLL_SECONDS),
        deferrable=True,
        max_active_tis_per_dag=AWS_CONCURRENT_EXPORT_LIMIT,
    ).expand_kwargs(export_settings(wait_for_snapshots.output))
