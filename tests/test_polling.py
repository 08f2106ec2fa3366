"""Shared polling (:mod:`airflow_rds_export.polling`): many triggers, few describe calls.

Two layers:

* the poller alone, with a fake aiobotocore client that records every call: batching
  (at most 100 identifiers a call, ``MaxRecords=100``), ``Marker`` paging, missing
  identifiers, per-batch errors, grid alignment, and the poller's lifecycle;
* many real triggers' ``run()`` in one event loop against the emulator server (aiobotocore
  cannot reach the in-process emulator, see tests/test_triggers.py), counting calls with
  ``control.calls()``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import boto3
import pytest
from airflow.triggers.base import BaseTrigger, TriggerEvent

import airflow_rds_export.triggers as triggers_module
from airflow_rds_export import polling
from airflow_rds_export.triggers import RdsExportTaskStateTrigger, RdsSnapshotReadyTrigger

REGION = "us-east-1"
POLL = 0.2
CONNECTION = {
    "aws_conn_id": "aws_default",
    "region_name": None,
    "verify": None,
    "botocore_config": None,
}


# --- the poller alone, with a fake client ---------------------------------------------


class FakeClient:
    """An aiobotocore-like RDS client over fixed data; records each call's parameters."""

    def __init__(
        self,
        exports: Mapping[str, str] | None = None,
        db_snapshots: Mapping[str, str] | None = None,
        cluster_snapshots: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> None:
        self.exports = dict(exports or {})
        self.db_snapshots = dict(db_snapshots or {})
        self.cluster_snapshots = dict(cluster_snapshots or {})
        self.page_size = page_size
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[Exception] = []
        self.closed = False

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.closed = True

    def _answer(
        self, name: str, params: dict[str, Any], items: list[dict[str, Any]], key: str
    ) -> dict[str, Any]:
        self.calls.append((name, params))
        if self.fail_next:
            raise self.fail_next.pop(0)
        start = int(params.get("Marker") or 0)
        size = self.page_size or len(items) or 1
        page = items[start : start + size]
        rest = start + size < len(items)
        return {key: page, **({"Marker": str(start + size)} if rest else {})}

    async def describe_export_tasks(self, **params: Any) -> dict[str, Any]:
        values = params["Filters"][0]["Values"]
        items = [
            {"ExportTaskIdentifier": v, "Status": self.exports[v], "S3Bucket": "b"}
            for v in values
            if v in self.exports
        ]
        return self._answer("DescribeExportTasks", params, items, "ExportTasks")

    async def describe_db_snapshots(self, **params: Any) -> dict[str, Any]:
        values = params["Filters"][0]["Values"]
        items = [
            {
                "DBSnapshotIdentifier": v,
                "Status": self.db_snapshots[v],
                "DBSnapshotArn": f"arn:aws:rds:us-east-1:123456789012:snapshot:{v}",
            }
            for v in values
            if v in self.db_snapshots
        ]
        return self._answer("DescribeDBSnapshots", params, items, "DBSnapshots")

    async def describe_db_cluster_snapshots(self, **params: Any) -> dict[str, Any]:
        values = params["Filters"][0]["Values"]
        items = [
            {
                "DBClusterSnapshotIdentifier": v,
                "Status": self.cluster_snapshots[v],
                "DBClusterSnapshotArn": f"arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{v}",
            }
            for v in values
            if v in self.cluster_snapshots
        ]
        return self._answer("DescribeDBClusterSnapshots", params, items, "DBClusterSnapshots")


def factory(client: FakeClient) -> Any:
    async def make() -> FakeClient:
        return client

    return make


async def describe_many(
    client: FakeClient, kind: str, identifiers: list[str], snapshot_kind: str | None = None
) -> list[Any]:
    """Each identifier described once by its own member, all in one event loop."""

    async def one(identifier: str) -> Any:
        async with polling.join(
            kind, **CONNECTION, interval=POLL, client_factory=factory(client)
        ) as member:
            return await member.describe(identifier, snapshot_kind)

    return await asyncio.gather(*(one(i) for i in identifiers), return_exceptions=True)


def test_250_export_waits_share_three_calls_of_at_most_100_identifiers() -> None:
    client = FakeClient(exports={f"exp{i}": "IN_PROGRESS" for i in range(0, 250, 2)})
    identifiers = [f"exp{i}" for i in range(250)]
    results = asyncio.run(describe_many(client, polling.EXPORT, identifiers))
    assert [c[0] for c in client.calls] == ["DescribeExportTasks"] * 3
    for _, params in client.calls:
        assert params["MaxRecords"] == 100
        (entry,) = params["Filters"]
        assert entry["Name"] == "export-task-identifier"
        assert 1 <= len(entry["Values"]) <= polling.BATCH_SIZE == 100
    asked = [v for _, params in client.calls for v in params["Filters"][0]["Values"]]
    assert sorted(asked) == sorted(identifiers)  # each exactly once
    for i, result in enumerate(results):
        if i % 2:
            assert result is None  # not in the answer: missing, as ExportTaskNotFound
        else:
            assert result["ExportTaskIdentifier"] == f"exp{i}"
    assert client.closed  # the last member left: the poller stopped and closed its client


def test_marker_pages_are_followed() -> None:
    client = FakeClient(exports={f"e{i}": "STARTING" for i in range(50)}, page_size=20)
    results = asyncio.run(describe_many(client, polling.EXPORT, [f"e{i}" for i in range(50)]))
    assert all(r["Status"] == "STARTING" for r in results)
    assert [p.get("Marker") for _, p in client.calls] == [None, "20", "40"]


def test_snapshots_db_first_then_cluster_for_unknown_kinds() -> None:
    client = FakeClient(db_snapshots={"db-a": "available"}, cluster_snapshots={"cl-b": "creating"})
    results = asyncio.run(describe_many(client, polling.SNAPSHOT, ["db-a", "cl-b", "nowhere"]))
    assert results[0]["SourceArn"].endswith(":snapshot:db-a")
    assert results[1]["SourceArn"].endswith(":cluster-snapshot:cl-b")
    assert results[2] is None
    # One DB call for all three, one cluster call for the two the DB call did not find.
    assert [(n, sorted(p["Filters"][0]["Values"])) for n, p in client.calls] == [
        ("DescribeDBSnapshots", ["cl-b", "db-a", "nowhere"]),
        ("DescribeDBClusterSnapshots", ["cl-b", "nowhere"]),
    ]


def test_snapshot_kind_cluster_skips_the_db_call() -> None:
    client = FakeClient(cluster_snapshots={"cl-b": "available"})
    (result,) = asyncio.run(describe_many(client, polling.SNAPSHOT, ["cl-b"], "cluster"))
    assert result["DBClusterSnapshotIdentifier"] == "cl-b"
    assert [n for n, _ in client.calls] == ["DescribeDBClusterSnapshots"]


def test_an_error_reaches_only_the_members_of_the_failed_batch() -> None:
    from botocore.exceptions import ClientError

    client = FakeClient(exports={f"e{i}": "COMPLETE" for i in range(150)})
    client.fail_next = [ClientError({"Error": {"Code": "Throttling"}}, "DescribeExportTasks")]
    results = asyncio.run(describe_many(client, polling.EXPORT, [f"e{i}" for i in range(150)]))
    errors = [r for r in results if isinstance(r, ClientError)]
    answers = [r for r in results if isinstance(r, dict)]
    assert len(errors) == 100 and len(answers) == 50


def test_members_with_the_same_interval_land_on_the_same_grid_points() -> None:
    """Waits started at different moments still share every later cycle."""
    client = FakeClient(exports={f"e{i}": "IN_PROGRESS" for i in range(5)})

    async def member_loop(identifier: str, start: float) -> None:
        await asyncio.sleep(start)
        async with polling.join(
            polling.EXPORT, **CONNECTION, interval=POLL, client_factory=factory(client)
        ) as member:
            for _ in range(6):
                await member.describe(identifier)
                member.wait(POLL)

    async def scenario() -> None:
        starts = [0.0, 0.05, 0.09, 0.13, 0.17]
        await asyncio.gather(*(member_loop(f"e{i}", s) for i, s in enumerate(starts)))

    asyncio.run(scenario())
    # 5 first checks at 5 different moments (up to 5 calls), then 5 more checks each that
    # all fall on shared grid points: 5 more calls, not 25.
    assert len(client.calls) <= 5 + 6, len(client.calls)


def test_the_poller_stops_when_its_last_member_leaves_and_restarts_on_demand() -> None:
    client = FakeClient(exports={"e1": "COMPLETE"})

    async def scenario() -> None:
        async with polling.join(
            polling.EXPORT, **CONNECTION, interval=POLL, client_factory=factory(client)
        ) as member:
            await member.describe("e1")
            assert len(polling.active_pollers()) == 1
        await asyncio.sleep(0.05)
        assert polling.active_pollers() == {}
        assert client.closed
        client.closed = False
        # Running again (a re-run trigger, a restarted triggerer) just starts a new poller.
        async with polling.join(
            polling.EXPORT, **CONNECTION, interval=POLL, client_factory=factory(client)
        ) as member:
            assert (await member.describe("e1"))["Status"] == "COMPLETE"

    asyncio.run(scenario())
    assert len(client.calls) == 2


def test_different_connections_do_not_share_a_poller() -> None:
    async def scenario() -> set[int]:
        client = FakeClient()
        async with (
            polling.join(
                polling.EXPORT, **CONNECTION, interval=POLL, client_factory=factory(client)
            ) as a,
            polling.join(
                polling.EXPORT,
                **{**CONNECTION, "region_name": "eu-west-1"},
                interval=POLL,
                client_factory=factory(client),
            ) as b,
        ):
            return {id(a.poller), id(b.poller)}

    assert len(asyncio.run(scenario())) == 2


def test_a_cancelled_member_does_not_break_the_others() -> None:
    client = FakeClient(exports={"e1": "COMPLETE", "e2": "COMPLETE"})

    async def scenario() -> Any:
        async def one(identifier: str) -> Any:
            async with polling.join(
                polling.EXPORT, **CONNECTION, interval=POLL, client_factory=factory(client)
            ) as member:
                member.back_off(0.3)
                return await member.describe(identifier)

        doomed = asyncio.create_task(one("e1"))
        survivor = asyncio.create_task(one("e2"))
        await asyncio.sleep(0.05)
        doomed.cancel()
        return await survivor

    assert asyncio.run(scenario())["ExportTaskIdentifier"] == "e2"
    assert [p["Filters"][0]["Values"] for _, p in client.calls] == [["e2"]]


# --- many real triggers against the emulator server -----------------------------------


class Emu:
    def __init__(self, server: Any) -> None:
        self.control = server.control
        self.rds = boto3.client(
            "rds",
            endpoint_url=server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def emu(rds_emulator_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emu]:
    from airflow_rds_export.testing import airflow_connection_env

    for name, value in airflow_connection_env(
        rds_emulator_server.endpoint_url, region_name=REGION
    ).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(triggers_module, "BACKOFF_BASE_SECONDS", 0.01)
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    world = Emu(rds_emulator_server)
    world.control.create_db_instance("orders")
    yield world
    world.control.clear_faults()


async def _events(trigger: BaseTrigger) -> list[TriggerEvent]:
    run: AsyncIterator[TriggerEvent] = trigger.run()
    return [event async for event in run]


def run_all(triggers: list[BaseTrigger], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run every trigger's ``run()`` concurrently in one event loop; their payloads."""

    async def scenario() -> list[list[TriggerEvent]]:
        runs = asyncio.gather(*(_events(t) for t in triggers))
        return await asyncio.wait_for(runs, timeout)

    payloads = []
    for events in asyncio.run(scenario()):
        assert len(events) == 1, events
        json.dumps(events[0].payload)
        payloads.append(events[0].payload)
    return payloads


def test_250_snapshot_triggers_make_about_n_over_100_calls_per_cycle(emu: Emu) -> None:
    n = 250
    for i in range(n):
        emu.control.create_db_snapshot(
            f"snap-{i}", db_instance_identifier="orders", ready_after_polls=3
        )
    emu.control.reset_calls()
    payloads = run_all(
        [
            RdsSnapshotReadyTrigger(db_snapshot_identifier=f"snap-{i}", poll_interval=POLL)
            for i in range(n)
        ]
    )
    for i, payload in enumerate(payloads):
        assert payload["decision"] == {
            "action": "done",
            "reason": f"Snapshot snap-{i} is available",
        }
        assert payload["description"]["SourceArn"].endswith(f":snapshot:snap-{i}")
    calls = emu.control.calls()["DescribeDBSnapshots"]
    # 4 checks each (3 x creating, then available) = 1,000 checks, at most 100 per call:
    # never fewer than 10 calls (12 when all waits join the first cycle together; fewer
    # happen when late joiners fill later batches). A few more for waits whose first check
    # missed the first batch window. One call per check would be 1,000.
    assert 10 <= calls <= 20, calls


def test_export_triggers_share_calls_and_decide_as_before(emu: Emu) -> None:
    prereq = emu.control.seed_export_prerequisites(bucket="rds-exports")
    running, complete = [f"run-{i}" for i in range(5)], [f"done-{i}" for i in range(20)]
    # Finished at once (they never count against the 5-exports limit), then the running ones.
    emu.control.set_export_pacing(starting_seconds=0, in_progress_seconds=0)
    for name in complete + running:
        if name in running:
            emu.control.pace_export(name, starting_polls=1, in_progress_polls=2)
        arn = emu.control.create_db_snapshot(f"s-{name}", db_instance_identifier="orders")
        emu.rds.start_export_task(
            ExportTaskIdentifier=name,
            SourceArn=arn["DBSnapshotArn"],
            S3BucketName=prereq["bucket"],
            S3Prefix="nightly",
            IamRoleArn=prereq["iam_role_arn"],
            KmsKeyId=prereq["kms_key_id"],
        )
    emu.control.fail_export("run-0", cause="The export role lacks s3:PutObject", after_polls=1)
    missing = [f"missing-{i}" for i in range(120)]
    emu.control.reset_calls()
    triggers: list[BaseTrigger] = [
        RdsExportTaskStateTrigger(export_task_identifier=name, poll_interval=POLL)
        for name in running + complete
    ] + [
        RdsExportTaskStateTrigger(
            export_task_identifier=name, on_missing="skip", poll_interval=POLL
        )
        for name in missing
    ]
    payloads = run_all(triggers)
    by_name = dict(zip(running + complete + missing, payloads, strict=True))
    assert by_name["run-0"]["decision"]["action"] == "fail"
    assert "lacks s3:PutObject" in by_name["run-0"]["decision"]["reason"]
    for name in running[1:] + complete:
        decision = by_name[name]["decision"]
        assert decision["action"] == "done"
        assert decision["reason"].startswith(f"Export task {name} is complete: ")
        assert decision["reason"].endswith(" GB verified")
        assert by_name[name]["description"]["Tables"]["Clean"] is True
        assert by_name[name]["description"]["S3Uri"] == f"s3://rds-exports/nightly/{name}/"
    for name in missing:
        assert by_name[name]["decision"]["action"] == "skip"
        assert by_name[name]["description"] is None
    calls = emu.control.calls()["DescribeExportTasks"]
    # 145 waits: first cycle 2 calls (100 + 45 identifiers), then 1 call per cycle for the
    # 4 still running (STARTING, IN_PROGRESS x 2, COMPLETE): about 5; per-wait polling: 165.
    assert calls <= 8, calls


def test_a_throttled_cycle_is_backed_off_and_retried_as_one(
    emu: Emu, monkeypatch: pytest.MonkeyPatch
) -> None:
    backoffs: list[int] = []
    real = triggers_module.backoff_delay

    def spy(failures: int, base: float = 0.01) -> float:
        backoffs.append(failures)
        return real(failures, base=0.01)

    monkeypatch.setattr(triggers_module, "backoff_delay", spy)
    n = 30
    for i in range(n):
        emu.control.create_db_snapshot(f"t-{i}", db_instance_identifier="orders")
    emu.control.reset_calls()
    # botocore's standard retries absorb 5 retries (6 requests); 6 throttles fail a call.
    emu.control.throttle(operation="DescribeDBSnapshots", count=6)
    payloads = run_all(
        [
            RdsSnapshotReadyTrigger(db_snapshot_identifier=f"t-{i}", poll_interval=POLL)
            for i in range(n)
        ]
    )
    assert all(p["decision"]["action"] == "done" for p in payloads)
    assert backoffs == [1] * n  # every wait saw the one failed call, and backed off once
    assert emu.control.calls()["DescribeDBSnapshots"] == 6 + 1


def test_triggers_poll_alone_when_shared_polling_is_off(
    emu: Emu, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triggers_module, "SHARED_POLLING", False)
    for i in range(10):
        emu.control.create_db_snapshot(
            f"a-{i}", db_instance_identifier="orders", ready_after_polls=1
        )
    emu.control.reset_calls()
    payloads = run_all(
        [
            RdsSnapshotReadyTrigger(db_snapshot_identifier=f"a-{i}", poll_interval=POLL)
            for i in range(10)
        ]
    )
    assert all(p["decision"]["action"] == "done" for p in payloads)
    assert emu.control.calls()["DescribeDBSnapshots"] == 20
