"""RDS event notifications as they arrive in an SQS queue, parsed into one form.

RDS publishes an event (``RDS-EVENT-0091``: automated snapshot created, ...) in two ways
that end in SQS:

* **SNS**: an RDS event subscription publishes to an SNS topic; an SQS subscription of the
  topic receives SNS's JSON envelope (``Type``, ``MessageId``, ``TopicArn``, ``Message``,
  ``Timestamp`` ...), whose ``Message`` is the RDS event as a JSON *string*: ``Event
  Source``, ``Event Time``, ``Source ID``, ``Source ARN``, ``Event ID`` (a documentation
  URL ending in the ID), ``Event Message``. With ``RawMessageDelivery`` the SQS body is
  that event object alone. SNS also sends a ``SubscriptionConfirmation`` (no event).
* **EventBridge**: a rule on the default bus sends ``{"source": "aws.rds", "detail-type":
  "RDS DB Snapshot Event", "account", "region", "time", "detail": {"EventID",
  "SourceType", "SourceIdentifier", "SourceArn", "Date", "Message", ...}}``.

:func:`parse_message` reads any SQS body into an :class:`RdsEvent`, or a
:class:`NotAnEvent` saying why it is none; it never raises. :class:`EventFilter` says
whether a message is one a trigger was asked for (the rule itself is
:func:`~airflow_rds_export.decisions.decide_event`). Pure: no AWS, no Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from airflow_rds_export.decisions import (
    SNAPSHOT_CREATED_EVENT_IDS,
    EventVerdict,
    decide_event,
    event_id_of,
)
from airflow_rds_export.validation import (
    validate_accounts,
    validate_event_ids,
    validate_regions,
    validate_source_patterns,
)

__all__ = ["EventFilter", "NotAnEvent", "RdsEvent", "parse_message"]

#: EventBridge ``detail.SourceType`` -> the SNS form (``Event Source``).
_SOURCE_TYPES = {
    "SNAPSHOT": "db-snapshot",
    "CLUSTER_SNAPSHOT": "db-cluster-snapshot",
    "DB_INSTANCE": "db-instance",
    "CLUSTER": "db-cluster",
    "DB_PARAMETER_GROUP": "db-parameter-group",
    "DB_SECURITY_GROUP": "db-security-group",
}
_SHOWN_BODY_CHARS = 80
_ARN = r"^arn:[^:]+:rds:(?P<region>[^:]*):(?P<account>[^:]*):[^:]+:(?P<name>.+)$"


class NotAnEvent(NamedTuple):
    """An SQS message that carries no RDS event, and why (for the log)."""

    reason: str


class RdsEvent(NamedTuple):
    """One RDS event, whichever way it was delivered.

    ``event_id``: ``RDS-EVENT-NNNN`` (None if the message names none that looks like it);
    ``source_type``: the SNS spelling (``db-snapshot``, ``db-cluster-snapshot`` ...);
    ``source_id``: the snapshot's (or instance's ...) identifier, ``rds:...`` for an
    automated snapshot; ``account`` / ``region``: read off ``source_arn`` (or the
    EventBridge envelope); ``time``: ISO 8601 UTC; ``delivery``: ``sns``, ``sns-raw`` or
    ``eventbridge``.
    """

    event_id: str | None
    source_type: str
    source_id: str
    source_arn: str
    account: str | None
    region: str | None
    time: str | None
    message: str
    delivery: str

    def to_payload(self) -> dict[str, Any]:
        """The JSON-friendly form a trigger event carries (an asset event's ``payload``)."""
        return {
            "EventId": self.event_id,
            "SourceType": self.source_type,
            "SourceIdentifier": self.source_id,
            "SourceArn": self.source_arn,
            "Account": self.account,
            "Region": self.region,
            "EventTime": self.time,
            "Message": self.message,
            "Delivery": self.delivery,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RdsEvent:
        """Read back :meth:`to_payload`'s form."""
        return cls(
            event_id=payload.get("EventId"),
            source_type=str(payload.get("SourceType") or ""),
            source_id=str(payload.get("SourceIdentifier") or ""),
            source_arn=str(payload.get("SourceArn") or ""),
            account=payload.get("Account"),
            region=payload.get("Region"),
            time=payload.get("EventTime"),
            message=str(payload.get("Message") or ""),
            delivery=str(payload.get("Delivery") or ""),
        )


def parse_message(body: object) -> RdsEvent | NotAnEvent:
    """The RDS event an SQS message body carries, in any delivery form; never raises."""
    document = _json_object(body, "the SQS body")
    if isinstance(document, NotAnEvent):
        return document
    if "detail-type" in document or "detail" in document:
        return _from_eventbridge(document)
    kind = document.get("Type")
    if kind is not None and "Message" in document:
        if kind != "Notification":
            return NotAnEvent(
                f"an SNS {kind} message, not an RDS event (SNS sends one when an "
                "endpoint subscribes; SQS subscriptions need no confirmation)"
            )
        inner = _json_object(document["Message"], "the SNS Message")
        if isinstance(inner, NotAnEvent):
            return inner
        return _from_sns_event(inner, "sns", fallback_time=document.get("Timestamp"))
    return _from_sns_event(document, "sns-raw")


def _json_object(text: object, what: str) -> dict[str, Any] | NotAnEvent:
    if not isinstance(text, str):
        return NotAnEvent(f"{what} is a {type(text).__name__}, not JSON text")
    try:
        document = json.loads(text)
    except ValueError:
        shown = text[:_SHOWN_BODY_CHARS] + ("..." if len(text) > _SHOWN_BODY_CHARS else "")
        return NotAnEvent(f"{what} is not JSON: {shown!r}")
    if not isinstance(document, dict):
        return NotAnEvent(f"{what} is JSON but not an object: {type(document).__name__}")
    return document


def _from_sns_event(
    event: Mapping[str, Any], delivery: str, fallback_time: object = None
) -> RdsEvent | NotAnEvent:
    missing = [key for key in ("Event ID", "Source ID") if not event.get(key)]
    if missing:
        return NotAnEvent(
            f"a JSON message without {' or '.join(repr(k) for k in missing)}: not an RDS "
            f"event (keys: {sorted(event)[:8]})"
        )
    return _event(
        raw_event_id=event["Event ID"],
        source_type=str(event.get("Event Source") or ""),
        source_id=str(event["Source ID"]),
        source_arn=str(event.get("Source ARN") or ""),
        time=_iso_time(event.get("Event Time")) or _iso_time(fallback_time),
        message=str(event.get("Event Message") or ""),
        delivery=delivery,
    )


def _from_eventbridge(document: Mapping[str, Any]) -> RdsEvent | NotAnEvent:
    if document.get("source") != "aws.rds":
        return NotAnEvent(f"an EventBridge event from {document.get('source')!r}, not aws.rds")
    detail = document.get("detail")
    if not isinstance(detail, Mapping) or not detail.get("EventID"):
        return NotAnEvent("an aws.rds EventBridge event without detail.EventID")
    source_type = str(detail.get("SourceType") or "")
    return _event(
        raw_event_id=detail["EventID"],
        source_type=_SOURCE_TYPES.get(source_type.upper(), source_type.lower()),
        source_id=str(detail.get("SourceIdentifier") or ""),
        source_arn=str(detail.get("SourceArn") or ""),
        time=_iso_time(detail.get("Date")) or _iso_time(document.get("time")),
        message=str(detail.get("Message") or ""),
        delivery="eventbridge",
        account=document.get("account"),
        region=document.get("region"),
    )


def _event(
    *,
    raw_event_id: object,
    source_type: str,
    source_id: str,
    source_arn: str,
    time: str | None,
    message: str,
    delivery: str,
    account: object = None,
    region: object = None,
) -> RdsEvent:
    arn = re.match(_ARN, source_arn)
    if arn:
        account = account or arn["account"] or None
        region = region or arn["region"] or None
        source_id = source_id or arn["name"]
    return RdsEvent(
        event_id=event_id_of(raw_event_id),
        source_type=source_type,
        source_id=source_id,
        source_arn=source_arn,
        account=str(account) if account else None,
        region=str(region) if region else None,
        time=time,
        message=message,
        delivery=delivery,
    )


def _iso_time(value: object) -> str | None:
    """``2021-11-07 17:43:51.876`` (SNS, UTC) or ISO 8601 with ``Z``, as ISO 8601 UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


class EventFilter(NamedTuple):
    """Which RDS events an event trigger fires for; see
    :func:`~airflow_rds_export.decisions.decide_event`."""

    event_ids: tuple[str, ...] = SNAPSHOT_CREATED_EVENT_IDS
    source_identifiers: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    def validated(self) -> EventFilter:
        """The same filter, checked (:class:`InvalidParameterError` naming the field)."""
        return EventFilter(
            event_ids=validate_event_ids(self.event_ids),
            source_identifiers=validate_source_patterns(self.source_identifiers),
            accounts=validate_accounts(self.accounts),
            regions=validate_regions(self.regions),
        )

    def judge(self, body: object) -> tuple[RdsEvent | None, EventVerdict]:
        """Parse an SQS body and decide whether it fires: ``(event or None, verdict)``."""
        parsed = parse_message(body)
        if isinstance(parsed, NotAnEvent):
            return None, EventVerdict(False, f"malformed: {parsed.reason}")
        return parsed, decide_event(
            event_id=parsed.event_id,
            source_id=parsed.source_id,
            source_arn=parsed.source_arn,
            account=parsed.account,
            region=parsed.region,
            event_ids=self.event_ids,
            source_identifiers=self.source_identifiers,
            accounts=self.accounts,
            regions=self.regions,
        )
