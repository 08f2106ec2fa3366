"""End to end on a production-shaped deployment: PostgreSQL, CeleryExecutor, two triggerers.

One deployment for the module (:class:`e2e.production.ProductionDeployment`): PostgreSQL
and Redis from Debian packages on free ports with throw-away data directories, Airflow
3.3.2 with the CeleryExecutor, two Celery workers, two triggerers (capacity 10 each),
scheduler, dag-processor and api-server, all against the emulator server on 127.0.0.1.
The tests run in file order:

1. a deferred start-and-wait marked failed through the REST API cancels its export
   within one poll interval, and its log says who canceled it and why; a cleared one
   hands its export over to its new try, which adopts it;
2. a live triggerer missing its heartbeats until the other one takes its trigger over:
   Airflow 3.3 stops the trigger there "by user action" and calls ``on_kill()``, but the
   task is still deferred, so nothing is canceled;
3. shared polling on two triggerers: 16 snapshot waits split across both, one batched
   DescribeDBSnapshots per triggerer per poll cycle;
4. the chaos run of ``example_dags/fleet_rds_export.py`` over 20 sources under the
   5-exports limit, exports paced to 30-60 s: kill -9 a triggerer, kill -9 a worker
   mid-start, restart the scheduler, restart PostgreSQL; then the ledger.

About 12-15 minutes on 2 cores. Skipped when PostgreSQL or Redis is not installed
(``scripts/services.sh``, which ``scripts/test.sh`` runs, installs them).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.chaos import Chaos
from e2e.fleet import FLEET_DAG_ID, FleetWorld, fleet_dag_source, read_ledger, seed_fleet
from e2e.production import ProductionDeployment
from e2e.services import PostgresServer, RedisServer, services_missing

from airflow_rds_export.testing.airflow_runs import prepare_airflow_home

pytestmark = [pytest.mark.e2e, pytest.mark.production]

KILL_DAG_ID = "rds_kill"
WATCH_DAG_ID = "rds_watch"
#: The kill DAG's waiter_interval: a kill must reach AWS within one of these. (Airflow's
#: triggerer took ~10 s here to stop a trigger after the REST call, on_kill ~1 s more.)
KILL_POLL_SECONDS = 20
#: The fleet's poll interval (RDS_EXPORT_POLL_SECONDS).
FLEET_POLL_SECONDS = 5
WATCH_POLL_SECONDS = 10
WATCH_WAITS = 16
TRIGGERER_CAPACITY = 10
FLEET_SIZE = 20
#: Export durations 30-60 s, spread evenly and shuffled (deterministic).
FLEET_DURATIONS = [30.0 + (i * 7) % 31 for i in range(FLEET_SIZE)]

KILL_DAG = '''
"""Written by tests/test_e2e_production.py: one deferred start-and-wait."""
import pendulum
from airflow.sdk import DAG

from airflow_rds_export.operators import RdsStartExportTaskOperator

with DAG(
    "rds_kill",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"export_id": "", "source_arn": ""},
):
    RdsStartExportTaskOperator(
        task_id="start_and_wait",
        export_task_identifier="{{ params.export_id }}",
        source_arn="{{ params.source_arn }}",
        s3_bucket_name=%(bucket)r,
        s3_prefix="kill",
        iam_role_arn=%(role)r,
        kms_key_id=%(key)r,
        deferrable=True,
        wait_for_completion=True,
        waiter_interval=%(poll)d,
        waiter_max_attempts=1000,
    )
'''

WATCH_DAG = '''
"""Written by tests/test_e2e_production.py: snapshot waits started in the triggerer."""
import pendulum
from airflow.sdk import DAG

from airflow_rds_export.sensors import RdsSnapshotReadySensor

with DAG(
    "rds_watch",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
):
    for index in range(%(waits)d):
        RdsSnapshotReadySensor(
            task_id=f"wait_{index}",
            db_snapshot_identifier=f"watch-{index}",
            deferrable=True,
            start_from_trigger=True,
            end_from_trigger=True,
            poke_interval=%(poll)d,
            timeout=900,
        )
'''


@dataclass
class Prod:
    deployment: ProductionDeployment
    control: Any
    prereq: dict[str, str]
    fleet: FleetWorld


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    missing = services_missing()
    if missing:
        # In CI (CI=true) scripts/services.sh must have installed them: a skip would hide it.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(missing)
    from airflow_rds_export.testing import EmulatorServer, airflow_connection_env

    home = prepare_airflow_home(tmp_path_factory.mktemp("production") / "home")
    logs = home.path / "process-logs"
    started = time.monotonic()
    with (
        EmulatorServer(region_name="us-east-1") as server,
        PostgresServer(logs) as postgres,
        RedisServer(logs) as redis,
    ):
        control = server.control
        prereq = control.seed_export_prerequisites(bucket="rds-exports")
        sources = [f"fleet{i:02d}" for i in range(FLEET_SIZE)]
        fleet = seed_fleet(control, prereq, sources, FLEET_DURATIONS)
        dags = home.dags_folder
        (dags / f"{KILL_DAG_ID}.py").write_text(
            KILL_DAG
            % {
                "bucket": prereq["bucket"],
                "role": prereq["iam_role_arn"],
                "key": prereq["kms_key_id"],
                "poll": KILL_POLL_SECONDS,
            }
        )
        (dags / f"{WATCH_DAG_ID}.py").write_text(
            WATCH_DAG % {"waits": WATCH_WAITS, "poll": WATCH_POLL_SECONDS}
        )
        (dags / f"{FLEET_DAG_ID}.py").write_text(fleet_dag_source(sources))
        deployment = ProductionDeployment(
            home.path,
            home.env(),
            {
                **airflow_connection_env(server.endpoint_url),
                **fleet.variables,
                "RDS_EXPORT_POLL_SECONDS": str(FLEET_POLL_SECONDS),
            },
            postgres=postgres,
            redis=redis,
            triggerer_capacity=TRIGGERER_CAPACITY,
        )
        try:
            print(f"metadata DB migrated in {deployment.migrate():.1f} s")
            deployment.start_all()
            deployment.wait_until(
                "every component to report healthy",
                lambda: deployment.healthy(
                    "metadatabase", "scheduler", "triggerer", "dag_processor"
                ),
                timeout=240,
            )
            for dag_id in (KILL_DAG_ID, WATCH_DAG_ID, FLEET_DAG_ID):
                deployment.wait_for_dag(dag_id, timeout=180)
            print(f"production deployment ready in {time.monotonic() - started:.1f} s")
            yield Prod(deployment, control, prereq, fleet)
        except BaseException:
            print(deployment.diagnostics())
            raise
        finally:
            deployment.stop_all()
            print(f"production deployment up for {time.monotonic() - started:.1f} s in total")


# --- helpers ------------------------------------------------------------------------------


def _export(control: Any, identifier: str) -> dict[str, Any] | None:
    return next(
        (t for t in control.export_tasks() if t["ExportTaskIdentifier"] == identifier), None
    )


def _ti_path(run_id: str, task_id: str = "start_and_wait") -> str:
    return f"/api/v2/dags/{KILL_DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}"


def _start_deferred_export(prod: Prod, name: str, **pacing: Any) -> tuple[str, str]:
    """Trigger the kill DAG for a new export ``name``; return ``(run_id, export id)`` once
    the task is deferred and the export IN_PROGRESS."""
    dep, control = prod.deployment, prod.control
    control.create_db_instance(name)
    snapshot = control.create_db_snapshot(f"{name}-snap", db_instance_identifier=name)
    control.pace_export(name, starting_seconds=3, in_progress_seconds=3600, **pacing)
    run_id = f"kill-{name}"
    dep.request(
        "POST",
        f"/api/v2/dags/{KILL_DAG_ID}/dagRuns",
        {
            "dag_run_id": run_id,
            "logical_date": None,
            "conf": {"export_id": name, "source_arn": snapshot["DBSnapshotArn"]},
        },
    )

    def deferred_and_running() -> bool:
        ti = dep.request("GET", _ti_path(run_id))
        export = _export(control, name)
        if ti["state"] in ("failed", "success", "up_for_retry"):
            raise AssertionError(f"{run_id}: task {ti['state']} before the kill")
        running = bool(export) and export["Status"] == "IN_PROGRESS"
        # The trigger must run in a triggerer: only then is there one to stop (on_kill).
        started = "start_and_wait/-1/1 (ID" in _trigger_logs(prod, run_id)
        return ti["state"] == "deferred" and running and started

    dep.wait_until(f"{run_id} to defer with its export running", deferred_and_running, 180)
    return run_id, name


def _wait_canceled(prod: Prod, export_id: str, since: float, timeout: float) -> float:
    """Seconds from ``since`` until the export is CANCELING (or CANCELED)."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        export = _export(prod.control, export_id)
        if export and export["Status"] in ("CANCELING", "CANCELED"):
            return time.monotonic() - since
        time.sleep(0.25)
    export = _export(prod.control, export_id)
    raise AssertionError(
        f"export {export_id} still {export and export['Status']} after {timeout} s"
    )


def _trigger_logs(prod: Prod, run_id: str, dag_id: str = KILL_DAG_ID) -> str:
    files = prod.deployment.task_log_files(dag_id, run_id, "start_and_wait")
    return "\n".join(
        f"----- {p.name}\n{p.read_text(errors='replace')}" for p in files if ".trigger." in p.name
    )


def _kill_times(text: str) -> str:
    """When the triggerer stopped the trigger and when on_kill's cancel was accepted."""
    stamps = {}
    for line in text.splitlines():
        for key, needle in (("on_kill", "invoking on_kill"), ("canceled", "Canceled export task")):
            if needle in line and key not in stamps:
                match = re.search(r'"timestamp":"[^"]*T([0-9:.]+)Z"', line)
                stamps[key] = match.group(1) if match else "?"
    return f"triggerer invoked on_kill at {stamps.get('on_kill')}, cancel accepted at " + str(
        stamps.get("canceled")
    )


def _wait_for_log(prod: Prod, run_id: str, needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _trigger_logs(prod, run_id)
        if needle in text:
            return text
        time.sleep(1)
    raise AssertionError(f"{needle!r} not in the trigger logs of {run_id}:\n{text[-4000:]}")


# --- 1. a user kills a deferred start-and-wait --------------------------------------------


def test_marking_a_deferred_start_failed_cancels_its_export(
    prod: Prod, report: Callable[[str], None]
) -> None:
    run_id, export_id = _start_deferred_export(prod, "kill-failed")
    since = time.monotonic()
    prod.deployment.request("PATCH", _ti_path(run_id), {"new_state": "failed"})
    elapsed = _wait_canceled(prod, export_id, since, timeout=3 * KILL_POLL_SECONDS)
    text = _wait_for_log(prod, run_id, "Canceled export task kill-failed")
    report(
        f"marked failed -> export {export_id} CANCELING after {elapsed:.1f} s; {_kill_times(text)}"
    )
    assert elapsed <= KILL_POLL_SECONDS, elapsed
    assert (
        f"Task {KILL_DAG_ID}.start_and_wait (run {run_id}, try 1) stopped waiting for export "
        f"task {export_id} by a user's action (its state is now failed): canceling the export "
        "it started or adopted"
    ) in text, text[-3000:]
    assert f"on behalf of {KILL_DAG_ID}.start_and_wait (run {run_id}, try 1)" in text
    assert prod.control.calls().get("CancelExportTask", 0) >= 1


def test_clearing_a_deferred_start_hands_its_export_over_to_the_new_try(
    prod: Prod, report: Callable[[str], None]
) -> None:
    """A clear runs the task again at once, while the triggerer stops the old trigger (~10 s
    here). The old trigger's on_kill cancels nothing, whatever the new try has done by then:
    the new try adopts the export and watches it. (Canceling here raced the new try: in one
    CI run it adopted the export, then waited on an export canceled under it.)"""
    dep = prod.deployment
    run_id, export_id = _start_deferred_export(prod, "kill-cleared")
    calls_before = prod.control.calls()
    dep.request(
        "POST",
        f"/api/v2/dags/{KILL_DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "only_failed": False,
            "dag_run_id": run_id,
            "task_ids": ["start_and_wait"],
        },
    )
    text = _wait_for_log(prod, run_id, "invoking on_kill", timeout=60)
    text = _wait_for_log(prod, run_id, "trigger completed", timeout=60)
    assert f"Canceled export task {export_id}" not in text, text[-3000:]
    handed_over = re.search(
        rf"Trigger of {KILL_DAG_ID}\.start_and_wait \(run {run_id}, try 1\) stopped "
        r"(because the task was cleared \(its state is now (\w+)\)|while the task is still "
        r"deferred)",
        text,
    )
    assert handed_over, text[-3000:]
    seen_state = handed_over.group(2) or "deferred"

    def second_try_deferred() -> bool:
        ti = dep.request("GET", _ti_path(run_id))
        # Its trigger running in a triggerer: a kill before that finds no trigger to stop
        # (Airflow deletes the trigger row; nothing calls on_kill). See the docs.
        started = "start_and_wait/-1/2 (ID" in _trigger_logs(prod, run_id)
        return ti["try_number"] == 2 and ti["state"] == "deferred" and started

    dep.wait_until("the cleared task's new try to defer", second_try_deferred, 120)
    time.sleep(3)  # a cancel on its way would show by now (the kill tests: ~1 s)
    export = _export(prod.control, export_id)
    assert export and export["Status"] == "IN_PROGRESS", export
    assert _export(prod.control, f"{export_id}-r2") is None
    calls = prod.control.calls()
    assert calls.get("CancelExportTask", 0) == calls_before.get("CancelExportTask", 0)
    starts = calls.get("StartExportTask", 0) - calls_before.get("StartExportTask", 0)
    report(
        f"cleared -> on_kill saw state {seen_state} and handed {export_id} over; the new try "
        f"adopted it ({starts} StartExportTask call(s) since the clear, refused or adopting)"
    )
    # The user is done with it: marking the new try failed cancels what it waits for.
    since = time.monotonic()
    dep.request("PATCH", _ti_path(run_id), {"new_state": "failed"})
    elapsed = _wait_canceled(prod, export_id, since, timeout=3 * KILL_POLL_SECONDS)
    report(f"new try marked failed -> export {export_id} CANCELING after {elapsed:.1f} s")
    assert elapsed <= KILL_POLL_SECONDS, elapsed


def test_no_killed_export_is_left_running(prod: Prod) -> None:
    """After the kills, no export of the kill DAG runs unwatched and no task waits."""
    dep = prod.deployment

    def settled() -> bool:
        running = [
            t["ExportTaskIdentifier"]
            for t in prod.control.export_tasks()
            if str(t["ExportTaskIdentifier"]).startswith("kill-")
            and t["Status"] in ("STARTING", "IN_PROGRESS")
        ]
        active = dep.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND state IN "
            "('running', 'deferred', 'queued', 'scheduled', 'up_for_retry', "
            "'up_for_reschedule')",
            KILL_DAG_ID,
        )
        return not running and not active

    dep.wait_until("the kill DAG's exports to be canceled", settled, 120, interval=2)


# --- 2. a trigger moved to the other triggerer cancels nothing ----------------------------


def test_trigger_moved_from_a_live_triggerer_cancels_nothing(
    prod: Prod, report: Callable[[str], None]
) -> None:
    """A live triggerer that misses its heartbeats loses its triggers to the other one;
    Airflow 3.3.2 then stops them there through the user-action path and calls on_kill().
    The missed heartbeats are made in the metadata DB (the holder's ``latest_heartbeat``
    kept 2 minutes old until the other triggerer takes the trigger): freezing the process
    instead (SIGSTOP) also freezes its open transaction, whose row locks keep the other
    triggerer (``FOR UPDATE SKIP LOCKED``) from ever taking the trigger."""
    dep = prod.deployment
    run_id, export_id = _start_deferred_export(prod, "kill-moved")
    trigger = dep.query(
        "SELECT t.id, t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
        "WHERE ti.dag_id = ? AND ti.run_id = ?",
        KILL_DAG_ID,
        run_id,
    )[0]
    holder = trigger["triggerer_id"]

    def moved() -> bool:
        dep.execute(
            "UPDATE job SET latest_heartbeat = now() - interval '120 seconds' WHERE id = ?",
            holder,
        )
        rows = dep.query("SELECT triggerer_id FROM trigger WHERE id = ?", trigger["id"])
        return bool(rows) and rows[0]["triggerer_id"] not in (None, holder)

    dep.wait_until("the other triggerer to take the trigger over", moved, 120, interval=0.5)
    report(f"trigger of {run_id} moved from triggerer job {holder} at {time.strftime('%H:%M:%S')}")
    text = _wait_for_log(prod, run_id, "moved to another triggerer", timeout=60)
    assert "Trigger cancelled by user action, invoking on_kill" in text, text[-3000:]
    time.sleep(KILL_POLL_SECONDS)
    export = _export(prod.control, export_id)
    assert export and export["Status"] == "IN_PROGRESS", export
    assert "Canceled export task kill-moved" not in _trigger_logs(prod, run_id)
    ti = dep.request("GET", _ti_path(run_id))
    assert ti["state"] == "deferred", ti
    # The new triggerer watches it: the user kills it, and now it is canceled.
    since = time.monotonic()
    dep.request("PATCH", _ti_path(run_id), {"new_state": "failed"})
    elapsed = _wait_canceled(prod, export_id, since, timeout=3 * KILL_POLL_SECONDS)
    report(f"moved trigger's task marked failed -> {export_id} CANCELING after {elapsed:.1f} s")


# --- 3. shared polling on two triggerers --------------------------------------------------


def test_each_triggerer_polls_once_per_cycle(prod: Prod, report: Callable[[str], None]) -> None:
    dep, control = prod.deployment, prod.control
    control.create_db_instance("watch")
    for index in range(WATCH_WAITS):
        control.create_db_snapshot(
            f"watch-{index}", db_instance_identifier="watch", ready_after_seconds=150
        )
    run_id = "watch-1"
    dep.request(
        "POST",
        f"/api/v2/dags/{WATCH_DAG_ID}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": {}},
    )

    def split() -> dict[Any, int] | None:
        rows = dep.query(
            "SELECT t.triggerer_id, count(*) AS n FROM trigger t JOIN task_instance ti "
            "ON ti.trigger_id = t.id WHERE ti.dag_id = ? AND ti.run_id = ? "
            "GROUP BY t.triggerer_id",
            WATCH_DAG_ID,
            run_id,
        )
        by = {r["triggerer_id"]: int(r["n"]) for r in rows}
        running = None not in by and sum(by.values()) == WATCH_WAITS
        return by if running else None

    split_by = dep.wait_until("every wait to run in a triggerer", split, 120)
    time.sleep(WATCH_POLL_SECONDS * 1.5)  # every trigger past its first check
    cycles = 4
    before = control.calls().get("DescribeDBSnapshots", 0)
    time.sleep(cycles * WATCH_POLL_SECONDS)
    calls = control.calls().get("DescribeDBSnapshots", 0) - before
    after = split()
    per_cycle = calls / cycles
    report(
        f"shared polling: {WATCH_WAITS} snapshot waits split {split_by} across "
        f"{len(split_by)} triggerers: {calls} DescribeDBSnapshots in {cycles} cycles of "
        f"{WATCH_POLL_SECONDS} s = {per_cycle:.2f} per cycle (per-trigger polling: "
        f"{WATCH_WAITS} per cycle)"
    )
    assert after == split_by, (split_by, after)
    assert len(split_by) == 2, split_by
    # One call per triggerer per cycle; a cycle boundary may fall inside the window.
    assert len(split_by) * (cycles - 1) <= calls <= len(split_by) * (cycles + 1), calls
    run = dep.wait_for_run(WATCH_DAG_ID, run_id, 400)
    assert run["state"] == "success", run


# --- 4. the chaos run ---------------------------------------------------------------------


TRACEBACK = "Traceback (most recent call last)"
#: Tracebacks Airflow itself logs while PostgreSQL restarts (lost / refused connections).
DB_OUTAGE = re.compile(
    r"OperationalError|server closed the connection|Connection refused|"
    r"terminating connection due to administrator command|the database system is "
    r"(shutting down|starting up)|ConnectionDoesNotExistError|CannotConnectNowError|"
    r"connection is closed|ConnectionRefusedError|AdminShutdown"
)


_EVENT_START = re.compile(r"^(\d{4}-\d\d-\d\dT|=====|\{\"timestamp\")", re.M)


def _tracebacks(paths: list[Path]) -> dict[str, list[str]]:
    """Logged tracebacks in each log (one per log event, chained ones together), minus
    those of the PostgreSQL outage (lost or refused DB connections)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        text = path.read_text(errors="replace")
        starts = [m.start() for m in _EVENT_START.finditer(text)] + [len(text)]
        events = [text[a:b] for a, b in zip([0, *starts], starts, strict=False)]
        found[path.name] = [
            event[:2000] for event in events if TRACEBACK in event and not DB_OUTAGE.search(event)
        ]
    return found


def test_fleet_chaos_run(prod: Prod, report: Callable[[str], None]) -> None:
    dep, control, world = prod.deployment, prod.control, prod.fleet
    control.reset_calls()
    running = [t for t in control.export_tasks() if t["Status"] in ("STARTING", "IN_PROGRESS")]
    assert not running, f"exports left running by earlier tests take quota slots: {running}"
    run_id = "fleet-chaos"
    chaos = Chaos(dep, control, run_id)
    dep.supervised = True
    started = time.monotonic()
    dep.request(
        "POST",
        f"/api/v2/dags/{FLEET_DAG_ID}/dagRuns",
        {"dag_run_id": run_id, "logical_date": world.logical_date, "conf": {}},
    )
    try:
        dep.wait_for_run(FLEET_DAG_ID, run_id, 1500, on_poll=chaos.step)
    finally:
        dep.supervised = False
    seconds = time.monotonic() - started
    ledger = read_ledger(dep, control, world, run_id)
    ledger.kills = chaos.events
    ledger.component_restarts = list(dep.restarts)
    logs = sorted(dep.logs_dir.glob("*.log"))
    logs += sorted((dep.home / "logs" / f"dag_id={FLEET_DAG_ID}").rglob("attempt=*"))
    ledger.tracebacks = _tracebacks(logs)
    report(ledger.render())
    report(f"chaos run wall time {seconds:.0f} s; chaos errors: {chaos.errors or 'none'}")

    assert not chaos.errors, chaos.errors
    assert chaos.done, f"chaos stopped at {chaos.stage}: {chaos.events}"
    assert ledger.run_state == "success", ledger.render()
    assert ledger.started == FLEET_SIZE, ledger.render()
    assert not ledger.lost and not ledger.doubled and not ledger.unwatched, ledger.render()
    for task_id in ("wait_for_snapshot", "start_and_wait"):
        assert ledger.task_states(task_id) == {"success": FLEET_SIZE}, ledger.render()
    # The start task on the killed worker was retried, and the retry adopted its export.
    killed = chaos.killed_worker_task
    assert killed is not None
    assert ledger.retried("start_and_wait").get(killed, 1) >= 2, ledger.render()
    # The killed try's StartExportTask was carried out after the kill (adopted by the retry)
    # or refused (the retry started it): either way one export, no double (ledger above).
    folder = dep.home / "logs" / f"dag_id={FLEET_DAG_ID}" / f"run_id={run_id}"
    tries = sorted((folder / "task_id=start_and_wait" / f"map_index={killed}").glob("attempt=*"))
    retry_log = "".join(
        p.read_text(errors="replace") for p in tries if p.name.startswith("attempt=2.log")
    )
    adopted = "adopting it as this run's export instead of starting a second one" in retry_log
    started_anew = f"Started export {world.export_id(world.sources[killed])}" in retry_log
    report(f"killed start task's retry: {'adopted its export' if adopted else 'started it'}")
    assert adopted or started_anew, [p.name for p in tries]
    assert not any(ledger.tracebacks.values()), {k: v for k, v in ledger.tracebacks.items() if v}
