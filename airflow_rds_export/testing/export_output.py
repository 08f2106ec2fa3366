"""What a COMPLETE export writes to S3, in the format real RDS uses.

Source: ``EXPORT_OUTPUT_AND_EVENTS.md`` section 1 (the RDS user guide's "Exporting DB
snapshot data to Amazon S3" and its "File naming" page, plus files seen in public code).
Under ``{S3Prefix}/{ExportTaskIdentifier}/`` (``{ExportTaskIdentifier}/`` without a
prefix) an export writes::

    export_info_{id}.json
    export_tables_info_{id}_from_{n}_to_{m}.json          (one per TABLES_PER_INFO_FILE tables)
    {db}/{schema}.{table}/1/part-00000-{uuid}.gz.parquet  (one per COMPLETE table)

PostgreSQL tables are ``db.schema.table``. A MySQL database has no schemas: its tables
live under ``{db}/{db}.{table}/`` (R2), and the emulator names them ``db.db.table``
everywhere, so the folder of every target ``a.b.c`` is ``a/b.c/``. ASSUMPTION
(UNCONFIRMED): AWS publishes no MySQL ``target``; ``db.db.table`` follows the folder name.

What AWS does not document, and what the emulator chose (each UNCONFIRMED):

* times in both metadata files are locale strings (``Jul 19, 2023, 11:21:00 PM``, UTC),
  as in the one public ``export_tables_info`` sample;
* ``perTableStatus`` lists the exported tables in order, ``TABLES_PER_INFO_FILE`` per file,
  numbered from 1 (``_from_1_to_100``, ``_from_101_to_200`` ...); an export with no table
  writes one file ``_from_0_to_0`` with an empty list;
* a ``FAILED`` table is listed with its ``warningMessage`` and ``sizeGB`` 0 and has no data
  object; a table with a warning is ``COMPLETE`` and carries ``warningMessage``;
* a *skipped* table is absent from the data and from ``perTableStatus``; it is named in
  the task's ``WarningMessage`` as ``{"skippedTables": [{"target": ..., "reason": ...}],
  "skippedObjectives": [], "general": []}`` (AWS documents the three keys, not the shape
  of a ``skippedTables`` entry);
* data objects are a few bytes framed by the Parquet magic ``PAR1``, not real Parquet.

``totalExportedDataInGB`` in ``export_info`` is the sum of the ``sizeGB`` of the listed
tables (so of the tables with data); DescribeExportTasks reports it rounded down, since
``TotalExtractedDataInGB`` is an integer in the API.

Nothing here touches moto except :func:`write_export_output`, which puts the rendered
objects into moto's S3 backend.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "DEFAULT_FAIL_REASON",
    "DEFAULT_SKIP_REASON",
    "DEFAULT_UNKNOWN_TABLE_STATUS",
    "DEFAULT_WARNING",
    "EXTRA_TABLE_NAME",
    "MYSQL_ENGINES",
    "OUTPUT_FAULTS",
    "PARQUET_MAGIC",
    "TABLES_PER_INFO_FILE",
    "ExportOutput",
    "ExportTable",
    "OutputFault",
    "database_name",
    "default_tables",
    "exported_size_gb",
    "format_warning_message",
    "is_mysql_engine",
    "locale_time",
    "parse_table_name",
    "render_export_output",
    "select_tables",
    "skipped_tables_warning",
    "table_from_spec",
    "write_export_output",
]

#: How many tables one ``export_tables_info_*`` file lists. ASSUMPTION: AWS documents no
#: number (a public file is named ``_from_1_to_96``); tests may patch this module constant.
TABLES_PER_INFO_FILE = 100
#: The first and last four bytes of every Parquet file.
PARQUET_MAGIC = b"PAR1"
#: Engines whose exports use MySQL's layout (``{db}/{db}.{table}/``).
MYSQL_ENGINES = frozenset({"mysql", "mariadb", "aurora-mysql", "aurora"})

COMPLETE = "COMPLETE"
FAILED = "FAILED"
SKIPPED = "SKIPPED"

#: ``reason`` of :meth:`EmulatorControl.fail_source_tables` unless given.
DEFAULT_FAIL_REASON = "Table extraction failed."
#: ``reason`` of a skipped table unless given: the code the RDS user guide names for tables
#: skipped for missing permissions ("Troubleshooting PostgreSQL permissions errors").
DEFAULT_SKIP_REASON = "PERMISSIONS_DO_NOT_EXIST"
#: ``message`` of a table warning unless given ("Data conversion when exporting").
DEFAULT_WARNING = "Some values were converted to strings."
#: The status the ``unknown_status`` fault writes unless told otherwise.
DEFAULT_UNKNOWN_TABLE_STATUS = "NOT_A_STATUS"
#: The table the ``extra_tables_file`` fault lists (in the export's first database).
EXTRA_TABLE_NAME = "emulator_extra_table"

#: Faults :class:`OutputFault` can inject into what an export writes:
#:
#: ``truncated_json``     every metadata JSON cut to half its bytes (invalid JSON)
#: ``wrong_types``        valid JSON, wrong types: in ``export_info`` ``status`` is a list,
#:                        ``percentProgress`` and ``totalExportedDataInGB`` are strings,
#:                        ``exportOnly`` a string; in every ``perTableStatus`` entry
#:                        ``status`` is a list, ``sizeGB`` a string (``"3.0 GB"``),
#:                        ``target`` an object, ``tableStatistics`` a string; every
#:                        ``perTableStatus`` list ends with ``null`` and a bare string
#: ``unknown_status``     every ``perTableStatus`` entry's ``status`` is ``status``
#:                        (``export_info`` still says ``COMPLETE``)
#: ``no_tables_files``    no ``export_tables_info_*`` file (data and export_info written)
#: ``extra_tables_file``  one more file ``_from_{n+1}_to_{n+1}`` listing a COMPLETE table
#:                        ``{db}.{schema}.emulator_extra_table`` (``sizeGB`` 0) that has no data
#: ``no_export_info``     no ``export_info_*`` file
#: ``no_objects``         nothing at all under the export's prefix
#: ``missing_data``       the first COMPLETE table is listed but its data object is absent
OUTPUT_FAULTS = frozenset(
    {
        "truncated_json",
        "wrong_types",
        "unknown_status",
        "no_tables_files",
        "extra_tables_file",
        "no_export_info",
        "no_objects",
        "missing_data",
    }
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# R1: a backslash, backtick, double quote or space in a path becomes "_".
_PATH_UNSAFE = re.compile(r'[\\`" ]')
_NAME_PART = re.compile(r"^[^.\s]+$")


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class ExportTable:
    """One table of an export source: where it lives, its size and how its export ends.

    ``status``: ``COMPLETE`` (exported; ``message`` is an optional warning), ``FAILED``
    (``message`` is the reason), ``SKIPPED`` (left out; ``message`` is the reason), or any
    other string, written verbatim as a table status (without data).
    """

    database: str
    schema: str
    table: str
    size_gb: float
    status: str = COMPLETE
    message: str | None = None

    @property
    def target(self) -> str:
        """``db.schema.table``, as ``perTableStatus`` names it."""
        return f"{self.database}.{self.schema}.{self.table}"

    @property
    def has_data(self) -> bool:
        return self.status == COMPLETE

    @property
    def is_skipped(self) -> bool:
        return self.status == SKIPPED

    @property
    def reported_size_gb(self) -> float:
        """``sizeGB`` as written: the size for a COMPLETE table, 0 otherwise."""
        return self.size_gb if self.has_data else 0.0

    def with_status(self, status: str, message: str | None) -> ExportTable:
        return replace(self, status=status, message=message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-friendly form the control methods take and return."""
        return {
            "name": self.target,
            "size_gb": self.size_gb,
            "status": self.status,
            "warning_message": self.message,
        }


def is_mysql_engine(engine: str | None) -> bool:
    """Whether ``engine`` exports with MySQL's layout (anything else: PostgreSQL's)."""
    return str(engine or "").lower() in MYSQL_ENGINES


def database_name(db_name: str | None, resource_identifier: str) -> str:
    """The database an emulated source holds: its ``DBName``, else its identifier.

    ASSUMPTION: a real instance created without ``DBName`` has only the engine's default
    database (``postgres``); the emulator names the database after the instance or
    cluster (``-`` becomes ``_``), so ``orders`` holds ``orders.public.*``.
    """
    if db_name:
        return db_name
    return re.sub(r"[^A-Za-z0-9_$]", "_", resource_identifier)


def parse_table_name(name: str, *, mysql: bool) -> tuple[str, str, str]:
    """``db.schema.table`` as is; ``db.table`` is ``db.public.table`` (PostgreSQL) or
    ``db.db.table`` (MySQL)."""
    parts = str(name).split(".")
    if len(parts) not in (2, 3) or not all(_NAME_PART.match(p) for p in parts):
        raise ValueError(
            f"table name {name!r} must be database.schema.table or database.table "
            "(parts without dots or spaces)"
        )
    if len(parts) == 2:
        database, table = parts
        return database, (database if mysql else "public"), table
    return parts[0], parts[1], parts[2]


def table_from_spec(spec: str | Mapping[str, Any], *, mysql: bool) -> ExportTable:
    """A table from its control-method form.

    A name (1 GB, COMPLETE), or ``{"name", "size_gb" (1.0), "status" ("COMPLETE"),
    "warning_message" (None)}``.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(f"a table is a name or an object with a 'name': {spec!r}")
    unknown = set(spec) - {"name", "size_gb", "status", "warning_message"}
    if unknown:
        raise ValueError(f"unknown table field(s) {sorted(unknown)} in {spec!r}")
    size_gb = float(spec.get("size_gb", 1.0))
    if not math.isfinite(size_gb) or size_gb < 0:
        raise ValueError(f"size_gb must be a finite number >= 0: {spec!r}")
    status = str(spec.get("status") or COMPLETE).upper()
    message = spec.get("warning_message")
    database, schema, table = parse_table_name(str(spec["name"]), mysql=mysql)
    return ExportTable(
        database, schema, table, size_gb, status, None if message is None else str(message)
    )


def default_tables(engine: str | None, database: str) -> tuple[ExportTable, ...]:
    """The tables a source holds unless a test sets them: 20 GB in four tables.

    PostgreSQL: ``{db}.public.orders`` (10 GB), ``{db}.public.customers`` (4),
    ``{db}.public.order_items`` (3), ``{db}.audit.events`` (3). MySQL: the same tables
    in ``{db}`` (``{db}.{db}.orders`` ...).
    """
    mysql = is_mysql_engine(engine)

    def schema(name: str) -> str:
        return database if mysql else name

    return (
        ExportTable(database, schema("public"), "orders", 10.0),
        ExportTable(database, schema("public"), "customers", 4.0),
        ExportTable(database, schema("public"), "order_items", 3.0),
        ExportTable(database, schema("audit"), "events", 3.0),
    )


def _in_export_only(table: ExportTable, entries: Sequence[str], *, mysql: bool) -> bool:
    """Whether an ``ExportOnly`` entry covers ``table``.

    ``database``; ``database.schema`` (PostgreSQL) or ``database.table`` (MySQL);
    ``database.schema.table`` (StartExportTask API reference).
    """
    for entry in entries:
        parts = tuple(str(entry).split("."))
        if len(parts) == 1 and parts == (table.database,):
            return True
        if len(parts) == 2:
            second = table.table if mysql else table.schema
            if parts == (table.database, second):
                return True
        if len(parts) == 3 and parts == (table.database, table.schema, table.table):
            return True
    return False


def select_tables(
    tables: Iterable[ExportTable], export_only: Sequence[str] | None, *, mysql: bool
) -> tuple[ExportTable, ...]:
    """The tables an export with ``ExportOnly`` = ``export_only`` covers (all if empty)."""
    if not export_only:
        return tuple(tables)
    return tuple(t for t in tables if _in_export_only(t, export_only, mysql=mysql))


def exported_size_gb(tables: Iterable[ExportTable]) -> float:
    """The sum of the ``sizeGB`` an export writes for ``tables`` (skipped ones excluded)."""
    total = math.fsum(t.reported_size_gb for t in tables if not t.is_skipped)
    return round(total, 9)


def format_warning_message(message: str | Mapping[str, Any] | None) -> str | None:
    """A task's ``WarningMessage``: text as given, an object as compact JSON."""
    if message is None or isinstance(message, str):
        return message
    if isinstance(message, Mapping):
        return _compact(message)
    raise ValueError(f"a warning message is text or a JSON object, not {message!r}")


def skipped_tables_warning(tables: Iterable[ExportTable]) -> str | None:
    """The ``WarningMessage`` naming the skipped tables (``None`` when none is skipped)."""
    skipped = [
        {"target": t.target, "reason": t.message or DEFAULT_SKIP_REASON}
        for t in tables
        if t.is_skipped
    ]
    if not skipped:
        return None
    return _compact({"skippedTables": skipped, "skippedObjectives": [], "general": []})


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class OutputFault:
    """A fault to inject into an export's output (one of :data:`OUTPUT_FAULTS`)."""

    fault: str
    status: str | None = None

    def __post_init__(self) -> None:
        if self.fault not in OUTPUT_FAULTS:
            raise ValueError(
                f"unknown export output fault {self.fault!r}; use one of {sorted(OUTPUT_FAULTS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "status": self.status}


@dataclass(frozen=True)
class ExportOutput:
    """Everything an export writes depends on (see :func:`render_export_output`)."""

    export_task_identifier: str
    source_arn: str
    export_only: tuple[str, ...]
    snapshot_time: datetime | None
    task_start_time: datetime
    task_end_time: datetime
    s3_bucket: str
    s3_prefix: str | None
    iam_role_arn: str
    kms_key_id: str
    database: str
    mysql: bool
    tables: tuple[ExportTable, ...]
    faults: tuple[OutputFault, ...] = field(default_factory=tuple)

    @property
    def base_key(self) -> str:
        """``{S3Prefix}/{ExportTaskIdentifier}/``, or ``{ExportTaskIdentifier}/``."""
        if self.s3_prefix:
            return f"{self.s3_prefix}/{self.export_task_identifier}/"
        return f"{self.export_task_identifier}/"

    @property
    def listed_tables(self) -> tuple[ExportTable, ...]:
        """The tables ``perTableStatus`` lists: all but the skipped ones."""
        return tuple(t for t in self.tables if not t.is_skipped)

    def has_fault(self, name: str) -> bool:
        return any(f.fault == name for f in self.faults)


def locale_time(value: datetime | None) -> str | None:
    """``Jul 19, 2023, 11:21:00 PM`` (UTC), as RDS writes times in export metadata."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    hour = value.hour % 12 or 12
    meridiem = "AM" if value.hour < 12 else "PM"
    return (
        f"{_MONTHS[value.month - 1]} {value.day}, {value.year}, "
        f"{hour}:{value.minute:02d}:{value.second:02d} {meridiem}"
    )


def render_export_output(
    output: ExportOutput, new_uuid: Callable[[], str] = lambda: str(uuid.uuid4())
) -> dict[str, bytes]:
    """The objects ``output`` writes, by key (data first, then the metadata files)."""
    if output.has_fault("no_objects"):
        return {}
    objects: dict[str, bytes] = {}
    missing = _first_complete(output.listed_tables) if output.has_fault("missing_data") else None
    for table in output.listed_tables:
        if table.has_data and table is not missing:
            objects[_data_key(output, table, new_uuid())] = _parquet_body(table)

    entries = [_table_entry(output, table) for table in output.listed_tables]
    unknown = next((f for f in output.faults if f.fault == "unknown_status"), None)
    if unknown is not None:
        status = unknown.status or DEFAULT_UNKNOWN_TABLE_STATUS
        entries = [{**entry, "status": status} for entry in entries]
    info = _export_info(output)
    if output.has_fault("wrong_types"):
        info = _wrong_typed_info(info)
        entries = [_wrong_typed_entry(entry) for entry in entries]

    metadata: dict[str, Any] = {}
    if not output.has_fault("no_tables_files"):
        metadata.update(_tables_info_files(output, entries))
    if output.has_fault("extra_tables_file"):
        metadata.update(_extra_tables_file(output))
    if not output.has_fault("no_export_info"):
        metadata[f"{output.base_key}export_info_{output.export_task_identifier}.json"] = info
    for key, document in metadata.items():
        body = _compact(document).encode()
        if output.has_fault("truncated_json"):
            body = body[: len(body) // 2]
        objects[key] = body
    return objects


def write_export_output(s3_backend: Any, output: ExportOutput) -> list[str]:
    """Put ``output``'s objects into moto's S3 backend; the keys written.

    Encrypted with the export's KMS key, as RDS encrypts exported data. Raises moto's
    ``MissingBucket`` when the bucket is gone (before writing anything).
    """
    s3_backend.get_bucket(output.s3_bucket)
    objects = render_export_output(output)
    for key, body in objects.items():
        s3_backend.put_object(
            output.s3_bucket, key, body, encryption="aws:kms", kms_key_id=output.kms_key_id
        )
    return list(objects)


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def _first_complete(tables: Iterable[ExportTable]) -> ExportTable | None:
    return next((t for t in tables if t.has_data), None)


def _data_key(output: ExportOutput, table: ExportTable, file_uuid: str) -> str:
    database = _PATH_UNSAFE.sub("_", table.database)
    folder = _PATH_UNSAFE.sub("_", f"{table.schema}.{table.table}")
    return f"{output.base_key}{database}/{folder}/1/part-00000-{file_uuid}.gz.parquet"


def _parquet_body(table: ExportTable) -> bytes:
    return PARQUET_MAGIC + f"emulated {table.target}".encode() + PARQUET_MAGIC


def _export_info(output: ExportOutput) -> dict[str, Any]:
    return {
        "exportTaskIdentifier": output.export_task_identifier,
        "sourceArn": output.source_arn,
        "exportOnly": list(output.export_only),
        "snapshotTime": locale_time(output.snapshot_time),
        "taskStartTime": locale_time(output.task_start_time),
        "taskEndTime": locale_time(output.task_end_time),
        "s3Bucket": output.s3_bucket,
        "s3Prefix": output.s3_prefix or "",
        "exportedFilesPath": output.base_key.rstrip("/"),
        "iamRoleArn": output.iam_role_arn,
        "kmsKeyId": output.kms_key_id,
        "status": COMPLETE,
        "percentProgress": 100,
        "totalExportedDataInGB": exported_size_gb(output.tables),
    }


def _table_entry(output: ExportOutput, table: ExportTable) -> dict[str, Any]:
    partitions = max(1, math.ceil(table.size_gb * 8))
    completed = partitions if table.has_data else 0
    if output.mysql:
        partitioning = {
            "constraintType": "PRIMARY_KEY",
            "partitionColumns": [
                {"columnType": "BIGINT", "columnName": "id", "min": "1", "max": str(partitions)}
            ],
        }
        created_type = "datetime"
    else:
        partitioning = {
            "constraintType": "CTID",
            "partitionColumns": [
                {
                    "columnType": "TID",
                    "columnName": "ctid",
                    "min": "(0,1)",
                    "max": f"({partitions * 1000},1)",
                }
            ],
        }
        created_type = "timestamp with time zone"
    entry: dict[str, Any] = {
        "tableStatistics": {
            "extractionStartTime": locale_time(output.task_start_time),
            "extractionEndTime": locale_time(output.task_end_time),
            "partitioningInfo": {
                "numberOfPartitions": partitions,
                "numberOfCompletedPartitions": completed,
                **partitioning,
            },
        },
        "schemaMetadata": {
            "originalTypeMappings": [
                _type_mapping("id", "bigint", "int64", num_precision=64),
                _type_mapping("created_on", created_type, "binary (UTF8)", datetime_precision=6),
            ]
        },
        "status": table.status,
        "sizeGB": table.reported_size_gb,
        "target": table.target,
    }
    if table.message is not None:
        entry["warningMessage"] = table.message
    return entry


def _type_mapping(
    column: str,
    original: str,
    exported: str,
    *,
    num_precision: int = 0,
    datetime_precision: int = 0,
) -> dict[str, Any]:
    return {
        "columnName": column,
        "originalType": original,
        "expectedExportedType": exported,
        "originalCharMaxLength": 0,
        "originalNumPrecision": num_precision,
        "originalDateTimePrecision": datetime_precision,
    }


def _tables_info_name(output: ExportOutput, first: int, last: int) -> str:
    return (
        f"{output.base_key}export_tables_info_{output.export_task_identifier}"
        f"_from_{first}_to_{last}.json"
    )


def _tables_info_files(output: ExportOutput, entries: list[Any]) -> dict[str, Any]:
    if not entries:
        return {_tables_info_name(output, 0, 0): {"perTableStatus": []}}
    files: dict[str, Any] = {}
    size = max(1, int(TABLES_PER_INFO_FILE))
    for start in range(0, len(entries), size):
        chunk = entries[start : start + size]
        name = _tables_info_name(output, start + 1, start + len(chunk))
        if output.has_fault("wrong_types"):
            chunk = [*chunk, None, "not-a-table"]
        files[name] = {"perTableStatus": chunk}
    return files


def _extra_tables_file(output: ExportOutput) -> dict[str, Any]:
    count = len(output.listed_tables) + 1
    schema = output.database if output.mysql else "public"
    extra = ExportTable(output.database, schema, EXTRA_TABLE_NAME, 0.0)
    return {
        _tables_info_name(output, count, count): {"perTableStatus": [_table_entry(output, extra)]}
    }


def _wrong_typed_info(info: dict[str, Any]) -> dict[str, Any]:
    return {
        **info,
        "status": [info["status"]],
        "percentProgress": str(info["percentProgress"]),
        "totalExportedDataInGB": f"{info['totalExportedDataInGB']} GB",
        "exportOnly": ",".join(info["exportOnly"]),
    }


def _wrong_typed_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **entry,
        "status": [entry["status"]],
        "sizeGB": f"{entry['sizeGB']} GB",
        "target": {"name": entry["target"]},
        "tableStatistics": "n/a",
    }
