"""A throw-away Airflow 3 deployment: scheduler, dag-processor, triggerer, api-server.

Each component is its own ``airflow`` process (own session / process group, so it is
stopped with everything it spawned: LocalExecutor workers, task supervisors, trigger
runners), sharing one ``AIRFLOW_HOME`` with a SQLite metadata DB. Airflow 3.3 runs
LocalExecutor on SQLite (it no longer refuses the combination), which is all this needs.

The API server also serves the Execution API that LocalExecutor workers and the triggerer
call, so every process gets the same ``execution_api_server_url`` and JWT secret.

Only the standard library is imported here (and the harness module, which imports nothing
more); the metadata DB is read with ``sqlite3``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from airflow_rds_export.testing.airflow_runs import airflow_bin

__all__ = ["COMPONENTS", "Deployment", "DeploymentError", "free_port"]

COMPONENTS: tuple[str, ...] = ("api-server", "dag-processor", "scheduler", "triggerer")


class DeploymentError(RuntimeError):
    """The deployment did not come up, or did not answer as expected."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    """Start, steer and stop the four Airflow components in ``home``.

    :param home: a prepared ``AIRFLOW_HOME`` (migrated SQLite DB at ``home/airflow.db``).
    :param base_env: the hermetic environment for it (``AirflowHome.env()``).
    :param extra_env: more variables for every process (e.g. ``AIRFLOW_CONN_AWS_DEFAULT``).
    """

    def __init__(
        self, home: Path, base_env: Mapping[str, str], extra_env: Mapping[str, str]
    ) -> None:
        self.home = home
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.logs_dir = home / "process-logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {
            **base_env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # One Fernet key for every process: without it, a component may start with an
            # empty key and fail to decrypt the trigger kwargs another one encrypted.
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            # Log servers default to fixed ports (8793, 8794): take free ones.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **extra_env,
        }
        self.components: tuple[str, ...] = COMPONENTS
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: dict[str, IO[bytes]] = {}
        self._token: str | None = None

    # -- processes --------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        """The combined stdout / stderr file of component ``name``."""
        return self.logs_dir / f"{name}.log"

    def command(self, name: str) -> list[str]:
        """The command line of component ``name``: ``airflow <name>``."""
        args = [airflow_bin(), name]
        if name == "api-server":
            args += ["--port", str(self.port), "--host", "127.0.0.1"]
        return args

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start component ``name`` (:meth:`command`) in its own process group."""
        args = self.command(name)
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - closed in stop()
        log.write(f"\n===== start {name} at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self._log_files[name] = log
        proc = subprocess.Popen(
            args,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        """Send ``sig`` to component ``name``'s process group; SIGKILL it after ``grace``."""
        proc = self.processes.pop(name, None)
        if proc is not None:
            _signal_group(proc, sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(10)
            # The group may outlive its leader (workers, trigger runners): finish them.
            _signal_group(proc, signal.SIGKILL)
        log = self._log_files.pop(name, None)
        if log is not None:
            log.close()

    def start_all(self) -> None:
        for name in self.components:
            self.start(name)

    def start_and_wait_for(self, *dag_ids: str, timeout: float = 150) -> None:
        """Start every component, then wait until all report healthy and ``dag_ids`` are
        parsed."""
        self.start_all()
        self.wait_until(
            "every component to report healthy",
            lambda: self.healthy("metadatabase", "scheduler", "triggerer", "dag_processor"),
            timeout=timeout,
        )
        for dag_id in dag_ids:
            self.wait_for_dag(dag_id)

    def stop_all(self, grace: float = 15.0) -> None:
        """Stop every component at once (SIGTERM, SIGKILL after ``grace``); never raises."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in list(self.processes):
            with contextlib.suppress(Exception):
                self.stop(name, grace=max(0.1, deadline - time.monotonic()))

    def assert_alive(self) -> None:
        """Raise :class:`DeploymentError` naming any component that exited."""
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise DeploymentError(f"Airflow components exited: {dead}")

    def diagnostics(self, lines: int = 60) -> str:
        """The tail of every component's log, for a failure message."""
        parts = []
        for path in sorted(self.logs_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} (last {lines} lines) -----\n" + "\n".join(text))
        return "\n".join(parts)

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    # -- readiness --------------------------------------------------------------------

    def wait_until(
        self, what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0
    ) -> Any:
        """Poll ``check()`` until it returns something truthy; raise after ``timeout``."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                result = check()
            except Exception as exc:  # not ready yet: remember why
                last_error = exc
            else:
                if result:
                    return result
            time.sleep(interval)
        raise DeploymentError(f"timed out after {timeout:g} s waiting for {what} ({last_error!r})")

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no auth needed)."""
        return dict(self.request("GET", "/api/v2/monitor/health", auth=False))

    def healthy(self, *components: str) -> bool:
        """Whether the health endpoint reports every one of ``components`` healthy."""
        health = self.health()
        return all(health.get(c, {}).get("status") == "healthy" for c in components)

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (and report import errors)."""

        def parsed() -> bool:
            errors = self.request("GET", "/api/v2/importErrors")
            if errors.get("total_entries"):
                raise DeploymentError(f"DAG import errors: {json.dumps(errors)[:3000]}")
            self.request("GET", f"/api/v2/dags/{dag_id}")
            return True

        self.wait_until(f"DAG {dag_id} to be parsed", parsed, timeout, interval=2)

    # -- REST API ---------------------------------------------------------------------

    def token(self) -> str:
        """A JWT from SimpleAuthManager (``simple_auth_manager_all_admins``: no login)."""
        if self._token is None:
            self._token = str(self.request("GET", "/auth/token", auth=False)["access_token"])
        return self._token

    def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 30
    ) -> Any:
        """Call the API server; return the decoded JSON answer."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.base_url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise DeploymentError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        return json.loads(payload) if payload else None

    def trigger(self, dag_id: str, conf: Mapping[str, Any], run_id: str) -> dict[str, Any]:
        """Create a manual DAG run with ``conf``."""
        return dict(
            self.request(
                "POST",
                f"/api/v2/dags/{dag_id}/dagRuns",
                {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)},
            )
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """``task_id -> task instance`` of a run (REST API)."""
        answer = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance (REST API ``.../tries``)."""
        answer = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        )
        return list(answer["task_instances"])

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, on_poll: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Wait until the run is ``success`` or ``failed``; return it."""

        def finished() -> dict[str, Any] | None:
            if on_poll is not None:
                on_poll()
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        return dict(self.wait_until(f"run {run_id} to finish", finished, timeout, interval=2))

    # -- metadata DB ------------------------------------------------------------------

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection to the metadata DB (rows as dicts)."""
        uri = f"file:{self.home / 'airflow.db'}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts (retried while SQLite reports a lock)."""
        for attempt in range(10):
            try:
                with self.db() as conn:
                    return [dict(row) for row in conn.execute(sql, params)]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 9:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    # -- task logs --------------------------------------------------------------------

    def task_log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        """Every log file written for the task in this run (worker and trigger logs).

        A LocalExecutor worker writes ``attempt=N.log``; the triggerer writes
        ``attempt=N.log.trigger.<triggerer job id>.log`` for each trigger it ran.
        """
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob("attempt=*")) if folder.exists() else []

    def task_log_tails(self, dag_id: str, run_id: str, lines: int = 15) -> str:
        """The tail of every task log of a run, for a failure message."""
        parts = []
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        for path in sorted(folder.glob("task_id=*/attempt=*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            rel = path.relative_to(folder)
            parts.append(f"----- {rel} (last {lines} lines) -----\n" + "\n".join(text))
        return "\n".join(parts)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
