"""Nightly export of an RDS instance's automated snapshot to S3: copy this to start.

Each night RDS takes an automated snapshot of the instance. This DAG

1. waits for the night's automated snapshot to be ``available`` (deferred: no worker slot
   is held while RDS has not taken it yet or is still ``creating`` it): the first one
   created on the run's logical day, ``[logical_date, logical_date + 1 day)``. Airflow 3's
   default ``@daily`` timetable gives a data interval of zero length (start == end ==
   logical date), so the window is spelled out; a cleared or backfilled night picks its
   own snapshot even when later nights' snapshots exist;
2. starts its export to ``s3://<bucket>/<prefix>/<instance>-<yyyymmdd>/``. The identifier
   is derived from the instance and the logical date, so a retried or cleared run adopts
   the export it already started instead of failing with ``ExportTaskAlreadyExists`` or
   starting a second one. If that export FAILED or was CANCELED (by this DAG's teardown,
   say), a cleared run exports again as ``<instance>-<yyyymmdd>-r2`` (identifiers are never
   reusable); the steps below follow whichever export ``start_export`` returned;
3. waits for the export (deferred; progress in the task log), failing with AWS's
   ``FailureCause`` if it fails; once it is COMPLETE and verified, announces it as an
   asset event through the alias ``rds-export:nightly_rds_export.wait_for_export``, on
   which ``nightly_export_consumer`` is scheduled;
4. tears down: cancels the export if anything above failed or timed out, so no export runs
   on unwatched. When the export already finished there is nothing to cancel: the teardown
   skips and says why. Being a teardown, it never changes the run's own state.

Everything comes from ``params`` (override them per run in the trigger form, or change
the defaults here, or read them from Variables with ``{{ var.value.<name> }}``); the poll
interval comes from the ``RDS_EXPORT_POLL_SECONDS`` environment variable. Parsing
this file touches no AWS and imports no boto3.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsExportTaskStateSensor, RdsSnapshotReadySensor

# A valid export task identifier from the instance and the night (this package's macro:
# lower case, letters/digits/hyphens, cut with a hash past AWS's 60 characters).
EXPORT_ID = "{{ macros.rds_export.identifier(params.db_instance_identifier, ds_nodash) }}"
# The export start_export started or adopted (EXPORT_ID, or EXPORT_ID-r2... after a
# re-export); EXPORT_ID itself if start_export never got that far.
STARTED_EXPORT_ID = (
    "{{ (ti.xcom_pull(task_ids='start_export') or {}).get('ExportTaskIdentifier')"
    " or macros.rds_export.identifier(params.db_instance_identifier, ds_nodash) }}"
)
# RDS takes automated snapshots in the instance's backup window: by default a 30-minute
# window picked from an 8-hour block per Region, and a large snapshot takes a while on top.
# Wait for up to 20 hours after midnight UTC (until shortly before the next night's run);
# if your backup window is known, size this to its end plus the snapshot's usual duration.
SNAPSHOT_WAIT = timedelta(hours=20)
# Seconds between status checks. Real snapshots and exports take tens of minutes to hours,
# so a minute is plenty; the demo and tests set it lower. (An environment variable, not a
# Variable: reading Variables at parse time would query the database on every parse.)
POLL_SECONDS = float(os.environ.get("RDS_EXPORT_POLL_SECONDS", "60"))

with DAG(
    dag_id="nightly_rds_export",
    description="Export last night's automated RDS snapshot to S3",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    tags=["rds", "export"],
    params={
        "db_instance_identifier": Param("orders", type="string"),
        "s3_bucket_name": Param("rds-exports", type="string"),
        "s3_prefix": Param("nightly", type="string"),
        "iam_role_arn": Param("arn:aws:iam::123456789012:role/rds-s3-export", type="string"),
        "kms_key_id": Param("alias/rds-exports", type="string"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
) as dag:
    wait_for_snapshot = RdsSnapshotReadySensor(
        task_id="wait_for_snapshot",
        db_instance_identifier="{{ params.db_instance_identifier }}",
        snapshot_type="automated",
        created_after="{{ logical_date }}",
        created_before="{{ logical_date + macros.timedelta(days=1) }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=SNAPSHOT_WAIT.total_seconds(),
    )

    start_export = RdsStartExportTaskOperator(
        task_id="start_export",
        export_task_identifier=EXPORT_ID,
        source_arn="{{ ti.xcom_pull(task_ids='wait_for_snapshot')['SourceArn'] }}",
        s3_bucket_name="{{ params.s3_bucket_name }}",
        s3_prefix="{{ params.s3_prefix }}",
        iam_role_arn="{{ params.iam_role_arn }}",
        kms_key_id="{{ params.kms_key_id }}",
        wait_for_completion=False,
        # The sensor above waited already; should the snapshot flip back, or another export
        # of it (fleet_rds_export's, say) still run, keep waiting, checking this often.
        on_invalid_state="reschedule",
        source_wait_interval=POLL_SECONDS,
        if_exists="adopt",
    )

    wait_for_export = RdsExportTaskStateSensor(
        task_id="wait_for_export",
        export_task_identifier=STARTED_EXPORT_ID,
        deferrable=True,
        # Checks once on a worker, which renders the XCom template above (rendering it in
        # the triggerer with start_from_trigger is not proven on Airflow 3.3.2: see the
        # README), then waits in the triggerer: the hours-long export wait holds no
        # worker. A failure ends the task there; a COMPLETE export resumes it on a worker
        # for a moment, to emit its asset event (Airflow 3.3's trigger end events cannot
        # carry one; emit_asset=False would end it in the triggerer too).
        end_from_trigger=True,
        # Once COMPLETE, the export is verified table by table (its WarningMessage and the
        # metadata files it wrote): a skipped or failed table fails the task, naming it.
        # on_table_failure="warn" would log them and succeed; expected_tables=[...] would
        # also require named tables (or patterns such as "orders.public.*").
        on_table_failure="fail",
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=12).total_seconds(),
    )

    cancel_if_unfinished = RdsCancelExportTaskOperator(
        task_id="cancel_if_unfinished",
        export_task_identifier=STARTED_EXPORT_ID,
        on_invalid_state="skip",  # already COMPLETE / FAILED / CANCELED: nothing to do
        on_missing="skip",  # never started: nothing to do
        wait_for_completion=False,
    )

    wait_for_snapshot >> start_export >> wait_for_export >> cancel_if_unfinished
    cancel_if_unfinished.as_teardown(setups=start_export)
