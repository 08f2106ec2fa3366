"""Shared polling: many waits in one triggerer event loop, one describe call per cycle.

A triggerer runs every deferred task's trigger in one asyncio event loop. Left alone, 1,000
export waits make 1,000 DescribeExportTasks calls per poll interval (and risk RDS's API
throttling). Here, waits that use the same connection (``aws_conn_id``, ``region_name``,
``verify``, ``botocore_config``) and wait for the same kind of resource join one
:class:`SharedPoller`, which answers all of them with batched calls:

* export tasks: ``DescribeExportTasks`` with ``Filters=[{"Name": "export-task-identifier",
  "Values": [...]}]``, up to :data:`BATCH_SIZE` identifiers per call;
* snapshots by name: ``DescribeDBSnapshots`` with the ``db-snapshot-id`` filter and, for
  cluster snapshots (or names not found as DB snapshots when the kind is unknown, as
  :meth:`~airflow_rds_export.hooks.RdsExportHook.describe_snapshot` does),
  ``DescribeDBClusterSnapshots`` with ``db-cluster-snapshot-id``.

An identifier that a batched answer does not contain is reported missing (None), as the
single describe reports a not-found error. Every answer is paginated with ``Marker`` /
``MaxRecords`` (a batch never exceeds one page, see :data:`BATCH_SIZE`). Automated
snapshots' names (``rds:...``) are asked for in calls of their own, with
``SnapshotType="automated"``, as AWS requires. The calls themselves are the hook's.

Scheduling. A member asks for the description of its identifier with
:meth:`Member.describe`; the first request is answered at once (after a short coalescing
window, so waits started together share the call); later ones are *due* one poll interval
after the previous one, rounded up to the poller's grid: multiples of the smallest interval
among the members, counted from the poller's start. Waits with the same interval therefore
fall onto the same grid points and share each cycle's calls, whenever they started; a new
wait's second check may come up to one grid step late, never early. After an error a member
backs off (:meth:`Member.back_off`) to a grid point too, so a throttled cycle is retried as one
cycle, not as N scattered calls.

Errors. A failed call (throttling, 5xx, a dropped connection, anything) is handed to every
member whose identifier was in that call; each decides as it would for its own call
(back off, or raise). Other batches of the cycle are unaffected.

State. Everything lives in the event loop's memory, keyed by the loop: nothing persists,
so a trigger that runs twice, or again after a triggerer restart, just joins (or starts) a
poller. A poller stops, and closes its client, when its last member leaves.

Only triggers import this module (it imports boto3 through the hook): DAG parsing never does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from airflow_rds_export.connection import AwsConnection
from airflow_rds_export.descriptions import is_automated_snapshot
from airflow_rds_export.hooks import RdsExportHook
from airflow_rds_export.waits import EXPORT, SNAPSHOT

__all__ = [
    "BATCH_SIZE",
    "EXPORT",
    "SNAPSHOT",
    "Member",
    "PollerKey",
    "SharedPoller",
    "active_pollers",
    "join",
]

log = logging.getLogger(__name__)

#: Identifiers per batched describe call. Neither botocore's RDS model nor the RDS API
#: reference documents a maximum number of values for a ``Filters`` entry (EC2 documents
#: 200 for its own API). ASSUMPTION: 100 is a conservative choice that also equals the
#: largest ``MaxRecords`` (100), so each batch's answer fits in one page.
BATCH_SIZE = 100
#: How long a poller waits, once a request is due, for other requests of the same moment
#: (triggers woken by the same answer, triggers created in the same triggerer loop).
BATCH_WINDOW_SECONDS = 0.02
#: The smallest grid step, whatever the members' intervals.
MIN_GRID_SECONDS = 0.01


@dataclass(frozen=True)
class PollerKey:
    """What members of one poller share: the connection, and the kind of resource."""

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: str  # JSON, keys sorted: dicts are not hashable
    kind: str

    @classmethod
    def of(
        cls,
        kind: str,
        *,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: Mapping[str, Any] | None,
    ) -> PollerKey:
        """The key for a connection's parameters, as triggers hold them."""
        if kind not in (EXPORT, SNAPSHOT):
            raise ValueError(f"Unknown poller kind {kind!r}")
        config = json.dumps(botocore_config or {}, sort_keys=True, default=str)
        return cls(aws_conn_id, region_name, verify, config, kind)

    @property
    def connection(self) -> AwsConnection:
        return AwsConnection(
            self.aws_conn_id,
            self.region_name,
            self.verify,
            json.loads(self.botocore_config) or None,
        )


@dataclass(eq=False)
class _Request:
    identifier: str
    snapshot_kind: str | None  # "db", "cluster" or None (try DB, then cluster)
    due: float
    future: asyncio.Future[dict[str, Any] | None]


class SharedPoller:
    """One event loop's poller for one :class:`PollerKey`; see the module docstring.

    Create through :func:`join`. ``client_factory`` (an async callable returning an async
    context manager of an aiobotocore RDS client) is for tests; by default the client comes
    from :class:`~airflow_rds_export.hooks.RdsExportHook` with the key's connection.
    """

    def __init__(
        self,
        key: PollerKey,
        client_factory: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.key = key
        self._loop = asyncio.get_running_loop()
        self._epoch = self._loop.time()
        self._hook: RdsExportHook = key.connection.hook()
        self._client_factory = client_factory or self._default_client
        self._members: dict[Member, float] = {}
        self._pending: list[_Request] = []
        self._wakeup = asyncio.Event()
        self.closed = False
        #: Cycles served (for tests and benchmarks).
        self.cycles = 0
        self._task = self._loop.create_task(self._run(), name=f"rds-shared-poller-{key.kind}")

    # ------------------------------------------------------------------ membership

    def _add(self, member: Member, interval: float) -> None:
        self._members[member] = interval

    def _remove(self, member: Member) -> None:
        self._members.pop(member, None)
        for request in [r for r in self._pending if r.future.done()]:
            self._pending.remove(request)
        if not self._members:
            self._wakeup.set()

    @property
    def members(self) -> int:
        """How many waits share this poller now."""
        return len(self._members)

    @property
    def grid(self) -> float:
        """The grid step: the smallest poll interval among the members."""
        intervals = [i for i in self._members.values() if i > 0]
        return max(min(intervals, default=MIN_GRID_SECONDS), MIN_GRID_SECONDS)

    def align(self, when: float) -> float:
        """The first grid point at or after ``when`` (loop time)."""
        step = self.grid
        # A small tolerance so that float noise never pushes a request a whole step later.
        steps = math.ceil((when - self._epoch) / step - 1e-6)
        return self._epoch + max(steps, 0) * step

    def _request(
        self, identifier: str, snapshot_kind: str | None, due: float
    ) -> asyncio.Future[dict[str, Any] | None]:
        if self.closed:
            raise RuntimeError("shared poller is closed")
        future: asyncio.Future[dict[str, Any] | None] = self._loop.create_future()
        self._pending.append(_Request(identifier, snapshot_kind, due, future))
        self._wakeup.set()
        return future

    # ------------------------------------------------------------------ the loop

    async def _default_client(self) -> Any:
        return await self._hook.get_async_conn()

    async def _run(self) -> None:
        try:
            async with await self._client_factory() as client:
                while await self._next_batch_due():
                    await asyncio.sleep(BATCH_WINDOW_SECONDS)
                    now = self._loop.time()
                    slack = min(0.1 * self.grid, 0.5)
                    batch = [r for r in self._pending if r.due <= now + slack]
                    self._pending = [r for r in self._pending if r.due > now + slack]
                    batch = [r for r in batch if not r.future.done()]
                    if batch:
                        self.cycles += 1
                        await self._serve(client, batch)
        except BaseException as exc:  # the client could not be made, or a bug: tell members
            self._close()
            for request in self._pending:
                if not request.future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        request.future.cancel()
                    else:
                        request.future.set_exception(exc)
            self._pending.clear()
            if not isinstance(exc, Exception):
                raise
            log.warning("Shared %s poller stopped: %s", self.key.kind, exc)
        finally:
            self._close()

    async def _next_batch_due(self) -> bool:
        """Sleep until a request is due; False once no member remains."""
        while True:
            if not self._members:
                self._close()
                return False
            now = self._loop.time()
            due = min((r.due for r in self._pending), default=None)
            if due is not None and due <= now:
                return True
            self._wakeup.clear()
            timeout = None if due is None else due - now
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            registry = _REGISTRY.get(self._loop)
            if registry is not None and registry.get(self.key) is self:
                del registry[self.key]

    async def _serve(self, client: Any, batch: Sequence[_Request]) -> None:
        if self.key.kind == EXPORT:
            await self._serve_exports(client, batch)
            return
        # DB snapshots first (kind "db", and unknown kinds, as describe_snapshot does);
        # those not found with an unknown kind are then looked up as cluster snapshots.
        not_db = await self._serve_snapshots(
            client, [r for r in batch if r.snapshot_kind != "cluster"], "db"
        )
        cluster = [r for r in batch if r.snapshot_kind == "cluster"]
        await self._serve_snapshots(client, cluster + not_db, "cluster")

    async def _serve_exports(self, client: Any, batch: Sequence[_Request]) -> None:
        for chunk, members in _batches(batch):
            try:
                found = await self._hook.describe_export_tasks_async(client, chunk)
            except Exception as exc:
                _fail(members, exc)
                continue
            for request in members:
                _resolve(request, found.get(request.identifier.lower()))

    async def _serve_snapshots(
        self, client: Any, batch: Sequence[_Request], snapshot_kind: str
    ) -> list[_Request]:
        """Answer ``batch`` with snapshots of one kind; return the unknown-kind misses."""
        misses: list[_Request] = []
        for automated in (False, True):
            group = [r for r in batch if is_automated_snapshot(r.identifier) == automated]
            for chunk, members in _batches(group):
                try:
                    found = await self._hook.describe_snapshots_async(
                        client, chunk, snapshot_kind, automated=automated
                    )
                except Exception as exc:
                    _fail(members, exc)
                    continue
                for request in members:
                    snapshot = found.get(request.identifier.lower())
                    if snapshot is None and request.snapshot_kind is None and snapshot_kind == "db":
                        misses.append(request)
                    else:
                        _resolve(request, snapshot)
        return misses


def _batches(requests: Sequence[_Request]) -> list[tuple[list[str], list[_Request]]]:
    """Requests in chunks of at most :data:`BATCH_SIZE` distinct (case-blind) identifiers."""
    by_identifier: dict[str, list[_Request]] = {}
    for request in requests:
        by_identifier.setdefault(request.identifier.lower(), []).append(request)
    unique = list(by_identifier)
    chunks = [unique[i : i + BATCH_SIZE] for i in range(0, len(unique), BATCH_SIZE)]
    return [(chunk, [r for i in chunk for r in by_identifier[i]]) for chunk in chunks]


def _resolve(request: _Request, description: dict[str, Any] | None) -> None:
    if not request.future.done():
        request.future.set_result(description)


def _fail(requests: Sequence[_Request], exc: BaseException) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(exc)


class Member:
    """One wait's seat in a :class:`SharedPoller` (made by :func:`join`).

    Call :meth:`describe` to get the next answer for an identifier; between calls, say
    when the next one is due with :meth:`wait` (a poll interval after the last one) or
    :meth:`back_off` (after an error). Neither sleeps: :meth:`describe` does.
    """

    def __init__(
        self,
        key: PollerKey,
        interval: float,
        client_factory: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.key = key
        self.interval = interval
        self._client_factory = client_factory
        self._poller = self._attach()
        self._last_due: float | None = None
        self._next_due: float | None = None

    @property
    def poller(self) -> SharedPoller:
        """The poller this member uses now."""
        return self._poller

    def _attach(self) -> SharedPoller:
        registry = _REGISTRY.setdefault(asyncio.get_running_loop(), {})
        poller = registry.get(self.key)
        if poller is None or poller.closed:
            poller = SharedPoller(self.key, self._client_factory)
            registry[self.key] = poller
        poller._add(self, self.interval)
        return poller

    def wait(self, seconds: float) -> None:
        """The next :meth:`describe` is due ``seconds`` after the previous one was due."""
        base = self._last_due if self._last_due is not None else self._poller._loop.time()
        now = self._poller._loop.time()
        self._next_due = self._poller.align(max(base + seconds, now))

    def back_off(self, seconds: float) -> None:
        """The next :meth:`describe` is due ``seconds`` from now (rounded to the grid)."""
        self._next_due = self._poller.align(self._poller._loop.time() + seconds)

    async def describe(
        self, identifier: str, snapshot_kind: str | None = None
    ) -> dict[str, Any] | None:
        """The description of ``identifier`` from the next due cycle, or None if missing.

        Raises what the batched call raised (botocore ``ClientError`` and the like).
        """
        if self._poller.closed:
            self._poller = self._attach()
        loop = self._poller._loop
        due = self._next_due if self._next_due is not None else loop.time()
        self._next_due = None
        self._last_due = due
        return await self._poller._request(identifier, snapshot_kind, due)

    def leave(self) -> None:
        """Give up the seat; the poller stops when no member remains."""
        self._poller._remove(self)


@asynccontextmanager
async def join(
    kind: str,
    *,
    aws_conn_id: str | None,
    region_name: str | None,
    verify: bool | str | None,
    botocore_config: Mapping[str, Any] | None,
    interval: float,
    client_factory: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncIterator[Member]:
    """Join (or start) this event loop's poller for ``kind`` and the connection."""
    key = PollerKey.of(
        kind,
        aws_conn_id=aws_conn_id,
        region_name=region_name,
        verify=verify,
        botocore_config=botocore_config,
    )
    member = Member(key, interval, client_factory)
    try:
        yield member
    finally:
        member.leave()


def active_pollers() -> dict[PollerKey, SharedPoller]:
    """The running event loop's pollers (for tests and benchmarks)."""
    return dict(_REGISTRY.get(asyncio.get_running_loop(), {}))


_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)
