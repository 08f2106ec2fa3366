"""Benchmarks 2 and 3: AWS calls per export, and worker occupancy, through real Airflow runs.

Every variant is one DAG run through ``airflow dags test`` (the shared harness,
:mod:`airflow_rds_export.testing.airflow_runs`), against the emulator server, with the same
poll interval:

* ``official_sensors``: RdsSnapshotExistenceSensor (reschedule) >> RdsStartExportTaskOperator
  (wait_for_completion=False) >> RdsExportTaskExistenceSensor (reschedule);
* ``official_wait``: RdsSnapshotExistenceSensor (reschedule) >> RdsStartExportTaskOperator
  (wait_for_completion=True: it polls while holding the worker);
* ``ours_reschedule``: RdsSnapshotReadySensor >> RdsStartExportTaskOperator
  (wait_for_completion=False) >> RdsExportTaskStateSensor, sensors in reschedule mode;
* ``ours_deferrable``: the same, sensors ``deferrable=True``;
* ``ours_from_trigger``: the same, sensors ``deferrable=True, start_from_trigger=True,
  end_from_trigger=True`` (the waits never run on a worker).

2. Calls: the snapshot is ``creating`` for 2 polls, the export ``STARTING`` for 2 and
   ``IN_PROGRESS`` for 3 polls (COMPLETE on the 6th describe). Calls are counted at the
   emulator (``control.calls()``) from just before the run to its end.
3. Occupancy: an export paced by *time*: STARTING 10 s + IN_PROGRESS 20 s = a 30-second
   export, polled every 3 s. Worker-seconds per task = the sum of its stints on the worker
   (a try, a reschedule-mode poke, the part before a deferral and the resumption after
   it), read from the run's log timestamps, minus the time ``dags test`` spends running a
   deferred trigger inline (in a deployment, the triggerer's time). See
   :func:`_stints_from_log`; why not only the DB: :func:`_worker_seconds`. Projected to a
   30-minute export: a wait that holds the worker scales with the duration (x60); a
   reschedule-mode wait with the number of pokes (x60 at the same interval); the deferrable
   stints (start, defer, resume) do not depend on the duration (x1).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import machine, save

from airflow_rds_export.testing.airflow_runs import (
    AirflowHarness,
    latest_run_id,
    parse_task_marker,
    prepare_airflow_home,
)

BUCKET = "rds-exports"
PREFIX = "nightly"

HEADER = """
from datetime import datetime
from airflow.sdk import DAG
"""

SNAPSHOT_OFFICIAL = """
    snap = RdsSnapshotExistenceSensor(
        task_id="wait_for_snapshot", db_type="instance", db_snapshot_identifier={snap!r},
        poke_interval={poll}, mode="reschedule",
    )
"""
SNAPSHOT_OURS = """
    snap = RdsSnapshotReadySensor(
        task_id="wait_for_snapshot", db_snapshot_identifier={snap!r}, db_type="instance",
        poke_interval={poll}, {wait_mode}
    )
"""
START = """
    start = RdsStartExportTaskOperator(
        task_id="start_export", export_task_identifier={export!r}, source_arn={arn!r},
        s3_bucket_name={bucket!r}, s3_prefix={prefix!r}, iam_role_arn={role!r},
        kms_key_id={kms!r}, wait_for_completion={wait_for_completion},
        waiter_interval={poll}, waiter_max_attempts=1000,
    )
"""
EXPORT_OFFICIAL = """
    wait = RdsExportTaskExistenceSensor(
        task_id="wait_for_export", export_task_identifier={export!r},
        target_statuses=["complete"], poke_interval={poll}, mode="reschedule",
    )
"""
EXPORT_OURS = """
    wait = RdsExportTaskStateSensor(
        task_id="wait_for_export", export_task_identifier={export!r}, poke_interval={poll},
        {wait_mode}
    )
"""

VARIANTS: dict[str, dict[str, Any]] = {
    "official_sensors": {"provider": "official", "wait_for_completion": False, "mode": None},
    "official_wait": {"provider": "official", "wait_for_completion": True, "mode": None},
    "ours_reschedule": {
        "provider": "ours",
        "wait_for_completion": False,
        "mode": 'mode="reschedule",',
    },
    "ours_deferrable": {
        "provider": "ours",
        "wait_for_completion": False,
        "mode": "deferrable=True,",
    },
    "ours_from_trigger": {
        "provider": "ours",
        "wait_for_completion": False,
        "mode": "deferrable=True, start_from_trigger=True, end_from_trigger=True,",
    },
}


def dag_source(variant: str, dag_id: str, poll: int, ids: dict[str, str]) -> str:
    """The DAG file for one variant."""
    spec = VARIANTS[variant]
    fields = {
        **ids,
        "poll": poll,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "wait_for_completion": spec["wait_for_completion"],
        "wait_mode": spec["mode"],
    }
    if spec["provider"] == "official":
        imports = (
            "from airflow.providers.amazon.aws.operators.rds import RdsStartExportTaskOperator\n"
            "from airflow.providers.amazon.aws.sensors.rds import (\n"
            "    RdsExportTaskExistenceSensor, RdsSnapshotExistenceSensor)\n"
        )
        body = SNAPSHOT_OFFICIAL + START
        if not spec["wait_for_completion"]:
            body += EXPORT_OFFICIAL
    else:
        imports = (
            "from airflow_rds_export.operators import RdsStartExportTaskOperator\n"
            "from airflow_rds_export.sensors import RdsExportTaskStateSensor, "
            "RdsSnapshotReadySensor\n"
        )
        body = SNAPSHOT_OURS + START.replace("waiter_max_attempts=1000,", "") + EXPORT_OURS
    chain = "snap >> start" + (" >> wait" if "wait = " in body else "")
    return (
        HEADER
        + imports
        + f"\nwith DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1)):\n"
        + body.format(**fields)
        + f"    {chain}\n"
    )


def _ts(value: Any) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace(" ", "T")).timestamp()


def _worker_seconds(db: Path, dag_id: str) -> dict[str, Any]:
    """Per task of the newest run of ``dag_id``, from the metadata DB: final state, number
    of ``task_reschedule`` rows, and ``end_date - start_date`` of the task instance.

    Kept as a cross-check only: Airflow 3.3 keeps just the *last* stint's start in
    ``task_instance`` (after reschedules and deferrals), writes ``task_reschedule`` rows
    with ``end_date`` <= ``start_date`` (no poke duration), and under ``dags test`` a
    deferral's trigger runs inside the task's stint. The worker-seconds reported come from
    :func:`_stints_from_log`.
    """
    run_id = latest_run_id(db, dag_id)
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        out: dict[str, Any] = {}
        for ti in con.execute(
            "SELECT id, task_id, start_date, end_date, state FROM task_instance "
            "WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchall():
            stints = []
            last_end = None
            for r in con.execute(
                "SELECT start_date, end_date FROM task_reschedule WHERE ti_id = ? ORDER BY id",
                (ti["id"],),
            ):
                stints.append((_ts(r["start_date"]), _ts(r["end_date"])))
                last_end = _ts(r["end_date"])
            start, end = _ts(ti["start_date"]), _ts(ti["end_date"])
            if start is not None and end is not None:
                stints.append((max(start, last_end or start), end))
            out[ti["task_id"]] = {
                "state": ti["state"],
                "stints": len(stints),
                "db_seconds": sum(e - s for s, e in stints if s is not None and e is not None),
            }
        return out
    finally:
        con.close()


class World:
    """The emulator server, the Airflow harness and the export prerequisites."""

    def __init__(self, tmp: Path) -> None:
        from airflow_rds_export.testing import EmulatorServer, airflow_connection_env

        self.server = EmulatorServer().start()
        self.control = self.server.control
        self.home = prepare_airflow_home(tmp / "home")
        self.harness = AirflowHarness(self.home)
        self.env = airflow_connection_env(self.server.endpoint_url)
        self.counter = 0

    def close(self) -> None:
        self.harness.close()
        self.server.stop()

    def run(
        self,
        variant: str,
        poll: int,
        *,
        pacing: dict[str, Any],
        snapshot_polls: int,
        timeout: float = 600,
    ) -> dict[str, Any]:
        self.counter += 1
        self.control.reset()
        prereq = self.control.seed_export_prerequisites(bucket=BUCKET)
        self.control.create_db_instance("orders")
        n = self.counter
        snap = self.control.create_db_snapshot(
            f"orders-snap-{n}", db_instance_identifier="orders", ready_after_polls=snapshot_polls
        )
        export = f"orders-export-{n}"
        self.control.pace_export(export, **pacing)
        dag_id = f"bench_{variant}_{n}"
        source = dag_source(
            variant,
            dag_id,
            poll,
            {
                "snap": snap["DBSnapshotIdentifier"],
                "arn": snap["DBSnapshotArn"],
                "export": export,
                "role": prereq["iam_role_arn"],
                "kms": prereq["kms_key_id"],
            },
        )
        self.control.reset_calls()
        started = time.monotonic()
        result = self.harness.run_dag(source, dag_id, env=self.env, timeout=timeout)
        wall = time.monotonic() - started
        calls = self.control.calls()
        tasks = _worker_seconds(self.home.db_path, dag_id)
        stints = _stints_from_log(result.stdout)
        for task_id, info in tasks.items():
            info["log_seconds"] = stints.get(task_id, {}).get("seconds")
            info["log_stints"] = stints.get(task_id, {}).get("stints")
        return {
            "variant": variant,
            "state": result.state,
            "calls": calls,
            "total_calls": sum(calls.values()),
            "wall_seconds": wall,
            "tasks": tasks,
        }


def _stints_from_log(stdout: str) -> dict[str, dict[str, Any]]:
    """Worker-seconds per task from ``dags test`` output.

    Each ``[DAG TEST] starting`` .. ``[DAG TEST] end task`` slice is a task's time on the
    (in-process) worker: a try, or one reschedule-mode poke (reschedule waits happen
    between slices). ``dags test`` runs a deferred task's trigger *inside* the slice
    (``[DAG TEST] running trigger in line`` .. ``[DAG TEST] Trigger completed``); in a
    deployment that time is spent in the triggerer, not on a worker, so it is subtracted.
    Times are the log lines' own timestamps.
    """
    import re

    line_re = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT[\d:.]+)Z? .*?\[DAG TEST\] (?P<what>.*)$")
    out: dict[str, dict[str, Any]] = {}
    current: str | None = None
    opened = trigger_at = 0.0
    deferred = 0.0
    for line in stdout.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        ts = datetime.fromisoformat(m["ts"]).timestamp()
        what = m["what"]
        marker = parse_task_marker(line)
        if marker is not None and marker.starts:
            current, opened, deferred = marker.task_id, ts, 0.0
        elif marker is not None and current == marker.task_id:
            entry = out.setdefault(marker.task_id, {"seconds": 0.0, "stints": 0, "deferred": 0.0})
            entry["seconds"] += ts - opened - deferred
            entry["deferred"] += deferred
            entry["stints"] += 1
            current = None
        elif what.startswith("running trigger in line"):
            trigger_at = ts
        elif what.startswith("Trigger completed") and trigger_at:
            deferred += ts - trigger_at
            trigger_at = 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["calls", "occupancy"], default=None)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as tmp:
        world = World(Path(tmp))
        try:
            if args.only in (None, "calls"):
                calls = {}
                for variant in args.variants:
                    r = world.run(
                        variant,
                        1,
                        snapshot_polls=2,
                        pacing={"starting_polls": 2, "in_progress_polls": 3},
                    )
                    calls[variant] = r
                    print(
                        f"calls {variant}: state={r['state']} total={r['total_calls']} "
                        f"{r['calls']} ({r['wall_seconds']:.0f} s)",
                        flush=True,
                    )
                save(
                    "aws_calls",
                    {
                        "runs": calls,
                        "poll_seconds": 1,
                        "machine": machine(),
                        "snapshot_polls": 2,
                        "export_polls": 6,
                    },
                )
            if args.only in (None, "occupancy"):
                occ = {}
                for variant in args.variants:
                    r = world.run(
                        variant,
                        3,
                        snapshot_polls=0,
                        pacing={"starting_seconds": 10, "in_progress_seconds": 20},
                    )
                    occ[variant] = r
                    print(f"occupancy {variant}: state={r['state']} tasks={r['tasks']}", flush=True)
                save(
                    "occupancy",
                    {"runs": occ, "poll_seconds": 3, "export_seconds": 30, "machine": machine()},
                )
        finally:
            world.close()


if __name__ == "__main__":
    main()
