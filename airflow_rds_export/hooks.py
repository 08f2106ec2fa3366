"""The hook that owns every AWS call of this package.

Operators, sensors and triggers never touch boto3: they ask :class:`RdsExportHook`, and
the wait specs (:mod:`airflow_rds_export.waits`) decide with
:mod:`airflow_rds_export.decisions`. Importing this module imports boto3, so the modules
DAG files import (operators, sensors) reach it only inside ``execute`` / ``poke``.

Every describe comes in a blocking form (workers) and an ``_async`` form taking an
aiobotocore client (triggers); both build the same request and read the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from asgiref.sync import sync_to_async
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_rds_export.descriptions import (
    is_automated_snapshot,
    pick_snapshot,
    snapshot_kind_of,
    to_jsonable,
    with_source_arn,
)
from airflow_rds_export.errors import AwsError

if TYPE_CHECKING:
    from types_boto3_rds.client import RDSClient
else:
    RDSClient = Any

__all__ = ["PAGE_SIZE", "RdsExportHook", "SnapshotRequest"]

# Used unless the connection or the task sets its own ``retries``: the standard mode retries
# throttling and transient errors with capped exponential backoff and jitter, and never
# retries validation or permission errors.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 5}
#: ``MaxRecords`` of every filtered describe (RDS accepts 20-100).
PAGE_SIZE = 100


class SnapshotRequest:
    """How to ask for snapshots of one kind (``"db"`` or ``"cluster"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "live_cluster":  # a DB cluster is an export source too (SourceType CLUSTER)
            self.method, self.result_key = "describe_db_clusters", "DBClusters"
            self.name_key = self.source_param = "DBClusterIdentifier"
            self.id_filter = "db-cluster-id"
            return
        cluster = kind == "cluster"
        self.method = "describe_db_cluster_snapshots" if cluster else "describe_db_snapshots"
        self.result_key = "DBClusterSnapshots" if cluster else "DBSnapshots"
        self.name_key = "DBClusterSnapshotIdentifier" if cluster else "DBSnapshotIdentifier"
        self.id_filter = "db-cluster-snapshot-id" if cluster else "db-snapshot-id"
        self.source_param = "DBClusterIdentifier" if cluster else "DBInstanceIdentifier"

    def by_name(self, identifier: str) -> dict[str, Any]:
        """Parameters describing one snapshot by name or ARN.

        AWS: "If this identifier is for an automated snapshot, the SnapshotType parameter
        must also be specified"; without it the snapshot may be reported missing.
        """
        params: dict[str, Any] = {self.name_key: identifier}
        if self.kind != "live_cluster" and is_automated_snapshot(identifier):
            params["SnapshotType"] = "automated"
        return params

    def by_names(self, identifiers: Sequence[str], *, automated: bool) -> dict[str, Any]:
        """Parameters describing many snapshots by name in one call (a filter)."""
        params: dict[str, Any] = {
            "Filters": [{"Name": self.id_filter, "Values": list(identifiers)}],
            "MaxRecords": PAGE_SIZE,
        }
        if automated:
            params["SnapshotType"] = "automated"
        return params


def _snapshots_of_source(
    db_instance_identifier: str | None, db_cluster_identifier: str | None, snapshot_type: str
) -> tuple[SnapshotRequest, dict[str, Any]]:
    """How to list the snapshots of one instance or cluster, of one type."""
    request = SnapshotRequest("cluster" if db_cluster_identifier else "db")
    source = db_cluster_identifier or db_instance_identifier or ""
    return request, {request.source_param: source, "SnapshotType": snapshot_type}


def snapshot_kinds(identifier: str, snapshot_kind: str | None) -> list[str]:
    """The kinds to look a snapshot up in: the one given or read from an ARN, else both."""
    kind = snapshot_kind or snapshot_kind_of(identifier)
    return [kind] if kind else ["db", "cluster"]


def _not_found_is_none(exc: ClientError) -> None:
    """Return for a not-found error (the caller answers None); raise anything else."""
    if not AwsError.of(exc).not_found:
        raise exc


def _export_task_in(response: Mapping[str, Any], identifier: str) -> dict[str, Any] | None:
    for task in response.get("ExportTasks", []):
        if str(task.get("ExportTaskIdentifier", "")).lower() == identifier.lower():
            return to_jsonable(task)
    return None


def _first_snapshot(response: Mapping[str, Any], request: SnapshotRequest) -> dict[str, Any]:
    found = response.get(request.result_key) or []
    return with_source_arn(found[0]) if found else {}


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
            _not_found_is_none(exc)
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
            _not_found_is_none(exc)
            return None
        return _export_task_in(response, export_task_identifier)

    async def describe_export_tasks_async(
        self, client: Any, export_task_identifiers: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Many export tasks in one filtered call (paged): found ones by lower-cased id."""
        params = {
            "Filters": [
                {"Name": "export-task-identifier", "Values": list(export_task_identifiers)}
            ],
            "MaxRecords": PAGE_SIZE,
        }
        tasks = await _all_pages(client.describe_export_tasks, params, "ExportTasks")
        return {str(t.get("ExportTaskIdentifier", "")).lower(): to_jsonable(t) for t in tasks}

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

    async def cancel_export_task_async(
        self, client: Any, export_task_identifier: str
    ) -> dict[str, Any]:
        """As :meth:`cancel_export_task`, on an aiobotocore client (for triggers)."""
        return to_jsonable(
            await client.cancel_export_task(ExportTaskIdentifier=export_task_identifier)
        )

    # Snapshots ------------------------------------------------------------------------

    def describe_snapshot(
        self, identifier: str, snapshot_kind: str | None = None
    ) -> dict[str, Any] | None:
        """A DB or cluster snapshot by name or ARN, with ``SourceArn`` added; None if missing.

        ``snapshot_kind`` (``"db"`` or ``"cluster"``) is read from an ARN; for a plain name
        without it, DB snapshots are looked up first, then cluster snapshots.
        """
        for kind in snapshot_kinds(identifier, snapshot_kind):
            request = SnapshotRequest(kind)
            try:
                response = getattr(self.conn, request.method)(**request.by_name(identifier))
            except ClientError as exc:
                _not_found_is_none(exc)
                continue
            found = _first_snapshot(response, request)
            if found:
                return found
        return None

    def describe_source_database(self, source: Mapping[str, Any]) -> dict[str, Any] | None:
        """The DB instance or cluster an export source was taken of, for lineage: its
        ``Endpoint``, ``Port``, database name and ``Engine`` (DescribeDBInstances /
        DescribeDBClusters); None when it no longer exists or the source names neither.

        ``source`` is :meth:`describe_snapshot`'s answer for the export's ``SourceArn``;
        a live cluster's description (an export of a cluster) is the database itself.
        """
        if source.get("DBClusterArn") and not source.get("DBClusterSnapshotIdentifier"):
            return dict(source)
        instance = source.get("DBInstanceIdentifier")
        cluster = source.get("DBClusterIdentifier")
        described: Sequence[Any]
        try:
            if instance:
                described = self.conn.describe_db_instances(DBInstanceIdentifier=instance).get(
                    "DBInstances", []
                )
            elif cluster:
                described = self.conn.describe_db_clusters(DBClusterIdentifier=cluster).get(
                    "DBClusters", []
                )
            else:
                return None
        except ClientError as exc:
            _not_found_is_none(exc)
            return None
        return to_jsonable(described[0]) if described else None

    async def describe_snapshot_async(
        self, client: Any, identifier: str, snapshot_kind: str | None = None
    ) -> dict[str, Any] | None:
        """As :meth:`describe_snapshot`, on an aiobotocore client (for triggers)."""
        for kind in snapshot_kinds(identifier, snapshot_kind):
            request = SnapshotRequest(kind)
            try:
                response = await getattr(client, request.method)(**request.by_name(identifier))
            except ClientError as exc:
                _not_found_is_none(exc)
                continue
            found = _first_snapshot(response, request)
            if found:
                return found
        return None

    async def describe_snapshots_async(
        self, client: Any, identifiers: Sequence[str], snapshot_kind: str, *, automated: bool
    ) -> dict[str, dict[str, Any]]:
        """Many snapshots of one kind by name in one filtered call (paged).

        ``automated``: the names are automated snapshots' (``rds:...``), which AWS returns
        only when asked with ``SnapshotType="automated"``. Found ones by lower-cased name,
        with ``SourceArn``.
        """
        request = SnapshotRequest(snapshot_kind)
        params = request.by_names(identifiers, automated=automated)
        found = await _all_pages(getattr(client, request.method), params, request.result_key)
        return {str(s.get(request.name_key, "")).lower(): with_source_arn(s) for s in found}

    def find_latest_snapshot(
        self,
        *,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> dict[str, Any] | None:
        """The run's snapshot of an instance or cluster, of a type; None if none matches.

        With ``created_after``, the earliest created at or after it (and before
        ``created_before``); without, the newest: see
        :func:`~airflow_rds_export.descriptions.pick_snapshot`.
        """
        request, params = _snapshots_of_source(
            db_instance_identifier, db_cluster_identifier, snapshot_type
        )
        pages = cast(Any, self.conn).get_paginator(request.method).paginate(**params)
        return pick_snapshot(
            (s for page in pages for s in page.get(request.result_key, [])),
            created_after,
            created_before,
        )

    async def find_latest_snapshot_async(
        self,
        client: Any,
        *,
        db_instance_identifier: str | None = None,
        db_cluster_identifier: str | None = None,
        snapshot_type: str = "automated",
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> dict[str, Any] | None:
        """As :meth:`find_latest_snapshot`, on an aiobotocore client (for triggers)."""
        request, params = _snapshots_of_source(
            db_instance_identifier, db_cluster_identifier, snapshot_type
        )
        snapshots = []
        async for page in client.get_paginator(request.method).paginate(**params):
            snapshots.extend(page.get(request.result_key, []))
        return pick_snapshot(snapshots, created_after, created_before)

    # Export output in S3 (table verification) -----------------------------------------
    #
    # The export writes its metadata files at the top of its folder, its data one level
    # deeper ({db}/...): a listing of ``{folder}export_`` with the ``/`` delimiter returns
    # the metadata files alone, in one page even for very large exports.

    def s3_client(self) -> Any:
        """A boto3 S3 client from this hook's session, endpoint and configuration."""
        return self.get_session(region_name=self.region_name).client(
            "s3",
            endpoint_url=self.conn_config.get_service_endpoint_url(service_name="s3"),
            config=self.config,
            verify=self.verify,
        )

    async def s3_client_async(self) -> Any:
        """An aiobotocore S3 client (an async context manager), as :meth:`s3_client`."""

        def create() -> Any:
            session: Any = self.get_session(region_name=self.region_name, deferrable=True)
            return session.create_client(
                "s3",
                endpoint_url=self.conn_config.get_service_endpoint_url(service_name="s3"),
                config=self.config,
                verify=self.verify,
            )

        return await sync_to_async(create)()

    def list_export_metadata(self, client: Any, bucket: str, folder: str) -> list[str]:
        """The keys of the metadata files directly in an export's ``folder`` (one page)."""
        response = client.list_objects_v2(**_metadata_listing(bucket, folder))
        return [item["Key"] for item in response.get("Contents") or []]

    async def list_export_metadata_async(self, client: Any, bucket: str, folder: str) -> list[str]:
        """As :meth:`list_export_metadata`, on an aiobotocore S3 client."""
        response = await client.list_objects_v2(**_metadata_listing(bucket, folder))
        return [item["Key"] for item in response.get("Contents") or []]

    def read_object(self, client: Any, bucket: str, key: str) -> bytes:
        """An object's body (metadata files are small: kilobytes to a few MB)."""
        return cast(bytes, client.get_object(Bucket=bucket, Key=key)["Body"].read())

    async def read_object_async(self, client: Any, bucket: str, key: str) -> bytes:
        """As :meth:`read_object`, on an aiobotocore S3 client."""
        response = await client.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            return cast(bytes, await body.read())


def _metadata_listing(bucket: str, folder: str) -> dict[str, Any]:
    return {"Bucket": bucket, "Prefix": f"{folder}export_", "Delimiter": "/", "MaxKeys": 1000}


async def _all_pages(method: Any, params: dict[str, Any], result_key: str) -> list[Any]:
    """Every item a filtered describe returns, following ``Marker``.

    A filter matching nothing answers an empty list; should AWS answer "not found"
    instead, that means the same: none of them exists.
    """
    items: list[Any] = []
    marker: str | None = None
    while True:
        try:
            response = await method(**params, **({"Marker": marker} if marker else {}))
        except ClientError as exc:
            _not_found_is_none(exc)
            return items
        items.extend(response.get(result_key) or [])
        marker = response.get("Marker")
        if not marker:
            return items
