"""Export a snapshot the moment RDS says it exists: event-driven, with a nightly fallback.

RDS announces every snapshot it finishes (``RDS-EVENT-0091``: automated snapshot created;
``0042`` manual; ``0169`` / ``0075`` for Aurora cluster snapshots). Send those events to
an SQS queue (an RDS event subscription on an SNS topic the queue subscribes to, raw
delivery or not, or an EventBridge rule on ``source: aws.rds``), and this DAG

1. is scheduled on the asset ``rds-snapshot-created``, watched by
   :class:`~airflow_rds_export.event_triggers.RdsEventTrigger` in the triggerer: it
   long-polls the queue and fires once per "snapshot created" event of the sources below
   (every other message is deleted and counted in the triggerer's log, and fires nothing);
2. reads the announced snapshots off the run's triggering asset events
   (``announced_snapshots``; Airflow puts every event that arrived before the run was
   created into one run, so there may be several);
3. starts one export per snapshot under the identifier ``nightly_rds_export`` gives that
   night (``rds:orders-2026-11-29-03-10`` -> ``orders-20261129``;
   :attr:`~airflow_rds_export.announcements.AnnouncedSnapshot.export_identifier`, built
   with :func:`~airflow_rds_export.identifiers.export_identifier`; a manual snapshot's is
   its name's): an event delivered twice (SNS and SQS deliver at least once) adopts the
   export the first one started instead of starting a second;
4. waits for each export (deferred) and verifies it table by table once COMPLETE;
5. tears down: cancels an export whose wait failed, so none runs on unwatched.

Events are best effort: one lost between the queue and Airflow is not delivered again.
Keep ``nightly_rds_export`` scheduled as the safety net: it exports the same night's
snapshot under the same identifier, to the same bucket and prefix (``nightly``), so when
the event came it adopts the export this DAG started (no second export), and when the
event was lost it starts the export itself, at its own pace.

The queue and the sources come from environment variables (read at parse time; a Variable
would query the database on every parse): ``RDS_EVENTS_QUEUE_URL``,
``RDS_EVENT_SOURCES`` (comma-separated snapshot names or patterns), and
``RDS_EXPORT_POLL_SECONDS``. Parsing this file touches no AWS and imports no boto3.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, Param, task
from airflow.sdk.exceptions import AirflowSkipException

from airflow_rds_export.announcements import announced_snapshots
from airflow_rds_export.event_triggers import RdsEventTrigger
from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsExportTaskStateSensor

QUEUE_URL = os.environ.get(
    "RDS_EVENTS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/rds-snapshot-events"
)
# Snapshots of these sources (names or fnmatch patterns): the instance "orders"'s
# automated snapshots (rds:orders-<date>) and its manual ones named orders-...
SOURCES = [s.strip() for s in os.environ.get("RDS_EVENT_SOURCES", "rds:orders-*").split(",")]
POLL_SECONDS = float(os.environ.get("RDS_EXPORT_POLL_SECONDS", "60"))

snapshot_created = Asset(
    "rds-snapshot-created",
    watchers=[
        AssetWatcher(
            name="rds_snapshot_events",
            trigger=RdsEventTrigger(
                sqs_queue=QUEUE_URL,
                source_identifiers=[s for s in SOURCES if s],
                # event_ids: the four "snapshot created" IDs (the default).
                # accounts=[...], regions=[...] narrow it further.
            ),
        )
    ],
)


def started_export_id(started: dict[str, Any]) -> str:
    """The export start_export started or adopted (a re-export may carry -r2 ...)."""
    return str(started["ExportTaskIdentifier"])


with DAG(
    dag_id="event_driven_rds_export",
    description="Export each RDS snapshot as soon as RDS announces it",
    schedule=[snapshot_created],
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["rds", "export", "event-driven"],
    params={
        "s3_bucket_name": Param("rds-exports", type="string"),
        # The nightly DAG's prefix: its run of the same night adopts this DAG's export.
        "s3_prefix": Param("nightly", type="string"),
        "iam_role_arn": Param("arn:aws:iam::123456789012:role/rds-s3-export", type="string"),
        "kms_key_id": Param("alias/rds-exports", type="string"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
) as dag:

    @task
    def announced(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """One export per snapshot the triggering events announce (each once)."""
        snapshots = announced_snapshots(triggering_asset_events)
        if not snapshots:
            raise AirflowSkipException("No RDS event in this run announces a snapshot")
        for snapshot in snapshots:
            print(f"{snapshot.event_id}: {snapshot.identifier} ({snapshot.arn}) at {snapshot.time}")
        return [
            {"source_arn": s.to_dict(), "export_task_identifier": s.export_identifier}
            for s in snapshots
        ]

    start_export = RdsStartExportTaskOperator.partial(
        task_id="start_export",
        s3_bucket_name="{{ params.s3_bucket_name }}",
        s3_prefix="{{ params.s3_prefix }}",
        iam_role_arn="{{ params.iam_role_arn }}",
        kms_key_id="{{ params.kms_key_id }}",
        wait_for_completion=False,
        if_exists="adopt",  # a duplicate event adopts the export, never doubles it
        on_invalid_state="reschedule",  # another export of the snapshot running: wait
        source_wait_interval=POLL_SECONDS,
        deferrable=True,
    ).expand_kwargs(announced())

    export_ids = start_export.output.map(started_export_id)

    wait_for_export = RdsExportTaskStateSensor.partial(
        task_id="wait_for_export",
        deferrable=True,
        end_from_trigger=True,  # the hours-long wait ends in the triggerer
        on_table_failure="fail",  # COMPLETE is verified table by table
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=12).total_seconds(),
    ).expand(export_task_identifier=export_ids)

    cancel_if_unfinished = RdsCancelExportTaskOperator.partial(
        task_id="cancel_if_unfinished",
        on_invalid_state="skip",  # already COMPLETE / FAILED / CANCELED: nothing to do
        on_missing="skip",
        wait_for_completion=False,
    ).expand(export_task_identifier=export_ids)

    wait_for_export >> cancel_if_unfinished
    cancel_if_unfinished.as_teardown(setups=start_export)
