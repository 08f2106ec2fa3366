"""Fleet makespan under the 5-exports quota, and shared polling on two triggerers.

On the production-shaped deployment of the e2e tests (``tests/e2e/production.py``:
PostgreSQL, CeleryExecutor with two workers, two triggerers, scheduler, dag-processor,
api-server) against the emulator server:

1. shared polling: ``WAITS`` snapshot waits started in the triggerers (``start_from_trigger``),
   split across both (``--capacity``); DescribeDBSnapshots counted at the emulator over
   ``CYCLES`` poll cycles in steady state;
2. makespan: ``example_dags/fleet_rds_export.py`` over ``SOURCES`` instances, every export
   paced to ``EXPORT_SECONDS`` (emulator wall clock, STARTING a quarter of it), the
   emulator's 5-concurrent-exports limit on. Ideal = ``ceil(SOURCES / 5) x EXPORT_SECONDS``.
   Measured from the emulator's export start / end times and the DAG run's start / end; the
   overhead is split into the lead-in (run start to first export), the slot hand-offs
   (an export ends -> the next one starts in its slot) and the tail (last export end to run
   end).

Writes ``bench/results/fleet_makespan.json``; ``python bench/report.py --only fleet_makespan``
updates that section of ``bench/RESULTS.md``. About 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import REPO, machine, save

sys.path.insert(0, str(REPO / "tests"))

from e2e.fleet import FLEET_DAG_ID, fleet_dag_source, read_ledger, seed_fleet
from e2e.production import ProductionDeployment
from e2e.services import PostgresServer, RedisServer, services_missing

from airflow_rds_export.testing import EmulatorServer, airflow_connection_env
from airflow_rds_export.testing.airflow_runs import prepare_airflow_home

SOURCES = 20
LIMIT = 5
EXPORT_SECONDS = 45.0
POLL_SECONDS = 5
WAITS = 16
WATCH_POLL_SECONDS = 10
CYCLES = 4
CAPACITY = 10

WATCH_DAG = """
import pendulum
from airflow.sdk import DAG

from airflow_rds_export.sensors import RdsSnapshotReadySensor

with DAG("rds_watch", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
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
"""


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def shared_polling(dep: ProductionDeployment, control: Any) -> dict[str, Any]:
    control.create_db_instance("watch")
    for index in range(WAITS):
        control.create_db_snapshot(
            f"watch-{index}", db_instance_identifier="watch", ready_after_seconds=150
        )
    dep.request(
        "POST",
        "/api/v2/dags/rds_watch/dagRuns",
        {"dag_run_id": "watch", "logical_date": None, "conf": {}},
    )

    def split() -> dict[int, int] | None:
        rows = dep.query(
            "SELECT t.triggerer_id, count(*) AS n FROM trigger t JOIN task_instance ti "
            "ON ti.trigger_id = t.id WHERE ti.dag_id = 'rds_watch' GROUP BY t.triggerer_id"
        )
        by = {r["triggerer_id"]: int(r["n"]) for r in rows}
        return by if None not in by and sum(by.values()) == WAITS else None

    by = dep.wait_until("every wait to run in a triggerer", split, 180)
    time.sleep(WATCH_POLL_SECONDS * 1.5)
    before = control.calls().get("DescribeDBSnapshots", 0)
    time.sleep(CYCLES * WATCH_POLL_SECONDS)
    calls = control.calls().get("DescribeDBSnapshots", 0) - before
    dep.wait_for_run("rds_watch", "watch", 400)
    return {
        "waits": WAITS,
        "split": {str(k): v for k, v in by.items()},
        "triggerers_with_waits": len(by),
        "cycles": CYCLES,
        "poll_seconds": WATCH_POLL_SECONDS,
        "calls": calls,
        "calls_per_cycle": calls / CYCLES,
        "per_trigger_calls_per_cycle": WAITS,
    }


def makespan(dep: ProductionDeployment, control: Any, world: Any) -> dict[str, Any]:
    control.reset_calls()
    run_id = "fleet-bench"
    dep.request(
        "POST",
        f"/api/v2/dags/{FLEET_DAG_ID}/dagRuns",
        {"dag_run_id": run_id, "logical_date": world.logical_date, "conf": {}},
    )
    run = dep.wait_for_run(FLEET_DAG_ID, run_id, 1500)
    ledger = read_ledger(dep, control, world, run_id)
    exports = [
        t for t in control.export_tasks() if str(t["ExportTaskIdentifier"]).startswith("fleet-")
    ]
    starts = sorted(_ts(t["TaskStartTime"]) for t in exports)
    ends = sorted(_ts(t["TaskEndTime"]) for t in exports)
    rows = dep.query(
        "SELECT start_date, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?",
        FLEET_DAG_ID,
        run_id,
    )
    run_start, run_end = _ts(rows[0]["start_date"]), _ts(rows[0]["end_date"])
    # A slot frees when an export ends; the next export to start takes it.
    handoffs = [starts[i] - ends[i - LIMIT] for i in range(LIMIT, len(starts))]
    durations = [e - s for s, e in zip(starts, ends, strict=True)]
    ideal = math.ceil(SOURCES / LIMIT) * EXPORT_SECONDS
    # How many exports ran at once, sampled each second.
    concurrency = [
        sum(1 for s, e in zip(starts, ends, strict=True) if s <= t < e)
        for t in range(int(starts[0]), int(ends[-1]))
    ]
    return {
        "sources": SOURCES,
        "limit": LIMIT,
        "export_seconds": EXPORT_SECONDS,
        "poll_seconds": POLL_SECONDS,
        "run_state": run["state"],
        "ledger": ledger.render(),
        "exports_started": ledger.started,
        "lost": ledger.lost,
        "doubled": ledger.doubled,
        "ideal_seconds": ideal,
        "run_makespan": run_end - run_start,
        "export_makespan": ends[-1] - starts[0],
        "lead_in": starts[0] - run_start,
        "tail": run_end - ends[-1],
        "handoff_mean": statistics.mean(handoffs),
        "handoff_max": max(handoffs),
        "handoff_min": min(handoffs),
        "handoffs": len(handoffs),
        "export_duration_mean": statistics.mean(durations),
        "mean_concurrency": statistics.mean(concurrency) if concurrency else 0.0,
        "calls": control.calls(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--end-from-trigger",
        action="store_true",
        help="variant: start_and_wait with end_from_trigger=True (no worker resume per export)",
    )
    parser.add_argument("--skip-polling", action="store_true", help="makespan only")
    args = parser.parse_args()
    missing = services_missing()
    if missing:
        raise SystemExit(f"fleet_makespan: {missing}")
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    home = prepare_airflow_home(root / "home")
    logs = home.path / "process-logs"
    with (
        EmulatorServer(region_name="us-east-1") as server,
        PostgresServer(logs) as postgres,
        RedisServer(logs) as redis,
    ):
        control = server.control
        prereq = control.seed_export_prerequisites(bucket="rds-exports")
        sources = [f"fleet{i:02d}" for i in range(SOURCES)]
        world = seed_fleet(control, prereq, sources, [EXPORT_SECONDS] * SOURCES)
        dag_source = fleet_dag_source(sources)
        if args.end_from_trigger:
            marker = "        deferrable=True,\n        max_active_tis_per_dag"
            assert marker in dag_source, "fleet DAG changed shape"
            dag_source = dag_source.replace(
                marker,
                "        deferrable=True,\n        end_from_trigger=True,\n"
                "        max_active_tis_per_dag",
            )
        (home.dags_folder / f"{FLEET_DAG_ID}.py").write_text(dag_source)
        (home.dags_folder / "rds_watch.py").write_text(
            WATCH_DAG % {"waits": WAITS, "poll": WATCH_POLL_SECONDS}
        )
        dep = ProductionDeployment(
            home.path,
            home.env(),
            {
                **airflow_connection_env(server.endpoint_url),
                **world.variables,
                "RDS_EXPORT_POLL_SECONDS": str(POLL_SECONDS),
            },
            postgres=postgres,
            redis=redis,
            triggerer_capacity=CAPACITY,
        )
        try:
            dep.migrate()
            dep.start_all()
            dep.wait_until(
                "healthy",
                lambda: dep.healthy("metadatabase", "scheduler", "triggerer", "dag_processor"),
                240,
            )
            dep.wait_for_dag(FLEET_DAG_ID, 180)
            dep.wait_for_dag("rds_watch", 180)
            polling = None if args.skip_polling else shared_polling(dep, control)
            print(f"shared polling: {polling}", flush=True)
            fleet = makespan(dep, control, world)
        except BaseException:
            print(dep.diagnostics(30))
            raise
        finally:
            dep.stop_all()
    print(fleet["ledger"])
    summary = {k: v for k, v in fleet.items() if k != "ledger"}
    print(summary)
    fleet["variant"] = "end_from_trigger=True" if args.end_from_trigger else "as shipped"
    name = "fleet_makespan_end_from_trigger" if args.end_from_trigger else "fleet_makespan"
    save(name, {"machine": machine(), "polling": polling, "fleet": fleet})


if __name__ == "__main__":
    main()
