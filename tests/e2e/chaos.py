"""The chaos run's choreography: what is killed or restarted, and when.

:class:`Chaos` is stepped on every poll of the run (``Deployment.wait_for_run(on_poll=)``)
and carries out, in order, each event once its moment has come:

1. ``kill -9`` the triggerer holding the most deferred start tasks (it and every process
   it started) once several are deferred; its restart is held back until every one of
   its triggers runs on the other triggerer;
2. ``kill -9`` the Celery worker (and every descendant) running a start task while that
   task's StartExportTask is in flight (the emulator holds the request 12 s, then carries
   it out, as AWS does with a request whose caller died, unless the quota refuses it
   then); a supervisor starts the worker again at once. The retry adopts the export, or
   starts it if AWS refused the first request: one export either way;
3. restart the scheduler (SIGTERM, start);
4. restart PostgreSQL (fast shutdown, start); components that exit on the lost
   connection are restarted by supervision (``ProductionDeployment.supervised``).

A step never raises: the poll loop would swallow the error, so a failed step is recorded
in :attr:`Chaos.errors` and the test asserts there are none.
"""

from __future__ import annotations

import time
from typing import Any

from e2e.fleet import FLEET_DAG_ID, now

__all__ = ["Chaos"]

START_TASK = "start_and_wait"
HANG_SECONDS = 12.0


class Chaos:
    def __init__(self, deployment: Any, control: Any, run_id: str) -> None:
        self.deployment = deployment
        self.control = control
        self.run_id = run_id
        self.events: list[str] = []
        self.errors: list[str] = []
        self.stage = "kill_triggerer"
        self.since = time.monotonic()
        self.dead_triggerer: tuple[str, int] | None = None
        self.start_calls_before = 0
        self.adopt_expected: int | None = None
        self.killed_worker_task: int | None = None
        self.rearmed = 0
        self.call_seen_at: float | None = None

    @property
    def done(self) -> bool:
        return self.stage == "done"

    def step(self) -> None:
        try:
            getattr(self, f"_{self.stage}")()
        except Exception as exc:  # recorded, asserted by the test
            self.errors.append(f"{now()} {self.stage}: {type(exc).__name__}: {exc}")

    def _advance(self, stage: str, event: str | None = None) -> None:
        if event:
            self.events.append(f"{now()} {event}")
            print(f"chaos: {event}", flush=True)
        self.stage = stage
        self.since = time.monotonic()
        self.call_seen_at = None

    def _start_tasks(self) -> list[dict[str, Any]]:
        return self.deployment.query(
            "SELECT map_index, state, pid, try_number, start_date FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            FLEET_DAG_ID,
            self.run_id,
            START_TASK,
        )

    def _triggers_by_triggerer(self) -> dict[int | None, int]:
        rows = self.deployment.query(
            "SELECT t.triggerer_id, count(*) AS n FROM trigger t JOIN task_instance ti "
            "ON ti.trigger_id = t.id WHERE ti.dag_id = ? AND ti.run_id = ? "
            "GROUP BY t.triggerer_id",
            FLEET_DAG_ID,
            self.run_id,
        )
        return {r["triggerer_id"]: int(r["n"]) for r in rows}

    # 1. kill -9 a triggerer ----------------------------------------------------------

    def _kill_triggerer(self) -> None:
        by_triggerer = self._triggers_by_triggerer()
        held = {k: v for k, v in by_triggerer.items() if k is not None}
        if sum(held.values()) < 3:
            return  # wait until several start tasks are deferred
        jobs = self.deployment.triggerer_jobs()  # name -> job id (freezes one for ~12 s)
        by_triggerer = self._triggers_by_triggerer()
        name = max(jobs, key=lambda n: by_triggerer.get(jobs[n], 0))
        if not by_triggerer.get(jobs[name]):
            return
        killed = self.deployment.kill_tree(name)  # not restarted until its triggers moved
        self.dead_triggerer = (name, jobs[name])
        self._advance(
            "triggerer_moved",
            f"kill -9 {name} ({killed} processes: it and its trigger runner; job {jobs[name]}) "
            "holding "
            f"{by_triggerer[jobs[name]]} of the {sum(v for k, v in by_triggerer.items() if k)} "
            "deferred triggers",
        )

    def _triggerer_moved(self) -> None:
        assert self.dead_triggerer is not None
        name, dead = self.dead_triggerer
        by_triggerer = self._triggers_by_triggerer()
        if by_triggerer.get(dead) or None in by_triggerer:
            if time.monotonic() - self.since > 180:
                raise AssertionError(f"triggers of job {dead} never moved: {by_triggerer}")
            return  # not moved yet
        self.deployment.start(name)
        self._advance(
            "kill_worker",
            f"every trigger of the dead job {dead} moved to the other triggerer "
            f"({by_triggerer}); {name} restarted",
        )

    # 2. kill -9 a worker while a start task runs ------------------------------------

    def _kill_worker(self) -> None:
        tasks = self._start_tasks()
        waiting = [t for t in tasks if t["state"] in (None, "scheduled", "queued")]
        if not waiting:
            raise AssertionError("no start task left to start: the run went too fast")
        self.start_calls_before = int(self.control.calls().get("StartExportTask", 0))
        self.control.hang("StartExportTask", count=1, seconds=HANG_SECONDS)
        self._advance("worker_in_flight")

    def _in_flight(self, task: dict[str, Any]) -> bool:
        """Whether this try's log ends inside StartExportTask (sent, not answered)."""
        path = (
            self.deployment.home
            / "logs"
            / f"dag_id={FLEET_DAG_ID}"
            / f"run_id={self.run_id}"
            / f"task_id={START_TASK}"
            / f"map_index={task['map_index']}"
            / f"attempt={task['try_number']}.log"
        )
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return False
        sent = text.rfind("Starting export fleet-")
        answered = max(text.rfind("Started export fleet-"), text.rfind("already exists"))
        return sent > answered

    def _worker_in_flight(self) -> None:
        calls = int(self.control.calls().get("StartExportTask", 0))
        if calls <= self.start_calls_before:
            if time.monotonic() - self.since > 240:
                raise AssertionError("no StartExportTask arrived while the hang was armed")
            return
        if self.call_seen_at is None:
            self.call_seen_at = time.monotonic()
        running = [t for t in self._start_tasks() if t["state"] == "running" and t["pid"]]
        for task in running:
            if not self._in_flight(task):
                continue
            worker = self.deployment.worker_of_pid(int(task["pid"]))
            if worker is None:
                continue
            killed = self.deployment.kill_tree(worker)
            time.sleep(1)
            self.deployment.start(worker)  # as a supervisor would
            self.killed_worker_task = int(task["map_index"])
            self._advance(
                "restart_scheduler",
                f"kill -9 {worker} ({killed} processes: it and every descendant) while "
                f"{START_TASK}[{task['map_index']}] "
                f"(try {task['try_number']}) waited for its StartExportTask; {worker} restarted",
            )
            return
        if time.monotonic() - self.call_seen_at > HANG_SECONDS + 10:
            self.rearmed += 1
            if self.rearmed > 3:
                raise AssertionError(f"never caught a start task in flight: {running}")
            self._advance("kill_worker")  # arm the hang again for the next start

    # 3. restart the scheduler --------------------------------------------------------

    def _restart_scheduler(self) -> None:
        if time.monotonic() - self.since < 10:
            return
        self.deployment.stop("scheduler")
        self.deployment.start("scheduler")
        self._advance("restart_postgres", "scheduler restarted (SIGTERM, then started again)")

    # 4. restart PostgreSQL -----------------------------------------------------------

    def _restart_postgres(self) -> None:
        if time.monotonic() - self.since < 20:
            return
        started = time.monotonic()
        self.deployment.postgres.restart()
        self._advance(
            "done",
            f"PostgreSQL restarted (fast shutdown, start: {time.monotonic() - started:.1f} s)",
        )

    def _done(self) -> None:
        return
