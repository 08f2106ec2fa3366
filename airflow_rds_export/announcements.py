"""The snapshots a DAG run's triggering asset events announce, in Python and templates.

A DAG scheduled on an asset watched by :class:`~airflow_rds_export.event_triggers.RdsEventTrigger`
gets, in ``triggering_asset_events``, one asset event per RDS event, whose ``extra`` is
``{"from_trigger": True, "payload": <the RDS event>}``. Airflow batches the events that
arrive before the run is created into one run, so a run may announce several snapshots:
:func:`announced_snapshots` returns each (once, by ARN); :func:`announced_snapshot` the
one a run announces when it must be exactly one.

``{{ macros.rds_export.announced_snapshot(triggering_asset_events).arn }}`` in a template;
the start operator takes an :class:`AnnouncedSnapshot` (or its :meth:`~AnnouncedSnapshot.to_dict`)
as ``source_arn`` directly. Pure: no Airflow, no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from airflow_rds_export.decisions import EVENT_MEANINGS
from airflow_rds_export.descriptions import automated_snapshot_parts
from airflow_rds_export.identifiers import export_identifier
from airflow_rds_export.rds_events import RdsEvent
from airflow_rds_export.validation import InvalidParameterError

__all__ = ["AnnouncedSnapshot", "announced_snapshot", "announced_snapshots"]


class AnnouncedSnapshot(NamedTuple):
    """A snapshot an RDS "snapshot created" event announced.

    ``arn``: the snapshot's ARN (an export's ``SourceArn``); ``identifier``: its name
    (``rds:orders-2026-11-29-03-10`` for an automated one); ``source``: what RDS calls
    the event's source, ``db-snapshot`` or ``db-cluster-snapshot``; ``time``: when RDS
    says the event happened (ISO 8601 UTC); ``event_id``: ``RDS-EVENT-0091`` ...
    """

    arn: str
    identifier: str
    source: str
    time: str | None
    event_id: str

    @property
    def export_identifier(self) -> str:
        """A valid export task identifier for this snapshot, the same for every event
        announcing it, so a duplicate event adopts the export instead of doubling it.

        An automated snapshot's is the nightly DAGs' identifier of that night,
        ``identifier(<instance or cluster>, <yyyymmdd>)`` (``orders-20261129``): a nightly
        run of the same night, same bucket and prefix adopts the export the event started,
        and starts it if the event was missed. A manual snapshot's is its name's
        (``orders-before-migration``).
        """
        parts = automated_snapshot_parts(self.identifier)
        return export_identifier(*parts) if parts else export_identifier(self.identifier)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, with ``SourceArn`` as the snapshot sensors' XComs have it."""
        return {
            "SourceArn": self.arn,
            "SnapshotIdentifier": self.identifier,
            "EventSource": self.source,
            "EventTime": self.time,
            "EventId": self.event_id,
            "ExportTaskIdentifier": self.export_identifier,
        }


def announced_snapshots(triggering_asset_events: Any) -> list[AnnouncedSnapshot]:
    """Every snapshot the run's triggering asset events announce, oldest event first,
    each once (a duplicate event names the same ARN).

    ``triggering_asset_events``: the context's mapping of asset to its events, or any
    iterable of asset events (objects with ``extra``, or dicts with ``"extra"``). Events
    not from this package's trigger, or not "snapshot created", are left out.
    """
    found: dict[str, AnnouncedSnapshot] = {}
    for extra in _extras(triggering_asset_events):
        payload = extra.get("payload") if extra.get("from_trigger") else None
        if not isinstance(payload, Mapping):
            continue
        event = RdsEvent.from_payload(payload)
        kind = EVENT_MEANINGS.get(event.event_id or "", ("",))[0]
        if kind != "snapshot_created" or not event.source_arn:
            continue
        snapshot = AnnouncedSnapshot(
            arn=event.source_arn,
            identifier=event.source_id,
            source=event.source_type,
            time=event.time,
            event_id=str(event.event_id),
        )
        found.setdefault(snapshot.arn, snapshot)
    return sorted(found.values(), key=lambda snapshot: snapshot.time or "")


def announced_snapshot(triggering_asset_events: Any) -> AnnouncedSnapshot:
    """The one snapshot the run's triggering asset events announce.

    :raises InvalidParameterError: none, or more than one (then use
        :func:`announced_snapshots` and map over them).
    """
    snapshots = announced_snapshots(triggering_asset_events)
    if len(snapshots) != 1:
        raise InvalidParameterError(
            "triggering_asset_events",
            [s.identifier for s in snapshots],
            f"announce {len(snapshots)} snapshots, not exactly one: Airflow runs a DAG once "
            "for all events that arrived before the run was created, so map over "
            "announced_snapshots(...) instead",
        )
    return snapshots[0]


def _extras(events: Any) -> Iterable[Mapping[str, Any]]:
    """The ``extra`` of each asset event, given the context's mapping of asset to its
    events, or a list of events (objects with ``extra``, or dicts)."""
    if isinstance(events, Mapping):
        events = [event for group in events.values() for event in group]
    for event in events or ():
        extra = event.get("extra") if isinstance(event, Mapping) else getattr(event, "extra", None)
        if isinstance(extra, Mapping):
            yield extra
