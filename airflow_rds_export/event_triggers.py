"""The event trigger for Airflow 3 ``AssetWatcher``s: RDS events from an SQS queue.

:class:`RdsEventTrigger` consumes an SQS queue that receives RDS events (through an RDS
event subscription's SNS topic, raw or not, or an EventBridge rule: see
:mod:`airflow_rds_export.rds_events`) and yields **one** ``TriggerEvent`` per relevant
message: an event ID it was asked for, from a source, account and Region it was asked
for. Every other message (another event ID, another instance, a body that is not JSON,
SNS's subscription confirmation ...) is deleted and counted in the log; it never fires a
DAG run and never stops the trigger. Nor does a failed receive: it is logged as
:func:`~airflow_rds_export.decisions.decide_queue_error` says (a warning, or an error with
the remedy) and tried again after a backoff.

Receiving and deleting is the Amazon provider's :class:`SqsSensorTrigger` (its
``poke``: ``ReceiveMessage`` with long polling through ``SqsHook``'s aiobotocore client,
then ``DeleteMessageBatch`` of what it received), used as a part rather than a base
class: its module imports boto3, and a DAG file builds this trigger when it is parsed, so
it is imported only inside :meth:`RdsEventTrigger.run` (in the triggerer). Its own
``run`` does not fit: it yields one event per *batch* and stops, and its filters
(literal, JSONPath) can neither see into SNS's ``Message`` string nor delete what they
reject (rejected messages come back after the visibility timeout, forever).

Delivery is at least once and best effort (SNS, EventBridge and SQS all say so): a
message is deleted when received, so a duplicate fires twice (the start operator adopts
the export the first run started) and a message lost between deletion and the event
reaching Airflow's database is not seen again. The nightly sensor DAG is the fallback.

Importing this module imports ``airflow.triggers.base`` (``AssetWatcher`` requires a
``BaseEventTrigger``) but no boto3 or botocore.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_rds_export import retry
from airflow_rds_export.decisions import SNAPSHOT_CREATED_EVENT_IDS, decide_queue_error
from airflow_rds_export.errors import AwsError
from airflow_rds_export.rds_events import EventFilter
from airflow_rds_export.validation import (
    InvalidParameterError,
    validate_positive_int,
    validate_text,
)

__all__ = ["RdsEventTrigger"]

#: SQS's own bounds: at most 10 messages per ReceiveMessage, long polling up to 20 s.
MAX_MESSAGES_PER_RECEIVE = 10
MAX_WAIT_TIME_SECONDS = 20


class RdsEventTrigger(BaseEventTrigger):
    """Fire once per relevant RDS event arriving in an SQS queue (for ``AssetWatcher``).

    Each event's payload (the asset event's ``extra["payload"]``) is
    :meth:`~airflow_rds_export.rds_events.RdsEvent.to_payload` plus ``SqsMessageId``;
    :func:`airflow_rds_export.announcements.announced_snapshots` reads it back in the
    DAG run.

    :param sqs_queue: URL of the SQS queue receiving the RDS events.
    :param event_ids: RDS event IDs to fire for (default: the four "snapshot created"
        events, ``decisions.SNAPSHOT_CREATED_EVENT_IDS``; add
        ``decisions.EXPORT_ENDED_EVENT_IDS`` for exports that ended).
    :param source_identifiers: Sources to fire for: snapshot identifiers or fnmatch
        patterns (``rds:orders-*``; an ``arn:...`` pattern matches the source ARN);
        none: any source.
    :param accounts: AWS account IDs to fire for; none: any.
    :param regions: AWS Regions to fire for; none: any.
    :param max_messages: Messages per ReceiveMessage (1-10).
    :param wait_time_seconds: Long-polling wait of each ReceiveMessage (1-20 s): a
        message is received as soon as it arrives.
    :param waiter_delay: Seconds between receives that returned nothing (default 0: poll
        again at once, long polling does the waiting).
    :param aws_conn_id: Airflow connection for AWS; ``region_name``, ``verify`` and
        ``botocore_config`` as for the other components.
    """

    def __init__(
        self,
        *,
        sqs_queue: str,
        event_ids: Sequence[str] = SNAPSHOT_CREATED_EVENT_IDS,
        source_identifiers: Sequence[str] = (),
        accounts: Sequence[str] = (),
        regions: Sequence[str] = (),
        max_messages: int = MAX_MESSAGES_PER_RECEIVE,
        wait_time_seconds: int = MAX_WAIT_TIME_SECONDS,
        waiter_delay: float = 0,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.sqs_queue = validate_text(sqs_queue, "sqs_queue")
        self.filter = EventFilter(
            tuple(event_ids), tuple(source_identifiers), tuple(accounts), tuple(regions)
        ).validated()
        self.max_messages = validate_positive_int(max_messages, "max_messages")
        if self.max_messages > MAX_MESSAGES_PER_RECEIVE:
            raise InvalidParameterError(
                "max_messages", max_messages, f"SQS returns at most {MAX_MESSAGES_PER_RECEIVE}"
            )
        self.wait_time_seconds = validate_positive_int(wait_time_seconds, "wait_time_seconds")
        if self.wait_time_seconds > MAX_WAIT_TIME_SECONDS:
            raise InvalidParameterError(
                "wait_time_seconds",
                wait_time_seconds,
                f"SQS long polling waits at most {MAX_WAIT_TIME_SECONDS} s",
            )
        if isinstance(waiter_delay, bool) or not isinstance(waiter_delay, (int, float)):
            raise InvalidParameterError("waiter_delay", waiter_delay, "must be seconds (>= 0)")
        if waiter_delay < 0:
            raise InvalidParameterError("waiter_delay", waiter_delay, "must be seconds (>= 0)")
        self.waiter_delay = float(waiter_delay)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sqs_queue": self.sqs_queue,
                "event_ids": list(self.filter.event_ids),
                "source_identifiers": list(self.filter.source_identifiers),
                "accounts": list(self.filter.accounts),
                "regions": list(self.filter.regions),
                "max_messages": self.max_messages,
                "wait_time_seconds": self.wait_time_seconds,
                "waiter_delay": self.waiter_delay,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def _receiver(self) -> Any:
        """The Amazon provider's SQS trigger, as the part that receives and deletes."""
        from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

        return SqsSensorTrigger(
            sqs_queue=self.sqs_queue,
            aws_conn_id=self.aws_conn_id,
            max_messages=self.max_messages,
            num_batches=1,
            wait_time_seconds=self.wait_time_seconds,
            message_filtering=None,  # every message is received, judged and deleted
            delete_message_on_reception=True,
            waiter_delay=int(self.waiter_delay),
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        receiver = self._receiver()
        dropped: collections.Counter[str] = collections.Counter()
        fired = 0
        failures = 0
        self.log.info(
            "Watching %s for RDS events %s (sources %s, accounts %s, Regions %s)",
            self.sqs_queue,
            ", ".join(self.filter.event_ids),
            list(self.filter.source_identifiers) or "any",
            list(self.filter.accounts) or "any",
            list(self.filter.regions) or "any",
        )
        while True:
            try:
                async with await receiver.hook.get_async_conn() as client:
                    while True:
                        messages = await receiver.poke(client)
                        failures = 0
                        for message in messages:
                            event, verdict = self.filter.judge(message.get("Body"))
                            if event is None or not verdict.relevant:
                                dropped["malformed" if event is None else "irrelevant"] += 1
                                self.log.info(
                                    "Deleted SQS message %s without firing (%s): %s",
                                    message.get("MessageId"),
                                    _counts(dropped),
                                    verdict.reason,
                                )
                                continue
                            fired += 1
                            self.log.info("Firing for %s (%d fired)", verdict.reason, fired)
                            yield TriggerEvent(
                                {**event.to_payload(), "SqsMessageId": message.get("MessageId")}
                            )
                        if not messages and self.waiter_delay:
                            await asyncio.sleep(self.waiter_delay)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let a bad answer stop the watch
                failures += 1
                delay = retry.backoff_delay(failures)
                error = AwsError.of(exc)
                refusal = decide_queue_error(
                    self.sqs_queue,
                    error_code=error.code,
                    error_message=error.message or type(exc).__name__,
                    http_status=error.http_status,
                    unreachable=error.unreachable,
                )
                log = self.log.error if refusal.permanent else self.log.warning
                log("%s (next try in %.1f s)", refusal.reason, delay)
                await asyncio.sleep(delay)


def _counts(dropped: collections.Counter[str]) -> str:
    total = sum(dropped.values())
    parts = ", ".join(f"{count} {kind}" for kind, count in sorted(dropped.items()))
    return f"{total} dropped so far: {parts}"
