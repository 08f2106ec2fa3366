"""RDS events: parsing every delivery form, the event-ID rules, filters and the helper.

Pure modules (``rds_events``, the events section of ``decisions``, ``announcements``):
tables of inputs and what they must give. The bodies are those RDS, SNS and EventBridge
send (see the shared EXPORT_OUTPUT_AND_EVENTS.md, section 2); the emulator publishes the
same forms (``tests/test_emulator_events.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_rds_export.announcements import (
    AnnouncedSnapshot,
    announced_snapshot,
    announced_snapshots,
)
from airflow_rds_export.decisions import (
    EVENT_MEANINGS,
    EXPORT_ENDED_EVENT_IDS,
    SNAPSHOT_CREATED_EVENT_IDS,
    decide_event,
    decide_queue_error,
    event_id_of,
)
from airflow_rds_export.rds_events import EventFilter, NotAnEvent, RdsEvent, parse_message
from airflow_rds_export.validation import InvalidParameterError, source_arn_of

ARN = "arn:aws:rds:us-east-2:123456789012:cluster-snapshot:rds:db-instance-aurora-2021-11-07-17-43"
# The RDS event inside an SNS notification (shape of a published sample, cluster snapshot).
RDS_EVENT = {
    "Event Source": "db-cluster-snapshot",
    "Event Time": "2021-11-07 17:43:51.876",
    "Identifier Link": "https://console.aws.amazon.com/rds/home?region=us-east-2#snapshot:id=x",
    "Source ID": "rds:db-instance-aurora-2021-11-07-17-43",
    "Source ARN": ARN,
    "Event ID": "http://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.html#RDS-EVENT-0169",
    "Event Message": "Automated cluster snapshot created",
}
SNS = {
    "Type": "Notification",
    "MessageId": "59aaab88-1111-2222-3333-444455556666",
    "TopicArn": "arn:aws:sns:us-east-2:123456789012:db-rds-events",
    "Subject": "RDS Notification Message",
    "Message": json.dumps(RDS_EVENT),
    "Timestamp": "2021-11-07T17:43:52.348Z",
}
EVENTBRIDGE = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "RDS DB Snapshot Event",
    "source": "aws.rds",
    "account": "123456789012",
    "time": "2018-10-06T12:26:13Z",
    "region": "us-east-1",
    "resources": ["arn:aws:rds:us-east-1:123456789012:snapshot:rds:my-db-snapshot"],
    "detail": {
        "EventCategories": ["creation"],
        "SourceType": "SNAPSHOT",
        "SourceArn": "arn:aws:rds:us-east-1:123456789012:snapshot:rds:my-db-snapshot",
        "Date": "2018-10-06T12:26:13.882Z",
        "Message": "Automated snapshot created",
        "SourceIdentifier": "rds:my-db-snapshot",
        "EventID": "RDS-EVENT-0091",
    },
}


# --- parsing ------------------------------------------------------------------------

FROM_SNS = RdsEvent(
    event_id="RDS-EVENT-0169",
    source_type="db-cluster-snapshot",
    source_id="rds:db-instance-aurora-2021-11-07-17-43",
    source_arn=ARN,
    account="123456789012",
    region="us-east-2",
    time="2021-11-07T17:43:51.876000+00:00",
    message="Automated cluster snapshot created",
    delivery="sns",
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(json.dumps(SNS), FROM_SNS, id="sns-envelope"),
        pytest.param(json.dumps(RDS_EVENT), FROM_SNS._replace(delivery="sns-raw"), id="sns-raw"),
        pytest.param(
            json.dumps(EVENTBRIDGE),
            RdsEvent(
                event_id="RDS-EVENT-0091",
                source_type="db-snapshot",
                source_id="rds:my-db-snapshot",
                source_arn="arn:aws:rds:us-east-1:123456789012:snapshot:rds:my-db-snapshot",
                account="123456789012",
                region="us-east-1",
                time="2018-10-06T12:26:13.882000+00:00",
                message="Automated snapshot created",
                delivery="eventbridge",
            ),
            id="eventbridge",
        ),
    ],
)
def test_every_delivery_form_parses_to_the_same_event(body: str, expected: RdsEvent) -> None:
    assert parse_message(body) == expected
    assert RdsEvent.from_payload(expected.to_payload()) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "the SQS body is not JSON: 'not json'"),
        ("[1, 2]", "the SQS body is JSON but not an object: list"),
        (None, "the SQS body is a NoneType, not JSON text"),
        (
            json.dumps({"Type": "SubscriptionConfirmation", "Message": "You have chosen..."}),
            "an SNS SubscriptionConfirmation message, not an RDS event",
        ),
        (
            json.dumps({**SNS, "Message": "RDS event subscription created"}),
            "the SNS Message is not JSON: 'RDS event subscription created'",
        ),
        (json.dumps({"hello": "world"}), "a JSON message without 'Event ID' or 'Source ID'"),
        (
            json.dumps({**EVENTBRIDGE, "source": "aws.ec2"}),
            "an EventBridge event from 'aws.ec2', not aws.rds",
        ),
        (
            json.dumps({**EVENTBRIDGE, "detail": {}}),
            "an aws.rds EventBridge event without detail.EventID",
        ),
    ],
)
def test_what_is_not_an_event_says_why(body: Any, reason: str) -> None:
    parsed = parse_message(body)
    assert isinstance(parsed, NotAnEvent)
    assert reason in parsed.reason


@pytest.mark.parametrize(
    ("raw", "event_id"),
    [
        ("RDS-EVENT-0091", "RDS-EVENT-0091"),
        (
            "http://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.html#RDS-EVENT-0042",
            "RDS-EVENT-0042",
        ),
        (
            "https://docs.amazonaws.cn/en_us/AmazonRDS/latest/UserGuide/USER_Events.html#RDS-EVENT-0169",
            "RDS-EVENT-0169",
        ),
        ("rds-event-0075 ", "RDS-EVENT-0075"),
        ("RDS-EVENT-0091-suffix", None),
        ("RDS-EVENT-91", None),
        ("", None),
        (None, None),
    ],
)
def test_event_id_is_matched_by_its_suffix(raw: Any, event_id: str | None) -> None:
    assert event_id_of(raw) == event_id


def test_every_event_id_has_a_meaning() -> None:
    assert set(SNAPSHOT_CREATED_EVENT_IDS) | set(EXPORT_ENDED_EVENT_IDS) == set(EVENT_MEANINGS)
    assert {EVENT_MEANINGS[i][0] for i in SNAPSHOT_CREATED_EVENT_IDS} == {"snapshot_created"}
    assert {EVENT_MEANINGS[i][0] for i in EXPORT_ENDED_EVENT_IDS} == {"export_ended"}


# --- decisions ----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "event_id": "RDS-EVENT-0091",
    "source_id": "rds:orders-2026-11-29-03-10",
    "source_arn": "arn:aws:rds:eu-west-1:123456789012:snapshot:rds:orders-2026-11-29-03-10",
    "account": "123456789012",
    "region": "eu-west-1",
    "event_ids": SNAPSHOT_CREATED_EVENT_IDS,
}


@pytest.mark.parametrize(
    ("changes", "relevant", "reason"),
    [
        ({}, True, "automated DB snapshot created"),
        ({"source_identifiers": ["rds:orders-*"]}, True, "automated DB snapshot created"),
        ({"source_identifiers": ["RDS:ORDERS-*"]}, True, "automated DB snapshot created"),
        ({"source_identifiers": ["arn:aws:rds:eu-west-1:*:snapshot:*"]}, True, "created"),
        ({"source_identifiers": ["rds:billing-*"]}, False, "matches none of source_identifiers"),
        ({"event_id": "RDS-EVENT-0090"}, False, "an event this trigger ignores"),
        ({"event_id": None}, False, "an event without an RDS event ID"),
        ({"event_id": "RDS-EVENT-0161"}, False, "(snapshot export task completed) is not one"),
        (
            {"event_id": "RDS-EVENT-0161", "event_ids": EXPORT_ENDED_EVENT_IDS},
            True,
            "snapshot export task completed",
        ),
        ({"accounts": ["123456789012"]}, True, "created"),
        ({"accounts": ["210987654321"]}, False, "account 123456789012 is not one of"),
        ({"account": None, "accounts": ["210987654321"]}, False, "account unknown"),
        ({"regions": ["eu-west-1", "us-east-1"]}, True, "created"),
        ({"regions": ["us-east-1"]}, False, "Region eu-west-1 is not one of ['us-east-1']"),
    ],
)
def test_decide_event(changes: dict[str, Any], relevant: bool, reason: str) -> None:
    verdict = decide_event(**{**BASE, **changes})
    assert verdict.relevant is relevant
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("code", "status", "unreachable", "permanent", "says"),
    [
        ("Throttling", 400, False, False, "AWS is busy or unreachable"),
        (None, 503, False, False, "AWS is busy or unreachable"),
        (None, None, True, False, "AWS is busy or unreachable"),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, False, True, "create the queue"),
        ("AccessDenied", 403, False, True, "sqs:ReceiveMessage and sqs:DeleteMessage"),
        ("ExpiredToken", 400, False, True, "credentials are invalid or expired"),
        ("SomethingNew", 400, False, True, "fix what the message says"),
    ],
)
def test_decide_queue_error(
    code: str | None, status: int | None, unreachable: bool, permanent: bool, says: str
) -> None:
    verdict = decide_queue_error(
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        error_code=code,
        error_message="what AWS said",
        http_status=status,
        unreachable=unreachable,
    )
    assert verdict.permanent is permanent
    assert says in verdict.reason
    assert "what AWS said" in verdict.reason


# --- filters and their input rules --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"event_ids": ()}, "event_ids", "at least one"),
        ({"event_ids": "RDS-EVENT-0091"}, "event_ids", "must be a list"),
        ({"event_ids": ["RDS-EVENT-0090"]}, "event_ids", "not an event ID this package acts on"),
        ({"event_ids": ["0091"]}, "event_ids", "not an event ID this package acts on"),
        ({"source_identifiers": [""]}, "source_identifiers", "is not one of"),
        ({"accounts": ["12345"]}, "accounts", "not an AWS account ID (12 digits)"),
        ({"regions": ["mars-1"]}, "regions", "not an AWS Region name"),
    ],
)
def test_bad_filters_are_refused_naming_field_value_and_rule(
    kwargs: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        EventFilter(**kwargs).validated()
    assert caught.value.field == field
    assert rule in str(caught.value)
    assert repr(caught.value.value) in str(caught.value)


def test_filter_judges_a_message() -> None:
    watching = EventFilter(source_identifiers=("rds:db-instance-aurora-*",)).validated()
    event, verdict = watching.judge(json.dumps(SNS))
    assert event is not None and verdict.relevant
    event, verdict = watching.judge("{")
    assert event is None and not verdict.relevant
    assert verdict.reason.startswith("malformed: ")
    event, verdict = watching.judge(json.dumps(EVENTBRIDGE))
    assert event is not None and not verdict.relevant


# --- the helper: asset events -> announced snapshots --------------------------------


def asset_event(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    parsed = parse_message(json.dumps(body))
    assert isinstance(parsed, RdsEvent)
    return {"extra": {"from_trigger": True, "payload": parsed.to_payload(), **extra}}


class FakeAssetEvent:
    """What the task context holds: objects with ``extra`` (AssetEventResult)."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra


def test_announced_snapshots_reads_the_triggering_events() -> None:
    snap = asset_event(SNS)
    bridge = asset_event(EVENTBRIDGE)
    not_ours = {"extra": {"from_trigger": False}}
    export_ended = asset_event(
        {**EVENTBRIDGE, "detail": {**EVENTBRIDGE["detail"], "EventID": "RDS-EVENT-0161"}}
    )
    events = {"asset": [FakeAssetEvent(snap["extra"]), bridge, snap, not_ours, export_ended]}
    snapshots = announced_snapshots(events)
    assert snapshots == [
        AnnouncedSnapshot(
            arn="arn:aws:rds:us-east-1:123456789012:snapshot:rds:my-db-snapshot",
            identifier="rds:my-db-snapshot",
            source="db-snapshot",
            time="2018-10-06T12:26:13.882000+00:00",
            event_id="RDS-EVENT-0091",
        ),
        AnnouncedSnapshot(
            arn=ARN,
            identifier="rds:db-instance-aurora-2021-11-07-17-43",
            source="db-cluster-snapshot",
            time="2021-11-07T17:43:51.876000+00:00",
            event_id="RDS-EVENT-0169",
        ),
    ]  # oldest first, the duplicate once, the others left out
    assert announced_snapshots([snap]) == snapshots[1:]
    assert announced_snapshots(None) == []
    assert announced_snapshot([snap, snap]) == snapshots[1]


def test_announced_snapshot_refuses_none_or_several() -> None:
    with pytest.raises(InvalidParameterError, match="announce 0 snapshots, not exactly one"):
        announced_snapshot({})
    with pytest.raises(InvalidParameterError, match="announce 2 snapshots"):
        announced_snapshot([asset_event(SNS), asset_event(EVENTBRIDGE)])


def test_an_announced_snapshot_is_an_export_source() -> None:
    snapshot = announced_snapshots([asset_event(EVENTBRIDGE)])[0]
    assert snapshot.export_identifier == "rds-my-db-snapshot"  # not a dated automated name
    assert snapshot.to_dict()["ExportTaskIdentifier"] == "rds-my-db-snapshot"
    # An automated snapshot: the nightly DAGs' identifier of its night.
    (aurora,) = announced_snapshots([asset_event(SNS)])
    assert aurora.export_identifier == "db-instance-aurora-20211107"
    # What the start operator does with source_arn: an ARN, a description, or this.
    assert source_arn_of(snapshot) == snapshot.arn
    assert source_arn_of(snapshot.to_dict()) == snapshot.arn
    assert source_arn_of(snapshot.arn) == snapshot.arn
    assert source_arn_of("{{ x }}") == "{{ x }}"


# --- the macros, rendered by Airflow ------------------------------------------------

MACRO_DAG = """
from datetime import datetime

from airflow.sdk import DAG, task

EVENTS = {"rds-snapshot-created": [{"extra": %(extra)r}]}

with DAG("announced_macro", schedule=None, start_date=datetime(2024, 1, 1)):

    @task(
        templates_dict={
            "arn": "{{ macros.rds_export.announced_snapshot(params.events).arn }}",
            "export_id": "{{ macros.rds_export.announced_snapshots(params.events)[0]"
            ".export_identifier }}",
            "none": "{{ macros.rds_export.announced_snapshots(triggering_asset_events) | length }}",
        },
        params={"events": EVENTS},
    )
    def render(templates_dict=None):
        return templates_dict

    render()
"""


def test_the_announcement_macros_render_in_a_dag_run(run_dag: Any) -> None:
    """In templates: a run's triggering_asset_events (none in a manual run), or any
    events given; here the asset event an EventBridge delivery would have made."""
    extra = asset_event(EVENTBRIDGE)["extra"]
    result = run_dag(MACRO_DAG % {"extra": extra}, "announced_macro")
    result.assert_state("success")
    assert result.xcom("render") == {
        "arn": "arn:aws:rds:us-east-1:123456789012:snapshot:rds:my-db-snapshot",
        "export_id": "rds-my-db-snapshot",
        "none": "0",
    }
