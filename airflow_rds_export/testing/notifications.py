"""RDS event notifications, as RDS publishes them: to event subscriptions and EventBridge.

Real RDS publishes an event when a snapshot starts (``RDS-EVENT-0090`` automated,
``0040`` manual, ``0168`` / ``0074`` for cluster snapshots) and when it is created
(``0091`` / ``0042`` / ``0169`` / ``0075``), and when an export task ends (``0159``-``0164``
for snapshots, ``0234``-``0236`` for a live cluster). It sends each to

* every enabled **RDS event subscription** (moto's ``CreateEventSubscription``) whose
  source type, categories and source IDs match, as an SNS message to its topic (moto's SNS
  then delivers it to subscribed SQS queues: the SNS envelope, or the bare event with
  ``RawMessageDelivery``); Subject ``RDS Notification Message``, Message the event's JSON:
  ``Event Source``, ``Event Time`` (``YYYY-MM-DD HH:MM:SS.mmm`` UTC), ``Identifier Link``,
  ``Source ID``, ``Source ARN``, ``Event ID`` (a documentation URL ending in the ID),
  ``Event Message``;
* the **EventBridge** default bus (``source`` ``aws.rds``, ``detail-type`` ``RDS DB
  Snapshot Event`` ...), whose rules moto's EventBridge delivers to SQS targets.

ASSUMPTION (UNCONFIRMED, see the shared EXPORT_OUTPUT_AND_EVENTS.md): the wording of the
export events' ``Event Message`` and their ``Source ID`` (the snapshot, the export task
named in the message) are the emulator's own; AWS documents the IDs, not samples. The
EventBridge ``SourceType`` of a cluster snapshot (``CLUSTER_SNAPSHOT``) is likewise
assumed.

Every published event is recorded (:data:`NOTIFIER`) with the wall-clock time it was
published, so tests can measure what happens after it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["EVENT_TEXTS", "NOTIFIER", "RdsEventNotifier", "event_message", "listening"]

#: Event ID -> (RDS event source, category, Event Message).
EVENT_TEXTS: dict[str, tuple[str, str, str]] = {
    "RDS-EVENT-0040": ("db-snapshot", "creation", "Creating manual snapshot"),
    "RDS-EVENT-0042": ("db-snapshot", "creation", "Manual snapshot created"),
    "RDS-EVENT-0090": ("db-snapshot", "creation", "Creating automated snapshot"),
    "RDS-EVENT-0091": ("db-snapshot", "creation", "Automated snapshot created"),
    "RDS-EVENT-0074": ("db-cluster-snapshot", "backup", "Creating manual cluster snapshot"),
    "RDS-EVENT-0075": ("db-cluster-snapshot", "backup", "Manual cluster snapshot created"),
    "RDS-EVENT-0168": ("db-cluster-snapshot", "backup", "Creating automated cluster snapshot"),
    "RDS-EVENT-0169": ("db-cluster-snapshot", "backup", "Automated cluster snapshot created"),
    "RDS-EVENT-0159": ("db-snapshot", "notification", "Snapshot export task failed"),
    "RDS-EVENT-0160": ("db-snapshot", "notification", "Snapshot export task canceled"),
    "RDS-EVENT-0161": ("db-snapshot", "notification", "Snapshot export task completed"),
    "RDS-EVENT-0162": (
        "db-cluster-snapshot",
        "notification",
        "Cluster snapshot export task failed",
    ),
    "RDS-EVENT-0163": (
        "db-cluster-snapshot",
        "notification",
        "Cluster snapshot export task canceled",
    ),
    "RDS-EVENT-0164": (
        "db-cluster-snapshot",
        "notification",
        "Cluster snapshot export task completed",
    ),
    "RDS-EVENT-0234": ("db-cluster", "notification", "Cluster export task failed"),
    "RDS-EVENT-0235": ("db-cluster", "notification", "Cluster export task canceled"),
    "RDS-EVENT-0236": ("db-cluster", "notification", "Cluster export task completed"),
}
_EVENTBRIDGE_TYPES = {
    "db-snapshot": ("RDS DB Snapshot Event", "SNAPSHOT"),
    "db-cluster-snapshot": ("RDS DB Cluster Snapshot Event", "CLUSTER_SNAPSHOT"),
    "db-cluster": ("RDS DB Cluster Event", "CLUSTER"),
    "db-instance": ("RDS DB Instance Event", "DB_INSTANCE"),
}
_DOCS = "http://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.html#"


def event_message(
    event_id: str, source_type: str, source_id: str, source_arn: str, text: str, when: datetime
) -> dict[str, str]:
    """The RDS event as an SNS subscription's ``Message`` carries it (before JSON)."""
    region = source_arn.split(":")[3] if source_arn.count(":") >= 3 else ""
    return {
        "Event Source": source_type,
        "Event Time": when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}",
        "Identifier Link": (
            f"https://console.aws.amazon.com/rds/home?region={region}#snapshot:id={source_id}"
        ),
        "Source ID": source_id,
        "Source ARN": source_arn,
        "Event ID": _DOCS + event_id,
        "Event Message": text,
    }


@dataclass
class RdsEventNotifier:
    """Publishes RDS events and remembers each (thread-safe)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    published: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.published.clear()

    def publish(
        self,
        *,
        account_id: str,
        region: str,
        event_id: str,
        source_id: str,
        source_arn: str,
        source_type: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Publish one RDS event to matching subscriptions and EventBridge; its record."""
        default_source, category, default_text = EVENT_TEXTS.get(
            event_id, (source_type or "db-snapshot", "notification", event_id)
        )
        source_type = source_type or default_source
        text = message or default_text
        when = datetime.now(timezone.utc)
        body = event_message(event_id, source_type, source_id, source_arn, text, when)
        sent_to = self._to_subscriptions(account_id, region, source_type, category, source_id, body)
        sent_to += self._to_eventbridge(
            account_id, region, event_id, source_type, category, source_id, source_arn, text, when
        )
        record = {
            "EventId": event_id,
            "SourceType": source_type,
            "SourceIdentifier": source_id,
            "SourceArn": source_arn,
            "Message": text,
            "PublishedAt": time.time(),
            "EventTime": when.isoformat(),
            "Deliveries": sent_to,
        }
        with self.lock:
            self.published.append(record)
        return record

    def _to_subscriptions(
        self,
        account_id: str,
        region: str,
        source_type: str,
        category: str,
        source_id: str,
        body: dict[str, str],
    ) -> list[str]:
        from moto.rds.models import rds_backends
        from moto.sns.models import sns_backends

        rds = rds_backends[account_id][region]
        sent: list[str] = []
        for subscription in list(rds.event_subscriptions.values()):
            if not _matches(subscription, source_type, category, source_id):
                continue
            topic_arn = str(subscription.sns_topic_arn)
            sns = sns_backends[topic_arn.split(":")[4]][topic_arn.split(":")[3]]
            sns.publish(json.dumps(body), arn=topic_arn, subject="RDS Notification Message")
            sent.append(topic_arn)
        return sent

    def _to_eventbridge(
        self,
        account_id: str,
        region: str,
        event_id: str,
        source_type: str,
        category: str,
        source_id: str,
        source_arn: str,
        text: str,
        when: datetime,
    ) -> list[str]:
        from moto.events.models import events_backends

        if region not in events_backends[account_id]:  # no rule was ever made there
            return []
        events = events_backends[account_id][region]
        bus = events.event_buses.get("default")
        if bus is None or not bus.rules:
            return []
        detail_type, bridge_source_type = _EVENTBRIDGE_TYPES.get(
            source_type, (f"RDS {source_type} Event", source_type.upper())
        )
        detail = {
            "EventCategories": [category],
            "SourceType": bridge_source_type,
            "SourceArn": source_arn,
            "Date": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "Message": text,
            "SourceIdentifier": source_id,
            "EventID": event_id,
        }
        events.put_events(
            [
                {
                    "Source": "aws.rds",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "Resources": [source_arn],
                    "Time": when.timestamp(),  # moto wants epoch seconds here
                }
            ]
        )
        return [f"eventbridge:{region}:default"]


def listening() -> bool:
    """Whether any RDS event subscription or EventBridge rule exists (in any account and
    Region): without one, nobody hears an event, and the clock need not tick."""
    from moto.events.models import events_backends
    from moto.rds.models import rds_backends

    if any(
        rds.event_subscriptions for regions in rds_backends.values() for rds in regions.values()
    ):
        return True
    return any(
        bus.rules
        for regions in events_backends.values()
        for events in regions.values()
        for bus in events.event_buses.values()
    )


def _matches(subscription: Any, source_type: str, category: str, source_id: str) -> bool:
    """CreateEventSubscription's rules: no SourceType, categories or SourceIds means all."""
    if subscription.enabled is False or str(subscription.enabled).lower() == "false":
        return False
    if subscription.source_type and subscription.source_type != source_type:
        return False
    if subscription.event_categories and category not in subscription.event_categories:
        return False
    return not subscription.source_ids or source_id in subscription.source_ids


#: The one notifier of this process (moto's backends are process-wide too).
NOTIFIER = RdsEventNotifier()
