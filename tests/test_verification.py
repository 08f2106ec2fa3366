"""Table-by-table verification of COMPLETE exports, run by Airflow against the emulator.

Every case runs through ``airflow dags test``: the start operator waiting for completion
(on a worker, and deferred to the triggerer) and the export-state sensor (poking, and
deferred), so each path decides the same verdict from the same emulated S3 output.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import REGION, ExportWorld
from scenarios import dag

from airflow_rds_export.testing import airflow_connection_env
from airflow_rds_export.testing.airflow_runs import DagRunResult

RunDag = Callable[..., DagRunResult]
EXPORT = "orders-20240101"
FIVE_TABLES = [
    "orders.public.orders",
    "orders.public.customers",
    "orders.public.order_items",
    "orders.public.payments",
    "orders.audit.events",
]

START = """
RdsStartExportTaskOperator(
    task_id="export",
    export_task_identifier="orders-{{{{ ds_nodash }}}}",
    source_arn={source_arn!r},
    s3_bucket_name={bucket!r},
    s3_prefix="nightly",
    iam_role_arn={role!r},
    kms_key_id={key!r},
    waiter_interval=0.5,
    deferrable={deferrable},
    {extra}
)
"""
SENSOR = """
RdsExportTaskStateSensor(
    task_id="export",
    export_task_identifier="orders-{{{{ ds_nodash }}}}",
    poke_interval=0.5,
    deferrable={deferrable},
    {extra}
)
"""
DRIVERS = {
    "start-worker": (START, False),
    "start-deferred": (START, True),
    "sensor-worker": (SENSOR, False),
    "sensor-deferred": (SENSOR, True),
}


def snapshot_with_tables(world: ExportWorld, tables: list[str] | None = None) -> str:
    snapshot = world.control.create_db_snapshot("orders-snap", db_instance_identifier="orders")
    if tables is not None:
        world.control.set_source_tables("orders-snap", tables)
    world.control.pace_export(EXPORT, starting_polls=1, in_progress_polls=1)
    return str(snapshot["DBSnapshotArn"])


def run_export(
    world: ExportWorld, run_dag: RunDag, driver: str, extra: str = "", **env: str
) -> DagRunResult:
    """Run one export through ``driver``; the sensor watches an export started by boto3."""
    (source_arn,) = [
        s["DBSnapshotArn"]
        for s in world.rds_client().describe_db_snapshots(DBSnapshotIdentifier="orders-snap")[
            "DBSnapshots"
        ]
    ]
    template, deferrable = DRIVERS[driver]
    if template is SENSOR:
        world.rds_client().start_export_task(
            ExportTaskIdentifier=EXPORT,
            SourceArn=source_arn,
            S3BucketName=world.bucket,
            S3Prefix="nightly",
            IamRoleArn=world.iam_role_arn,
            KmsKeyId=world.kms_key_id,
        )
    body = template.format(
        source_arn=source_arn,
        bucket=world.bucket,
        role=world.iam_role_arn,
        key=world.kms_key_id,
        deferrable=deferrable,
        extra=extra,
    )
    dag_id = f"verify_{driver.replace('-', '_')}"
    return run_dag(dag(dag_id, body), dag_id, env={**world.env, **env})


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_two_failed_tables_of_five_fail_the_task_naming_both(
    world: ExportWorld, run_dag: RunDag, driver: str
) -> None:
    snapshot_with_tables(world, FIVE_TABLES)
    world.control.fail_source_tables(
        "orders-snap", ["orders.public.payments"], reason="Column name contains ';'"
    )
    world.control.fail_source_tables(
        "orders-snap", ["orders.audit.events"], reason="Row larger than 2 GB"
    )
    result = run_export(world, run_dag, driver)
    assert result.task_states["export"] == "failed"
    assert result.tries("export") == 1  # a verdict, not a transient error: no retry
    log = result.log("export")
    assert "not every table was exported (2 failed, 3 complete)" in log
    assert "orders.public.payments failed (status 'FAILED': Column name contains ';')" in log
    assert "orders.audit.events failed (status 'FAILED': Row larger than 2 GB)" in log
    assert "on_table_failure='fail' decided to fail" in log
    assert "on_table_failure='warn' succeeds with a warning" in log  # how to accept them


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_a_clean_export_logs_how_many_tables_and_gb_were_verified(
    world: ExportWorld, run_dag: RunDag, driver: str
) -> None:
    snapshot_with_tables(world)  # the emulator's default: 4 tables, 20 GB
    result = run_export(world, run_dag, driver)
    result.assert_state("success")
    assert f"Export task {EXPORT} is complete: 4 tables, 20 GB verified" in result.log("export")
    tables = result.xcom("export")["Tables"]
    assert tables["Clean"] is True
    assert (tables["Complete"], tables["Failed"], tables["Skipped"]) == (4, [], [])
    assert tables["TotalGB"] == 20


@pytest.mark.parametrize("driver", ["start-deferred", "sensor-worker"])
def test_warn_succeeds_and_logs_the_failed_tables(
    world: ExportWorld, run_dag: RunDag, driver: str
) -> None:
    snapshot_with_tables(world, FIVE_TABLES)
    world.control.fail_source_tables("orders-snap", ["orders.audit.events"], reason="LOB too big")
    result = run_export(world, run_dag, driver, extra='on_table_failure="warn",')
    result.assert_state("success")
    log = result.log("export")
    assert "orders.audit.events failed (status 'FAILED': LOB too big)" in log
    assert "decided to succeed and log this as a warning" in log
    assert "[warning" in log.split("decided to succeed and log this as a warning")[0][-2000:]
    tables = result.xcom("export")["Tables"]
    assert tables["Failed"] == [
        {"Table": "orders.audit.events", "Reason": "status 'FAILED': LOB too big"}
    ]
    assert tables["Complete"] == 4


@pytest.mark.parametrize("driver", ["start-worker", "sensor-deferred"])
def test_skipped_tables_in_the_warning_message_are_decided_the_same(
    world: ExportWorld, run_dag: RunDag, driver: str
) -> None:
    snapshot_with_tables(world)
    world.control.skip_source_tables(
        "orders-snap", ["orders.public.customers"], reason="PERMISSIONS_DO_NOT_EXIST"
    )
    result = run_export(world, run_dag, driver)
    assert result.task_states["export"] == "failed"
    log = result.log("export")
    assert (
        "orders.public.customers skipped (WarningMessage skippedTables: "
        "PERMISSIONS_DO_NOT_EXIST)" in log
    )
    skip = run_export_again(world, run_dag, driver, 'on_table_failure="skip",')
    assert skip.task_states["export"] == "skipped"


def run_export_again(world: ExportWorld, run_dag: RunDag, driver: str, extra: str) -> DagRunResult:
    """The same export judged again with other arguments (a sensor; the export exists)."""
    body = SENSOR.format(deferrable=DRIVERS[driver][1], extra=extra)
    return run_dag(dag("verify_again", body), "verify_again", env=world.env)


def test_a_general_reason_in_the_warning_message_fails_the_export(
    world: ExportWorld, run_dag: RunDag
) -> None:
    snapshot_with_tables(world)
    world.control.set_export_warning_message(
        EXPORT,
        {
            "skippedTables": [],
            "skippedObjectives": [],
            "general": [{"reason": "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}],
        },
    )
    result = run_export(world, run_dag, "start-worker")
    assert result.task_states["export"] == "failed"
    assert "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE" in result.log("export")


@pytest.mark.parametrize("driver", ["start-worker", "start-deferred"])
def test_expected_tables_catch_a_table_absent_from_the_metadata(
    world: ExportWorld, run_dag: RunDag, driver: str
) -> None:
    snapshot_with_tables(world)
    result = run_export(
        world,
        run_dag,
        driver,
        extra='expected_tables=["orders.public.*", "orders.public.invoices"],',
    )
    assert result.task_states["export"] == "failed"
    log = result.log("export")
    assert "1 missing" in log
    assert "orders.public.invoices missing (in expected_tables" in log


def test_expected_tables_are_checked_when_the_dag_is_parsed(
    dag_import_errors: Callable[..., str],
) -> None:
    errors = dag_import_errors(
        dag("bad_expected", SENSOR.format(deferrable=False, extra='expected_tables="orders",'))
    )
    assert "expected_tables='orders' is invalid: must be a list of table names" in errors


# --- malformed metadata and denied reads never crash a task ---------------------------------

FAULTS = ["truncated_json", "wrong_types", "unknown_status", "no_tables_files"]


def test_malformed_metadata_never_crashes_a_task(world: ExportWorld, run_dag: RunDag) -> None:
    """One DAG, one sensor per broken export (plus one with three tables files): five
    exports, AWS's limit of concurrent exports."""
    world.control.set_source_tables("orders", [f"orders.public.t{n}" for n in range(250)])
    exports = {fault: f"broken-{fault.replace('_', '-')}" for fault in FAULTS}
    exports["three_files"] = "three-tables-files"
    for fault, identifier in exports.items():
        # One export of a snapshot at a time (AWS's rule): a snapshot per export.
        snapshot = world.control.create_db_snapshot(
            f"snap-{identifier}", db_instance_identifier="orders"
        )
        if fault != "three_files":
            world.control.break_export_output(identifier, fault)
        world.control.pace_export(identifier, starting_polls=0, in_progress_polls=0)
        world.rds_client().start_export_task(
            ExportTaskIdentifier=identifier,
            SourceArn=snapshot["DBSnapshotArn"],
            S3BucketName=world.bucket,
            S3Prefix="nightly",
            IamRoleArn=world.iam_role_arn,
            KmsKeyId=world.kms_key_id,
        )
    body = "\n".join(
        f'RdsExportTaskStateSensor(task_id="{fault}", export_task_identifier="{identifier}",'
        ' poke_interval=0.5, on_table_failure="warn")'
        for fault, identifier in exports.items()
    )
    result = run_dag(dag("malformed", body), "malformed", env=world.env)
    assert set(result.task_states.values()) == {"success"}, result.task_states
    assert "Traceback" not in result.stdout
    states = {fault: result.xcom(fault)["Tables"] for fault in exports}
    assert states["three_files"]["Complete"] == 250 and states["three_files"]["Clean"]
    assert states["unknown_status"]["Failed"][0]["Reason"].startswith("status 'NOT_A_STATUS'")
    assert len(states["unknown_status"]["Failed"]) == 250
    for fault in ("truncated_json", "no_tables_files"):
        assert states[fault]["TablesInfoRead"] is False, fault
        assert "no table was verified one by one" in result.log(fault), fault
    assert "truncated" in " ".join(states["truncated_json"]["Notes"]).lower() or (
        "json" in " ".join(states["truncated_json"]["Notes"]).lower()
    )
    assert states["wrong_types"]["Notes"], "wrong types are noted, not crashed on"


class _DenyingS3(http.server.BaseHTTPRequestHandler):
    """S3 that refuses what ``deny`` names and forwards the rest to the emulator.

    ``deny``: ``"all"`` (403 AccessDenied), ``"get"`` (listing works, reading objects is
    denied), or ``"busy"`` (503 SlowDown for the first :attr:`busy_for` requests, as S3
    answers under load, then everything works).
    """

    deny: str = "all"
    target: str = ""
    busy_for = 7  # more than botocore's 5 attempts: the package's own retry must act
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        listing = "list-type=2" in self.path
        if self.deny == "busy" and len(self.seen) <= self.busy_for:
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
            self.send_response(503)
        elif self.deny == "all" or (self.deny == "get" and not listing):
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message></Error>"
            )
            self.send_response(403)
        else:
            # Forwarded as signed (an unsigned GetObject is an anonymous one: moto says 403).
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            request = urllib.request.Request(self.target + self.path, headers=headers)
            with urllib.request.urlopen(request) as answer:
                body = answer.read()
            self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def denying_s3(world: ExportWorld) -> Iterator[Callable[[str], dict[str, str]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(deny: str) -> dict[str, str]:
        handler = type(
            "Handler",
            (_DenyingS3,),
            {"deny": deny, "target": world.server.endpoint_url, "seen": []},
        )
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        env = airflow_connection_env(world.server.endpoint_url, region_name=REGION)
        connection = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
        connection["extra"]["service_config"] = {
            "s3": {"endpoint_url": f"http://127.0.0.1:{server.server_address[1]}"}
        }
        return {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}

    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize(
    ("deny", "driver", "permission"),
    [
        ("all", "sensor-worker", "s3:ListBucket on arn:aws:s3:::rds-exports"),
        ("get", "start-deferred", "s3:GetObject on arn:aws:s3:::rds-exports/nightly/"),
    ],
)
def test_denied_s3_reads_warn_once_and_judge_the_warning_message(
    world: ExportWorld,
    run_dag: RunDag,
    denying_s3: Callable[[str], dict[str, str]],
    deny: str,
    driver: str,
    permission: str,
) -> None:
    snapshot_with_tables(world)
    world.control.skip_source_tables(
        "orders-snap", ["orders.public.customers"], reason="PERMISSIONS_DO_NOT_EXIST"
    )
    result = run_export(world, run_dag, driver, **denying_s3(deny))
    assert result.task_states["export"] == "failed"  # the WarningMessage still decides
    log = result.log("export")
    assert "AccessDenied" in log
    assert permission in log
    assert log.count("judged from its WarningMessage alone") == 1  # one warning
    assert "orders.public.customers skipped" in log
    assert "ClientError" not in log  # the failure is the verdict, not the denied read


@pytest.mark.parametrize("driver", ["sensor-worker", "start-deferred"])
def test_s3_too_busy_to_read_the_metadata_is_waited_out_then_verified(
    world: ExportWorld,
    run_dag: RunDag,
    denying_s3: Callable[[str], dict[str, str]],
    driver: str,
) -> None:
    """A throttled read is no verdict: the wait backs off and verifies again."""
    snapshot_with_tables(world)
    result = run_export(world, run_dag, driver, **denying_s3("busy"))
    result.assert_state("success")
    log = result.log("export")
    assert f"Export task {EXPORT} (verifying its tables in s3://rds-exports/nightly/" in log
    assert "SlowDown" in log
    assert f"Export task {EXPORT} is complete: 4 tables, 20 GB verified" in log
    assert result.xcom("export")["Tables"]["TablesInfoRead"] is True


def test_an_export_folder_without_metadata_is_a_warning_not_a_crash(
    world: ExportWorld, run_dag: RunDag
) -> None:
    snapshot_with_tables(world)
    world.control.break_export_output(EXPORT, "no_objects")
    result = run_export(world, run_dag, "sensor-deferred")
    result.assert_state("success")  # the WarningMessage reports nothing: it alone decides
    log = result.log("export")
    assert (
        f"no export_info or export_tables_info file of {EXPORT} in "
        f"s3://rds-exports/nightly/{EXPORT}/" in log
    )
    assert "its export_tables_info files could not be read, so no table was verified" in log
    assert result.xcom("export")["Tables"]["TablesInfoRead"] is False
