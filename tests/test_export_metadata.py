"""Table-driven tests of :mod:`airflow_rds_export.export_metadata` on hostile input.

AWS documents neither metadata file nor the shape of a ``WarningMessage``, so each row is
something an export could plausibly write (or a damaged copy of it) and what reading it
must give: the tables and sizes read, and a note naming the S3 object for every problem,
never an exception.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_rds_export.export_metadata import (
    ExportTables,
    TableStatus,
    WarningEntry,
    WarningReport,
    merge_tables_info,
    metadata_keys,
    parse_export_info,
    parse_warning_message,
)

EXPORT_ID = "orders-20261121"
FOLDER = f"exports/nightly/{EXPORT_ID}/"
BUCKET_URI = "s3://exports-bucket/"


def tables_key(first: int, last: int, export_id: str = EXPORT_ID) -> str:
    return f"{FOLDER}export_tables_info_{export_id}_from_{first}_to_{last}.json"


def named(key: str) -> str:
    """A key as the driver names it in notes."""
    return BUCKET_URI + key


def entry(target: Any, status: Any = "COMPLETE", size_gb: Any = 1.0, **more: Any) -> dict:
    """A perTableStatus entry shaped like the public sample."""
    return {
        "tableStatistics": {
            "extractionStartTime": "Jul 19, 2023, 11:21:00 PM",
            "extractionEndTime": "Jul 19, 2023, 11:21:24 PM",
            "partitioningInfo": {"numberOfPartitions": 1, "numberOfCompletedPartitions": 1},
        },
        "schemaMetadata": {"originalTypeMappings": []},
        "status": status,
        "sizeGB": size_gb,
        "target": target,
        **more,
    }


def tables_file(*entries: Any) -> bytes:
    return json.dumps({"perTableStatus": list(entries)}).encode()


# --- metadata_keys -------------------------------------------------------------------


DATA_KEY = f"{FOLDER}orders/public.orders/1/part-00000-1b2c.gz.parquet"
INFO_KEY = f"{FOLDER}export_info_{EXPORT_ID}.json"

METADATA_KEY_CASES = [
    pytest.param([], (None, ()), id="empty-listing"),
    pytest.param([DATA_KEY], (None, ()), id="data-only"),
    pytest.param(
        [DATA_KEY, tables_key(101, 200), INFO_KEY, tables_key(1, 100), tables_key(201, 230)],
        (INFO_KEY, (tables_key(1, 100), tables_key(101, 200), tables_key(201, 230))),
        id="three-tables-files-ordered-by-from",
    ),
    pytest.param(
        [tables_key(10, 18), tables_key(2, 9)],
        (None, (tables_key(2, 9), tables_key(10, 18))),
        id="numeric-not-text-order",
    ),
    pytest.param(
        [
            f"{FOLDER}export_info_{EXPORT_ID}-r2.json",
            tables_key(1, 4, export_id=f"{EXPORT_ID}-r2"),
            INFO_KEY,
        ],
        (INFO_KEY, ()),
        id="another-exports-files-are-not-ours",
    ),
    pytest.param(
        [INFO_KEY.upper(), tables_key(1, 1).replace(EXPORT_ID, EXPORT_ID.upper())],
        (INFO_KEY.upper(), (tables_key(1, 1).replace(EXPORT_ID, EXPORT_ID.upper()),)),
        id="identifier-case-insensitive",
    ),
    pytest.param(
        [f"{FOLDER}orders/public.x/export_info_{EXPORT_ID}.json", INFO_KEY],
        (INFO_KEY, ()),
        id="shallowest-export-info-wins",
    ),
    pytest.param(
        [f"{FOLDER}export_tables_info_{EXPORT_ID}_from_1_to_x.json", f"{INFO_KEY}.tmp"],
        (None, ()),
        id="near-misses",
    ),
]


@pytest.mark.parametrize(("keys", "expected"), METADATA_KEY_CASES)
def test_metadata_keys(keys: list[str], expected: tuple[str | None, tuple[str, ...]]) -> None:
    assert metadata_keys(keys, EXPORT_ID) == expected


# --- parse_warning_message -----------------------------------------------------------

AWS_DOCUMENTED = (
    '{"skippedTables":[],"skippedObjectives":[],'
    '"general":[{"reason":"FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}]}'
)

WARNING_CASES = [
    pytest.param(None, WarningReport(), id="None"),
    pytest.param("", WarningReport(), id="empty"),
    pytest.param("  \n ", WarningReport(), id="blank"),
    pytest.param(
        '{"skippedTables":[],"skippedObjectives":[],"general":[]}',
        WarningReport(),
        id="json-all-empty",
    ),
    pytest.param(
        AWS_DOCUMENTED,
        WarningReport(general=(WarningEntry(None, "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"),)),
        id="aws-documented-example",
    ),
    pytest.param(
        '{"skippedTables":["db.public.a","db.public.b"]}',
        WarningReport(
            skipped_tables=(WarningEntry("db.public.a", None), WarningEntry("db.public.b", None))
        ),
        id="skipped-tables-as-strings",
    ),
    pytest.param(
        json.dumps(
            {
                "skippedTables": [
                    {"target": "db.public.a", "reason": "PERMISSIONS_DO_NOT_EXIST"},
                    {"table": "db.public.b", "message": "column name has a space"},
                    {"name": "db.public.c"},
                    {"reason": "UNLOGGED_TABLE"},
                    {},
                    None,
                ]
            }
        ),
        WarningReport(
            skipped_tables=(
                WarningEntry("db.public.a", "PERMISSIONS_DO_NOT_EXIST"),
                WarningEntry("db.public.b", "column name has a space"),
                WarningEntry("db.public.c", None),
                WarningEntry(None, "UNLOGGED_TABLE"),
            )
        ),
        id="skipped-tables-as-objects-of-any-spelling",
    ),
    pytest.param(
        '{"skippedTables":[{"target":"db.public.a","reason":"ROW_TOO_LARGE","rows":2}]}',
        WarningReport(skipped_tables=(WarningEntry("db.public.a", "ROW_TOO_LARGE (rows: 2)"),)),
        id="extra-fields-join-the-reason",
    ),
    pytest.param(
        '{"SkippedTables":{"target":"db.public.a"},"GENERAL":"OUT_OF_SPACE"}',
        WarningReport(
            skipped_tables=(WarningEntry("db.public.a", None),),
            general=(WarningEntry(None, "OUT_OF_SPACE"),),
        ),
        id="field-case-and-single-values",
    ),
    pytest.param(
        '{"general":[{"reason":"FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE","target":"sales"}]}',
        WarningReport(
            general=(WarningEntry("sales", "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"),)
        ),
        id="general-naming-a-database",
    ),
    pytest.param(
        '{"skippedObjectives":["db.archive"]}',
        WarningReport(skipped_objectives=(WarningEntry("db.archive", None),)),
        id="skipped-objective",
    ),
    pytest.param(
        '{"skippedTables":[],"skippedColumns":["db.public.a.blob"],"info":""}',
        WarningReport(general=(WarningEntry(None, "skippedColumns: db.public.a.blob"),)),
        id="unknown-field-is-a-general-warning-empty-one-ignored",
    ),
    pytest.param(
        "2 tables were skipped.\n  See the export's log.",
        WarningReport(text="2 tables were skipped. See the export's log."),
        id="free-text",
    ),
    pytest.param('{"skippedTables": [', WarningReport(text='{"skippedTables": ['), id="torn-json"),
    pytest.param('["a", "b"]', WarningReport(text='["a", "b"]'), id="json-list-is-text"),
    pytest.param('"quoted"', WarningReport(text='"quoted"'), id="json-string-is-text"),
    pytest.param(
        {"skippedTables": ["db.public.a"]},
        WarningReport(skipped_tables=(WarningEntry("db.public.a", None),)),
        id="already-parsed-mapping",
    ),
    pytest.param(
        b'{"general":["DISK_FULL"]}',
        WarningReport(general=(WarningEntry(None, "DISK_FULL"),)),
        id="bytes",
    ),
]


@pytest.mark.parametrize(("message", "expected"), WARNING_CASES)
def test_parse_warning_message(message: object, expected: WarningReport) -> None:
    assert parse_warning_message(message) == expected


def test_deeply_nested_warning_is_read_without_exhausting_the_stack() -> None:
    nested = '"DEEP"'
    for _ in range(300):  # within json's limit, deeper than a naive renderer should go
        nested = f'{{"reason": [{nested}]}}'
    report = parse_warning_message(f'{{"general": [{nested}]}}')
    [entry_read] = report.general
    assert entry_read.reason is not None and "..." in entry_read.reason


# --- merge_tables_info ---------------------------------------------------------------


def merged(documents: dict[str, bytes | str | None]) -> ExportTables:
    return merge_tables_info({named(key): body for key, body in documents.items()})


def statuses(tables: ExportTables) -> list[tuple[str, str | None, float | None, str | None]]:
    return [(t.target, t.status, t.size_gb, t.reason) for t in tables.tables]


MERGE_CASES = [
    pytest.param(
        {tables_key(1, 2): tables_file(entry("db.public.a", size_gb=8.49e-7), entry("db.s.b"))},
        [("db.public.a", "COMPLETE", 8.49e-7, None), ("db.s.b", "COMPLETE", 1.0, None)],
        1,
        [],
        id="one-file",
    ),
    pytest.param(
        {
            tables_key(3, 3): tables_file(entry("db.public.c", "FAILED", 0, warningMessage="x")),
            tables_key(1, 2): tables_file(entry("db.public.a"), entry("db.public.b")),
            tables_key(4, 4): tables_file(entry("db.public.d", "SKIPPED", None)),
        },
        [
            ("db.public.a", "COMPLETE", 1.0, None),
            ("db.public.b", "COMPLETE", 1.0, None),
            ("db.public.c", "FAILED", 0.0, "x"),
            ("db.public.d", "SKIPPED", None, None),
        ],
        3,
        [],
        id="three-files-merged-in-from-order",
    ),
    pytest.param(
        {tables_key(0, 0): tables_file()},
        [],
        1,
        [],
        id="no-tables-at-all",
    ),
    pytest.param(
        {
            tables_key(1, 1): tables_file(entry("db.public.a"))[:25],
            tables_key(2, 2): tables_file(entry("db.public.b")),
        },
        [("db.public.b", "COMPLETE", 1.0, None)],
        1,
        [f"{named(tables_key(1, 1))}: not valid JSON, truncated or damaged", "not verified"],
        id="truncated-file-noted-others-read",
    ),
    pytest.param(
        {tables_key(1, 1): b"\xff\xfe{}"},
        [],
        0,
        [f"{named(tables_key(1, 1))}: not UTF-8 text"],
        id="bytes-not-utf8",
    ),
    pytest.param(
        {tables_key(1, 1): b"\xef\xbb\xbf" + tables_file(entry("db.public.a"))},
        [("db.public.a", "COMPLETE", 1.0, None)],
        1,
        [],
        id="utf8-bom-tolerated",
    ),
    pytest.param({tables_key(1, 1): b""}, [], 0, ["empty"], id="empty-object"),
    pytest.param(
        {tables_key(1, 1): None},
        [],
        0,
        [f"{named(tables_key(1, 1))}: missing or could not be read"],
        id="unreadable-object",
    ),
    *(
        pytest.param(
            {tables_key(1, 1): body},
            [],
            0,
            [f"holds JSON {kind}, not an object"],
            id=f"json-{kind}",
        )
        for body, kind in ((b"[]", "list"), (b'"x"', "str"), (b"null", "NoneType"))
    ),
    pytest.param({tables_key(1, 1): b"{}"}, [], 0, ["has no perTableStatus"], id="no-list"),
    pytest.param(
        {tables_key(1, 1): b'{"perTableStatus": {"target": "db.public.a"}}'},
        [],
        0,
        ["its perTableStatus is a dict, not a list"],
        id="list-is-an-object",
    ),
    pytest.param(
        {tables_key(1, 2): tables_file(entry("db.public.a"), None, "not-a-table", {"x": 1})},
        [("db.public.a", "COMPLETE", 1.0, None)],
        1,
        ["3 perTableStatus entries without a table name (target) ignored"],
        id="entries-that-are-not-tables",
    ),
    pytest.param(
        {
            tables_key(1, 5): tables_file(
                entry({"name": "db.public.a"}, ["COMPLETE"], "3.0 GB", tableStatistics="n/a"),
                entry("db.public.b", None, "3.5"),
                entry("db.public.c", 7, "lots"),
                entry("db.public.d", "COMPLETE", True),
                entry("db.public.e", "COMPLETE", -1),
            )
        },
        [
            ("db.public.a", "COMPLETE", 3.0, None),
            ("db.public.b", None, 3.5, None),
            ("db.public.c", "7", None, None),
            ("db.public.d", "COMPLETE", None, None),
            ("db.public.e", "COMPLETE", None, None),
        ],
        1,
        [],
        id="wrong-types-read-as-not-given",
    ),
    pytest.param(
        {tables_key(1, 1): tables_file(entry("db.public.a", "NOT_A_STATUS"))},
        [("db.public.a", "NOT_A_STATUS", 1.0, None)],
        1,
        [],
        id="unknown-status-kept-raw",
    ),
    pytest.param(
        {
            tables_key(1, 1): json.dumps(
                {"PerTableStatus": [{"TARGET": "db.public.a", "Status": "complete", "SizeGb": 2}]}
            )
        },
        [("db.public.a", "complete", 2.0, None)],
        1,
        [],
        id="field-names-any-case-body-as-text",
    ),
    pytest.param(
        {
            tables_key(1, 1): tables_file(entry("db.public.a", "FAILED", 0)),
            tables_key(2, 2): tables_file(entry("DB.public.A")),
        },
        [("db.public.a", "FAILED", 0.0, None), ("DB.public.A", "COMPLETE", 1.0, None)],
        2,
        ["1 table(s) listed more than once", "db.public.a", "as its worst status"],
        id="table-in-two-files-kept-twice-and-noted",
    ),
    pytest.param(
        {
            tables_key(1, 1): tables_file(entry("db.public.a")),
            tables_key(5, 5): tables_file(entry("db.public.e")),
        },
        [("db.public.a", "COMPLETE", 1.0, None), ("db.public.e", "COMPLETE", 1.0, None)],
        2,
        [f"{named(tables_key(1, 1))} ends at 1", "covers 2 to 4", "not verified"],
        id="gap-between-files-noted",
    ),
]


@pytest.mark.parametrize(("documents", "expected", "files_read", "noted"), MERGE_CASES)
def test_merge_tables_info(
    documents: dict[str, bytes | str | None],
    expected: list[tuple[str, str | None, float | None, str | None]],
    files_read: int,
    noted: list[str],
) -> None:
    tables = merged(documents)
    assert statuses(tables) == expected
    assert tables.files_read == files_read
    notes = " | ".join(tables.notes)
    for part in noted:
        assert part in notes, notes
    if not noted:
        assert tables.notes == ()


def test_no_tables_file_at_all_is_a_note_naming_the_folder() -> None:
    tables = merge_tables_info({}, folder=named(FOLDER))
    assert tables == ExportTables((), tables.notes, 0)
    [note] = tables.notes
    assert note.startswith(named(FOLDER)) and "no export_tables_info_*.json file" in note


def test_table_statistics_times_are_kept_as_written() -> None:
    tables = merged({tables_key(1, 1): tables_file(entry("db.public.a"))})
    assert tables.tables == (
        TableStatus(
            "db.public.a",
            "COMPLETE",
            1.0,
            None,
            "Jul 19, 2023, 11:21:00 PM",
            "Jul 19, 2023, 11:21:24 PM",
        ),
    )


def test_deeply_nested_json_is_a_note_not_an_exception() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    tables = merged({tables_key(1, 1): body})
    assert tables.files_read == 0
    assert named(tables_key(1, 1)) in tables.notes[0]


# --- parse_export_info ---------------------------------------------------------------

INFO_NAME = named(INFO_KEY)
INFO = {
    "exportTaskIdentifier": EXPORT_ID,
    "status": "COMPLETE",
    "percentProgress": 100,
    "totalExportedDataInGB": 0.25,
}

EXPORT_INFO_CASES = [
    pytest.param(json.dumps(INFO).encode(), 0.25, [], id="as-aws-writes-it"),
    pytest.param(
        json.dumps({**INFO, "totalExportedDataInGB": "20.0 GB"}), 20.0, [], id="size-as-text"
    ),
    pytest.param(
        json.dumps({**INFO, "totalExportedDataInGB": [1]}).encode(), None, [], id="size-wrong-type"
    ),
    pytest.param(b'{"exportTaskIdentifier": "x"}', None, [], id="size-absent"),
    pytest.param(None, None, [f"{INFO_NAME}: missing or could not be read"], id="unreadable"),
    pytest.param(json.dumps(INFO).encode()[:30], None, ["truncated"], id="truncated"),
    pytest.param(b"[0.25]", None, ["holds JSON list, not an object"], id="json-list"),
    pytest.param(b"\xc3\x28", None, ["not UTF-8 text"], id="not-utf8"),
]


@pytest.mark.parametrize(("body", "total_gb", "noted"), EXPORT_INFO_CASES)
def test_parse_export_info(
    body: bytes | str | None, total_gb: float | None, noted: list[str]
) -> None:
    info = parse_export_info(INFO_NAME, body)
    assert info.total_gb == total_gb
    for part in noted:
        assert any(part in note and INFO_NAME in note for note in info.notes), info.notes
    if noted:
        assert info.document == {}
        assert "summed from its tables" in info.notes[0]
    else:
        assert info.notes == ()
        assert info.document["exportTaskIdentifier"] in (EXPORT_ID, "x")


def test_results_are_json_friendly() -> None:
    """What the parsers return can travel in an XCom or a trigger event as it is."""
    tables = merged({tables_key(1, 1): tables_file(entry("db.public.a", "FAILED", 0))})
    report = parse_warning_message(AWS_DOCUMENTED)
    info = parse_export_info(INFO_NAME, json.dumps(INFO))
    for value in (tables, report, info):
        assert json.loads(json.dumps(value)) is not None
