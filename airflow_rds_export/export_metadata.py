"""What an export reports about its own tables, read tolerantly.

A COMPLETE export is not always a complete export: AWS reports tables it skipped in the
task's ``WarningMessage``, and each table's outcome in the metadata files the export writes
next to its data, under ``s3://{bucket}/{prefix}/{id}/``:

* ``export_info_{id}.json``: the export as a whole (``totalExportedDataInGB``, ...);
* ``export_tables_info_{id}_from_{n}_to_{m}.json``, one or more: ``perTableStatus``, one
  entry per table (``target`` ``db.schema.table``, ``status``, ``sizeGB``,
  ``warningMessage``, ``tableStatistics``).

AWS documents neither file (EXPORT_OUTPUT_AND_EVENTS.md section 1: their names and fields
are seen in public code and one public sample), so everything here is tolerant: unknown
fields are ignored, field names match case-insensitively, a value of the wrong type reads
as "not given", an unknown table status is kept as AWS wrote it, and a file that is
missing, unreadable, not UTF-8, truncated or not the expected JSON becomes a *note*: a
warning naming the S3 object, never an exception.

This module only reads; judging what it read (which tables failed, whether the task
fails) is :func:`airflow_rds_export.decisions.table_verdict`'s job. Pure: no AWS call, no
boto3; the driver lists and reads the objects and passes their names and bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any, NamedTuple

__all__ = [
    "ExportInfo",
    "ExportTables",
    "TableStatus",
    "WarningEntry",
    "WarningReport",
    "merge_tables_info",
    "metadata_keys",
    "parse_export_info",
    "parse_warning_message",
]

# Field spellings tried, in order (case-insensitively), for what an entry names and why.
# Only ``target``, ``status``, ``sizeGB``, ``warningMessage`` and ``reason`` have been seen
# in real files; the others are plain synonyms, so a renamed field still reads.
_NAME_FIELDS = ("target", "table", "tableName", "name", "objective", "database")
_REASON_FIELDS = ("reason", "warningMessage", "message", "cause")
_TABLE_NAME_FIELDS = ("target", "table", "tableName", "name")
_TABLE_REASON_FIELDS = ("warningMessage", "reason", "message")
# The WarningMessage fields this module reads; any other non-empty field is reported.
_WARNING_FIELDS = ("skippedTables", "skippedObjectives", "general")
_TABLES_FILE_RANGE = r"_from_(\d+)_to_(\d+)\.json"
# How deep _text renders nested JSON (hostile nesting must not exhaust the stack).
_DEEPEST = 8
#: How many names one note shows before counting the rest.
_NAMES_IN_A_NOTE = 5


class TableStatus(NamedTuple):
    """One ``perTableStatus`` entry, as the export wrote it.

    ``status`` is AWS's value as written (stripped; None when absent), never interpreted
    here: an unknown status stays visible as it is.
    """

    target: str
    status: str | None
    size_gb: float | None
    reason: str | None
    extraction_start: str | None = None
    extraction_end: str | None = None


class ExportTables(NamedTuple):
    """Every table entry of an export's ``export_tables_info`` files, merged.

    ``tables`` keeps every entry, in file order (files by their ``from_{n}`` number): a
    table listed twice appears twice, and a note says so. ``files_read`` counts the files
    that held a readable ``perTableStatus`` list: 0 means the tables could not be verified
    one by one.
    """

    tables: tuple[TableStatus, ...]
    notes: tuple[str, ...]
    files_read: int


class ExportInfo(NamedTuple):
    """``export_info_{id}.json``: the object as written (``{}`` when unreadable), the
    export's total size when it states one, and the notes on reading it."""

    document: Mapping[str, Any]
    total_gb: float | None
    notes: tuple[str, ...]


class WarningEntry(NamedTuple):
    """One entry of a WarningMessage list: what it names (a table, an objective, a
    database; None: the export as a whole) and why, as AWS worded it."""

    target: str | None
    reason: str | None


class WarningReport(NamedTuple):
    """An export task's ``WarningMessage``, read.

    AWS writes JSON (``{"skippedTables": [...], "skippedObjectives": [...], "general":
    [{"reason": ...}]}``, the RDS user guide's "Monitoring snapshot exports") or free text;
    ``text`` holds a message that is not such JSON. Any other non-empty JSON field is kept
    in ``general``, named after the field: a warning nobody understands is still a warning.
    """

    skipped_tables: tuple[WarningEntry, ...] = ()
    skipped_objectives: tuple[WarningEntry, ...] = ()
    general: tuple[WarningEntry, ...] = ()
    text: str | None = None


def metadata_keys(keys: Iterable[str], export_id: str) -> tuple[str | None, tuple[str, ...]]:
    """From a listing of the export's folder: its ``export_info`` key (None: not listed)
    and its ``export_tables_info`` keys, ordered by their ``from_{n}`` number.

    Matched by file name, the identifier case-insensitively (AWS identifiers are). Should a
    name appear at several depths, the shallowest ``export_info`` wins.
    """
    escaped = re.escape(export_id)
    info_name = re.compile(rf"export_info_{escaped}\.json", re.IGNORECASE)
    tables_name = re.compile(rf"export_tables_info_{escaped}{_TABLES_FILE_RANGE}", re.IGNORECASE)
    infos: list[str] = []
    tables: dict[str, tuple[int, int, str]] = {}
    for key in keys:
        if not isinstance(key, str):
            continue
        name = key.rsplit("/", 1)[-1]
        if info_name.fullmatch(name):
            infos.append(key)
        elif match := tables_name.fullmatch(name):
            tables[key] = (int(match[1]), int(match[2]), key)
    info = min(infos, key=lambda key: (key.count("/"), key), default=None)
    return info, tuple(sorted(tables, key=tables.__getitem__))


def parse_warning_message(message: object) -> WarningReport:
    """Read an export task's ``WarningMessage`` (None or empty: no warning)."""
    if isinstance(message, (bytes, bytearray)):
        message = bytes(message).decode("utf-8", errors="replace")
    if message is None:
        return WarningReport()
    document: Any = message
    if not isinstance(message, Mapping):
        text = str(message).strip()
        if not text:
            return WarningReport()
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if not isinstance(document, Mapping):
            return WarningReport(text=" ".join(text.split()))
    fields = {str(key).lower(): (str(key), value) for key, value in document.items()}
    known = [fields.pop(name.lower(), (name, None)) for name in _WARNING_FIELDS]
    (_, tables), (_, objectives), (_, general) = known
    unknown = tuple(
        WarningEntry(None, f"{key}: {shown}")
        for key, value in fields.values()
        if (shown := _text(value)) is not None
    )
    return WarningReport(
        skipped_tables=_entries(tables, strings_name=True),
        skipped_objectives=_entries(objectives, strings_name=True),
        general=_entries(general, strings_name=False) + unknown,
    )


def merge_tables_info(
    documents: Mapping[str, bytes | str | None], *, folder: str = "the export's folder"
) -> ExportTables:
    """Merge the ``perTableStatus`` of every ``export_tables_info`` file of one export.

    ``documents`` maps each file's name, as notes should show it (``s3://bucket/key``), to
    its bytes, or None when it could not be read. Files are taken in ``from_{n}`` order
    whatever the mapping's order. ``folder`` names the export's folder in the note made
    when there is no file at all.
    """
    if not documents:
        return ExportTables(
            (),
            (
                f"{folder}: no export_tables_info_*.json file was found; the tables cannot "
                "be verified one by one",
            ),
            0,
        )
    names = sorted(documents, key=_file_order)
    tables: list[TableStatus] = []
    notes: list[str] = []
    files_read = 0
    for name in names:
        entries, problem = _per_table_status(name, documents[name])
        if entries is None:
            notes.append(f"{problem}; the tables it lists are not verified")
            continue
        files_read += 1
        read = [table for table in map(_table_status, entries) if table is not None]
        tables.extend(read)
        ignored = len(entries) - len(read)
        if ignored:
            notes.append(
                f"{name}: {ignored} perTableStatus entr{'y' if ignored == 1 else 'ies'} "
                "without a table name (target) ignored"
            )
    notes.extend(_duplicates_note(tables))
    notes.extend(_gap_notes(names))
    return ExportTables(tuple(tables), tuple(notes), files_read)


def parse_export_info(name: str, body: bytes | str | None) -> ExportInfo:
    """Read ``export_info_{id}.json`` (``body`` None: missing or unreadable).

    ``total_gb`` is its ``totalExportedDataInGB`` when that is a number.
    """
    document, problem = _load_json(name, body)
    if not isinstance(document, Mapping):
        problem = problem or f"{name}: holds JSON {type(document).__name__}, not an object"
        return ExportInfo({}, None, (f"{problem}; the export's size is summed from its tables",))
    return ExportInfo(document, _number(_field(document, "totalExportedDataInGB")), ())


def _load_json(name: str, body: bytes | str | None) -> tuple[Any, str | None]:
    """The JSON a body holds, or a note saying why it holds none."""
    if body is None:
        return None, f"{name}: missing or could not be read"
    if isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            return None, f"{name}: not UTF-8 text ({error.reason} at byte {error.start})"
    else:
        text = body
    if not text.strip():
        return None, f"{name}: empty"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, (
            f"{name}: not valid JSON, truncated or damaged ({error.msg}: line "
            f"{error.lineno} column {error.colno})"
        )
    except (ValueError, RecursionError) as error:
        return None, f"{name}: not readable JSON ({type(error).__name__})"


def _per_table_status(name: str, body: bytes | str | None) -> tuple[list[Any] | None, str]:
    """A tables file's ``perTableStatus`` list, or None and a note saying why there is none."""
    document, problem = _load_json(name, body)
    if problem is not None:
        return None, problem
    if not isinstance(document, Mapping):
        return None, f"{name}: holds JSON {type(document).__name__}, not an object"
    entries = _field(document, "perTableStatus")
    if entries is None:
        return None, f"{name}: has no perTableStatus"
    if not isinstance(entries, list):
        return None, f"{name}: its perTableStatus is a {type(entries).__name__}, not a list"
    return entries, ""


def _table_status(entry: Any) -> TableStatus | None:
    if not isinstance(entry, Mapping):
        return None
    target = _text(_field(entry, *_TABLE_NAME_FIELDS))
    if target is None:
        return None
    statistics = _field(entry, "tableStatistics")
    if not isinstance(statistics, Mapping):
        statistics = {}
    return TableStatus(
        target=target,
        status=_text(_field(entry, "status")),
        size_gb=_number(_field(entry, "sizeGB")),
        reason=_text(_field(entry, *_TABLE_REASON_FIELDS)),
        extraction_start=_text(_field(statistics, "extractionStartTime")),
        extraction_end=_text(_field(statistics, "extractionEndTime")),
    )


def _entries(value: Any, *, strings_name: bool) -> tuple[WarningEntry, ...]:
    """A WarningMessage list read as entries; a bare string is a name (``strings_name``,
    as in ``skippedTables``) or a reason (as in ``general``)."""
    items = value if isinstance(value, list) else [value]
    entries: list[WarningEntry] = []
    for item in items:
        if isinstance(item, Mapping):
            if item:
                entries.append(_mapping_entry(item))
        elif (text := _text(item)) is not None:
            entries.append(WarningEntry(text, None) if strings_name else WarningEntry(None, text))
    return tuple(entries)


def _mapping_entry(item: Mapping[str, Any], depth: int = 0) -> WarningEntry:
    """An object as (what it names, why): its name and reason fields, the other fields
    added to the reason as ``key: value``."""
    name_key, target = _pick(item, _NAME_FIELDS)
    reason_key, reason = _pick(item, _REASON_FIELDS)
    details = [
        f"{key}: {shown}"
        for key, value in item.items()
        if key not in (name_key, reason_key) and (shown := _text(value, depth + 1)) is not None
    ]
    described = _text(reason, depth + 1)
    if details:
        described = f"{described} ({', '.join(details)})" if described else ", ".join(details)
    return WarningEntry(_text(target, depth + 1), described)


def _pick(document: Mapping[str, Any], names: Iterable[str]) -> tuple[str | None, Any]:
    """The first of ``names`` (case-insensitively) the document gives a value: (its key as
    written, the value), or (None, None)."""
    by_lower = {str(key).lower(): key for key in document}
    for name in names:
        key = by_lower.get(name.lower())
        if key is not None and document[key] is not None and document[key] != "":
            return key, document[key]
    return None, None


def _field(document: Mapping[str, Any], *names: str) -> Any:
    return _pick(document, names)[1]


def _text(value: Any, depth: int = 0) -> str | None:
    """Any JSON value as one line of text (None when it says nothing)."""
    if value is None:
        return None
    if isinstance(value, str):
        return " ".join(value.split()) or None
    if isinstance(value, (Mapping, list, tuple)) and depth > _DEEPEST:
        return "..."
    if isinstance(value, Mapping):
        entry = _mapping_entry(value, depth)
        return ": ".join(part for part in entry if part) or None
    if isinstance(value, (list, tuple)):
        texts = (_text(item, depth + 1) for item in value)
        return "; ".join(text for text in texts if text) or None
    return str(value)


def _number(value: Any) -> float | None:
    """A size in GB: a finite, non-negative number, or a string holding one (``"3.5"``,
    ``"3.5 GB"``); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, str):
        value = re.sub(r"(?i)\s*gb\s*$", "", value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _file_range(name: str) -> tuple[int, int] | None:
    match = re.search(_TABLES_FILE_RANGE + "$", name, re.IGNORECASE)
    return (int(match[1]), int(match[2])) if match else None


def _file_order(name: str) -> tuple[int, int, int, str]:
    numbers = _file_range(name)
    return (0, *numbers, name) if numbers else (1, 0, 0, name)


def _duplicates_note(tables: Iterable[TableStatus]) -> list[str]:
    spelled: dict[str, str] = {}
    counts = Counter(spelled.setdefault(table.target.lower(), table.target) for table in tables)
    repeated = [name for name, count in counts.items() if count > 1]
    if not repeated:
        return []
    return [
        f"{len(repeated)} table(s) listed more than once across the export_tables_info "
        f"files: {_some(repeated)}; each counts once, as its worst status"
    ]


def _gap_notes(names: Iterable[str]) -> list[str]:
    """Gaps between consecutive files' ``from_{n}_to_{m}`` ranges: a file not listed."""
    ranged = [(numbers, name) for name in names if (numbers := _file_range(name))]
    return [
        f"{earlier} ends at {last} and {later} starts at {first}: no export_tables_info "
        f"file covers {last + 1} to {first - 1}, so those tables are not verified"
        for ((_, last), earlier), ((first, _), later) in pairwise(ranged)
        if first > last + 1
    ]


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_IN_A_NOTE])
    more = len(names) - _NAMES_IN_A_NOTE
    return f"{shown} and {more} more" if more > 0 else shown
