"""The Airflow asset a COMPLETE export announces: its folder in S3.

An export writes to ``s3://{bucket}/{prefix}/{export_task_identifier}/``, a URI known only
once the export exists (its identifier is templated, a re-export adds ``-r2``). So the
tasks that see an export COMPLETE (the start operator with ``wait_for_completion``, the
export-state sensors) declare an ``AssetAlias`` among their ``outlets`` at parse time
(:func:`~airflow_rds_export.identifiers.export_asset_alias` names it) and, here, at run
time, add one asset event through it: the export's folder (asset URI
``s3://{bucket}/{prefix}/{export_task_identifier}``: Airflow normalises away the trailing
slash; ``extra["s3_uri"]`` keeps it), with an ``extra`` a downstream DAG can read
(:func:`asset_extra`). A DAG scheduled on the alias runs once per
event; ``outlets`` a user declares are emitted by Airflow as usual, alongside.

Run time only: the operators and sensors import this inside ``execute``; it imports
nothing of AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_rds_export.decisions import export_wrote_data
from airflow_rds_export.descriptions import export_s3_uri

__all__ = ["EXTRA_KEYS", "asset_extra", "emit_export_asset"]

#: The keys of an export's asset event ``extra``, in the order they are written.
EXTRA_KEYS: tuple[str, ...] = (
    "export_task_identifier",
    "source_arn",
    "snapshot_time",
    "s3_uri",
    "total_extracted_gb",
    "export_only",
    "tables",
)


def asset_extra(export_task: Mapping[str, Any]) -> dict[str, Any]:
    """The asset event's ``extra`` from an export task's description (the XCom the
    operators and sensors return): its identifier, source ARN, snapshot time, S3 URI,
    extracted GB, ``ExportOnly``, and the tables verdict (``Tables``: counts, failed /
    skipped tables with reasons, missing ones, total GB) when the export was verified,
    else None. JSON-friendly, as Airflow stores it."""
    values = (
        export_task.get("ExportTaskIdentifier"),
        export_task.get("SourceArn"),
        export_task.get("SnapshotTime"),
        export_s3_uri(export_task),
        export_task.get("TotalExtractedDataInGB"),
        list(export_task.get("ExportOnly") or []),
        export_task.get("Tables"),
    )
    return {key: value for key, value in zip(EXTRA_KEYS, values, strict=True)}


def emit_export_asset(
    context: Mapping[str, Any] | None, alias_name: str, export_task: Mapping[str, Any], log: Any
) -> str | None:
    """Add the asset event of a COMPLETE export through the alias ``alias_name`` (one of
    the task's outlets); return the asset's URI, or None when the export wrote nothing to
    announce (another status ended the wait)."""
    if not export_wrote_data(export_task):
        log.info(
            "Export %s is %s: no data to announce, no asset event",
            export_task.get("ExportTaskIdentifier"),
            export_task.get("Status"),
        )
        return None
    from airflow.sdk import Asset, AssetAlias

    # The folder, as Airflow stores an s3:// asset's URI: without the trailing slash.
    uri = export_s3_uri(export_task).rstrip("/")
    outlet_events = (context or {}).get("outlet_events")
    if outlet_events is None:  # called outside an Airflow task run (a unit test, say)
        log.warning("No outlet_events in the task's context: no asset event for %s", uri)
        return None
    outlet_events[AssetAlias(alias_name)].add(Asset(uri), extra=asset_extra(export_task))
    log.info("Asset event for %s through asset alias %r", uri, alias_name)
    return uri
