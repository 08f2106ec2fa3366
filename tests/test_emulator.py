"""The RDS emulator behaves as the AWS contract (AWS_CONTRACT.md) says real RDS does.

Every test talks to the emulator through real boto3 calls and runs twice: in-process
(``RdsEmulator`` on ``moto.mock_aws``) and against the emulator server subprocess, through
the same control methods. One server is started per session (the plugin's
``rds_emulator_server_session``) and reset before each test.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from airflow_rds_export.testing import EmulatorControl, EmulatorControlError, RdsEmulator
from airflow_rds_export.testing.backend import (
    CONCURRENT_EXPORT_ERROR_CODE,
    CONCURRENT_EXPORT_MESSAGE,
    CONCURRENT_EXPORT_MESSAGE_RE,
    EXPORT_LIMIT_ERROR_CODE,
    EXPORT_LIMIT_MESSAGE,
    EXPORT_STATUSES,
    MAX_CONCURRENT_EXPORTS,
)
from airflow_rds_export.testing.export_output import (
    DEFAULT_SKIP_REASON,
    OUTPUT_FAULTS,
    TABLES_PER_INFO_FILE,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, the emulator's


@dataclass
class Rds:
    """One emulator mode: its control surface and a way to make boto3 RDS clients."""

    mode: str
    control: EmulatorControl
    endpoint_url: str | None

    def client(self, region_name: str = REGION, **config: Any) -> Any:
        # botocore's Config "max_attempts" counts *retries*; total_max_attempts=1 means
        # exactly one attempt, so injected faults reach the test instead of being retried.
        retries = {"total_max_attempts": 1, "mode": "standard"}
        return boto3.client(
            "rds",
            region_name=region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries=retries, **config),  # type: ignore[arg-type]
        )


@pytest.fixture(params=["in-process", "server"])
def rds(request: pytest.FixtureRequest) -> Iterator[Rds]:
    if request.param == "in-process":
        emulator = request.getfixturevalue("rds_emulator")
        yield Rds("in-process", emulator, None)
    else:
        server = request.getfixturevalue("rds_emulator_server")
        yield Rds("server", server.control, server.endpoint_url)


@dataclass
class Source:
    prereq: dict[str, str]
    snapshot_arn: str


def make_source(rds: Rds, name: str = "orders-manual", ready_after_polls: int = 0) -> Source:
    prereq = rds.control.seed_export_prerequisites(bucket="exports", role_name="rds-s3-export")
    rds.control.create_db_instance("orders")
    snapshot = rds.control.create_db_snapshot(
        name, db_instance_identifier="orders", ready_after_polls=ready_after_polls
    )
    return Source(prereq, snapshot["DBSnapshotArn"])


def start(client: Any, source: Source, identifier: str, **overrides: Any) -> dict[str, Any]:
    arguments = {
        "ExportTaskIdentifier": identifier,
        "SourceArn": source.snapshot_arn,
        "S3BucketName": source.prereq["bucket"],
        "IamRoleArn": source.prereq["iam_role_arn"],
        "KmsKeyId": source.prereq["kms_key_id"],
        **overrides,
    }
    return client.start_export_task(**arguments)


def describe(client: Any, identifier: str) -> dict[str, Any]:
    tasks = client.describe_export_tasks(ExportTaskIdentifier=identifier)["ExportTasks"]
    assert len(tasks) == 1
    return tasks[0]


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# ------------------------------------------------------------------ snapshots


def test_snapshot_is_creating_then_available_after_chosen_polls(rds: Rds) -> None:
    rds.control.create_db_instance("orders")
    created = rds.control.create_db_snapshot(
        "orders-manual", db_instance_identifier="orders", ready_after_polls=2
    )
    assert created["Status"] == "creating"
    client = rds.client()
    statuses = [
        client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")["DBSnapshots"][0][
            "Status"
        ]
        for _ in range(4)
    ]
    assert statuses == ["creating", "creating", "available", "available"]


def test_snapshots_are_described_by_arn_as_aws_allows(rds: Rds) -> None:
    rds.control.create_db_instance("orders")
    rds.control.create_db_cluster("analytics")
    manual = rds.control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    automated = rds.control.create_automated_snapshot(
        "orders", created_at="2026-11-21T03:00:00+00:00"
    )
    cluster = rds.control.create_db_cluster_snapshot(
        "analytics-snap", db_cluster_identifier="analytics"
    )
    client = rds.client()
    for snapshot, extra in ((manual, {}), (automated, {"SnapshotType": "automated"})):
        found = client.describe_db_snapshots(
            DBSnapshotIdentifier=snapshot["DBSnapshotArn"], **extra
        )
        assert [s["DBSnapshotArn"] for s in found["DBSnapshots"]] == [snapshot["DBSnapshotArn"]]
    found = client.describe_db_cluster_snapshots(
        DBClusterSnapshotIdentifier=cluster["DBClusterSnapshotArn"]
    )
    assert [s["DBClusterSnapshotIdentifier"] for s in found["DBClusterSnapshots"]] == [
        "analytics-snap"
    ]


def test_cluster_snapshot_paced_by_seconds(rds: Rds) -> None:
    client = rds.client()
    client.describe_db_cluster_snapshots()  # warm up: the first call loads models
    rds.control.create_db_cluster("analytics")
    rds.control.create_db_cluster_snapshot(
        "analytics-snap", db_cluster_identifier="analytics", ready_after_seconds=0.5
    )

    def status() -> str:
        snapshots = client.describe_db_cluster_snapshots(
            DBClusterSnapshotIdentifier="analytics-snap"
        )["DBClusterSnapshots"]
        return str(snapshots[0]["Status"])

    assert status() == "creating"
    time.sleep(0.6)
    assert status() == "available"


def test_snapshot_status_failed_and_deleted(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.set_snapshot_status("orders-manual", "failed")
    snapshot = client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")["DBSnapshots"]
    assert snapshot[0]["Status"] == "failed"
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-failed-source")
    assert error_of(excinfo) == ("InvalidExportSourceState", 400)

    assert rds.control.set_snapshot_status("orders-manual", "deleted") is None
    with pytest.raises(ClientError) as excinfo:
        client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-deleted-source")
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)


def test_automated_snapshot_naming_and_filters(rds: Rds) -> None:
    rds.control.create_db_instance("orders")
    rds.control.create_db_instance("billing")
    first = rds.control.create_automated_snapshot(
        db_instance_identifier="orders", created_at=datetime(2026, 11, 20, 3, 0)
    )
    rds.control.create_automated_snapshot(
        db_instance_identifier="orders",
        created_at=datetime(2026, 11, 21, 3, 5, tzinfo=timezone.utc),
        ready_after_polls=1,
    )
    rds.control.create_automated_snapshot(
        db_instance_identifier="billing", created_at=datetime(2026, 11, 21, 4, 0)
    )
    rds.control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    assert first["DBSnapshotIdentifier"] == "rds:orders-2026-11-20-03-00"
    assert first["SnapshotType"] == "automated"
    assert first["DBSnapshotArn"].endswith(":snapshot:rds:orders-2026-11-20-03-00")
    client = rds.client()

    by_parameters = client.describe_db_snapshots(
        DBInstanceIdentifier="orders", SnapshotType="automated"
    )["DBSnapshots"]
    assert sorted(s["DBSnapshotIdentifier"] for s in by_parameters) == [
        "rds:orders-2026-11-20-03-00",
        "rds:orders-2026-11-21-03-05",
    ]
    newest = next(s for s in by_parameters if s["DBSnapshotIdentifier"].endswith("03-05"))
    assert newest["Status"] == "creating"
    assert newest["SnapshotCreateTime"] == datetime(2026, 11, 21, 3, 5, tzinfo=timezone.utc)

    by_filters = client.describe_db_snapshots(
        Filters=[
            {"Name": "db-instance-id", "Values": ["billing"]},
            {"Name": "snapshot-type", "Values": ["automated"]},
        ]
    )["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in by_filters] == ["rds:billing-2026-11-21-04-00"]
    manual = client.describe_db_snapshots(
        Filters=[{"Name": "snapshot-type", "Values": ["manual"]}]
    )["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in manual] == ["orders-manual"]


def test_automated_cluster_snapshot_naming_and_filters(rds: Rds) -> None:
    rds.control.create_db_cluster("analytics")
    rds.control.create_db_cluster("ledger")
    rds.control.create_automated_cluster_snapshot(
        db_cluster_identifier="analytics", created_at="2026-11-21T03:00:00+00:00"
    )
    rds.control.create_automated_cluster_snapshot(
        db_cluster_identifier="ledger", created_at=datetime(2026, 11, 21, 3, 30)
    )
    rds.control.create_db_cluster_snapshot("analytics-snap", db_cluster_identifier="analytics")
    client = rds.client()
    snapshots = client.describe_db_cluster_snapshots(
        Filters=[
            {"Name": "db-cluster-id", "Values": ["analytics"]},
            {"Name": "snapshot-type", "Values": ["automated"]},
        ]
    )["DBClusterSnapshots"]
    assert [s["DBClusterSnapshotIdentifier"] for s in snapshots] == [
        "rds:analytics-2026-11-21-03-00"
    ]
    assert snapshots[0]["SnapshotType"] == "automated"
    manual = client.describe_db_cluster_snapshots(
        DBClusterIdentifier="analytics", SnapshotType="manual"
    )["DBClusterSnapshots"]
    assert [s["DBClusterSnapshotIdentifier"] for s in manual] == ["analytics-snap"]


AUTOMATED_NAME = "rds:orders-2026-11-20-03-00"
AUTOMATED_CLUSTER_NAME = "rds:analytics-2026-11-20-03-00"


def make_both_kinds(rds: Rds) -> dict[str, dict[str, Any]]:
    """A manual and an automated snapshot of instance ``orders`` and of cluster
    ``analytics``."""
    rds.control.create_db_instance("orders")
    rds.control.create_db_cluster("analytics")
    taken_at = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)
    return {
        "manual": rds.control.create_db_snapshot("orders-manual", "orders"),
        "automated": rds.control.create_automated_snapshot("orders", taken_at),
        "cluster-manual": rds.control.create_db_cluster_snapshot("analytics-snap", "analytics"),
        "cluster-automated": rds.control.create_automated_cluster_snapshot("analytics", taken_at),
    }


def assert_snapshot_type_required(excinfo: pytest.ExceptionInfo[ClientError]) -> None:
    assert error_of(excinfo) == ("InvalidParameterCombination", 400)
    assert "SnapshotType parameter must also be specified" in str(
        excinfo.value.response["Error"]["Message"]
    )


def test_automated_snapshot_by_identifier_requires_snapshot_type(rds: Rds) -> None:
    snapshots = make_both_kinds(rds)
    client = rds.client()
    for identifier in (AUTOMATED_NAME, snapshots["automated"]["DBSnapshotArn"]):
        with pytest.raises(ClientError) as excinfo:
            client.describe_db_snapshots(DBSnapshotIdentifier=identifier)
        assert_snapshot_type_required(excinfo)
        assert identifier in excinfo.value.response["Error"]["Message"]
        found = client.describe_db_snapshots(
            DBSnapshotIdentifier=identifier, SnapshotType="automated"
        )["DBSnapshots"]
        assert [s["DBSnapshotIdentifier"] for s in found] == [AUTOMATED_NAME]
    # A snapshot-type filter is not the SnapshotType parameter the rule asks for.
    with pytest.raises(ClientError) as excinfo:
        client.describe_db_snapshots(
            DBSnapshotIdentifier=AUTOMATED_NAME,
            Filters=[{"Name": "snapshot-type", "Values": ["automated"]}],
        )
    assert_snapshot_type_required(excinfo)
    # Manual snapshots need no SnapshotType; the wrong type finds nothing.
    manual = client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")["DBSnapshots"]
    assert [s["SnapshotType"] for s in manual] == ["manual"]
    with pytest.raises(ClientError) as excinfo:
        client.describe_db_snapshots(DBSnapshotIdentifier=AUTOMATED_NAME, SnapshotType="manual")
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)


def test_automated_cluster_snapshot_by_identifier_requires_snapshot_type(rds: Rds) -> None:
    snapshots = make_both_kinds(rds)
    client = rds.client()
    arn = snapshots["cluster-automated"]["DBClusterSnapshotArn"]
    assert arn.endswith(f":cluster-snapshot:{AUTOMATED_CLUSTER_NAME}")
    for identifier in (AUTOMATED_CLUSTER_NAME, arn):
        with pytest.raises(ClientError) as excinfo:
            client.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)
        assert_snapshot_type_required(excinfo)
        assert "DBClusterSnapshotIdentifier" in excinfo.value.response["Error"]["Message"]
        found = client.describe_db_cluster_snapshots(
            DBClusterSnapshotIdentifier=identifier, SnapshotType="automated"
        )["DBClusterSnapshots"]
        assert [s["DBClusterSnapshotIdentifier"] for s in found] == [AUTOMATED_CLUSTER_NAME]
    manual = client.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="analytics-snap")
    assert [s["SnapshotType"] for s in manual["DBClusterSnapshots"]] == ["manual"]


def test_refused_describe_is_counted_and_does_not_poll(rds: Rds) -> None:
    rds.control.create_db_instance("orders")
    rds.control.create_automated_snapshot(
        "orders", datetime(2026, 11, 20, 3, 0), ready_after_polls=1
    )
    client = rds.client()
    rds.control.reset_calls()
    with pytest.raises(ClientError):
        client.describe_db_snapshots(DBSnapshotIdentifier=AUTOMATED_NAME)
    assert rds.control.calls() == {"DescribeDBSnapshots": 1}
    statuses = [
        client.describe_db_snapshots(DBSnapshotIdentifier=AUTOMATED_NAME, SnapshotType="automated")[
            "DBSnapshots"
        ][0]["Status"]
        for _ in range(2)
    ]
    assert statuses == ["creating", "available"]


def test_id_filter_returns_both_types_unless_snapshot_type_narrows(rds: Rds) -> None:
    make_both_kinds(rds)
    client = rds.client()
    both = [AUTOMATED_NAME, "orders-manual"]

    def names(**arguments: Any) -> list[str]:
        snapshots = client.describe_db_snapshots(**arguments)["DBSnapshots"]
        return sorted(s["DBSnapshotIdentifier"] for s in snapshots)

    # "If you don't specify a SnapshotType value, then both automated and manual snapshots
    # are returned" (DescribeDBSnapshots API reference).
    by_id = [{"Name": "db-snapshot-id", "Values": both}]
    assert names(Filters=by_id) == sorted(both)
    only_automated = [{"Name": "db-snapshot-id", "Values": [AUTOMATED_NAME]}]
    assert names(Filters=only_automated) == [AUTOMATED_NAME]
    assert names(Filters=by_id, SnapshotType="automated") == [AUTOMATED_NAME]
    assert names(Filters=by_id, SnapshotType="manual") == ["orders-manual"]
    typed = [{"Name": "snapshot-type", "Values": ["automated", "manual"]}]
    assert names(Filters=by_id + typed) == sorted(both)
    # SnapshotType narrows a snapshot-type filter (moto alone would add them up).
    assert names(Filters=by_id + typed, SnapshotType="automated") == [AUTOMATED_NAME]
    manual_only = [{"Name": "snapshot-type", "Values": ["manual"]}]
    assert names(Filters=by_id + manual_only, SnapshotType="automated") == []


def test_cluster_id_filter_returns_both_types_unless_snapshot_type_narrows(rds: Rds) -> None:
    make_both_kinds(rds)
    client = rds.client()
    both = [AUTOMATED_CLUSTER_NAME, "analytics-snap"]

    def names(**arguments: Any) -> list[str]:
        snapshots = client.describe_db_cluster_snapshots(**arguments)["DBClusterSnapshots"]
        return sorted(s["DBClusterSnapshotIdentifier"] for s in snapshots)

    by_id = [{"Name": "db-cluster-snapshot-id", "Values": both}]
    assert names(Filters=by_id) == sorted(both)
    assert names(Filters=by_id, SnapshotType="automated") == [AUTOMATED_CLUSTER_NAME]
    typed = [{"Name": "snapshot-type", "Values": ["automated"]}]
    assert names(Filters=by_id + typed) == [AUTOMATED_CLUSTER_NAME]


def test_snapshot_type_selects_one_kind(rds: Rds) -> None:
    make_both_kinds(rds)
    client = rds.client()

    def types(method: str, key: str, **arguments: Any) -> list[str]:
        return sorted(s["SnapshotType"] for s in getattr(client, method)(**arguments)[key])

    db = ("describe_db_snapshots", "DBSnapshots")
    cluster = ("describe_db_cluster_snapshots", "DBClusterSnapshots")
    for method, key in (db, cluster):
        assert types(method, key) == ["automated", "manual"]  # no type: both kinds
        assert types(method, key, SnapshotType="automated") == ["automated"]
        assert types(method, key, SnapshotType="manual") == ["manual"]
    assert types(*db, DBInstanceIdentifier="orders", SnapshotType="automated") == ["automated"]
    assert types(*cluster, DBClusterIdentifier="analytics", SnapshotType="manual") == ["manual"]


# ------------------------------------------------ ARNs of other Regions and accounts


def foreign(arn: str, region: str = "us-west-2", account: str = ACCOUNT) -> str:
    """``arn`` moved to another Region and/or account (same resource type and name)."""
    parts = arn.split(":", 6)
    parts[3], parts[4] = region, account
    return ":".join(parts)


ELSEWHERE = [
    pytest.param({"region": "us-west-2"}, id="other-region"),
    pytest.param({"account": "210987654321"}, id="other-account"),
    pytest.param({"region": "eu-west-1", "account": "210987654321"}, id="both"),
]


@pytest.mark.parametrize("elsewhere", ELSEWHERE)
def test_snapshot_arns_of_another_region_or_account_are_not_found(
    rds: Rds, elsewhere: dict[str, str]
) -> None:
    snapshots = make_both_kinds(rds)
    client = rds.client()
    for snapshot, extra in (
        (snapshots["manual"], {}),
        (snapshots["automated"], {"SnapshotType": "automated"}),
    ):
        local = snapshot["DBSnapshotArn"]
        assert client.describe_db_snapshots(DBSnapshotIdentifier=local, **extra)["DBSnapshots"]
        with pytest.raises(ClientError) as excinfo:
            client.describe_db_snapshots(DBSnapshotIdentifier=foreign(local, **elsewhere), **extra)
        assert error_of(excinfo) == ("DBSnapshotNotFound", 404)
        assert isinstance(excinfo.value, client.exceptions.DBSnapshotNotFoundFault)
    for snapshot, extra in (
        (snapshots["cluster-manual"], {}),
        (snapshots["cluster-automated"], {"SnapshotType": "automated"}),
    ):
        local = snapshot["DBClusterSnapshotArn"]
        found = client.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=local, **extra)
        assert found["DBClusterSnapshots"]
        with pytest.raises(ClientError) as excinfo:
            client.describe_db_cluster_snapshots(
                DBClusterSnapshotIdentifier=foreign(local, **elsewhere), **extra
            )
        assert error_of(excinfo) == ("DBClusterSnapshotNotFoundFault", 404)


@pytest.mark.parametrize("elsewhere", ELSEWHERE)
def test_export_sources_of_another_region_or_account_are_not_found(
    rds: Rds, elsewhere: dict[str, str]
) -> None:
    source = make_source(rds)
    cluster = rds.control.create_db_cluster("analytics")
    cluster_snapshot = rds.control.create_db_cluster_snapshot("analytics-snap", "analytics")
    client = rds.client()
    for local, expected in (
        (source.snapshot_arn, ("DBSnapshotNotFound", 404)),
        (cluster_snapshot["DBClusterSnapshotArn"], ("DBClusterSnapshotNotFoundFault", 404)),
        (cluster["DBClusterArn"], ("DBClusterNotFoundFault", 404)),
    ):
        elsewhere_arn = foreign(local, **elsewhere)
        with pytest.raises(ClientError) as excinfo:
            start(client, Source(source.prereq, elsewhere_arn), "exp-elsewhere")
        assert error_of(excinfo) == expected
        assert elsewhere_arn in excinfo.value.response["Error"]["Message"]
    assert rds.control.export_tasks() == []
    # The same resources, named by their own ARNs, are found.
    assert start(client, source, "exp-here")["Status"] == "STARTING"


def test_a_client_in_another_region_does_not_see_this_regions_snapshot(rds: Rds) -> None:
    source = make_source(rds)
    elsewhere = rds.client(region_name="us-west-2")
    with pytest.raises(ClientError) as excinfo:
        elsewhere.describe_db_snapshots(DBSnapshotIdentifier=source.snapshot_arn)
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)
    with pytest.raises(ClientError) as excinfo:
        start(elsewhere, source, "exp-from-elsewhere")
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)


def test_an_arn_of_another_partition_is_not_found(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    other_partition = source.snapshot_arn.replace("arn:aws:", "arn:aws-cn:", 1)
    with pytest.raises(ClientError) as excinfo:
        client.describe_db_snapshots(DBSnapshotIdentifier=other_partition)
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)
    with pytest.raises(ClientError) as excinfo:
        start(client, Source(source.prereq, other_partition), "exp-cn")
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)


# --------------------------------------------------------------- export lifecycle


def test_export_lifecycle_starting_in_progress_complete(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=1, in_progress_polls=3)
    client = rds.client()
    started = start(client, source, "exp-1", S3Prefix="nightly", ExportOnly=["orders.public"])
    assert started["Status"] == "STARTING"
    assert started["SourceType"] == "SNAPSHOT"
    assert started["S3Prefix"] == "nightly"
    assert "TaskStartTime" in started

    seen = [describe(client, "exp-1") for _ in range(6)]
    assert [t["Status"] for t in seen] == [
        "STARTING",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "COMPLETE",
        "COMPLETE",
    ]
    percents = [t["PercentProgress"] for t in seen]
    assert percents == [0, 25, 50, 75, 100, 100]
    extracted = [t["TotalExtractedDataInGB"] for t in seen]
    assert extracted[:5] == sorted(extracted[:5]) and extracted[1] < extracted[3] < extracted[4]
    assert "TaskEndTime" not in seen[3]
    assert seen[4]["TaskEndTime"] >= seen[4]["TaskStartTime"]
    assert seen[4]["ExportOnly"] == ["orders.public"]


def test_export_paced_by_seconds(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    client.describe_export_tasks()  # warm up: the first call loads models
    rds.control.pace_export("exp-timed", starting_seconds=0.5, in_progress_seconds=1.0)
    start(client, source, "exp-timed")
    assert describe(client, "exp-timed")["Status"] == "STARTING"
    time.sleep(0.7)
    middle = describe(client, "exp-timed")
    assert middle["Status"] == "IN_PROGRESS"
    assert 0 < middle["PercentProgress"] < 100
    time.sleep(1.0)
    assert describe(client, "exp-timed")["Status"] == "COMPLETE"


def test_pace_export_on_a_running_task_restarts_its_stage(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=1)
    client = rds.client()
    start(client, source, "exp-slow")
    assert describe(client, "exp-slow")["Status"] == "IN_PROGRESS"
    rds.control.pace_export("exp-slow", in_progress_polls=3)
    statuses = [describe(client, "exp-slow")["Status"] for _ in range(4)]
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "COMPLETE"]


def test_source_type_is_cluster_for_a_live_cluster_only(rds: Rds) -> None:
    source = make_source(rds)
    cluster = rds.control.create_db_cluster("analytics")
    assert cluster["DBClusterArn"] == f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:analytics"
    cluster_snapshot = rds.control.create_db_cluster_snapshot(
        "analytics-snap", db_cluster_identifier="analytics"
    )
    client = rds.client()
    started = {
        "exp-db-snap": start(client, source, "exp-db-snap"),
        "exp-cluster-snap": start(
            client,
            Source(source.prereq, cluster_snapshot["DBClusterSnapshotArn"]),
            "exp-cluster-snap",
        ),
        "exp-live": start(client, Source(source.prereq, cluster["DBClusterArn"]), "exp-live"),
    }
    # ASSUMPTION in the emulator: a DB cluster *snapshot* export is a snapshot export.
    expected = {"exp-db-snap": "SNAPSHOT", "exp-cluster-snap": "SNAPSHOT", "exp-live": "CLUSTER"}
    assert {name: task["SourceType"] for name, task in started.items()} == expected
    assert {name: task["Status"] for name, task in started.items()} == dict.fromkeys(
        expected, "STARTING"
    )
    live = describe(client, "exp-live")
    assert (live["SourceType"], live["SourceArn"]) == ("CLUSTER", cluster["DBClusterArn"])
    assert "SnapshotTime" not in live  # a live cluster has no snapshot time

    def names(**arguments: Any) -> list[str]:
        tasks = client.describe_export_tasks(**arguments)["ExportTasks"]
        return sorted(t["ExportTaskIdentifier"] for t in tasks)

    assert names(SourceType="CLUSTER") == ["exp-live"]
    assert names(SourceType="SNAPSHOT") == ["exp-cluster-snap", "exp-db-snap"]
    assert names(SourceType="CLUSTER", SourceArn=cluster["DBClusterArn"]) == ["exp-live"]
    assert names(SourceType="SNAPSHOT", SourceArn=cluster["DBClusterArn"]) == []


def test_fail_export_registered_before_start(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.fail_export("exp-doomed", cause="S3 bucket policy denies access", after_polls=2)
    client = rds.client()
    assert start(client, source, "exp-doomed")["Status"] == "STARTING"
    statuses = [describe(client, "exp-doomed") for _ in range(3)]
    assert [t["Status"] for t in statuses] == ["STARTING", "IN_PROGRESS", "FAILED"]
    assert statuses[2]["FailureCause"] == "S3 bucket policy denies access"
    assert "TaskEndTime" in statuses[2]


def test_fail_export_now_and_not_after_completion(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    start(client, source, "exp-now")
    rds.control.fail_export("exp-now", cause="boom")
    task = describe(client, "exp-now")
    assert (task["Status"], task["FailureCause"]) == ("FAILED", "boom")
    with pytest.raises(EmulatorControlError, match="FAILED"):
        rds.control.fail_export("exp-now", cause="again")


def test_trailing_slash_prefix_is_accepted_then_fails(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    assert start(client, source, "exp-slash", S3Prefix="nightly/")["Status"] == "STARTING"
    statuses = [describe(client, "exp-slash") for _ in range(2)]
    assert [t["Status"] for t in statuses] == ["STARTING", "FAILED"]
    assert "must not end with '/'" in statuses[1]["FailureCause"]


def test_statuses_are_the_six_aws_documents_in_upper_case(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.create_db_instance("orders")
    arns = [
        rds.control.create_db_snapshot(f"snap-{index}", "orders")["DBSnapshotArn"]
        for index in range(3)
    ]
    rds.control.set_export_pacing(starting_polls=1, in_progress_polls=1, canceling_polls=1)
    rds.control.fail_export("exp-fail", cause="boom", after_polls=1)
    client = rds.client()
    seen: set[str] = set()
    for index, name in enumerate(("exp-done", "exp-cancel", "exp-fail")):
        seen.add(start(client, Source(prereq, arns[index]), name)["Status"])
    seen.add(describe(client, "exp-cancel")["Status"])
    seen.add(client.cancel_export_task(ExportTaskIdentifier="exp-cancel")["Status"])
    for _ in range(3):
        for name in ("exp-done", "exp-cancel", "exp-fail"):
            seen.add(describe(client, name)["Status"])
    assert (
        seen
        == EXPORT_STATUSES
        == {
            "STARTING",
            "IN_PROGRESS",
            "COMPLETE",
            "CANCELING",
            "CANCELED",
            "FAILED",
        }
    )
    final = {
        t["ExportTaskIdentifier"]: t["Status"]
        for t in client.describe_export_tasks()["ExportTasks"]
    }
    assert final == {"exp-done": "COMPLETE", "exp-cancel": "CANCELED", "exp-fail": "FAILED"}


def test_status_override_reports_an_unknown_status_for_some_describes(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=1, in_progress_polls=3)
    client = rds.client()
    assert start(client, source, "exp-odd")["Status"] == "STARTING"
    rds.control.set_export_status_override("EXP-ODD", "PAUSED", polls=2)
    seen = [describe(client, "exp-odd") for _ in range(4)]
    assert [t["Status"] for t in seen] == ["PAUSED", "PAUSED", "IN_PROGRESS", "IN_PROGRESS"]
    # The export goes on underneath: polls during the override count.
    assert [t["PercentProgress"] for t in seen] == [0, 25, 50, 75]
    assert rds.control.export_tasks()[0]["Status"] == "IN_PROGRESS"


def test_status_override_without_status_leaves_the_key_out(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=20)
    rds.control.set_export_status_override("exp-blank", None)  # before it exists
    client = rds.client()
    start(client, source, "exp-blank")
    for _ in range(3):
        task = describe(client, "exp-blank")
        assert "Status" not in task
        assert task["ExportTaskIdentifier"] == "exp-blank"
        assert "PercentProgress" in task
    listed = client.describe_export_tasks()["ExportTasks"]
    assert [("Status" in t) for t in listed] == [False]
    # A status filter sees what is reported: nothing matches a missing status.
    in_progress = [{"Name": "status", "Values": ["in_progress"]}]
    assert client.describe_export_tasks(Filters=in_progress)["ExportTasks"] == []
    rds.control.clear_export_status_override("exp-blank")
    assert describe(client, "exp-blank")["Status"] == "IN_PROGRESS"
    assert len(client.describe_export_tasks(Filters=in_progress)["ExportTasks"]) == 1
    rds.control.clear_export_status_override("exp-never-overridden")  # no error


def test_status_override_any_string_until_cleared_and_start_cancel_unaffected(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=10, canceling_polls=0)
    rds.control.set_export_status_override("exp-new", "complete")  # a lower-case lookalike
    client = rds.client()
    assert start(client, source, "exp-new")["Status"] == "STARTING"
    assert [describe(client, "exp-new")["Status"] for _ in range(3)] == ["complete"] * 3
    assert client.cancel_export_task(ExportTaskIdentifier="exp-new")["Status"] == "CANCELING"
    rds.control.set_export_status_override("exp-new", "SOMETHING_NEW", polls=1)  # replaces
    assert describe(client, "exp-new")["Status"] == "SOMETHING_NEW"
    assert describe(client, "exp-new")["Status"] == "CANCELED"


@pytest.mark.parametrize("polls", [0, -1])
def test_status_override_rejects_non_positive_polls(rds: Rds, polls: int) -> None:
    with pytest.raises(EmulatorControlError, match="polls"):
        rds.control.set_export_status_override("exp-x", "PAUSED", polls=polls)


def test_reset_forgets_status_overrides(rds: Rds) -> None:
    rds.control.set_export_status_override("exp-reset", "PAUSED")
    rds.control.reset()
    source = make_source(rds)
    client = rds.client()
    start(client, source, "exp-reset")
    assert describe(client, "exp-reset")["Status"] in EXPORT_STATUSES


# ----------------------------------------------------------------------- cancel


def test_cancel_in_progress_export(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=5, canceling_polls=1)
    client = rds.client()
    start(client, source, "exp-cancel")
    assert describe(client, "exp-cancel")["Status"] == "IN_PROGRESS"
    assert client.cancel_export_task(ExportTaskIdentifier="exp-cancel")["Status"] == "CANCELING"
    assert describe(client, "exp-cancel")["Status"] == "CANCELING"
    canceled = describe(client, "exp-cancel")
    assert canceled["Status"] == "CANCELED"
    assert "TaskEndTime" in canceled
    with pytest.raises(ClientError) as excinfo:
        client.cancel_export_task(ExportTaskIdentifier="exp-cancel")
    assert error_of(excinfo) == ("InvalidExportTaskStateFault", 400)


def test_cancel_while_canceling_is_refused(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    start(client, source, "exp-twice")
    client.cancel_export_task(ExportTaskIdentifier="exp-twice")
    with pytest.raises(ClientError) as excinfo:
        client.cancel_export_task(ExportTaskIdentifier="exp-twice")
    assert error_of(excinfo) == ("InvalidExportTaskStateFault", 400)


def test_cancel_complete_or_unknown_export_fails(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=0)
    client = rds.client()
    start(client, source, "exp-done")
    assert describe(client, "exp-done")["Status"] == "COMPLETE"
    with pytest.raises(ClientError) as excinfo:
        client.cancel_export_task(ExportTaskIdentifier="exp-done")
    assert error_of(excinfo) == ("InvalidExportTaskStateFault", 400)
    with pytest.raises(ClientError) as excinfo:
        client.cancel_export_task(ExportTaskIdentifier="exp-missing")
    assert error_of(excinfo) == ("ExportTaskNotFound", 404)
    with pytest.raises(ClientError) as excinfo:
        client.describe_export_tasks(ExportTaskIdentifier="exp-missing")
    assert error_of(excinfo) == ("ExportTaskNotFound", 404)


# ---------------------------------------------------------------- StartExportTask


def test_sixth_concurrent_export_is_refused(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.create_db_instance("orders")
    client = rds.client()
    sources = []
    for index in range(7):
        snapshot = rds.control.create_db_snapshot(f"snap-{index}", db_instance_identifier="orders")
        sources.append(Source(prereq, snapshot["DBSnapshotArn"]))
    for index in range(5):
        start(client, sources[index], f"exp-{index}")
    with pytest.raises(ClientError) as excinfo:
        start(client, sources[5], "exp-5")
    assert error_of(excinfo) == ("LimitExceeded", 400)
    assert EXPORT_LIMIT_ERROR_CODE == "LimitExceeded"
    message = excinfo.value.response["Error"]["Message"]
    assert message == EXPORT_LIMIT_MESSAGE.format(limit=MAX_CONCURRENT_EXPORTS)
    assert "export tasks in progress" in message
    client.cancel_export_task(ExportTaskIdentifier="exp-0")
    assert start(client, sources[5], "exp-5")["Status"] == "STARTING"
    with pytest.raises(ClientError) as excinfo:
        start(client, sources[6], "exp-6")
    assert error_of(excinfo) == ("LimitExceeded", 400)
    assert len(rds.control.export_tasks()) == 6


def test_same_snapshot_concurrent_export_is_refused(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=0)
    client = rds.client()
    start(client, source, "Exp-A")
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-b")
    assert error_of(excinfo) == (CONCURRENT_EXPORT_ERROR_CODE, 400)
    assert CONCURRENT_EXPORT_ERROR_CODE == "InvalidExportSourceState"
    assert isinstance(excinfo.value, client.exceptions.InvalidExportSourceStateFault)
    message = excinfo.value.response["Error"]["Message"]
    # The running export is named as RDS keeps it (lower case); a client can match it.
    assert message == CONCURRENT_EXPORT_MESSAGE.format(
        export_task_identifier="exp-a", source_arn=source.snapshot_arn
    )
    assert message == (
        f"Export task exp-a is already exporting {source.snapshot_arn}; wait for it to finish."
    )
    match = CONCURRENT_EXPORT_MESSAGE_RE.match(message)
    assert match is not None
    assert match.group("export_task_identifier", "source_arn") == ("exp-a", source.snapshot_arn)
    assert rds.control.export_tasks()[0]["ExportTaskIdentifier"] == "exp-a"
    assert describe(client, "exp-a")["Status"] == "COMPLETE"
    assert start(client, source, "exp-b")["Status"] == "STARTING"


def test_same_live_cluster_concurrent_export_is_refused(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    cluster = rds.control.create_db_cluster("analytics")
    client = rds.client()
    start(client, Source(prereq, cluster["DBClusterArn"]), "exp-live-a")
    with pytest.raises(ClientError) as excinfo:
        start(client, Source(prereq, cluster["DBClusterArn"]), "exp-live-b")
    assert error_of(excinfo) == ("InvalidExportSourceState", 400)
    match = CONCURRENT_EXPORT_MESSAGE_RE.match(excinfo.value.response["Error"]["Message"])
    assert match is not None and match["export_task_identifier"] == "exp-live-a"


def test_concurrent_export_refusal_comes_before_the_limit(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.create_db_instance("orders")
    client = rds.client()
    arns = [
        rds.control.create_db_snapshot(f"snap-{index}", "orders")["DBSnapshotArn"]
        for index in range(MAX_CONCURRENT_EXPORTS)
    ]
    for index, arn in enumerate(arns):
        start(client, Source(prereq, arn), f"exp-{index}")
    with pytest.raises(ClientError) as excinfo:
        start(client, Source(prereq, arns[2]), "exp-again")
    assert error_of(excinfo) == ("InvalidExportSourceState", 400)
    match = CONCURRENT_EXPORT_MESSAGE_RE.match(excinfo.value.response["Error"]["Message"])
    assert match is not None and match["export_task_identifier"] == "exp-2"


def test_identifier_is_unique_forever(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=0)
    client = rds.client()
    start(client, source, "exp-once")
    assert describe(client, "exp-once")["Status"] == "COMPLETE"
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-once")
    assert error_of(excinfo) == ("ExportTaskAlreadyExists", 400)

    start(client, source, "exp-canceled")
    client.cancel_export_task(ExportTaskIdentifier="exp-canceled")
    assert describe(client, "exp-canceled")["Status"] == "CANCELING"  # canceling_polls=1
    assert describe(client, "exp-canceled")["Status"] == "CANCELED"
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-canceled")
    assert error_of(excinfo) == ("ExportTaskAlreadyExists", 400)


def test_source_not_available_is_refused(rds: Rds) -> None:
    source = make_source(rds, ready_after_polls=1)
    client = rds.client()
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-early")
    assert error_of(excinfo) == ("InvalidExportSourceState", 400)
    assert "creating" in excinfo.value.response["Error"]["Message"]
    client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")
    client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")
    assert start(client, source, "exp-early")["Status"] == "STARTING"


def test_missing_sources_are_not_found(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    arn = source.snapshot_arn
    with pytest.raises(ClientError) as excinfo:
        start(client, Source(source.prereq, arn.replace("orders-manual", "nope")), "exp-x")
    assert error_of(excinfo) == ("DBSnapshotNotFound", 404)
    cluster_arn = arn.replace(":snapshot:orders-manual", ":cluster-snapshot:nope")
    with pytest.raises(ClientError) as excinfo:
        start(client, Source(source.prereq, cluster_arn), "exp-x")
    assert error_of(excinfo) == ("DBClusterSnapshotNotFoundFault", 404)


def test_live_cluster_export_needs_an_available_cluster(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    cluster = rds.control.create_db_cluster("analytics")
    client = rds.client()
    for status in ("stopped", "creating", "backing-up"):
        changed = rds.control.set_cluster_status("analytics", status)
        assert (changed["DBClusterIdentifier"], changed["Status"]) == ("analytics", status)
        # The status stays put: moto alone would report a "creating" cluster available.
        for _ in range(2):
            described = client.describe_db_clusters(DBClusterIdentifier="analytics")
            assert described["DBClusters"][0]["Status"] == status
        with pytest.raises(ClientError) as excinfo:
            start(client, Source(prereq, cluster["DBClusterArn"]), "exp-live")
        assert error_of(excinfo) == ("InvalidExportSourceState", 400)
        assert status in excinfo.value.response["Error"]["Message"]
    assert rds.control.export_tasks() == []
    assert rds.control.set_cluster_status("ANALYTICS", "available")["Status"] == "available"
    started = start(client, Source(prereq, cluster["DBClusterArn"]), "exp-live")
    assert (started["Status"], started["SourceType"]) == ("STARTING", "CLUSTER")


def test_live_cluster_status_set_by_rds_replaces_the_control_setting(rds: Rds) -> None:
    rds.control.create_db_cluster("analytics")
    rds.control.set_cluster_status("analytics", "creating")
    client = rds.client()
    # moto's own state checks see the status the control set...
    with pytest.raises(ClientError) as excinfo:
        client.stop_db_cluster(DBClusterIdentifier="analytics")
    assert error_of(excinfo) == ("InvalidDBClusterStateFault", 400)
    rds.control.set_cluster_status("analytics", "stopped")
    # ... and an RDS call that changes the status replaces it.
    client.start_db_cluster(DBClusterIdentifier="analytics")
    status = client.describe_db_clusters(DBClusterIdentifier="analytics")["DBClusters"][0]
    assert status["Status"] == "available"


def test_missing_live_cluster_is_db_cluster_not_found(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    client = rds.client()
    arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:no-such-cluster"
    with pytest.raises(ClientError) as excinfo:
        start(client, Source(prereq, arn), "exp-live")
    # botocore's RDS model: shape DBClusterNotFoundFault, code "DBClusterNotFoundFault", 404.
    assert error_of(excinfo) == ("DBClusterNotFoundFault", 404)
    assert isinstance(excinfo.value, client.exceptions.DBClusterNotFoundFault)
    assert "no-such-cluster" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(EmulatorControlError, match="no DB cluster named"):
        rds.control.set_cluster_status("no-such-cluster", "stopped")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"S3BucketName": "no-such-bucket"}, ("InvalidS3BucketFault", 400)),
        (
            {"IamRoleArn": "arn:aws:iam::123456789012:role/no-such-role"},
            ("IamRoleNotFound", 404),
        ),
        (
            {"KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-0"},
            ("KMSKeyNotAccessibleFault", 400),
        ),
        ({"KmsKeyId": "alias/no-such-alias"}, ("KMSKeyNotAccessibleFault", 400)),
        ({"ExportOnly": ["db..table"]}, ("InvalidExportOnly", 400)),
        ({"ExportOnly": ["a.b.c.d.e"]}, ("InvalidExportOnly", 400)),
        ({"S3Prefix": "bad:prefix"}, ("InvalidParameterValue", 400)),
    ],
)
def test_missing_prerequisites_have_aws_error_codes(
    rds: Rds, override: dict[str, Any], expected: tuple[str, int]
) -> None:
    source = make_source(rds)
    client = rds.client()
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-prereq", **override)
    assert error_of(excinfo) == expected
    assert rds.control.export_tasks() == []


def test_kms_key_by_alias_and_key_id_is_accepted(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=0)
    client = rds.client()
    assert start(client, source, "exp-alias", KmsKeyId="alias/rds-export")["Status"] == "STARTING"
    key_id = source.prereq["kms_key_id"].split("/")[-1]
    describe(client, "exp-alias")
    assert start(client, source, "exp-key-id", KmsKeyId=key_id)["Status"] == "STARTING"


@pytest.mark.parametrize(
    "identifier",
    ["1starts-with-digit", "ends-with-hyphen-", "double--hyphen", "under_score", "a" * 61],
)
def test_bad_identifiers_are_invalid_parameter_value(rds: Rds, identifier: str) -> None:
    source = make_source(rds)
    client = rds.client()
    with pytest.raises(ClientError) as excinfo:
        start(client, source, identifier)
    assert error_of(excinfo) == ("InvalidParameterValue", 400)


def test_identifiers_are_case_insensitive_and_kept_in_lower_case(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_export_pacing(starting_polls=20)
    client = rds.client()
    started = start(client, source, "Orders-X", S3Prefix="nightly")
    assert started["ExportTaskIdentifier"] == "orders-x"
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "orders-x")
    assert error_of(excinfo) == ("ExportTaskAlreadyExists", 400)
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "ORDERS-X")
    assert error_of(excinfo) == ("ExportTaskAlreadyExists", 400)
    for spelling in ("ORDERS-X", "orders-x", "Orders-x"):
        assert describe(client, spelling)["ExportTaskIdentifier"] == "orders-x"
    assert [t["ExportTaskIdentifier"] for t in rds.control.export_tasks()] == ["orders-x"]
    # Filter values are case-sensitive (API reference): only the stored spelling matches.
    by_filter = client.describe_export_tasks(
        Filters=[{"Name": "export-task-identifier", "Values": ["orders-x"]}]
    )["ExportTasks"]
    assert [t["ExportTaskIdentifier"] for t in by_filter] == ["orders-x"]
    assert (
        client.describe_export_tasks(
            Filters=[{"Name": "export-task-identifier", "Values": ["ORDERS-X"]}]
        )["ExportTasks"]
        == []
    )
    assert client.cancel_export_task(ExportTaskIdentifier="ORDERS-X")["Status"] == "CANCELING"
    with pytest.raises(ClientError) as excinfo:
        client.describe_export_tasks(ExportTaskIdentifier="Orders-Y")
    assert error_of(excinfo) == ("ExportTaskNotFound", 404)


def test_control_methods_take_identifiers_in_any_case(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.pace_export("Exp-Paced", starting_polls=0, in_progress_polls=1)
    rds.control.fail_export("EXP-DOOMED", cause="denied", after_polls=1)
    client = rds.client()
    start(client, source, "exp-paced")
    assert [describe(client, "exp-paced")["Status"] for _ in range(2)] == [
        "IN_PROGRESS",
        "COMPLETE",
    ]
    start(client, source, "Exp-Doomed")
    statuses = [describe(client, "exp-doomed") for _ in range(2)]
    assert [t["Status"] for t in statuses] == ["STARTING", "FAILED"]
    assert statuses[1]["FailureCause"] == "denied"


def test_sixty_character_identifier_is_accepted(rds: Rds) -> None:
    source = make_source(rds)
    identifier = "a" + "-b" * 29 + "c"
    assert len(identifier) == 60
    assert start(rds.client(), source, identifier)["ExportTaskIdentifier"] == identifier


# --------------------------------------------------------------- DescribeExportTasks


def test_describe_filters_and_paging(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.seed_export_prerequisites(bucket="archive", role_name="other", kms_alias="")
    rds.control.create_db_instance("orders")
    snapshot = rds.control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    source = Source(prereq, snapshot["DBSnapshotArn"])
    rds.control.set_export_pacing(starting_polls=0, in_progress_polls=0)
    client = rds.client()
    for index in range(25):
        bucket = "archive" if index % 5 == 0 else "exports"
        start(client, source, f"exp-{index:02d}", S3BucketName=bucket)
        describe(client, f"exp-{index:02d}")  # completes it, freeing the snapshot
    rds.control.set_export_pacing(starting_polls=5)
    start(client, source, "exp-running")

    first = client.describe_export_tasks(MaxRecords=20)
    assert len(first["ExportTasks"]) == 20
    assert first["Marker"]
    second = client.describe_export_tasks(MaxRecords=20, Marker=first["Marker"])
    assert "Marker" not in second
    names = [t["ExportTaskIdentifier"] for t in first["ExportTasks"] + second["ExportTasks"]]
    assert names == [f"exp-{i:02d}" for i in range(25)] + ["exp-running"]

    archive = client.describe_export_tasks(Filters=[{"Name": "s3-bucket", "Values": ["archive"]}])
    assert [t["ExportTaskIdentifier"] for t in archive["ExportTasks"]] == [
        "exp-00",
        "exp-05",
        "exp-10",
        "exp-15",
        "exp-20",
    ]
    starting = client.describe_export_tasks(Filters=[{"Name": "status", "Values": ["starting"]}])
    assert [t["ExportTaskIdentifier"] for t in starting["ExportTasks"]] == ["exp-running"]
    complete = client.describe_export_tasks(Filters=[{"Name": "status", "Values": ["complete"]}])
    assert len(complete["ExportTasks"]) == 25
    by_name = client.describe_export_tasks(
        Filters=[{"Name": "export-task-identifier", "Values": ["exp-03", "exp-04"]}]
    )
    assert [t["ExportTaskIdentifier"] for t in by_name["ExportTasks"]] == ["exp-03", "exp-04"]
    by_source = client.describe_export_tasks(
        Filters=[{"Name": "source-arn", "Values": [source.snapshot_arn]}], MaxRecords=100
    )
    assert len(by_source["ExportTasks"]) == 26
    assert len(client.describe_export_tasks(SourceArn=source.snapshot_arn)["ExportTasks"]) == 26
    assert client.describe_export_tasks(SourceArn=source.snapshot_arn + "x")["ExportTasks"] == []

    unchecked = rds.client(parameter_validation=False)  # botocore would refuse 10 itself
    with pytest.raises(ClientError) as excinfo:
        unchecked.describe_export_tasks(MaxRecords=10)
    assert error_of(excinfo) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as excinfo:
        client.describe_export_tasks(Filters=[{"Name": "engine", "Values": ["postgres"]}])
    assert error_of(excinfo) == ("InvalidParameterValue", 400)


# ---------------------------------------------------------------------- faults


def test_throttling_next_calls_of_one_operation(rds: Rds) -> None:
    make_source(rds)
    client = rds.client()
    rds.control.throttle(operation="DescribeExportTasks", count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            client.describe_export_tasks()
        assert error_of(excinfo) == ("Throttling", 400)
        assert excinfo.value.response["Error"]["Message"] == "Rate exceeded"
    assert client.describe_db_snapshots()["DBSnapshots"]  # other operations unaffected
    assert client.describe_export_tasks()["ExportTasks"] == []


def test_throttling_a_fraction_of_all_calls(rds: Rds) -> None:
    client = rds.client()
    rds.control.throttle(operation="*", fraction=0.5)
    outcomes = []
    for _ in range(6):
        try:
            client.describe_export_tasks()
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert outcomes == ["ok", "Throttling"] * 3
    rds.control.clear_faults()
    assert client.describe_export_tasks()["ExportTasks"] == []


def test_throttling_for_a_duration(rds: Rds) -> None:
    client = rds.client()
    # A full collection of this process's large heap can pause it for most of a second;
    # collect now so none falls inside the 0.3 s window.
    gc.collect()
    rds.control.throttle(operation="DescribeExportTasks", seconds=0.3)
    for _ in range(3):
        with pytest.raises(ClientError):
            client.describe_export_tasks()
    time.sleep(0.35)
    assert client.describe_export_tasks()["ExportTasks"] == []


def test_server_error(rds: Rds) -> None:
    client = rds.client()
    rds.control.server_error(operation="*", count=2, status=503)
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            client.describe_export_tasks()
        assert error_of(excinfo) == ("ServiceUnavailable", 503)
    assert client.describe_export_tasks()["ExportTasks"] == []


ACCESS_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/airflow/worker is not authorized to "
    "perform: rds:DescribeExportTasks on resource: arn:aws:rds:us-east-1:123456789012:"
    "export-task:x because no identity-based policy allows the rds:DescribeExportTasks action"
)


def test_refuse_answers_with_the_named_aws_error(rds: Rds) -> None:
    make_source(rds)
    client = rds.client()
    rds.control.refuse(
        "DescribeExportTasks", code="AccessDenied", message=ACCESS_DENIED, status=403
    )
    with pytest.raises(ClientError) as excinfo:
        client.describe_export_tasks()
    assert error_of(excinfo) == ("AccessDenied", 403)
    assert excinfo.value.response["Error"]["Message"] == ACCESS_DENIED
    assert excinfo.value.response["Error"]["Type"] == "Sender"
    assert client.describe_export_tasks()["ExportTasks"] == []  # count=1: the next call only

    kms_message = "The specified KMS key arn:aws:kms:us-east-1:123456789012:key/k is disabled."
    rds.control.refuse("DescribeDBSnapshots", code="KMSKeyNotAccessibleFault", message=kms_message)
    with pytest.raises(ClientError) as excinfo:
        client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")
    assert error_of(excinfo) == ("KMSKeyNotAccessibleFault", 400)
    assert excinfo.value.response["Error"]["Message"] == kms_message
    assert isinstance(excinfo.value, client.exceptions.KMSKeyNotAccessibleFault)
    assert client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")["DBSnapshots"]


def test_refuse_count_operation_and_default_message(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.refuse(code="AccessDenied", status=403, count=2)
    outcomes = []
    for call in (
        client.describe_db_snapshots,
        client.describe_export_tasks,
        client.describe_export_tasks,
    ):
        try:
            call()
            outcomes.append("ok")
        except ClientError as error:
            response = error.response
            status = response["ResponseMetadata"]["HTTPStatusCode"]
            outcomes.append(f"{response['Error']['Code']}/{status}: {response['Error']['Message']}")
    assert outcomes == ["AccessDenied/403: Injected AccessDenied"] * 2 + ["ok"]
    # A refused request is not carried out.
    rds.control.refuse(
        "StartExportTask", code="IamRoleMissingPermissions", message="no s3:PutObject"
    )
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-refused")
    assert error_of(excinfo) == ("IamRoleMissingPermissions", 400)
    assert rds.control.export_tasks() == []
    assert rds.control.calls()["StartExportTask"] == 1


@pytest.mark.parametrize(
    "arguments",
    [{"code": ""}, {"code": "AccessDenied", "status": 500}, {"code": "AccessDenied", "count": 0}],
)
def test_refuse_rejects_bad_arguments(rds: Rds, arguments: dict[str, Any]) -> None:
    with pytest.raises(EmulatorControlError):
        rds.control.refuse("DescribeExportTasks", **arguments)


def test_lost_response_means_the_request_took_effect(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.lose_response(operation="StartExportTask", count=1)
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-lost")
    assert error_of(excinfo) == ("InternalFailure", 500)
    assert [t["ExportTaskIdentifier"] for t in rds.control.export_tasks()] == ["exp-lost"]
    with pytest.raises(ClientError) as excinfo:
        start(client, source, "exp-lost")
    assert error_of(excinfo) == ("ExportTaskAlreadyExists", 400)


def test_hang_times_out_a_client_with_a_short_read_timeout(rds: Rds) -> None:
    client = rds.client(read_timeout=0.3, connect_timeout=1)
    rds.control.hang(operation="DescribeExportTasks", count=1, seconds=0.6)
    began = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client.describe_export_tasks()
    assert time.monotonic() - began >= 0.25
    assert client.describe_export_tasks()["ExportTasks"] == []


def test_calls_are_counted_per_operation(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.throttle(operation="DescribeExportTasks", count=1)
    start(client, source, "exp-counted")
    for _ in range(3):
        with contextlib.suppress(ClientError):
            client.describe_export_tasks(ExportTaskIdentifier="exp-counted")
    assert rds.control.calls() == {"StartExportTask": 1, "DescribeExportTasks": 3}
    rds.control.reset_calls()
    client.describe_db_snapshots()
    assert rds.control.calls() == {"DescribeDBSnapshots": 1}


def test_control_errors_are_emulator_control_errors(rds: Rds) -> None:
    with pytest.raises(EmulatorControlError, match="no snapshot named"):
        rds.control.set_snapshot_status("nope", "failed")
    with pytest.raises(EmulatorControlError):
        rds.control.create_db_snapshot("snap", db_instance_identifier="no-such-instance")
    with pytest.raises(EmulatorControlError):
        rds.control.server_error(status=404)


def test_export_tasks_lists_raw_tasks_without_polling(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    start(client, source, "exp-raw", S3Prefix="p")
    for _ in range(3):
        tasks = rds.control.export_tasks()
    assert len(tasks) == 1
    assert tasks[0]["ExportTaskIdentifier"] == "exp-raw"
    assert tasks[0]["Status"] == "STARTING"
    assert tasks[0]["S3Prefix"] == "p"
    assert tasks[0]["TaskStartTime"].endswith("+00:00")


def test_leaving_the_emulator_restores_plain_moto() -> None:
    from moto import mock_aws

    with RdsEmulator() as emu:
        emu.create_db_instance("orders")
    with mock_aws():
        client = boto3.client("rds", region_name=REGION)
        client.create_db_instance(
            DBInstanceIdentifier="orders",
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="password123",
        )
        arn = client.create_db_snapshot(DBSnapshotIdentifier="snap", DBInstanceIdentifier="orders")[
            "DBSnapshot"
        ]["DBSnapshotArn"]
        started = client.start_export_task(
            ExportTaskIdentifier="exp-plain",
            SourceArn=arn,
            S3BucketName="no-bucket-check-in-plain-moto",
            IamRoleArn="arn:aws:iam::123456789012:role/none",
            KmsKeyId="none",
        )
        assert started["Status"] == "complete"  # plain moto: lower case, done at once


# ------------------------------------------------------------------ export output
# What a COMPLETE export writes to S3 (EXPORT_OUTPUT_AND_EVENTS.md section 1), and the
# control methods that shape it: the source's tables, failed / skipped tables, the task's
# WarningMessage, and faults in the metadata.

EXPORT_INFO_KEYS = {
    "exportTaskIdentifier",
    "sourceArn",
    "exportOnly",
    "snapshotTime",
    "taskStartTime",
    "taskEndTime",
    "s3Bucket",
    "s3Prefix",
    "exportedFilesPath",
    "iamRoleArn",
    "kmsKeyId",
    "status",
    "percentProgress",
    "totalExportedDataInGB",
}
LOCALE_TIME_RE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} [AP]M$")
DATA_KEY_RE = re.compile(
    r"^(?P<base>.+/)(?P<db>[^/]+)/(?P<folder>[^/]+)/1/"
    r"part-00000-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.gz\.parquet$"
)
TABLES_INFO_RE = re.compile(
    r"export_tables_info_(?P<id>.+)_from_(?P<first>\d+)_to_(?P<last>\d+)\.json$"
)
DEFAULT_PG_SIZES = {
    "orders.public.orders": 10.0,
    "orders.public.customers": 4.0,
    "orders.public.order_items": 3.0,
    "orders.audit.events": 3.0,
}


def s3_client(rds: Rds) -> Any:
    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=rds.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def s3_objects(rds: Rds, bucket: str = "exports") -> dict[str, bytes]:
    """Every object of ``bucket``, by key."""
    client = s3_client(rds)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def run_export(rds: Rds, source: Source, identifier: str, **overrides: Any) -> dict[str, Any]:
    """Start an export and describe it until it ends; its last description."""
    client = rds.client()
    rds.control.pace_export(identifier, starting_polls=0, in_progress_polls=1)
    start(client, source, identifier, **overrides)
    for _ in range(10):
        task = describe(client, identifier)
        if task["Status"] in {"COMPLETE", "FAILED", "CANCELED"}:
            return task
    raise AssertionError(f"export {identifier} did not end: {task}")


def tables_info(objects: dict[str, bytes], identifier: str) -> list[dict[str, Any]]:
    """The ``perTableStatus`` entries of all tables files, in file order."""
    files = sorted(
        (int(m["first"]), key)
        for key in objects
        if (m := TABLES_INFO_RE.search(key)) and m["id"] == identifier
    )
    entries: list[dict[str, Any]] = []
    for _, key in files:
        entries.extend(json.loads(objects[key])["perTableStatus"])
    return entries


def data_targets(objects: dict[str, bytes]) -> list[str]:
    """``db.schema.table`` of every data object (its folder ``db/schema.table/``)."""
    return sorted(f"{m['db']}.{m['folder']}" for key in objects if (m := DATA_KEY_RE.match(key)))


def test_complete_export_writes_data_and_metadata_as_rds_does(rds: Rds) -> None:
    source = make_source(rds)
    task = run_export(rds, source, "exp-out", S3Prefix="nightly/pg")
    assert task["Status"] == "COMPLETE"
    objects = s3_objects(rds)
    base = "nightly/pg/exp-out/"
    assert all(key.startswith(base) for key in objects)
    metadata = {key for key in objects if key.endswith(".json")}
    assert metadata == {
        f"{base}export_info_exp-out.json",
        f"{base}export_tables_info_exp-out_from_1_to_4.json",
    }
    data = {key: body for key, body in objects.items() if key not in metadata}
    assert len(data) == 4
    for key, body in data.items():
        match = DATA_KEY_RE.match(key)
        assert match is not None and match["base"] == base, key
        assert body[:4] == body[-4:] == b"PAR1"
    assert data_targets(objects) == sorted(DEFAULT_PG_SIZES)

    info = json.loads(objects[f"{base}export_info_exp-out.json"])
    assert set(info) == EXPORT_INFO_KEYS
    assert info["exportTaskIdentifier"] == "exp-out"
    assert info["sourceArn"] == source.snapshot_arn
    assert (info["s3Bucket"], info["s3Prefix"]) == ("exports", "nightly/pg")
    assert info["exportedFilesPath"] == "nightly/pg/exp-out"
    assert (info["iamRoleArn"], info["kmsKeyId"]) == (
        source.prereq["iam_role_arn"],
        source.prereq["kms_key_id"],
    )
    assert (info["status"], info["percentProgress"], info["exportOnly"]) == ("COMPLETE", 100, [])
    for name in ("snapshotTime", "taskStartTime", "taskEndTime"):
        assert LOCALE_TIME_RE.match(info[name]), info[name]

    entries = tables_info(objects, "exp-out")
    assert {e["target"]: e["sizeGB"] for e in entries} == DEFAULT_PG_SIZES
    for entry in entries:
        assert set(entry) == {"tableStatistics", "schemaMetadata", "status", "sizeGB", "target"}
        assert entry["status"] == "COMPLETE"
        statistics = entry["tableStatistics"]
        assert LOCALE_TIME_RE.match(statistics["extractionStartTime"])
        assert LOCALE_TIME_RE.match(statistics["extractionEndTime"])
        partitioning = statistics["partitioningInfo"]
        assert partitioning["numberOfCompletedPartitions"] == partitioning["numberOfPartitions"]
        assert partitioning["constraintType"] == "CTID"
        mappings = entry["schemaMetadata"]["originalTypeMappings"]
        assert {"columnName", "originalType", "expectedExportedType"} <= set(mappings[0])

    total = sum(DEFAULT_PG_SIZES.values())
    assert info["totalExportedDataInGB"] == total
    assert task["TotalExtractedDataInGB"] == int(total) == 20
    assert "WarningMessage" not in task


def test_export_without_prefix_and_mysql_layout(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.create_db_instance("shop-db", engine="mysql", db_name="shop")
    snapshot = rds.control.create_db_snapshot("shop-snap", "shop-db")
    names = [t["name"] for t in rds.control.source_tables("shop-snap")]
    assert names == [
        "shop.shop.orders",
        "shop.shop.customers",
        "shop.shop.order_items",
        "shop.shop.events",
    ]
    run_export(rds, Source(prereq, snapshot["DBSnapshotArn"]), "exp-mysql")
    objects = s3_objects(rds)
    assert "exp-mysql/export_info_exp-mysql.json" in objects
    assert json.loads(objects["exp-mysql/export_info_exp-mysql.json"])["s3Prefix"] == ""
    data_keys = sorted(key for key in objects if key.endswith(".gz.parquet"))
    assert [key.split("/")[1:3] for key in data_keys] == [
        ["shop", "shop.customers"],
        ["shop", "shop.events"],
        ["shop", "shop.order_items"],
        ["shop", "shop.orders"],
    ]
    assert all(key.startswith("exp-mysql/") for key in objects)
    assert sorted(e["target"] for e in tables_info(objects, "exp-mysql")) == sorted(names)


def test_default_tables_follow_the_engine_and_database_name(rds: Rds) -> None:
    rds.control.create_db_instance("billing-eu")
    rds.control.create_db_cluster("analytics", engine="aurora-mysql", db_name="warehouse")
    snapshot = rds.control.create_db_cluster_snapshot("analytics-snap", "analytics")
    pg = [t["name"] for t in rds.control.source_tables("billing-eu")]
    assert pg == [
        "billing_eu.public.orders",
        "billing_eu.public.customers",
        "billing_eu.public.order_items",
        "billing_eu.audit.events",
    ]
    by_arn = rds.control.source_tables(snapshot["DBClusterSnapshotArn"])
    assert [(t["name"], t["size_gb"]) for t in by_arn] == [
        ("warehouse.warehouse.orders", 10.0),
        ("warehouse.warehouse.customers", 4.0),
        ("warehouse.warehouse.order_items", 3.0),
        ("warehouse.warehouse.events", 3.0),
    ]


@pytest.mark.parametrize(
    ("export_only", "expected"),
    [
        (["orders"], sorted(DEFAULT_PG_SIZES)),
        (["orders.audit"], ["orders.audit.events"]),
        (
            ["orders.public.customers", "orders.audit"],
            ["orders.audit.events", "orders.public.customers"],
        ),
        (["billing"], []),
    ],
)
def test_export_only_narrows_what_is_written(
    rds: Rds, export_only: list[str], expected: list[str]
) -> None:
    source = make_source(rds)
    task = run_export(rds, source, "exp-only", ExportOnly=export_only)
    objects = s3_objects(rds)
    entries = tables_info(objects, "exp-only")
    assert sorted(e["target"] for e in entries) == expected
    assert data_targets(objects) == expected
    total = sum(DEFAULT_PG_SIZES[name] for name in expected)
    assert task["TotalExtractedDataInGB"] == int(total)
    info = json.loads(objects["exp-only/export_info_exp-only.json"])
    assert (info["exportOnly"], info["totalExportedDataInGB"]) == (export_only, total)
    if not expected:  # an empty export still writes one (empty) tables file
        assert "exp-only/export_tables_info_exp-only_from_0_to_0.json" in objects


def test_export_only_database_table_form_for_mysql(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.create_db_instance("shop", engine="mysql")
    snapshot = rds.control.create_db_snapshot("shop-snap", "shop")
    run_export(rds, Source(prereq, snapshot["DBSnapshotArn"]), "exp-my", ExportOnly=["shop.orders"])
    assert data_targets(s3_objects(rds)) == ["shop.shop.orders"]


def test_many_tables_span_several_tables_info_files(rds: Rds) -> None:
    source = make_source(rds)
    count = 2 * TABLES_PER_INFO_FILE + 5
    tables = [{"name": f"orders.public.t{index:04d}", "size_gb": 0.5} for index in range(count)]
    assert len(rds.control.set_source_tables("orders-manual", tables)) == count
    task = run_export(rds, source, "exp-many")
    objects = s3_objects(rds)
    files = sorted(key for key in objects if TABLES_INFO_RE.search(key))
    per_file = TABLES_PER_INFO_FILE
    assert files == sorted(
        [
            f"exp-many/export_tables_info_exp-many_from_1_to_{per_file}.json",
            f"exp-many/export_tables_info_exp-many_from_{per_file + 1}_to_{2 * per_file}.json",
            f"exp-many/export_tables_info_exp-many_from_{2 * per_file + 1}_to_{count}.json",
        ]
    )
    entries = tables_info(objects, "exp-many")
    assert [e["target"] for e in entries] == [t["name"] for t in tables]
    assert len(data_targets(objects)) == count
    assert task["TotalExtractedDataInGB"] == int(count * 0.5)


def test_fractional_sizes_total_is_rounded_down_in_describe(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.set_source_tables(
        "orders",  # the instance: its snapshots hold these tables
        [
            "orders.public.a",
            {"name": "orders.b", "size_gb": 0.4},
            {"name": "orders.public.c", "size_gb": 0.9},
        ],
    )
    task = run_export(rds, source, "exp-frac")
    info = json.loads(s3_objects(rds)["exp-frac/export_info_exp-frac.json"])
    assert info["totalExportedDataInGB"] == pytest.approx(2.3)
    assert task["TotalExtractedDataInGB"] == 2
    assert sorted(e["target"] for e in tables_info(s3_objects(rds), "exp-frac")) == [
        "orders.public.a",
        "orders.public.b",
        "orders.public.c",
    ]


def test_failed_skipped_and_warned_tables(rds: Rds) -> None:
    source = make_source(rds)
    rds.control.fail_source_tables(
        "orders-manual", ["orders.public.customers"], reason="LOB too large"
    )
    rds.control.skip_source_tables("orders-manual", ["orders.audit.events"])
    tables = rds.control.warn_source_tables(
        "orders-manual", ["orders.order_items"], message="Converted to string"
    )
    assert {t["name"]: t["status"] for t in tables} == {
        "orders.public.orders": "COMPLETE",
        "orders.public.customers": "FAILED",
        "orders.public.order_items": "COMPLETE",
        "orders.audit.events": "SKIPPED",
    }
    task = run_export(rds, source, "exp-partial")
    assert task["Status"] == "COMPLETE"  # COMPLETE is not "every table exported"
    objects = s3_objects(rds)
    entries = {e["target"]: e for e in tables_info(objects, "exp-partial")}
    assert set(entries) == {
        "orders.public.orders",
        "orders.public.customers",
        "orders.public.order_items",
    }
    failed = entries["orders.public.customers"]
    assert (failed["status"], failed["warningMessage"], failed["sizeGB"]) == (
        "FAILED",
        "LOB too large",
        0.0,
    )
    assert failed["tableStatistics"]["partitioningInfo"]["numberOfCompletedPartitions"] == 0
    warned = entries["orders.public.order_items"]
    assert (warned["status"], warned["warningMessage"]) == ("COMPLETE", "Converted to string")
    assert "warningMessage" not in entries["orders.public.orders"]
    assert data_targets(objects) == ["orders.public.order_items", "orders.public.orders"]
    assert task["TotalExtractedDataInGB"] == 13
    assert json.loads(task["WarningMessage"]) == {
        "skippedTables": [{"target": "orders.audit.events", "reason": DEFAULT_SKIP_REASON}],
        "skippedObjectives": [],
        "general": [],
    }


def test_tables_are_taken_when_the_export_starts(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.pace_export("exp-taken", starting_polls=0, in_progress_polls=2)
    start(client, source, "exp-taken")
    rds.control.set_source_tables("orders-manual", ["orders.public.late"])
    for _ in range(3):
        task = describe(client, "exp-taken")
    assert task["Status"] == "COMPLETE"
    assert data_targets(s3_objects(rds)) == sorted(DEFAULT_PG_SIZES)


def test_warning_message_is_returned_by_describe(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    documented = {
        "skippedTables": [],
        "skippedObjectives": [],
        "general": [{"reason": "FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}],
    }
    rds.control.set_export_warning_message("EXP-WARN", documented)
    rds.control.skip_source_tables("orders-manual", ["orders.audit.events"])
    started = start(client, source, "exp-warn")
    assert json.loads(started["WarningMessage"]) == documented
    assert started["WarningMessage"] == json.dumps(documented, separators=(",", ":"))

    rds.control.set_export_warning_message("exp-warn", "Some tables were not exported.")
    assert describe(client, "exp-warn")["WarningMessage"] == "Some tables were not exported."
    for _ in range(4):
        finished = describe(client, "exp-warn")
    assert finished["Status"] == "COMPLETE"
    assert finished["WarningMessage"] == "Some tables were not exported."
    rds.control.set_export_warning_message("exp-warn", None)
    assert json.loads(describe(client, "exp-warn")["WarningMessage"])["skippedTables"] == [
        {"target": "orders.audit.events", "reason": DEFAULT_SKIP_REASON}
    ]


def _entries_of(objects: dict[str, bytes]) -> list[Any]:
    return tables_info(objects, "exp-fault")


FAULT_CHECKS: dict[str, Any] = {}


def _fault_check(name: str) -> Any:
    def register(check: Any) -> Any:
        FAULT_CHECKS[name] = check
        return check

    return register


@_fault_check("truncated_json")
def _truncated(objects: dict[str, bytes]) -> None:
    metadata = [key for key in objects if key.endswith(".json")]
    assert len(metadata) == 2
    for key in metadata:
        with pytest.raises(json.JSONDecodeError):
            json.loads(objects[key])
    assert len(data_targets(objects)) == 4


@_fault_check("wrong_types")
def _wrong_types(objects: dict[str, bytes]) -> None:
    info = json.loads(objects["exp-fault/export_info_exp-fault.json"])
    assert info["status"] == ["COMPLETE"]
    assert isinstance(info["percentProgress"], str)
    assert isinstance(info["totalExportedDataInGB"], str)
    entries = _entries_of(objects)
    assert entries[-2:] == [None, "not-a-table"]
    for entry in entries[:-2]:
        assert isinstance(entry["status"], list) and isinstance(entry["sizeGB"], str)
        assert isinstance(entry["target"], dict) and isinstance(entry["tableStatistics"], str)


@_fault_check("unknown_status")
def _unknown_status(objects: dict[str, bytes]) -> None:
    assert {e["status"] for e in _entries_of(objects)} == {"PARTIALLY_EXPORTED"}
    assert json.loads(objects["exp-fault/export_info_exp-fault.json"])["status"] == "COMPLETE"


@_fault_check("no_tables_files")
def _no_tables_files(objects: dict[str, bytes]) -> None:
    assert not [key for key in objects if TABLES_INFO_RE.search(key)]
    assert "exp-fault/export_info_exp-fault.json" in objects
    assert len(data_targets(objects)) == 4


@_fault_check("extra_tables_file")
def _extra_tables_file(objects: dict[str, bytes]) -> None:
    files = sorted(key for key in objects if TABLES_INFO_RE.search(key))
    assert files == [
        "exp-fault/export_tables_info_exp-fault_from_1_to_4.json",
        "exp-fault/export_tables_info_exp-fault_from_5_to_5.json",
    ]
    extra = json.loads(objects[files[1]])["perTableStatus"]
    assert [(e["target"], e["status"]) for e in extra] == [
        ("orders.public.emulator_extra_table", "COMPLETE")
    ]
    assert "orders.public.emulator_extra_table" not in data_targets(objects)


@_fault_check("no_export_info")
def _no_export_info(objects: dict[str, bytes]) -> None:
    assert not [key for key in objects if "export_info_" in key]
    assert len(_entries_of(objects)) == 4


@_fault_check("no_objects")
def _no_objects(objects: dict[str, bytes]) -> None:
    assert objects == {}


@_fault_check("missing_data")
def _missing_data(objects: dict[str, bytes]) -> None:
    listed = {e["target"] for e in _entries_of(objects) if e["status"] == "COMPLETE"}
    assert listed == set(DEFAULT_PG_SIZES)
    assert set(data_targets(objects)) == set(DEFAULT_PG_SIZES) - {"orders.public.orders"}


def test_every_output_fault_has_a_check() -> None:
    assert set(FAULT_CHECKS) == OUTPUT_FAULTS


@pytest.mark.parametrize("fault", sorted(OUTPUT_FAULTS))
def test_output_faults_break_the_metadata_of_a_complete_export(rds: Rds, fault: str) -> None:
    source = make_source(rds)
    status = "PARTIALLY_EXPORTED" if fault == "unknown_status" else None
    rds.control.break_export_output("exp-fault", fault, status=status)
    task = run_export(rds, source, "exp-fault")
    assert task["Status"] == "COMPLETE"  # the task says nothing of it
    FAULT_CHECKS[fault](s3_objects(rds))


def test_output_faults_combine_and_apply_to_a_running_export(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.pace_export("exp-fault", starting_polls=0, in_progress_polls=2)
    start(client, source, "exp-fault")
    rds.control.break_export_output("exp-fault", "no_export_info")
    rds.control.break_export_output("exp-fault", "missing_data")
    for _ in range(3):
        task = describe(client, "exp-fault")
    assert task["Status"] == "COMPLETE"
    objects = s3_objects(rds)
    _no_export_info(objects)
    _missing_data(objects)
    with pytest.raises(EmulatorControlError, match="COMPLETE"):
        rds.control.break_export_output("exp-fault", "no_objects")


def test_failed_and_canceled_exports_write_nothing(rds: Rds) -> None:
    prereq = rds.control.seed_export_prerequisites(bucket="exports")
    rds.control.create_db_instance("orders")
    arns = [
        rds.control.create_db_snapshot(f"snap-{i}", "orders")["DBSnapshotArn"] for i in range(3)
    ]
    client = rds.client()
    rds.control.fail_export("exp-failed", cause="boom", after_polls=1)
    assert run_export(rds, Source(prereq, arns[0]), "exp-failed")["Status"] == "FAILED"
    rds.control.pace_export("exp-canceled", starting_polls=2, canceling_polls=0)
    start(client, Source(prereq, arns[1]), "exp-canceled")
    client.cancel_export_task(ExportTaskIdentifier="exp-canceled")
    assert describe(client, "exp-canceled")["Status"] == "CANCELED"
    assert (
        run_export(rds, Source(prereq, arns[2]), "exp-slash", S3Prefix="p/")["Status"] == "FAILED"
    )
    assert s3_objects(rds) == {}


def test_a_deleted_bucket_fails_the_export_instead_of_crashing(rds: Rds) -> None:
    source = make_source(rds)
    client = rds.client()
    rds.control.pace_export("exp-nobucket", starting_polls=0, in_progress_polls=1)
    start(client, source, "exp-nobucket")
    s3_client(rds).delete_bucket(Bucket="exports")
    statuses = [describe(client, "exp-nobucket") for _ in range(3)]
    assert [t["Status"] for t in statuses] == ["IN_PROGRESS", "FAILED", "FAILED"]
    assert "exports" in statuses[1]["FailureCause"]
    assert "does not exist" in statuses[1]["FailureCause"]


def test_table_and_output_controls_reject_bad_arguments(rds: Rds) -> None:
    make_source(rds)
    with pytest.raises(EmulatorControlError, match="no DB snapshot"):
        rds.control.set_source_tables("no-such-source", ["db.public.t"])
    with pytest.raises(EmulatorControlError, match="table name"):
        rds.control.set_source_tables("orders-manual", ["just_a_table"])
    with pytest.raises(EmulatorControlError, match="twice"):
        rds.control.set_source_tables("orders-manual", ["orders.t", "orders.public.t"])
    with pytest.raises(EmulatorControlError, match="size_gb"):
        rds.control.set_source_tables("orders-manual", [{"name": "orders.t", "size_gb": -1}])
    with pytest.raises(EmulatorControlError, match="has no table"):
        rds.control.fail_source_tables("orders-manual", ["orders.public.nope"])
    with pytest.raises(EmulatorControlError, match="unknown export output fault"):
        rds.control.break_export_output("exp-x", "melted")
    # Nothing was changed by the refused calls.
    assert [t["name"] for t in rds.control.source_tables("orders-manual")] == list(DEFAULT_PG_SIZES)


def test_reset_forgets_tables_warnings_and_output_faults(rds: Rds) -> None:
    make_source(rds)
    rds.control.set_source_tables("orders-manual", ["orders.public.only"])
    rds.control.set_export_warning_message("exp-after-reset", "old warning")
    rds.control.break_export_output("exp-after-reset", "no_objects")
    rds.control.reset()
    source = make_source(rds)
    task = run_export(rds, source, "exp-after-reset")
    assert "WarningMessage" not in task
    assert data_targets(s3_objects(rds)) == sorted(DEFAULT_PG_SIZES)
