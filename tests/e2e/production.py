"""A production-shaped Airflow deployment: PostgreSQL, CeleryExecutor on Redis, two of each.

Components (each its own ``airflow`` process and process group, as in
:class:`~e2e.deployment.Deployment`): api-server, dag-processor, scheduler, two triggerers
(``triggerer-1``, ``triggerer-2``) and two Celery workers (``worker-1``, ``worker-2``),
sharing one ``AIRFLOW_HOME`` for DAG files and task logs, with the metadata DB and the
Celery result backend on a throw-away PostgreSQL and the broker on a throw-away Redis
(:mod:`e2e.services`).

With :attr:`ProductionDeployment.supervised` set, a component that exits is started again
(as systemd or Kubernetes would restart it) instead of failing the wait, and the restart
is recorded in :attr:`ProductionDeployment.restarts`.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_rds_export.testing.airflow_runs import airflow_bin
from e2e.deployment import Deployment, DeploymentError
from e2e.services import PostgresServer, RedisServer

__all__ = ["PRODUCTION_COMPONENTS", "ProductionDeployment"]

PRODUCTION_COMPONENTS: tuple[str, ...] = (
    "api-server",
    "dag-processor",
    "scheduler",
    "triggerer-1",
    "triggerer-2",
    "worker-1",
    "worker-2",
)


class ProductionDeployment(Deployment):
    """Airflow on PostgreSQL with the CeleryExecutor, two triggerers and two workers.

    :param postgres: the running metadata DB server.
    :param redis: the running broker.
    :param worker_concurrency: task slots per Celery worker.
    :param triggerer_capacity: triggers per triggerer (``--capacity``).
    """

    def __init__(
        self,
        home: Path,
        base_env: Mapping[str, str],
        extra_env: Mapping[str, str],
        *,
        postgres: PostgresServer,
        redis: RedisServer,
        worker_concurrency: int = 4,
        triggerer_capacity: int = 1000,
    ) -> None:
        db_url = postgres.url
        super().__init__(
            home,
            base_env,
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__CELERY__BROKER_URL": redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
                # A task whose worker died is failed (and retried) after 30 s without a
                # heartbeat instead of the default 5 minutes.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                # A triggerer silent this long loses its triggers to the other one.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "20",
                **extra_env,
            },
        )
        self.postgres = postgres
        self.redis = redis
        self.worker_concurrency = worker_concurrency
        self.triggerer_capacity = triggerer_capacity
        self.components = PRODUCTION_COMPONENTS
        self.supervised = False
        self.restarts: list[tuple[str, int | None, str]] = []
        """``(component, exit code, time)`` of every restart by supervision."""

    def command(self, name: str) -> list[str]:
        if name.startswith("triggerer-"):
            capacity = str(self.triggerer_capacity)
            return [airflow_bin(), "triggerer", "--skip-serve-logs", "--capacity", capacity]
        if name.startswith("worker-"):
            return [
                airflow_bin(),
                "celery",
                "worker",
                "--concurrency",
                str(self.worker_concurrency),
                "--celery-hostname",
                f"{name}@%h",
                "--pid",
                str(self.home / f"{name}.pid"),
                "--skip-serve-logs",
            ]
        return super().command(name)

    def migrate(self, timeout: float = 600) -> float:
        """``airflow db migrate`` against PostgreSQL; returns the wall time."""
        started = time.monotonic()
        with open(self.log_path("db-migrate"), "w") as log:
            proc = subprocess.run(
                [airflow_bin(), "db", "migrate"],
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if proc.returncode != 0:
            raise DeploymentError(
                f"airflow db migrate failed ({proc.returncode}): see {self.log_path('db-migrate')}"
            )
        return time.monotonic() - started

    def assert_alive(self) -> None:
        if not self.supervised:
            super().assert_alive()
            return
        for name, proc in list(self.processes.items()):
            code = proc.poll()
            if code is not None:
                self.stop(name)
                self.restarts.append((name, code, time.strftime("%H:%M:%S")))
                self.start(name)

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of ``sql`` (``?`` placeholders) from the PostgreSQL metadata DB."""
        return self.postgres.query(sql.replace("?", "%s"), *params)

    def triggerer_heartbeats(self) -> dict[int, float]:
        """Running triggerer job id -> seconds since its last heartbeat."""
        rows = self.query(
            "SELECT id, EXTRACT(EPOCH FROM (now() - latest_heartbeat)) AS age FROM job "
            "WHERE job_type = 'TriggererJob' AND state = 'running'"
        )
        return {int(r["id"]): float(r["age"]) for r in rows}

    def triggerer_jobs(self, silent_after: float = 12.0) -> dict[str, int]:
        """Which triggerer job each triggerer process runs (``name -> job id``).

        The job table does not say, so: freeze ``triggerer-1`` (SIGSTOP) until one job's
        heartbeat is ``silent_after`` seconds old (below the health threshold, so no
        trigger moves), thaw it; the other live job is ``triggerer-2``'s.
        """
        import os
        import signal

        group = self.processes["triggerer-1"].pid
        os.killpg(group, signal.SIGSTOP)
        try:
            silent = self.wait_until(
                "triggerer-1's job to miss heartbeats",
                lambda: [j for j, age in self.triggerer_heartbeats().items() if age > silent_after],
                60,
            )
        finally:
            os.killpg(group, signal.SIGCONT)
        others = [j for j in self.triggerer_heartbeats() if j not in silent]
        if len(silent) != 1 or len(others) != 1:
            raise DeploymentError(f"cannot tell the triggerer jobs apart: {silent} / {others}")
        return {"triggerer-1": silent[0], "triggerer-2": others[0]}

    def execute(self, sql: str, *params: Any) -> int:
        """Change the metadata DB (``?`` placeholders); returns the row count."""
        return self.postgres.execute(sql.replace("?", "%s"), *params)

    def kill_tree(self, name: str) -> int:
        """SIGKILL component ``name`` and every process descending from it, as a machine
        dying would (the Task SDK runs each task in a process group of its own, which a
        signal to the component's group misses). Returns how many processes were killed."""
        import os
        import signal

        proc = self.processes[name]
        doomed = {proc.pid} | _descendants(proc.pid)
        for pid in doomed:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.stop(name, signal.SIGKILL)
        return len(doomed)

    def worker_of_pid(self, pid: int) -> str | None:
        """The worker that process ``pid`` (a task's) descends from, by its parent chain
        (the Task SDK runs a task in a process group of its own)."""
        workers = {p.pid: n for n, p in self.processes.items() if n.startswith("worker-")}
        current: int | None = pid
        for _ in range(20):
            if current is None or current <= 1:
                return None
            if current in workers:
                return workers[current]
            current = _parent_of(current)
        return None


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent's pid


def _descendants(root: int) -> set[int]:
    """Every live process whose parent chain reaches ``root``."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                parents[int(entry.name)] = parent
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found
