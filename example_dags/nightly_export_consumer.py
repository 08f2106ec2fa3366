"""Downstream of the nightly export: runs once for each export RDS completed, no polling.

``nightly_rds_export``'s ``wait_for_export`` announces every COMPLETE export as an Airflow
asset event, ``s3://<bucket>/<prefix>/<export id>/``, through its asset alias
``rds-export:nightly_rds_export.wait_for_export``. This DAG is scheduled on that alias: the
scheduler starts a run as soon as an export is announced, whatever its (templated,
re-exported ``-r2``) identifier. Its one task reads the event's ``extra``, the export's
identifier, source snapshot, time, size and tables verdict, and works out what to load
from where: the place for your Glue crawler, Athena ``MSCK REPAIR``, Spark job or
warehouse ``COPY``.

Triggered by hand (or by ``airflow dags test``, as the demo does), a run has no triggering
event: it reads the alias's newest event instead. Parsing this file imports no boto3.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetAlias, task

from airflow_rds_export.identifiers import export_asset_alias

log = logging.getLogger(__name__)

#: The alias nightly_rds_export's wait_for_export emits its exports through.
NIGHTLY_EXPORTS = AssetAlias(export_asset_alias("nightly_rds_export", "wait_for_export"))

with DAG(
    dag_id="nightly_export_consumer",
    description="Load each nightly RDS export once RDS reports it COMPLETE",
    schedule=[NIGHTLY_EXPORTS],
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["rds", "export", "downstream"],
):

    @task(inlets=[NIGHTLY_EXPORTS])
    def plan_load(
        triggering_asset_events: Any = None, inlet_events: Any = None
    ) -> list[dict[str, Any]]:
        """One load per announced export: where its data is and what it holds."""
        # Each event is listed under its asset and under the alias it came through: read
        # the alias's, once each.
        events = list((triggering_asset_events or {}).get(NIGHTLY_EXPORTS, ()))
        if not events:  # a manual run: the newest export announced
            announced = inlet_events[NIGHTLY_EXPORTS]
            events = [announced[-1]] if len(announced) else []
        if not events:
            raise ValueError(f"No export announced through {NIGHTLY_EXPORTS.name} yet")
        plans = []
        for event in events:
            extra = event.extra
            tables = extra.get("tables") or {}
            plan = {
                "s3_uri": extra["s3_uri"],
                "export_task_identifier": extra["export_task_identifier"],
                "snapshot": extra["source_arn"],
                "snapshot_time": extra["snapshot_time"],
                "total_extracted_gb": extra["total_extracted_gb"],
                "tables_complete": tables.get("Complete"),
                "tables_clean": tables.get("Clean"),
            }
            log.info(
                "Load %s (export %s of %s, taken %s): %s tables, %s GB",
                plan["s3_uri"],
                plan["export_task_identifier"],
                plan["snapshot"],
                plan["snapshot_time"],
                plan["tables_complete"],
                plan["total_extracted_gb"],
            )
            plans.append(plan)
        return plans

    plan_load()
