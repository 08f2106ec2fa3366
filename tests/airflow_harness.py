"""Run DAGs through Airflow's real runtime (``airflow dags test``) from pytest.

Design
------
* A throw-away ``AIRFLOW_HOME`` with a SQLite metadata DB is created once per pytest session.
  ``airflow db migrate`` is slow (several seconds), so the migrated DB file is cached per
  Airflow version in a temp directory and copied into each session's home.
* DAG runs never happen inside the pytest process: Airflow reads its configuration at import
  time, configures logging globally and runs tasks in-process during ``dag.test()``.  Instead a
  **fork server** subprocess is started once per session with a hermetic environment.  It
  imports Airflow and pre-builds the in-process Execution API app (the expensive part, ~8 s on
  a small machine) and then forks one child per DAG run.  The child calls the real CLI
  entry point ``airflow dags test <dag_id> <logical_date>`` (``airflow.__main__.main``), which
  runs ``DAG.test()``: deferred triggers run inline, reschedules (sensors in
  ``mode="reschedule"`` and ``AirflowRescheduleException`` from operators) and retries are
  honoured.  After the run the child reads the metadata DB and hands back a pickled snapshot.
* ``mode="subprocess"`` (or env ``AIRFLOW_HARNESS_MODE=subprocess``) runs the very same child
  code in a fresh interpreter per run instead of forking: slower (~10 s more per run) but with
  no shared warm state at all.  Useful to rule out fork-related effects.

Task logs: with ``dags test`` no per-task log files are written; everything goes to the run's
stdout, delimited by ``[DAG TEST] starting task_id=...`` / ``[DAG TEST] end task task_id=...``
markers.  :meth:`DagRunResult.log` slices stdout along those markers (every try / reschedule
/ deferral resumption of a task is one slice; slices are concatenated).

This module imports only the standard library at module level, so it is safe to import from
``conftest.py`` before anything else.  It is also executed as a script (the fork server and
the ``subprocess`` mode child).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import re
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

DEFAULT_LOGICAL_DATE = "2024-01-01T00:00:00+00:00"
_HERE = Path(__file__).resolve()
_MARKER_RE = re.compile(
    r"\[DAG TEST\] (?P<kind>starting|end task) task_id=(?P<task_id>\S+) map_index=(?P<mi>-?\d+)"
)
# Modules imported by the fork server before forking (best effort; failures are ignored).
_PRELOAD_MODULES = (
    "airflow.cli.cli_parser",
    "airflow.cli.commands.dag_command",
    "airflow.models.dagrun",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.sdk.serde",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.triggers.temporal",
    "airflow.providers.amazon.aws.hooks.rds",
    "airflow.providers.amazon.aws.hooks.s3",
    "airflow.providers.amazon.aws.triggers.rds",
    "boto3",
    "botocore",
)


class HarnessError(RuntimeError):
    """The harness itself failed (not the DAG run)."""


class DagRunTimeout(HarnessError):
    """The DAG run did not finish within the timeout (the run was killed)."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """Final state of one task instance (plus its history)."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    max_tries: int
    reschedules: int
    """Number of ``task_reschedule`` rows (one per ``UP_FOR_RESCHEDULE``)."""
    history_states: tuple[str | None, ...]
    """States of earlier tries (``task_instance_history``), oldest first."""


@dataclasses.dataclass(frozen=True)
class DagRunResult:
    """Snapshot of one ``airflow dags test`` run, taken right after it finished.

    It stays valid after a later re-run of the same logical date (which deletes the DB rows).
    """

    dag_id: str
    run_id: str | None
    logical_date: str
    state: str | None
    tasks: dict[str, TaskInfo]
    xcoms: dict[tuple[str, int, str], Any]
    """(task_id, map_index, key) -> deserialized value."""
    returncode: int
    stdout: str
    stderr: str
    duration: float
    """Wall time of the run as seen by the harness, seconds."""
    error: str | None = None
    """Traceback if the CLI raised something other than ``SystemExit`` (e.g. DAG not found)."""

    @property
    def task_states(self) -> dict[str, str | None]:
        """``task_id -> final state`` (for mapped tasks: the state of map index -1 or the last)."""
        return {tid: info.state for tid, info in self.tasks.items()}

    def tries(self, task_id: str) -> int:
        """``try_number`` of the task's final try (reschedules do not count as tries)."""
        return self._task(task_id).try_number

    def reschedules(self, task_id: str) -> int:
        """How many times the task was put into ``up_for_reschedule``."""
        return self._task(task_id).reschedules

    def xcom(self, task_id: str, key: str = "return_value", *, map_index: int = -1) -> Any:
        """Return the deserialized XCom value; ``KeyError`` if it was not pushed."""
        try:
            return self.xcoms[(task_id, map_index, key)]
        except KeyError:
            have = sorted(self.xcoms)
            raise KeyError(f"no XCom {(task_id, map_index, key)!r}; have {have!r}") from None

    def log(self, task_id: str, map_index: int | None = None) -> str:
        """All log lines the task produced (every try, reschedule and deferral resumption)."""
        chunks = [
            text
            for tid, mi, text in _split_task_logs(self.stdout)
            if tid == task_id and (map_index is None or mi == map_index)
        ]
        return "".join(chunks)

    def assert_state(self, expected: str = "success") -> None:
        """Raise an ``AssertionError`` with a useful excerpt if the run state differs."""
        if self.state != expected:
            raise AssertionError(
                f"dag run {self.dag_id!r} state {self.state!r} != {expected!r}; "
                f"tasks={self.task_states}\n--- error ---\n{self.error}\n"
                f"--- stdout (tail) ---\n{self.stdout[-6000:]}\n--- stderr (tail) ---\n"
                f"{self.stderr[-3000:]}"
            )

    def _task(self, task_id: str) -> TaskInfo:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"no task {task_id!r}; have {sorted(self.tasks)}") from None


def _split_task_logs(stdout: str) -> Iterator[tuple[str, int, str]]:
    """Yield ``(task_id, map_index, text)`` for every task execution slice in ``stdout``."""
    current: tuple[str, int] | None = None
    buf: list[str] = []
    for line in stdout.splitlines(keepends=True):
        m = _MARKER_RE.search(line)
        if m and m.group("kind") == "starting":
            if current is not None:  # unterminated previous slice (should not happen)
                yield current[0], current[1], "".join(buf)
            current, buf = (m.group("task_id"), int(m.group("mi"))), [line]
        elif m and current is not None:
            buf.append(line)
            yield current[0], current[1], "".join(buf)
            current, buf = None, []
        elif current is not None:
            buf.append(line)
    if current is not None:
        yield current[0], current[1], "".join(buf)


# ---------------------------------------------------------------------------------------------
# Airflow home + metadata DB
# ---------------------------------------------------------------------------------------------


def _airflow_version() -> str:
    from importlib.metadata import version

    parts = []
    for dist in ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"):
        try:
            parts.append(f"{dist}={version(dist)}")
        except Exception:
            parts.append(f"{dist}=?")
    return ",".join(parts)


def hermetic_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow processes: inherited env minus ``AIRFLOW*``, plus our config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def _migrate(home: Path) -> float:
    """Run ``airflow db migrate`` for ``home``; return the wall time."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [_airflow_bin(), "db", "migrate"],
        env=hermetic_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise HarnessError(f"airflow db migrate failed:\n{proc.stdout[-4000:]}\n{proc.stderr}")
    return time.monotonic() - t0


def _cached_template_db(cache_root: Path) -> tuple[Path, float]:
    """Return a migrated SQLite DB file (migrating once per Airflow version) and migrate time."""
    import hashlib

    key = hashlib.sha1(_airflow_version().encode()).hexdigest()[:12]
    cache_dir = cache_root / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    db = cache_dir / "airflow.db"
    lock_path = cache_dir / ".lock"
    with open(lock_path, "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers share the cache
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        if db.exists():
            return db, 0.0
        work = Path(tempfile.mkdtemp(prefix="migrate-", dir=cache_dir))
        try:
            seconds = _migrate(work)
            os.replace(work / "airflow.db", db)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return db, seconds


@dataclasses.dataclass
class AirflowHome:
    """A prepared ``AIRFLOW_HOME`` (dirs + migrated SQLite DB)."""

    path: Path
    migrate_seconds: float
    """Time spent in ``airflow db migrate`` (0.0 if the cached template DB was used)."""

    @property
    def dags_folder(self) -> Path:
        return self.path / "dags"

    @property
    def db_path(self) -> Path:
        return self.path / "airflow.db"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Hermetic environment for this home."""
        return hermetic_env(self.path, extra)


def prepare_airflow_home(path: Path, *, use_cache: bool | None = None) -> AirflowHome:
    """Create ``path`` as an ``AIRFLOW_HOME`` with a migrated SQLite DB.

    The migrated DB is cached in ``$TMPDIR/airflow-harness-db/<version-hash>/`` unless
    ``use_cache`` is false (default: env ``AIRFLOW_HARNESS_DB_CACHE`` != ``0``).
    """
    if use_cache is None:
        use_cache = os.environ.get("AIRFLOW_HARNESS_DB_CACHE", "1") != "0"
    path.mkdir(parents=True, exist_ok=True)
    for sub in ("dags", "plugins", "logs", "runs"):
        (path / sub).mkdir(exist_ok=True)
    if use_cache:
        cache_root = Path(tempfile.gettempdir()) / "airflow-harness-db"
        template, seconds = _cached_template_db(cache_root)
        shutil.copyfile(template, path / "airflow.db")
    else:
        seconds = _migrate(path)
    return AirflowHome(path=path, migrate_seconds=seconds)


# ---------------------------------------------------------------------------------------------
# The harness (pytest side)
# ---------------------------------------------------------------------------------------------


class AirflowHarness:
    """Runs DAG sources through ``airflow dags test`` in an isolated ``AIRFLOW_HOME``.

    Runs are serialized (one at a time); the DAGs folder contains only the DAG under test
    while it runs, so a broken DAG file from another test cannot interfere.
    """

    def __init__(self, home: AirflowHome, *, mode: str | None = None) -> None:
        self.home = home
        self.mode = mode or os.environ.get("AIRFLOW_HARNESS_MODE", "fork")
        if self.mode not in ("fork", "subprocess"):
            raise ValueError(f"unknown harness mode {self.mode!r}")
        self._server: subprocess.Popen[bytes] | None = None
        self._server_log: Path = home.path / "forkserver.log"
        self._counter = 0
        if self.mode == "fork":
            self._start_server()

    # -- public API ---------------------------------------------------------------------------

    def run_dag(
        self,
        dag_source: str,
        dag_id: str,
        *,
        env: Mapping[str, str] | None = None,
        logical_date: str | None = None,
        conf: Mapping[str, Any] | None = None,
        timeout: float = 180,
        file_name: str | None = None,
    ) -> DagRunResult:
        """Write ``dag_source`` into the DAGs folder and run it with ``airflow dags test``.

        :param dag_source: Python source of the DAG file (dedented automatically).
        :param dag_id: id of the DAG to run.
        :param env: extra environment for the run (e.g. ``AIRFLOW_CONN_AWS_DEFAULT``).
            ``AIRFLOW__SECTION__KEY`` values work for options Airflow reads at use time.
        :param logical_date: ISO date; default ``2024-01-01T00:00:00+00:00``.  Running the same
            DAG again with the same logical date is a *re-run*: Airflow deletes the existing run
            (task instances, XComs, reschedules) and creates a new one.
        :param conf: ``dag_run.conf``.
        :param timeout: seconds; the run is killed and :class:`DagRunTimeout` raised after it.
        :param file_name: DAG file name (default ``<dag_id>.py``).
        """
        request = {
            "op": "dags_test",
            "dag_id": dag_id,
            "logical_date": logical_date or DEFAULT_LOGICAL_DATE,
            "conf": dict(conf) if conf else None,
        }
        with self._dag_file(dag_source, file_name or f"{dag_id}.py"):
            payload, stdout, stderr, rc, seconds = self._execute(request, env, timeout)
        if payload.get("run_id") is None:  # DAG not found / failed to parse / CLI error
            raise HarnessError(
                f"no DAG run was created for {dag_id!r} (rc={rc})\n--- error ---\n"
                f"{payload.get('error')}\n--- stdout (tail) ---\n{stdout[-6000:]}\n"
                f"--- stderr ---\n{stderr[-3000:]}"
            )
        return DagRunResult(
            dag_id=dag_id,
            run_id=payload.get("run_id"),
            logical_date=request["logical_date"],
            state=payload.get("state"),
            tasks={tid: TaskInfo(**info) for tid, info in payload.get("tasks", {}).items()},
            xcoms=payload.get("xcoms", {}),
            returncode=rc,
            stdout=stdout,
            stderr=stderr,
            duration=seconds,
            error=payload.get("error"),
        )

    def rerun(self, previous: DagRunResult, dag_source: str, **kwargs: Any) -> DagRunResult:
        """Run ``dag_source`` again for ``previous``'s logical date (Airflow replaces the run)."""
        kwargs.setdefault("logical_date", previous.logical_date)
        return self.run_dag(dag_source, previous.dag_id, **kwargs)

    def dag_import_errors(
        self,
        dag_source: str,
        *,
        env: Mapping[str, str] | None = None,
        file_name: str = "dag_under_test.py",
        timeout: float = 120,
    ) -> str:
        """Parse ``dag_source`` with a ``DagBag``; return the import error text ("" if none)."""
        request = {"op": "import_errors"}
        with self._dag_file(dag_source, file_name):
            payload, stdout, stderr, _rc, _s = self._execute(request, env, timeout)
        if "import_errors" not in payload:
            raise HarnessError(f"import check failed: {payload}\n{stdout[-3000:]}\n{stderr}")
        return "\n".join(payload["import_errors"].values())

    def dag_ids(self, dag_source: str, *, env: Mapping[str, str] | None = None) -> list[str]:
        """Return the DAG ids a DAG file defines (parsed by a ``DagBag``)."""
        request = {"op": "import_errors"}
        with self._dag_file(dag_source, "dag_under_test.py"):
            payload, *_ = self._execute(request, env, 120)
        return list(payload.get("dag_ids", []))

    def close(self) -> None:
        """Stop the fork server."""
        proc, self._server = self._server, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()  # the server is idle between runs: no child to clean up
        proc.terminate()  # skip the slow interpreter/Airflow shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> AirflowHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _dag_file(self, source: str, file_name: str) -> Iterator[Path]:
        folder = self.home.dags_folder
        for old in folder.iterdir():  # only the DAG under test may be parsed
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        path = folder / file_name
        path.write_text(textwrap.dedent(source))
        try:
            yield path
        finally:
            archive = self.home.path / "runs" / f"{self._counter:04d}_{file_name}"
            with contextlib.suppress(OSError):
                shutil.move(str(path), archive)

    def _execute(
        self, request: dict[str, Any], env: Mapping[str, str] | None, timeout: float
    ) -> tuple[dict[str, Any], str, str, int, float]:
        self._counter += 1
        run_dir = self.home.path / "runs" / f"{self._counter:04d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        request = {
            **request,
            "env": dict(env or {}),
            "timeout": timeout,
            "stdout": str(run_dir / "stdout.log"),
            "stderr": str(run_dir / "stderr.log"),
            "result": str(run_dir / "result.pkl"),
        }
        t0 = time.monotonic()
        if self.mode == "fork":
            reply = self._ask_server(request, timeout + 120)
        else:
            reply = self._run_subprocess(request, env, timeout)
        seconds = time.monotonic() - t0
        stdout = _read(request["stdout"])
        stderr = _read(request["stderr"])
        if reply.get("timed_out"):
            raise DagRunTimeout(
                f"run {request.get('dag_id', request['op'])} exceeded {timeout}s\n"
                f"--- stdout (tail) ---\n{stdout[-6000:]}\n--- stderr ---\n{stderr[-3000:]}"
            )
        result_path = Path(request["result"])
        if not result_path.exists():
            raise HarnessError(
                f"run produced no result (rc={reply.get('returncode')})\n"
                f"--- stdout (tail) ---\n{stdout[-6000:]}\n--- stderr ---\n{stderr[-3000:]}"
            )
        payload = pickle.loads(result_path.read_bytes())
        return payload, stdout, stderr, int(reply.get("returncode", -1)), seconds

    def _start_server(self) -> None:
        log = open(self._server_log, "ab")  # noqa: SIM115 - owned by the child process
        try:
            self._server = subprocess.Popen(
                [sys.executable, str(_HERE), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.home.env(),
                cwd=str(self.home.path),
            )
        finally:
            log.close()

    def _ask_server(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        proc = self._server
        if proc is None or proc.poll() is not None:
            self._start_server()  # restart once after a crash
            proc = self._server
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
        except BrokenPipeError as exc:
            raise HarnessError(f"fork server died:\n{_read(self._server_log)[-4000:]}") from exc
        line = _readline(proc.stdout, timeout + 60)  # + warm-up of a fresh server
        if line is None:
            self.close()
            raise HarnessError(f"fork server did not answer:\n{_read(self._server_log)[-4000:]}")
        return json.loads(line)

    def _run_subprocess(
        self, request: dict[str, Any], env: Mapping[str, str] | None, timeout: float
    ) -> dict[str, Any]:
        req_path = Path(request["result"]).with_name("request.json")
        req_path.write_text(json.dumps(request))
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(request["stdout"], "wb"))
            err = stack.enter_context(open(request["stderr"], "wb"))
            proc = subprocess.Popen(
                [sys.executable, str(_HERE), "--child", str(req_path)],
                stdout=out,
                stderr=err,
                env=self.home.env(env),
                cwd=str(self.home.path),
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"timed_out": True, "returncode": -9}
        return {"timed_out": False, "returncode": rc}


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _readline(stream: IO[bytes], timeout: float) -> str | None:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        line = stream.readline()
        return line.decode() if line else None
    finally:
        sel.close()


# ---------------------------------------------------------------------------------------------
# Airflow side: runs inside the fork server / its children (or a ``--child`` subprocess)
# ---------------------------------------------------------------------------------------------


def _child_run(request: dict[str, Any]) -> int:
    """Execute one request in *this* process (stdout/stderr already redirected)."""
    os.environ.update(request.get("env") or {})
    payload: dict[str, Any] = {}
    rc = 0
    try:
        if request["op"] == "dags_test":
            rc, payload = _child_dags_test(request)
        elif request["op"] == "import_errors":
            payload = _child_import_errors()
        else:
            raise ValueError(f"unknown op {request['op']!r}")
    except BaseException:
        payload["error"] = traceback.format_exc()
        rc = 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            data = pickle.dumps(payload)
        except Exception:
            payload["xcoms"] = {k: repr(v) for k, v in payload.get("xcoms", {}).items()}
            data = pickle.dumps(payload)
        tmp = request["result"] + ".tmp"
        Path(tmp).write_bytes(data)
        os.replace(tmp, request["result"])
    return rc


def _child_dags_test(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from airflow.__main__ import main

    argv = ["airflow", "dags", "test", request["dag_id"], request["logical_date"]]
    if request.get("conf"):
        argv += ["--conf", json.dumps(request["conf"])]
    sys.argv = argv
    before = _latest_run_id(request["dag_id"])
    rc = 0
    error = None
    try:
        main()
    except SystemExit as exc:  # "DagRun failed" -> exit 1
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        rc = 2
        error = traceback.format_exc()
        traceback.print_exc()
    payload = _collect(request["dag_id"], request["logical_date"])
    if before is not None and payload.get("run_id") == before:  # stale run, nothing new ran
        payload = {"run_id": None, "state": None, "tasks": {}, "xcoms": {}}
    if error:
        payload["error"] = error
    return rc, payload


def _connect() -> sqlite3.Connection:
    from airflow.configuration import conf

    uri = conf.get("database", "sql_alchemy_conn")
    db_file = uri.split("sqlite:///", 1)[1].split("?", 1)[0]
    return sqlite3.connect(db_file, timeout=30)


def _latest_run_id(dag_id: str) -> str | None:
    con = _connect()
    try:
        row = con.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def _collect(dag_id: str, logical_date: str) -> dict[str, Any]:
    """Read the newest DAG run of ``dag_id`` (+ its TIs, reschedules, XComs) from SQLite."""
    con = _connect()
    con.row_factory = sqlite3.Row
    try:
        dr = con.execute(
            "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if dr is None:
            return {"run_id": None, "state": None, "tasks": {}, "xcoms": {}}
        tasks: dict[str, dict[str, Any]] = {}  # plain dicts: pickled across ``__main__``
        rows = con.execute(
            "SELECT id, task_id, map_index, state, try_number, max_tries FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
            (dag_id, dr["run_id"]),
        ).fetchall()
        for ti in rows:
            n_resched = con.execute(
                "SELECT COUNT(*) FROM task_reschedule WHERE ti_id = ?", (ti["id"],)
            ).fetchone()[0]
            history = tuple(
                r[0]
                for r in con.execute(
                    "SELECT state FROM task_instance_history WHERE dag_id = ? AND run_id = ? "
                    "AND task_id = ? AND map_index = ? ORDER BY try_number",
                    (dag_id, dr["run_id"], ti["task_id"], ti["map_index"]),
                )
            )
            info = {
                "task_id": ti["task_id"],
                "map_index": ti["map_index"],
                "state": ti["state"],
                "try_number": ti["try_number"],
                "max_tries": ti["max_tries"],
                "reschedules": n_resched,
                "history_states": history,
            }
            if ti["task_id"] not in tasks or ti["map_index"] == -1:
                tasks[ti["task_id"]] = info
        xcoms: dict[tuple[str, int, str], Any] = {}
        for x in con.execute(
            "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = ? AND run_id = ?",
            (dag_id, dr["run_id"]),
        ):
            xcoms[(x["task_id"], x["map_index"], x["key"])] = _decode_xcom(x["value"])
        return {"run_id": dr["run_id"], "state": dr["state"], "tasks": tasks, "xcoms": xcoms}
    finally:
        con.close()


def _decode_xcom(raw: Any) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return raw
    try:
        from airflow.sdk.serde import deserialize

        return deserialize(value)
    except Exception:
        return value


def _child_import_errors() -> dict[str, Any]:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    return {"import_errors": dict(bag.import_errors), "dag_ids": sorted(bag.dag_ids)}


def _serve() -> None:
    """Fork-server loop: one JSON request per stdin line, one JSON reply per line."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray output of the server itself goes to its log (stderr)
    t0 = time.monotonic()
    import importlib

    for name in _PRELOAD_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"[harness] preload {name} failed: {exc!r}", file=sys.stderr)
    try:
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        _warm_execution_api(in_process_api_server().app)
    except Exception:
        traceback.print_exc()
    import threading

    extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(f"[harness] warm in {time.monotonic() - t0:.1f}s; threads={extra}", file=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        proto.write(json.dumps(_fork_one(request)) + "\n")


def _warm_execution_api(app: Any) -> None:
    """Trigger Cadwyn's lazy route generation (~4-7 s) once, before forking.

    Uses a plain ASGI call on a short-lived event loop in the main thread: the in-process
    ``transport`` (a2wsgi, which starts a loop thread) must not exist before ``fork()``.
    """
    import asyncio

    import httpx

    async def _hit() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warm-up") as client:
            await client.get("/execution/health")

    asyncio.run(_hit())


def _fork_one(request: dict[str, Any]) -> dict[str, Any]:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.setpgid(0, 0)
            out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.close(out)
            os.close(err)
            code = _child_run(request)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + float(request.get("timeout", 180))
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"timed_out": False, "returncode": os.waitstatus_to_exitcode(status)}
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timed_out": True, "returncode": -9}
        time.sleep(0.05)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        _serve()
        return 0
    if argv[:1] == ["--child"] and len(argv) == 2:
        return _child_run(json.loads(Path(argv[1]).read_text()))
    print("usage: airflow_harness.py --serve | --child REQUEST.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
