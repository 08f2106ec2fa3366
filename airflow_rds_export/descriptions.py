"""AWS descriptions made JSON-friendly, and what this package reads off them.

Pure functions over the dicts DescribeExportTasks / DescribeDBSnapshots /
DescribeDBClusterSnapshots return: no AWS call, no Airflow, no botocore.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

__all__ = [
    "creation_time",
    "export_s3_uri",
    "is_automated_snapshot",
    "newest_snapshot",
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
    """An export task description, JSON-friendly, with ``S3Uri`` added."""
    described = to_jsonable(export_task)
    described["S3Uri"] = export_s3_uri(described)
    return described


def with_source_arn(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot description, JSON-friendly, with ``SourceArn`` for the start operator."""
    described = to_jsonable(snapshot)
    described["SourceArn"] = described.get("DBSnapshotArn") or described.get("DBClusterSnapshotArn")
    return described


def snapshot_kind_of(identifier: str) -> str | None:
    """``"db"`` or ``"cluster"`` for a snapshot ARN; None for a plain name."""
    if identifier.startswith("arn:"):
        return "cluster" if ":cluster-snapshot:" in identifier else "db"
    return None


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


def newest_snapshot(
    snapshots: Iterable[Mapping[str, Any]], created_after: datetime | None
) -> dict[str, Any] | None:
    """The newest snapshot created at or after ``created_after``, with ``SourceArn``.

    A snapshot still being created may not report its creation time yet; it counts as the
    newest. None when no snapshot matches.
    """

    def counts(snapshot: Mapping[str, Any]) -> bool:
        created = creation_time(snapshot)
        return created_after is None or created is None or created >= created_after

    def newness(snapshot: Mapping[str, Any]) -> tuple[int, float]:
        created = creation_time(snapshot)
        return (1, 0.0) if created is None else (0, created.timestamp())

    candidates = [s for s in snapshots if counts(s)]
    return with_source_arn(max(candidates, key=newness)) if candidates else None
