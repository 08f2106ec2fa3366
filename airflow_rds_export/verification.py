"""Verify a COMPLETE export table by table: read what it reports, then judge it.

AWS reports an export COMPLETE even when tables were skipped or failed. After COMPLETE, a
wait reads the task's ``WarningMessage`` and the metadata files the export wrote at the top
of its folder (one ``ListObjectsV2`` page, then one ``GetObject`` per metadata file),
parses them tolerantly (:mod:`airflow_rds_export.export_metadata`) and judges them
(:func:`~airflow_rds_export.decisions.table_verdict`,
:func:`~airflow_rds_export.decisions.decide_tables`). Reading S3 is the only I/O here,
blocking on a worker or async in the triggerer; everything else is shared.

Unreadable metadata never fails a task: a denied or failed read is one warning naming the
object and the permission to grant, and the WarningMessage alone decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from airflow_rds_export.decisions import (
    Decision,
    TablesVerdict,
    decide_tables,
    decide_transient_error,
    describe_unreadable_metadata,
    is_access_denied,
    table_verdict,
)
from airflow_rds_export.errors import AwsError
from airflow_rds_export.export_metadata import (
    ExportTables,
    merge_tables_info,
    metadata_keys,
    parse_export_info,
    parse_warning_message,
)

if TYPE_CHECKING:
    from airflow_rds_export.hooks import RdsExportHook

__all__ = [
    "MetadataRead",
    "Verification",
    "export_folder",
    "read_tables",
    "verify",
    "verify_async",
]


class MetadataRead(NamedTuple):
    """What could be read of an export's metadata: the bodies by key (None: unreadable),
    the export_info key (None: not listed), and one warning per failed S3 call."""

    documents: dict[str, bytes | None]
    info_key: str | None
    tables_keys: tuple[str, ...]
    warnings: tuple[str, ...]
    #: S3 throttled, answered 5xx or could not be reached: verify again later.
    busy: str | None = None


class Verification(NamedTuple):
    """A verified export: the decision, the description with ``Tables``, and warnings."""

    decision: Decision
    description: dict[str, Any]
    warnings: tuple[str, ...]
    transient: bool = False

    def as_check(self) -> tuple[Decision, dict[str, Any], bool, tuple[str, ...]]:
        """The fields of a :class:`~airflow_rds_export.waits.Check`."""
        return self.decision, self.description, self.transient, self.warnings


def export_folder(description: Mapping[str, Any]) -> tuple[str, str]:
    """The export's bucket and folder (``{prefix}/{id}/``, or ``{id}/`` without a prefix)."""
    prefix = (description.get("S3Prefix") or "").strip("/")
    identifier = description.get("ExportTaskIdentifier") or ""
    folder = f"{prefix}/{identifier}/" if prefix else f"{identifier}/"
    return str(description.get("S3Bucket") or ""), folder


def judge_tables(
    description: Mapping[str, Any],
    read: MetadataRead,
    *,
    expected_tables: Sequence[str],
    on_table_failure: str,
) -> Verification:
    """Judge what was read: the verdict joins the description (``Tables``) and decides.

    A read that S3 was too busy to answer is no verdict: the check is transient, and the
    driver verifies again after its backoff (as for a busy describe)."""
    identifier = str(description.get("ExportTaskIdentifier") or "")
    bucket, folder = export_folder(description)
    if read.busy is not None:
        decision = decide_transient_error(
            f"Export task {identifier} (verifying its tables in s3://{bucket}/{folder})",
            read.busy,
        )
        return Verification(decision, dict(description), read.warnings, transient=True)
    warning = parse_warning_message(description.get("WarningMessage"))
    info = None
    if read.info_key is not None:
        info = parse_export_info(f"s3://{bucket}/{read.info_key}", read.documents[read.info_key])
    tables = None
    if read.tables_keys or read.info_key is not None:
        tables = merge_tables_info(
            {f"s3://{bucket}/{key}": read.documents[key] for key in read.tables_keys},
            folder=f"s3://{bucket}/{folder}",
        )
    verdict: TablesVerdict = table_verdict(
        warning, tables, tuple(expected_tables), export_info=info
    )
    decision = decide_tables(verdict, resource=identifier, on_table_failure=on_table_failure)
    warnings = [*read.warnings, *verdict.notes]
    if decision.action == "done" and not verdict.clean:  # on_table_failure="warn"
        warnings.append(decision.reason)
    return Verification(decision, {**description, "Tables": verdict.to_jsonable()}, tuple(warnings))


# --- reading: one sequence of steps, driven blocking or async ------------------------------

#: A read step: ("list", folder) or ("get", key); the driver sends back the result or the
#: exception the S3 call raised.
Step = tuple[str, str]
Reading = Generator[Step, Any, MetadataRead]


def _reading(identifier: str, bucket: str, folder: str) -> Reading:
    """The metadata reads of one export, as steps (the driver makes the calls)."""
    warnings: list[str] = []
    listed = yield ("list", folder)
    if isinstance(listed, Exception):
        error = AwsError.of(listed)
        if error.transient:
            return MetadataRead({}, None, (), (), busy=_busy(error))
        warnings.append(_unreadable("list", bucket, folder, error))
        return MetadataRead({}, None, (), tuple(warnings))
    info_key, tables_keys = metadata_keys(listed, identifier)
    if info_key is None and not tables_keys:
        warnings.append(
            f"Export metadata: no export_info or export_tables_info file of {identifier} in "
            f"s3://{bucket}/{folder}; the export's tables are judged from its WarningMessage "
            "alone. To do: check that nothing deletes or moves the export's output"
        )
    documents: dict[str, bytes | None] = {}
    denied = False
    for key in ([info_key] if info_key else []) + list(tables_keys):
        # One denied read says it all: the others would be denied too.
        body = None if denied else (yield ("get", key))
        if isinstance(body, Exception):
            error = AwsError.of(body)
            if error.transient:
                return MetadataRead({}, None, (), (), busy=_busy(error))
            warnings.append(_unreadable("get", bucket, key, error))
            denied = is_access_denied(error.code, error.http_status)
            body = None
        documents[key] = body
    return MetadataRead(documents, info_key, tables_keys, tuple(warnings))


def _busy(error: AwsError) -> str:
    return error.code or ("connection failed" if error.unreachable else error.message)


def _unreadable(action: str, bucket: str, where: str, error: AwsError) -> str:
    return describe_unreadable_metadata(action, bucket, where, error.code, error.http_status)


def _drive(reading: Reading, call: Callable[[Step], Any]) -> MetadataRead:
    step = next(reading)
    while True:
        try:
            result = call(step)
        except Exception as exc:
            result = exc
        try:
            step = reading.send(result)
        except StopIteration as done:
            return cast(MetadataRead, done.value)


async def _drive_async(reading: Reading, call: Callable[[Step], Awaitable[Any]]) -> MetadataRead:
    step = next(reading)
    while True:
        try:
            result = await call(step)
        except Exception as exc:
            result = exc
        try:
            step = reading.send(result)
        except StopIteration as done:
            return cast(MetadataRead, done.value)


def _read(hook: RdsExportHook, description: Mapping[str, Any]) -> MetadataRead:
    """Read (blocking) what a COMPLETE export wrote about itself."""
    bucket, folder = export_folder(description)
    client = hook.s3_client()

    def call(step: Step) -> Any:
        action, where = step
        if action == "list":
            return hook.list_export_metadata(client, bucket, where)
        return hook.read_object(client, bucket, where)

    identifier = str(description.get("ExportTaskIdentifier") or "")
    return _drive(_reading(identifier, bucket, folder), call)


def verify(
    hook: RdsExportHook,
    description: Mapping[str, Any],
    *,
    expected_tables: Sequence[str] = (),
    on_table_failure: str = "fail",
) -> Verification:
    """Read (blocking) and judge a COMPLETE export's tables."""
    return judge_tables(
        description,
        _read(hook, description),
        expected_tables=expected_tables,
        on_table_failure=on_table_failure,
    )


def read_tables(hook: RdsExportHook, description: Mapping[str, Any]) -> ExportTables | None:
    """Read (blocking) a COMPLETE export's ``export_tables_info`` files, for lineage: its
    tables with their statuses and sizes; None when none could be read (the task's own
    verification, which reads the same files, has warned why)."""
    bucket, folder = export_folder(description)
    read = _read(hook, description)
    readable = {key: read.documents.get(key) for key in read.tables_keys}
    if read.busy is not None or not any(body is not None for body in readable.values()):
        return None
    return merge_tables_info(
        {f"s3://{bucket}/{key}": body for key, body in readable.items()},
        folder=f"s3://{bucket}/{folder}",
    )


async def verify_async(
    hook: RdsExportHook,
    description: Mapping[str, Any],
    *,
    expected_tables: Sequence[str] = (),
    on_table_failure: str = "fail",
) -> Verification:
    """As :func:`verify`, with aiobotocore (in the triggerer)."""
    bucket, folder = export_folder(description)
    identifier = str(description.get("ExportTaskIdentifier") or "")
    async with await hook.s3_client_async() as client:

        async def call(step: Step) -> Any:
            action, where = step
            if action == "list":
                return await hook.list_export_metadata_async(client, bucket, where)
            return await hook.read_object_async(client, bucket, where)

        read = await _drive_async(_reading(identifier, bucket, folder), call)
    return judge_tables(
        description, read, expected_tables=expected_tables, on_table_failure=on_table_failure
    )
