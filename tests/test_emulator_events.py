"""The emulator's RDS event notifications (in-process): which events, when, to whom.

RDS publishes "creating" and "created" events for every snapshot and an event when an
export ends, to matching event subscriptions (SNS -> SQS) and to EventBridge. The
documented forms are checked by the parser's tests (``tests/test_rds_events.py``) on what
the emulator delivers here.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from airflow_rds_export.rds_events import RdsEvent, parse_message

REGION = "us-east-1"


def received(queue_url: str) -> list[RdsEvent]:
    sqs = boto3.client("sqs", region_name=REGION)
    events = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return events
        for message in messages:
            parsed = parse_message(message["Body"])
            assert isinstance(parsed, RdsEvent), parsed
            events.append(parsed)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def ids(events: list[RdsEvent]) -> list[tuple[str | None, str]]:
    return [(e.event_id, e.source_id) for e in events]


def test_snapshots_announce_creating_then_created_when_available(rds_emulator: Any) -> None:
    emu = rds_emulator
    queue = emu.subscribe_to_rds_events("events")
    emu.create_db_instance("orders")
    emu.create_db_cluster("analytics")
    emu.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    emu.create_automated_snapshot("orders", "2026-11-29T03:10:00", ready_after_polls=1)
    emu.create_db_cluster_snapshot("analytics-manual", db_cluster_identifier="analytics")
    emu.create_automated_cluster_snapshot("analytics", "2026-11-29T03:10:00")
    assert ids(received(queue["QueueUrl"])) == [
        ("RDS-EVENT-0040", "orders-manual"),
        ("RDS-EVENT-0042", "orders-manual"),
        ("RDS-EVENT-0090", "rds:orders-2026-11-29-03-10"),  # creating: not yet 0091
        ("RDS-EVENT-0074", "analytics-manual"),
        ("RDS-EVENT-0075", "analytics-manual"),
        ("RDS-EVENT-0168", "rds:analytics-2026-11-29-03-10"),
        ("RDS-EVENT-0169", "rds:analytics-2026-11-29-03-10"),
    ]
    rds = boto3.client("rds", region_name=REGION)
    for _ in range(3):  # the first describe reports creating, the second available
        rds.describe_db_snapshots(
            DBSnapshotIdentifier="rds:orders-2026-11-29-03-10", SnapshotType="automated"
        )
    assert ids(received(queue["QueueUrl"])) == [("RDS-EVENT-0091", "rds:orders-2026-11-29-03-10")]
    records = emu.rds_events()
    assert len(records) == 8
    assert all(r["Deliveries"] == [queue["TopicArn"]] for r in records)


def test_subscription_filters_and_delivery_forms(rds_emulator: Any) -> None:
    emu = rds_emulator
    everything = emu.subscribe_to_rds_events("all", raw_message_delivery=True)
    clusters = emu.subscribe_to_rds_events("clusters", source_type="db-cluster-snapshot")
    orders = emu.subscribe_to_rds_events("orders", source_ids=["orders-manual"])
    bridge = emu.route_rds_events_to_eventbridge("bridge")
    emu.create_db_instance("orders")
    emu.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    emu.create_db_snapshot("other-manual", db_instance_identifier="orders")
    all_events = received(everything["QueueUrl"])
    assert len(all_events) == 4 and {e.delivery for e in all_events} == {"sns-raw"}
    assert received(clusters["QueueUrl"]) == []
    assert ids(received(orders["QueueUrl"])) == [
        ("RDS-EVENT-0040", "orders-manual"),
        ("RDS-EVENT-0042", "orders-manual"),
    ]
    bridged = received(bridge["QueueUrl"])
    assert [e.delivery for e in bridged] == ["eventbridge"] * 4
    assert bridged[1].source_type == "db-snapshot" and bridged[1].region == REGION


def test_exports_announce_how_they_ended(rds_emulator: Any) -> None:
    emu = rds_emulator
    prereq = emu.seed_export_prerequisites()
    queue = emu.subscribe_to_rds_events("events", event_categories=["notification"])
    emu.create_db_instance("orders")
    arn = emu.create_db_snapshot("orders-manual", db_instance_identifier="orders")["DBSnapshotArn"]
    rds = boto3.client("rds", region_name=REGION)
    export = {
        "SourceArn": arn,
        "S3BucketName": prereq["bucket"],
        "IamRoleArn": prereq["iam_role_arn"],
        "KmsKeyId": prereq["kms_key_id"],
    }
    emu.fail_export("failing", cause="boom")
    rds.start_export_task(ExportTaskIdentifier="failing", **export)
    rds.start_export_task(ExportTaskIdentifier="canceled", **export)
    rds.cancel_export_task(ExportTaskIdentifier="canceled")
    emu.pace_export("canceled", canceling_polls=0)
    rds.start_export_task(ExportTaskIdentifier="complete", **export)
    for _ in range(5):
        rds.describe_export_tasks()
    events = received(queue["QueueUrl"])
    assert [e.event_id for e in events] == ["RDS-EVENT-0159", "RDS-EVENT-0160", "RDS-EVENT-0161"]
    assert [e.message for e in events] == [
        "Snapshot export task failing failed",
        "Snapshot export task canceled canceled",
        "Snapshot export task complete completed",
    ]
    assert {e.source_arn for e in events} == {arn}


def test_published_by_hand_and_reset(rds_emulator: Any) -> None:
    emu = rds_emulator
    queue = emu.subscribe_to_rds_events("events")
    record = emu.publish_rds_event("RDS-EVENT-0091", "rds:orders-2026-11-29-03-10")
    assert record["SourceArn"].endswith(":snapshot:rds:orders-2026-11-29-03-10")
    (event,) = received(queue["QueueUrl"])
    assert event.event_id == "RDS-EVENT-0091" and event.delivery == "sns"
    body = json.dumps(event.to_payload())
    assert "RDS-EVENT-0091" in body
    emu.reset()
    assert emu.rds_events() == []
