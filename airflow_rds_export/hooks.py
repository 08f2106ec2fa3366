"""The hook that owns every AWS call of this package.

Operators, sensors and triggers never touch boto3: they ask :class:`RdsExportHook` and
decide with :mod:`airflow_rds_export.decisions`. Importing this module imports boto3, so
components import it inside ``execute`` / ``poke`` / ``run``, never at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_rds_export._base import export_s3_uri
from airflow_rds_export.decisions import EXPORT_NOT_FOUND_CODES, SNAPSHOT_NOT_FOUND_CODES

if TYPE_CHECKING:
    from types_boto3_rds.client import RDSClient
else:
    RDSClient = Any

__all__ = ["RdsExportHook", "error_code", "export_s3_uri", "to_jsonable"]

# Used unless the connection or the task sets its own ``retries``: the standard mode retries
# throttling and transient errors with capped exponential backoff and jitter, and never
# retries validation or permission errors.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 5}


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Message") or exc)
    return str(exc)


def to_jsonable(value: Any) -> Any:
    """A copy of an AWS response made JSON-friendly: datetimes as ISO strings, no metadata."""
    if isinstance(value, Mapping):
        return {k: to_jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def snapshot_kind_of(identifier: str) -> str | None:
    """``"db"`` or ``"cluster"`` for a snapshot ARN; None for a plain name."""
    if identifier.startswith("arn:"):
        return "cluster" if ":cluster-snapshot:" in identifier else "db"
    return None


class RdsExportHook(AwsGenericHook[RDSClient]):
    """Amazon RDS snapshot-export calls, with the Amazon provider's connection handling.

    Connections, assumed roles, ``endpoint_url`` and credentials all come from
    :class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsGenericHook`. Unless the
    connection (``config_kwargs``) or ``botocore_config`` sets ``retries``, botocore's
    ``standard`` retry mode is used.

    Describe methods return JSON-friendly dicts (datetimes as ISO strings), or None when
    the resource does not exist; other AWS errors are raised as botocore ``ClientError``.
    """

    hook_name = "Amazon RDS snapshot export"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "rds"
        super().__init__(*args, **kwargs)

    @property
    def config(self) -> Config:
        config = super().config
        if getattr(config, "retries", None) is None:
            config = config.merge(Config(retries=cast(Any, dict(DEFAULT_RETRIES))))
        return config

    # Export tasks ---------------------------------------------------------------------

    def describe_export_task(self, export_task_identifier: str) -> dict[str, Any] | None:
        """The export task's description, or None when AWS does not know it."""
        try:
            response = self.conn.describe_export_tasks(ExportTaskIdentifier=export_task_identifier)
        except ClientError as exc:
            _raise_unless_not_found(exc, EXPORT_NOT_FOUND_CODES)
            return None
        return _export_task_in(response, export_task_identifier)

    async def describe_export_task_async(
        self, client: Any, export_task_identifier: str
    ) -> dict[str, Any] | None:
        """As :meth:`describe_export_task`, on an aiobotocore client (for triggers)."""
        try:
            response = await client.describe_export_tasks(
                ExportTaskIdentifier=export_task_identifier
            )
        except ClientError as exc:
            _raise_unless_not_found(exc, EXPORT_NOT_FOUND_CODES)
            return None
        return _export_task_in(response, export_task_identifier)

    def start_export_task(
        self,
        *,
        export_task_identifier: str,
        source_arn: str,
        s3_bucket_name: str,
        iam_role_arn: str,
        kms_key_id: str,
        s3_prefix: str = "",
        export_only: list[str] | None = None,
    ) -> dict[str, Any]:
        """Start an export; returns the new task's description."""
        params: dict[str, Any] = {
            "ExportTaskIdentifier": export_task_identifier,
            "SourceArn": source_arn,
            "S3BucketName": s3_bucket_name,
            "IamRoleArn": iam_role_arn,
            "KmsKeyId": kms_key_id,
        }
        if s3_prefix:
            params["S3Prefix"] = s3_prefix
        if export_only:
            params["ExportOnly"] = list(export_only)
        return to_jsonable(self.conn.start_export_task(**params))

    def cancel_export_task(self, export_task_identifier: str) -> dict[str, Any]:
        """Ask AWS to cancel an export; returns its description (status CANCELING)."""
        return to_jsonable(
            self.conn.cancel_export_task(ExportTaskIdentifier=export_task_identifier)
        )

    # Snapshots ------------------------------------------------------------------------

    def describe_snapshot(
        self, identifier: str, snapshot_kind: str | None = None
    ) -> dict[str, Any] | None:
        """A DB or cluster snapshot by name or ARN, with ``SourceArn`` added; None if missing.

        ``snapshot_kind`` (``"db"`` or ``"cluster"``) is read from an ARN; for a plain name
        without it, DB snapshots are looked up first, then cluster snapshots.
        """
        for kind in _kinds_to_try(identifier, snapshot_kind):
            method, params, key = _snapshot_request(identifier, kind)
            try:
                response = getattr(self.conn, method)(**params)
            except ClientError as exc:
                _raise_unless_not_found(exc, SNAPSHOT_NOT_FOUND_CODES)
                continue
            if response.get(key):
                return with_source_arn(response[key][0])
        return None

    async def describe_snapshot_async(
        self, client: Any, identifier: str, snapshot_kind: str | None = None
    ) -> dict[str, Any] | None:
        """As :meth:`describe_snapshot`, on an aiobotocore client (for triggers)."""
        for kind in _kinds_to_try(identifier, snapshot_kind):
            method, params, key = _snapshot_request(identifier, kind)
            try:
                response = await getattr(client, method)(**params)
            except ClientError as exc:
                _raise_unless_not_found(exc, SNAPSHOT_NOT_FOUND_CODES)
                continue
            if response.get(key):
                return with_source_arn(response[key][0])
        return None

    def find_latest_snapshot(
        self,
        *,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: datetime | None = None,
    ) -> dict[str, Any] | None:
        """The newest snapshot of an instance or cluster, of a type, created after a time.

        A snapshot still being created may not report ``SnapshotCreateTime`` yet; it counts
        as the newest. None when no snapshot matches.
        """
        method, params, key = _latest_request(
            db_instance_identifier, db_cluster_identifier, snapshot_type
        )
        pages = cast(Any, self.conn).get_paginator(method).paginate(**params)
        return _newest([s for page in pages for s in page.get(key, [])], created_after)

    async def find_latest_snapshot_async(
        self,
        client: Any,
        *,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: datetime | None = None,
    ) -> dict[str, Any] | None:
        """As :meth:`find_latest_snapshot`, on an aiobotocore client (for triggers)."""
        method, params, key = _latest_request(
            db_instance_identifier, db_cluster_identifier, snapshot_type
        )
        snapshots = []
        async for page in client.get_paginator(method).paginate(**params):
            snapshots.extend(page.get(key, []))
        return _newest(snapshots, created_after)


def _raise_unless_not_found(exc: ClientError, not_found_codes: frozenset[str]) -> None:
    """Return for a not-found error (the caller answers None); raise anything else."""
    if error_code(exc) not in not_found_codes:
        raise exc


def _export_task_in(response: Mapping[str, Any], identifier: str) -> dict[str, Any] | None:
    for task in response.get("ExportTasks", []):
        if task.get("ExportTaskIdentifier") == identifier:
            return to_jsonable(task)
    return None


def _kinds_to_try(identifier: str, snapshot_kind: str | None) -> list[str]:
    kind = snapshot_kind or snapshot_kind_of(identifier)
    return [kind] if kind else ["db", "cluster"]


def _snapshot_request(identifier: str, kind: str) -> tuple[str, dict[str, Any], str]:
    if kind == "cluster":
        return (
            "describe_db_cluster_snapshots",
            {"DBClusterSnapshotIdentifier": identifier},
            "DBClusterSnapshots",
        )
    return "describe_db_snapshots", {"DBSnapshotIdentifier": identifier}, "DBSnapshots"


def _latest_request(
    db_instance_identifier: str | None, db_cluster_identifier: str | None, snapshot_type: str
) -> tuple[str, dict[str, Any], str]:
    if db_cluster_identifier:
        return (
            "describe_db_cluster_snapshots",
            {"DBClusterIdentifier": db_cluster_identifier, "SnapshotType": snapshot_type},
            "DBClusterSnapshots",
        )
    return (
        "describe_db_snapshots",
        {"DBInstanceIdentifier": db_instance_identifier or "", "SnapshotType": snapshot_type},
        "DBSnapshots",
    )


def _newest(
    snapshots: list[Mapping[str, Any]], created_after: datetime | None
) -> dict[str, Any] | None:
    candidates = [s for s in snapshots if _created_after(s, created_after)]
    if not candidates:
        return None
    return with_source_arn(max(candidates, key=_creation_sort_key))


def with_source_arn(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot description, JSON-friendly, with ``SourceArn`` for the start operator."""
    described = to_jsonable(snapshot)
    described["SourceArn"] = described.get("DBSnapshotArn") or described.get("DBClusterSnapshotArn")
    return described


def _creation_time(snapshot: Mapping[str, Any]) -> datetime | None:
    created = snapshot.get("SnapshotCreateTime") or snapshot.get("OriginalSnapshotCreateTime")
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    return created if isinstance(created, datetime) else None


def _created_after(snapshot: Mapping[str, Any], created_after: datetime | None) -> bool:
    if created_after is None:
        return True
    created = _creation_time(snapshot)
    return created is None or created >= created_after


def _creation_sort_key(snapshot: Mapping[str, Any]) -> tuple[int, float]:
    created = _creation_time(snapshot)
    return (1, 0.0) if created is None else (0, created.timestamp())
