"""AWS descriptions made JSON-friendly, and what this package reads off them.

Pure functions over the dicts DescribeExportTasks / DescribeDBSnapshots /
DescribeDBClusterSnapshots return: no AWS call, no Airflow, no botocore.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

__all__ = [
    "automated_snapshot_parts",
    "creation_time",
    "export_s3_uri",
    "is_automated_snapshot",
    "pick_snapshot",
    "snapshot_kind_of",
    "to_jsonable",
    "with_s3_uri",
    "with_source_arn",
]


def to_jsonable(value: Any) -> Any:
    """A copy of an AWS response made JSON-friendly: datetimes as ISO strings, no metadata."""
    if isinstance(value, Mapping):
        return {k: to_jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def export_s3_uri(export_task: Mapping[str, Any]) -> str:
    """Where an export writes: ``s3://{S3Bucket}/{S3Prefix}/{ExportTaskIdentifier}/``."""
    prefix = (export_task.get("S3Prefix") or "").strip("/")
    parts = (export_task.get("S3Bucket"), prefix, export_task.get("ExportTaskIdentifier"))
    return "s3://" + "/".join(p for p in parts if p) + "/"


def with_s3_uri(export_task: Mapping[str, Any]) -> dict[str, Any]:
    """An export task description (JSON-friendly already, as the hook returns it) with
    ``S3Uri`` added."""
    return {**export_task, "S3Uri": export_s3_uri(export_task)}


def with_source_arn(source: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot (or live cluster) description, JSON-friendly, with ``SourceArn`` for the
    start operator."""
    described = to_jsonable(source)
    described["SourceArn"] = (
        described.get("DBSnapshotArn")
        or described.get("DBClusterSnapshotArn")
        or described.get("DBClusterArn")
    )
    return described


def snapshot_kind_of(identifier: str) -> str | None:
    """For an export source's ARN: ``"db"`` (DB snapshot), ``"cluster"`` (cluster
    snapshot) or ``"live_cluster"`` (a DB cluster itself); None for a plain name."""
    if not identifier.startswith("arn:"):
        return None
    if ":cluster-snapshot:" in identifier:
        return "cluster"
    return "live_cluster" if ":cluster:" in identifier else "db"


def automated_snapshot_parts(identifier: str) -> tuple[str, str] | None:
    """``(instance or cluster, yyyymmdd)`` of an automated snapshot's name
    (``rds:orders-2026-11-29-03-10`` -> ``("orders", "20261129")``, the UTC day RDS took
    it); None for any other name."""
    match = re.match(r"^rds:(.+)-(\d{4})-(\d\d)-(\d\d)-\d\d-\d\d$", identifier)
    return (match.group(1), "".join(match.group(2, 3, 4))) if match else None


def is_automated_snapshot(identifier: str) -> bool:
    """True for an automated snapshot's name (``rds:...``) or ARN.

    AWS answers "not found" for such a name unless ``SnapshotType="automated"`` is given.
    """
    if identifier.startswith("arn:"):
        for marker in (":cluster-snapshot:", ":snapshot:"):
            if marker in identifier:
                return identifier.split(marker, 1)[1].startswith("rds:")
        return False
    return identifier.startswith("rds:")


def creation_time(snapshot: Mapping[str, Any]) -> datetime | None:
    """``SnapshotCreateTime`` (or the original's, for a copy); None while being created."""
    created = snapshot.get("SnapshotCreateTime") or snapshot.get("OriginalSnapshotCreateTime")
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    return created if isinstance(created, datetime) else None


def pick_snapshot(
    snapshots: Iterable[Mapping[str, Any]],
    created_after: datetime | None,
    created_before: datetime | None = None,
) -> dict[str, Any] | None:
    """The run's snapshot among a source's, with ``SourceArn``; None when none matches.

    With ``created_after``: the *earliest* snapshot created at or after it (and before
    ``created_before``), so a cleared or backfilled night picks its own snapshot, not a
    later night's. Without: the newest one (before ``created_before``). A snapshot still
    being created may not report its creation time yet: it counts as created now, i.e.
    after every dated one and before any ``created_before`` in the future.
    """

    def counts(snapshot: Mapping[str, Any]) -> bool:
        created = creation_time(snapshot)
        if created is None:
            return True
        after = created_after is None or created >= created_after
        return after and (created_before is None or created < created_before)

    def order(snapshot: Mapping[str, Any]) -> tuple[int, float]:
        created = creation_time(snapshot)
        return (1, 0.0) if created is None else (0, created.timestamp())

    candidates = [s for s in snapshots if counts(s)]
    if not candidates:
        return None
    chosen = min(candidates, key=order) if created_after is not None else max(candidates, key=order)
    return with_source_arn(chosen)
