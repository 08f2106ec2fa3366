"""RdsExportHook: retries, not-found handling and snapshot look-ups, in-process."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_rds_export.hooks import RdsExportHook
from airflow_rds_export.testing import RdsEmulator


@pytest.fixture
def hook(rds_emulator: RdsEmulator, monkeypatch: pytest.MonkeyPatch) -> RdsExportHook:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return RdsExportHook(aws_conn_id=None, region_name="us-east-1")


def test_standard_retry_mode_unless_told_otherwise() -> None:
    default = RdsExportHook(aws_conn_id=None, region_name="us-east-1").config
    assert default.retries == {"mode": "standard", "max_attempts": 5}
    own = RdsExportHook(
        aws_conn_id=None,
        region_name="us-east-1",
        config={"retries": {"mode": "adaptive", "max_attempts": 9}},
    ).config
    assert own.retries == {"mode": "adaptive", "max_attempts": 9}


def test_connection_retry_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    connection: dict[str, Any] = {
        "conn_type": "aws",
        "extra": {
            "region_name": "us-east-1",
            "config_kwargs": {"retries": {"mode": "legacy", "max_attempts": 2}},
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_RDS_RETRIES", json.dumps(connection))
    assert RdsExportHook(aws_conn_id="rds_retries").config.retries == {
        "mode": "legacy",
        "max_attempts": 2,
    }


def test_missing_export_and_snapshot_are_none(hook: RdsExportHook) -> None:
    assert hook.describe_export_task("never-started") is None
    assert hook.describe_snapshot("no-such-snapshot") is None
    assert hook.describe_snapshot("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:x") is None


def test_snapshot_by_name_falls_back_to_cluster_snapshots(
    hook: RdsExportHook, rds_emulator: RdsEmulator
) -> None:
    rds_emulator.create_db_cluster("analytics")
    created = rds_emulator.create_db_cluster_snapshot(
        "analytics-snap", db_cluster_identifier="analytics"
    )
    found = hook.describe_snapshot("analytics-snap")
    assert found is not None
    assert found["SourceArn"] == created["DBClusterSnapshotArn"]
    assert isinstance(found["SnapshotCreateTime"], str)  # JSON-friendly


def test_newest_snapshot_created_after(hook: RdsExportHook, rds_emulator: RdsEmulator) -> None:
    rds_emulator.create_db_instance("orders")
    for day in (19, 20, 21):
        rds_emulator.create_automated_snapshot(
            "orders", created_at=datetime(2026, 11, day, 3, tzinfo=timezone.utc)
        )
    rds_emulator.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    newest = hook.find_latest_snapshot(db_instance_identifier="orders")
    assert newest is not None
    assert newest["DBSnapshotIdentifier"] == "rds:orders-2026-11-21-03-00"
    after = datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert hook.find_latest_snapshot(db_instance_identifier="orders", created_after=after) is None
    manual = hook.find_latest_snapshot(db_instance_identifier="orders", snapshot_type="manual")
    assert manual is not None and manual["DBSnapshotIdentifier"] == "orders-manual"
