"""``RdsEventTrigger.run()`` against the emulator server, and its trip through storage.

The emulator publishes RDS events as RDS does (:mod:`airflow_rds_export.testing.notifications`):
to an RDS event subscription's SNS topic, which delivers to SQS in the envelope form or
raw, and to EventBridge, whose rule delivers to SQS. The trigger reads with aiobotocore
(through the Amazon provider's SqsHook), which moto's in-process mock cannot serve (see
``tests/test_triggers.py``), so these tests use the server and an ``aws_default``
connection pointing at it, as a triggerer would have it. How Airflow runs it (an
``AssetWatcher`` in a real triggerer, scheduling the example DAG) is
``tests/test_e2e_events.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from airflow._shared.module_loading import import_string
from airflow.triggers.base import BaseEventTrigger

from airflow_rds_export.decisions import EXPORT_ENDED_EVENT_IDS, SNAPSHOT_CREATED_EVENT_IDS
from airflow_rds_export.event_triggers import RdsEventTrigger
from airflow_rds_export.validation import InvalidParameterError

REGION = "us-east-1"


@pytest.fixture
def emu(rds_emulator_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from airflow_rds_export.testing import airflow_connection_env

    for name, value in airflow_connection_env(rds_emulator_server.endpoint_url).items():
        monkeypatch.setenv(name, value)
    control = rds_emulator_server.control
    control.create_db_instance("orders")
    control.create_db_instance("billing")
    yield rds_emulator_server


def sqs_client(server: Any) -> Any:
    return boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def collect(trigger: RdsEventTrigger, seconds: float) -> list[dict[str, Any]]:
    """The payloads ``trigger.run()`` yields within ``seconds``."""
    payloads: list[dict[str, Any]] = []

    async def consume() -> None:
        async for event in trigger.run():
            payloads.append(event.payload)

    async def main() -> None:
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return payloads


def queue_depth(server: Any, queue_url: str) -> int:
    attributes = sqs_client(server).get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def trigger_for(queue_url: str, **kwargs: Any) -> RdsEventTrigger:
    return RdsEventTrigger(
        sqs_queue=queue_url,
        source_identifiers=["rds:orders-*", "orders-*"],
        wait_time_seconds=1,
        **kwargs,
    )


@pytest.mark.parametrize("delivery", ["sns", "sns-raw", "eventbridge"])
def test_one_event_per_snapshot_created_in_every_delivery_form(emu: Any, delivery: str) -> None:
    control = emu.control
    if delivery == "eventbridge":
        queue = control.route_rds_events_to_eventbridge("events")
    else:
        queue = control.subscribe_to_rds_events(
            "events", raw_message_delivery=delivery == "sns-raw"
        )
    automated = control.create_automated_snapshot("orders", "2026-11-29T03:10:00")
    manual = control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    control.create_db_snapshot("billing-manual", db_instance_identifier="billing")
    payloads = collect(trigger_for(queue["QueueUrl"]), seconds=4)
    # Published: 0090 + 0091, 0040 + 0042, and billing's 0040 + 0042: two fire.
    assert [(p["EventId"], p["SourceIdentifier"], p["Delivery"]) for p in payloads] == [
        ("RDS-EVENT-0091", "rds:orders-2026-11-29-03-10", delivery),
        ("RDS-EVENT-0042", "orders-manual", delivery),
    ]
    assert payloads[0]["SourceArn"] == automated["DBSnapshotArn"]
    assert payloads[1]["SourceArn"] == manual["DBSnapshotArn"]
    assert payloads[0]["Account"] == "123456789012" and payloads[0]["Region"] == REGION
    assert all(p["SqsMessageId"] for p in payloads)
    assert queue_depth(emu, queue["QueueUrl"]) == 0  # the dropped ones were deleted too


def test_a_snapshot_becoming_available_later_fires_then(emu: Any) -> None:
    control = emu.control
    queue = control.subscribe_to_rds_events("events")
    control.create_db_cluster("analytics")
    created = time.time()
    control.create_automated_cluster_snapshot(
        "analytics", "2026-11-29T03:10:00", ready_after_seconds=1.5
    )
    trigger = RdsEventTrigger(sqs_queue=queue["QueueUrl"], wait_time_seconds=1)
    payloads = collect(trigger, seconds=4)
    assert [p["EventId"] for p in payloads] == ["RDS-EVENT-0169"]  # not 0168 (creating)
    assert payloads[0]["SourceType"] == "db-cluster-snapshot"
    # Published by the emulator's clock when the snapshot became available, unasked.
    (published,) = [e for e in control.rds_events() if e["EventId"] == "RDS-EVENT-0169"]
    assert 1.4 <= published["PublishedAt"] - created < 3


def test_export_ended_events_when_asked(emu: Any) -> None:
    control = emu.control
    prereq = control.seed_export_prerequisites()
    queue = control.subscribe_to_rds_events("events", raw_message_delivery=True)
    snapshot = control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    control.pace_export("orders-export", starting_seconds=0.5, in_progress_seconds=0.5)
    rds = boto3.client(
        "rds",
        region_name=REGION,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    rds.start_export_task(
        ExportTaskIdentifier="orders-export",
        SourceArn=snapshot["DBSnapshotArn"],
        S3BucketName=prereq["bucket"],
        IamRoleArn=prereq["iam_role_arn"],
        KmsKeyId=prereq["kms_key_id"],
    )
    trigger = trigger_for(
        queue["QueueUrl"], event_ids=[*SNAPSHOT_CREATED_EVENT_IDS, *EXPORT_ENDED_EVENT_IDS]
    )
    payloads = collect(trigger, seconds=4)
    assert [p["EventId"] for p in payloads] == ["RDS-EVENT-0042", "RDS-EVENT-0161"]
    assert payloads[1]["Message"] == "Snapshot export task orders-export completed"


def test_irrelevant_and_malformed_messages_are_deleted_and_counted(
    emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    control = emu.control
    queue = control.subscribe_to_rds_events("events")
    sqs = sqs_client(emu)
    control.create_db_snapshot("billing-manual", db_instance_identifier="billing")  # 2 events
    control.publish_rds_event("RDS-EVENT-0041", "orders-old")  # unwatched event ID
    sqs.send_message(QueueUrl=queue["QueueUrl"], MessageBody="not JSON")
    sqs.send_message(
        QueueUrl=queue["QueueUrl"],
        MessageBody=json.dumps({"Type": "SubscriptionConfirmation", "Message": "Confirm"}),
    )
    sqs.send_message(QueueUrl=queue["QueueUrl"], MessageBody=json.dumps({"Type": "Notification"}))
    assert collect(trigger_for(queue["QueueUrl"]), seconds=3) == []
    assert queue_depth(emu, queue["QueueUrl"]) == 0
    out = capsys.readouterr().out
    assert out.count("without firing") == 6, out[-3000:]
    assert "(6 dropped so far: 3 irrelevant, 3 malformed)" in out


def test_an_unreachable_queue_is_retried_not_fatal(
    emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The queue does not exist when the trigger starts: it warns, backs off, carries on."""
    url = f"https://sqs.{REGION}.amazonaws.com/123456789012/later"
    trigger = trigger_for(url)

    async def main() -> list[dict[str, Any]]:
        payloads: list[dict[str, Any]] = []

        async def consume() -> None:
            async for event in trigger.run():
                payloads.append(event.payload)

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(1.0)
        emu.control.subscribe_to_rds_events("later")
        emu.control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
        for _ in range(60):
            if payloads:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return payloads

    payloads = asyncio.run(main())
    assert [p["EventId"] for p in payloads] == ["RDS-EVENT-0042"]
    captured = capsys.readouterr()
    out = captured.out + captured.err  # errors may be logged to stderr
    assert f"Receiving from {url} failed (AWS.SimpleQueueService.NonExistentQueue" in out
    assert "retrying cannot fix this, the trigger keeps trying with backoff" in out
    assert "To do: create the queue, or fix sqs_queue" in out


def test_serialize_round_trip_and_asset_watcher_hash() -> None:
    trigger = RdsEventTrigger(
        sqs_queue="https://sqs.eu-west-1.amazonaws.com/123456789012/rds-events",
        event_ids=["RDS-EVENT-0091", "http://docs.aws.amazon.com/x.html#RDS-EVENT-0042"],
        source_identifiers=["rds:orders-*"],
        accounts=["123456789012"],
        regions=["eu-west-1"],
    )
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = import_string(classpath)(**kwargs)
    assert isinstance(again, BaseEventTrigger)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs["event_ids"] == ["RDS-EVENT-0042", "RDS-EVENT-0091"]
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sqs_queue": ""}, "sqs_queue"),
        ({"max_messages": 11}, "max_messages"),
        ({"max_messages": 0}, "max_messages"),
        ({"wait_time_seconds": 21}, "wait_time_seconds"),
        ({"waiter_delay": -1}, "waiter_delay"),
        ({"event_ids": ["RDS-EVENT-0090"]}, "event_ids"),
        ({"regions": ["nowhere"]}, "regions"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict[str, Any], field: str) -> None:
    arguments = {"sqs_queue": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", **kwargs}
    with pytest.raises(InvalidParameterError) as caught:
        RdsEventTrigger(**arguments)
    assert caught.value.field == field
