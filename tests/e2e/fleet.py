"""The fleet example DAG on a deployment: its DAG file, its seeded world, its ledger.

The DAG file is ``example_dags/fleet_rds_export.py`` with two substitutions only: the
``FLEET`` it lists (``size`` instances instead of four) and ``schedule=None`` (the test
triggers its one run itself, with a logical date it seeded snapshots for; a ``@daily``
schedule would add a run of its own on unpause). Everything else, ``max_active_tis_per_dag=5``,
retries and deferral included, is the example as users copy it.

The ledger is read from the emulator (every export it started, its status and timing, the
StartExportTask calls it received) and from the metadata DB (every mapped task instance and
its tries), so "every export started exactly once, none lost, none doubled, none left
running unwatched" is checked against what AWS and Airflow recorded, not against logs.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "FLEET_DAG_ID",
    "FleetWorld",
    "Ledger",
    "fleet_dag_source",
    "read_ledger",
    "seed_fleet",
]

FLEET_DAG_ID = "fleet_rds_export"
REPO = Path(__file__).resolve().parents[2]
_FLEET_LIST = re.compile(r"^FLEET: tuple\[dict\[str, str\], \.\.\.\] = \(\n.*?^\)\n", re.M | re.S)


def fleet_dag_source(sources: list[str]) -> str:
    """The example fleet DAG listing ``sources`` (DB instances), without a schedule."""
    text = (REPO / "example_dags" / "fleet_rds_export.py").read_text()
    listed = "".join(f'    {{"db_instance_identifier": "{name}"}},\n' for name in sources)
    fleet = f"FLEET: tuple[dict[str, str], ...] = (\n{listed})\n"
    changed, count = _FLEET_LIST.subn(fleet, text)
    if count != 1 or 'schedule="@daily"' not in changed:
        raise AssertionError("example_dags/fleet_rds_export.py changed shape: update this helper")
    return changed.replace('schedule="@daily"', "schedule=None", 1)


@dataclass
class FleetWorld:
    """What :func:`seed_fleet` created."""

    sources: list[str]
    logical_date: str
    durations: dict[str, float]
    variables: dict[str, str]

    @property
    def ds_nodash(self) -> str:
        return self.logical_date[:10].replace("-", "")

    def export_id(self, source: str) -> str:
        return f"fleet-{source}-{self.ds_nodash}"

    def ideal_makespan(self, limit: int = 5) -> float:
        """``ceil(n / limit)`` waves, each as long as its longest export (sorted waves)."""
        durations = sorted(self.durations.values(), reverse=True)
        return sum(durations[i] for i in range(0, len(durations), limit))


def seed_fleet(
    control: Any,
    prereq: dict[str, str],
    sources: list[str],
    durations: list[float],
    *,
    logical_date: str = "2026-11-21T00:00:00+00:00",
    starting_share: float = 0.25,
) -> FleetWorld:
    """Instances with tonight's automated snapshot (available), exports paced by wall
    clock to ``durations`` (STARTING for ``starting_share`` of it, then IN_PROGRESS).
    ``prereq``: what ``control.seed_export_prerequisites()`` returned."""
    night = datetime.fromisoformat(logical_date).astimezone(timezone.utc)
    world = FleetWorld(
        sources=list(sources),
        logical_date=logical_date,
        durations={},
        variables={
            "AIRFLOW_VAR_RDS_EXPORT_TARGET": json.dumps(
                {
                    "s3_bucket_name": prereq["bucket"],
                    "s3_prefix": "fleet",
                    "iam_role_arn": prereq["iam_role_arn"],
                    "kms_key_id": prereq["kms_key_id"],
                }
            )
        },
    )
    for source, seconds in zip(sources, durations, strict=True):
        control.create_db_instance(source)
        control.create_automated_snapshot(source, created_at=night, ready_after_polls=0)
        starting = round(seconds * starting_share, 1)
        control.pace_export(
            world.export_id(source),
            starting_seconds=starting,
            in_progress_seconds=round(seconds - starting, 1),
        )
        world.durations[source] = seconds
    return world


@dataclass
class Ledger:
    """The end state of a fleet run, from the emulator and the metadata DB."""

    run_state: str
    runs: int
    exports: dict[str, dict[str, Any]]
    """Every export the emulator holds whose identifier starts ``fleet-``."""
    start_calls: int
    tasks: dict[str, dict[int, dict[str, Any]]]
    """``task_id -> map_index -> {state, try_number}``."""
    expected: dict[str, str]
    """``source -> export identifier`` the DAG derives."""
    kills: list[str] = field(default_factory=list)
    component_restarts: list[tuple[str, int | None, str]] = field(default_factory=list)
    tracebacks: dict[str, list[str]] = field(default_factory=dict)
    makespan: float = 0.0
    export_makespan: float = 0.0
    ideal: float = 0.0

    def per_source(self) -> dict[str, list[str]]:
        """``source -> identifiers of its exports`` (``fleet-<source>-<date>``, ``-r2`` ...)."""
        found: dict[str, list[str]] = {s: [] for s in self.expected}
        for identifier in self.exports:
            for source, expected in self.expected.items():
                if identifier == expected or identifier.startswith(expected + "-r"):
                    found[source].append(identifier)
        return found

    @property
    def started(self) -> int:
        return len(self.exports)

    @property
    def lost(self) -> list[str]:
        """Sources without a COMPLETE export."""
        return [
            source
            for source, ids in self.per_source().items()
            if not any(self.exports[i]["Status"] == "COMPLETE" for i in ids)
        ]

    @property
    def doubled(self) -> list[str]:
        """Sources with more than one export."""
        return [source for source, ids in self.per_source().items() if len(ids) > 1]

    @property
    def unwatched(self) -> list[str]:
        """Exports still running at the end (nothing waits for them any more)."""
        return [i for i, t in self.exports.items() if t["Status"] not in _TERMINAL]

    def task_states(self, task_id: str) -> Counter[str]:
        return Counter(str(t["state"]) for t in self.tasks.get(task_id, {}).values())

    def retried(self, task_id: str) -> dict[int, int]:
        """``map_index -> try_number`` of the mapped tasks tried more than once."""
        return {
            index: int(t["try_number"])
            for index, t in self.tasks.get(task_id, {}).items()
            if int(t["try_number"] or 0) > 1
        }

    def render(self) -> str:
        lines = [
            f"fleet ledger: run {self.run_state} ({self.runs} run(s))",
            f"  exports started {self.started} for {len(self.expected)} sources; "
            f"StartExportTask calls {self.start_calls} (refusals and adoptions included)",
            f"  lost {len(self.lost)} {self.lost or ''}".rstrip(),
            f"  doubled {len(self.doubled)} {self.doubled or ''}".rstrip(),
            f"  left running unwatched {len(self.unwatched)} {self.unwatched or ''}".rstrip(),
        ]
        for task_id in sorted(self.tasks):
            states = dict(self.task_states(task_id))
            retried = self.retried(task_id)
            lines.append(
                f"  {task_id}: {states}"
                + (f"; retried (map_index: try) {retried}" if retried else "")
            )
        lines.append(f"  kills survived {len(self.kills)}:")
        lines += [f"    - {kill}" for kill in self.kills]
        if self.component_restarts:
            restarts = ", ".join(f"{n} (exit {c}) at {t}" for n, c, t in self.component_restarts)
            lines.append(f"  components restarted by supervision: {restarts}")
        counted = {name: len(found) for name, found in self.tracebacks.items() if found}
        lines.append(f"  unhandled tracebacks: {counted or 'none'}")
        if self.makespan:
            lines.append(
                f"  makespan: run {self.makespan:.0f} s, exports {self.export_makespan:.0f} s; "
                f"ideal (ceil(n/5) waves of the exports' durations) {self.ideal:.0f} s: "
                f"{self.export_makespan / self.ideal:.2f}x (exports), "
                f"{self.makespan / self.ideal:.2f}x (run)"
            )
        return "\n".join(lines)


_TERMINAL = frozenset({"COMPLETE", "FAILED", "CANCELED"})


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return float(value)


def read_ledger(deployment: Any, control: Any, world: FleetWorld, run_id: str) -> Ledger:
    """Read the ledger of the fleet run ``run_id``."""
    exports = {
        t["ExportTaskIdentifier"]: t
        for t in control.export_tasks()
        if str(t["ExportTaskIdentifier"]).startswith("fleet-")
    }
    rows = deployment.query(
        "SELECT task_id, map_index, state, try_number FROM task_instance "
        "WHERE dag_id = ? AND run_id = ?",
        FLEET_DAG_ID,
        run_id,
    )
    tasks: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        tasks.setdefault(row["task_id"], {})[int(row["map_index"])] = row
    runs = deployment.query(
        "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = ?", FLEET_DAG_ID
    )
    this = next(r for r in runs if r["run_id"] == run_id)
    ledger = Ledger(
        run_state=str(this["state"]),
        runs=len(runs),
        exports=exports,
        start_calls=int(control.calls().get("StartExportTask", 0)),
        tasks=tasks,
        expected={s: world.export_id(s) for s in world.sources},
        ideal=world.ideal_makespan(),
    )
    if this["start_date"] and this["end_date"]:
        ledger.makespan = _seconds(this["end_date"]) - _seconds(this["start_date"])
    starts = [_seconds(t["TaskStartTime"]) for t in exports.values() if t.get("TaskStartTime")]
    ends = [_seconds(t["TaskEndTime"]) for t in exports.values() if t.get("TaskEndTime")]
    if starts and ends:
        ledger.export_makespan = max(ends) - min(starts)
    return ledger


def waves(world: FleetWorld, limit: int = 5) -> int:
    return math.ceil(len(world.sources) / limit)


def now() -> str:
    return time.strftime("%H:%M:%S")
