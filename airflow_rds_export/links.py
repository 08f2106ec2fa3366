"""Console links on the task: the export task in the RDS console, its data in S3, and the
snapshot a sensor waited for.

The Amazon provider's pattern (``aws/links/base_aws.py``): while the task runs, its driver
persists the link's *values* (Region, partition, identifiers) to XCom, and ``get_link``
formats them into a URL. Airflow 3 calls ``get_link`` on the worker at the end of every run
of the task (success, failure, deferral, reschedule) and stores the URL for the UI, so:

* persist before the run ends, including before raising a skip or a failure;
* persist before deferring: XComs survive a deferral, and a trigger that ends the task
  itself (``end_from_trigger``) leaves the links of the run that deferred;
* persist in every run: a reschedule (sensor ``mode="reschedule"``, operator
  ``AirflowRescheduleException``) clears the task's XComs when the next try starts.

So a link shows once a run of the task ends: at once for a sensor (each poke in
reschedule mode) or a deferring task, only at the end for a wait held on a worker.

Unlike the provider's links, importing this module imports neither boto3 / botocore nor
``airflow.providers.amazon``. Parsing a DAG file does not import it:
``operator_extra_links`` is :class:`~airflow_rds_export.outputs.ConsoleLinks`, which
imports it when Airflow first reads the links (serialising the DAG, ``.expand()``, the
task running). XCom is imported inside ``get_link``, which runs only on a worker.

URLs (``{console}`` is ``https://{region}.console.{domain}``, the Regional console
endpoint; ``{domain}`` is ``aws.amazon.com`` (aws), ``amazonaws.cn`` (aws-cn) or
``amazonaws-us-gov.com`` (aws-us-gov); the ISO and EU sovereign partitions have no public
console, so their links are empty):

* export task: ``{console}/rds/home?region={region}#export-task:id={id};source-location=
  exports-in-s3``. Not verified against a live console: the only public sample is a URL
  copied from the console's address bar (aws partition). The values persisted do not
  depend on it: correcting the format here corrects the links of every later run.
* exported data: ``{console}/s3/buckets/{bucket}?region={region}&prefix={prefix}/{id}/``
  (the prefix URL-encoded, ``/`` kept): the path and query of the provider's EMR S3 links.
* DB snapshot: ``{console}/rds/home?region={region}#db-snapshot:id={id}``, the form in
  URLs copied from the console and in public console-link tools; AWS's own RDS event
  notifications use the older ``#snapshot:id={id}``.
* DB cluster snapshot: ``...#snapshot:engine=aurora;id={id}``, the form AWS's own RDS event
  notifications link to (no public sample of the current console's form was found).
* DB cluster (an export of a live cluster): ``...#database:id={id};is-cluster=true``.

The Regional console endpoints are documented for the aws partition ("AWS Management
Console endpoints"); for aws-cn and aws-us-gov the same paths on
``{region}.console.amazonaws.cn`` / ``{region}.console.amazonaws-us-gov.com`` are what
AWS samples and public tools use, not verified here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_rds_export.descriptions import export_s3_uri
from airflow_rds_export.partitions import PARTITIONS
from airflow_rds_export.validation import region_of_arn

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "CONSOLE_DOMAINS",
    "EXPORT_LINKS",
    "SNAPSHOT_LINKS",
    "RdsExportTaskLink",
    "RdsSnapshotLink",
    "S3ExportPrefixLink",
    "export_link_values",
    "persist_export_links",
    "persist_snapshot_link",
    "snapshot_link_values",
]

log = logging.getLogger(__name__)

#: Partition -> the domain of its public console; partitions not named have none.
CONSOLE_DOMAINS: dict[str, str] = {
    "aws": "aws.amazon.com",
    "aws-cn": "amazonaws.cn",
    "aws-us-gov": "amazonaws-us-gov.com",
}


def _partition_of(region: str) -> str | None:
    """The partition a Region belongs to (botocore's lists, then its patterns); None for
    anything else, e.g. a typo or a pseudo-Region such as ``aws-global``."""
    for partition, data in PARTITIONS.items():
        if region in data["regions"] and not region.endswith("-global"):
            return partition
    for partition, data in PARTITIONS.items():
        if re.fullmatch(str(data["region_regex"]), region):
            return partition
    return None


def _console(values: Mapping[str, Any]) -> str | None:
    """``https://{region}.console.{domain}`` for persisted values; None without a console."""
    region = values.get("region_name")
    domain = CONSOLE_DOMAINS.get(str(values.get("partition")))
    if not isinstance(region, str) or not region or domain is None:
        return None
    return f"https://{region}.console.{domain}"


def _fragment_value(identifier: str) -> str:
    # Snapshot names hold ':' (``rds:...``), which the console's fragments carry as is.
    return quote(identifier, safe=":")


class _ConsoleLink(BaseOperatorLink):
    """A link whose values the driver persists to XCom under ``key`` at run time."""

    name: ClassVar[str]
    key: ClassVar[str]

    def format_link(self, values: Mapping[str, Any]) -> str:
        """The URL for persisted values; "" when they cannot make one."""
        raise NotImplementedError

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL from the values this task instance persisted; "" when there are none
        (not persisted yet, ``do_xcom_push=False``, a partition without a console)."""
        # Imported here: the resolved XCom backend, the one ``ti.xcom_push`` wrote through.
        from airflow.sdk.execution_time.xcom import XCom

        try:
            values = XCom.get_value(key=self.key, ti_key=ti_key)
        except Exception:
            log.debug("Could not read XCom %s for link %r", self.key, self.name, exc_info=True)
            return ""
        return self.format_link(values) if isinstance(values, Mapping) else ""


class RdsExportTaskLink(_ConsoleLink):
    """The export task in the RDS console (its status, progress and failure cause)."""

    name = "RDS Export Task"
    key = "rds_export_task_link"

    def format_link(self, values: Mapping[str, Any]) -> str:
        console = _console(values)
        identifier = values.get("export_task_identifier")
        if console is None or not identifier:
            return ""
        return (
            f"{console}/rds/home?region={values['region_name']}"
            f"#export-task:id={_fragment_value(str(identifier))};source-location=exports-in-s3"
        )


class S3ExportPrefixLink(_ConsoleLink):
    """The folder the export writes to, ``{S3Prefix}/{ExportTaskIdentifier}/``, in the S3
    console."""

    name = "Exported Data in S3"
    key = "rds_export_s3_prefix_link"

    def format_link(self, values: Mapping[str, Any]) -> str:
        console = _console(values)
        bucket = values.get("bucket")
        prefix = values.get("prefix") or ""
        if console is None or not bucket:
            return ""
        return (
            f"{console}/s3/buckets/{quote(str(bucket), safe='')}"
            f"?region={values['region_name']}&prefix={quote(str(prefix), safe='/')}"
        )


#: Snapshot kinds -> the RDS console fragment before ``id=``.
_SNAPSHOT_FRAGMENTS = {
    "db-snapshot": "db-snapshot:",
    "cluster-snapshot": "snapshot:engine=aurora;",
    "cluster": "database:",
}


class RdsSnapshotLink(_ConsoleLink):
    """The snapshot (or, for an export of a live cluster, the cluster) in the RDS
    console."""

    name = "RDS Snapshot"
    key = "rds_export_snapshot_link"

    def format_link(self, values: Mapping[str, Any]) -> str:
        console = _console(values)
        fragment = _SNAPSHOT_FRAGMENTS.get(str(values.get("kind")))
        identifier = values.get("identifier")
        if console is None or fragment is None or not identifier:
            return ""
        suffix = ";is-cluster=true" if values["kind"] == "cluster" else ""
        return (
            f"{console}/rds/home?region={values['region_name']}"
            f"#{fragment}id={_fragment_value(str(identifier))}{suffix}"
        )


#: ``operator_extra_links`` of the start and cancel operators and the export sensors.
EXPORT_LINKS: tuple[_ConsoleLink, ...] = (RdsExportTaskLink(), S3ExportPrefixLink())
#: ``operator_extra_links`` of the snapshot sensors (no export exists yet).
SNAPSHOT_LINKS: tuple[_ConsoleLink, ...] = (RdsSnapshotLink(),)


def export_link_values(
    description: Mapping[str, Any] | None, region_name: str | None
) -> dict[str, dict[str, Any]]:
    """The values of both export links (XCom key -> value) from an export task's
    description (DescribeExportTasks' ``ExportTaskIdentifier``, ``S3Bucket``, ``S3Prefix``,
    ``SourceArn``); empty without a description, a Region or an identifier.

    ``region_name`` is the task's Region; when unknown, the Region in ``SourceArn``."""
    if not description:
        return {}
    where = _where(description, region_name)
    identifier = description.get("ExportTaskIdentifier")
    if where is None or not identifier:
        return {}
    values: dict[str, dict[str, Any]] = {
        RdsExportTaskLink.key: {**where, "export_task_identifier": identifier}
    }
    bucket = description.get("S3Bucket")
    if bucket:
        prefix = export_s3_uri(description).removeprefix(f"s3://{bucket}/")
        values[S3ExportPrefixLink.key] = {**where, "bucket": bucket, "prefix": prefix}
    return values


def snapshot_link_values(
    description: Mapping[str, Any] | None, region_name: str | None
) -> dict[str, dict[str, Any]]:
    """The snapshot link's values (XCom key -> value) from a DescribeDBSnapshots /
    DescribeDBClusterSnapshots (or DescribeDBClusters, for a live cluster) description, as
    the snapshot sensors return it (with ``SourceArn``); empty when there is no snapshot."""
    if not description:
        return {}
    where = _where(description, region_name)
    kind, identifier = _snapshot_of(description)
    if where is None or kind is None:
        return {}
    return {RdsSnapshotLink.key: {**where, "kind": kind, "identifier": identifier}}


def persist_export_links(
    context: Mapping[str, Any] | None,
    description: Mapping[str, Any] | None,
    region_name: str | None,
) -> None:
    """Persist both export links (:func:`export_link_values`) to the running task's XCom.

    Skipped silently when there are no values, or the task instance cannot push
    (``do_xcom_push=False``, no ``ti``); a failed push only logs a warning: links never
    fail a task.
    """
    for key, value in export_link_values(description, region_name).items():
        _push(context, key, value)


def persist_snapshot_link(
    context: Mapping[str, Any] | None,
    description: Mapping[str, Any] | None,
    region_name: str | None,
) -> None:
    """Persist the snapshot link (:func:`snapshot_link_values`), as
    :func:`persist_export_links` does."""
    for key, value in snapshot_link_values(description, region_name).items():
        _push(context, key, value)


def _snapshot_of(description: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(kind, identifier) of a snapshot or cluster description; (None, None) for neither.

    In this order: a cluster snapshot's description names its cluster too."""
    for kind, name_key in (
        ("db-snapshot", "DBSnapshotIdentifier"),
        ("cluster-snapshot", "DBClusterSnapshotIdentifier"),
        ("cluster", "DBClusterIdentifier"),
    ):
        if description.get(name_key):
            return kind, str(description[name_key])
    return None, None


def _where(description: Mapping[str, Any], region_name: str | None) -> dict[str, str] | None:
    """Region and partition: the task's Region, else the one in ``SourceArn``."""
    source_arn = description.get("SourceArn")
    region = region_name or (region_of_arn(source_arn) if isinstance(source_arn, str) else None)
    partition = _partition_of(region) if region else None
    if region is None or partition is None:
        return None
    return {"region_name": region, "partition": partition}


def _push(context: Mapping[str, Any] | None, key: str, value: dict[str, Any]) -> None:
    """``ti.xcom_push(key, value)`` unless the task does not push XComs, as the provider's
    ``BaseAwsLink.persist``; never raises. No context (``sensor.poke(None)`` in a unit
    test): nothing to push to."""
    if not context:
        return
    ti = context.get("ti")
    task = context.get("task") or getattr(ti, "task", None)
    push = getattr(ti, "xcom_push", None)
    if push is None or not getattr(task, "do_xcom_push", True):
        return
    try:
        push(key=key, value=value)
    except Exception as exc:
        log.warning("Could not save the %s console link (%s); the task goes on", key, exc)
