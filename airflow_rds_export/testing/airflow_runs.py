"""Run DAGs through Airflow's real runtime (``airflow dags test``) and read back what happened.

Tests, benchmarks and the demo use this module to run DAG files against the emulator; so
can you, for your own DAGs (it ships with the ``testing`` extra)::

    from airflow_rds_export.testing import EmulatorServer, airflow_connection_env
    from airflow_rds_export.testing.airflow_runs import AirflowHarness, prepare_airflow_home

    home = prepare_airflow_home(tmp_path / "airflow-home")
    with EmulatorServer() as server, AirflowHarness(home) as harness:
        result = harness.run_dag(
            Path("dags/nightly_export.py").read_text(),
            "nightly_export",
            env=airflow_connection_env(server.endpoint_url),
            conf={"db_instance_identifier": "orders"},
        )
    result.assert_state("success")
    result.xcom("start_export")  # what the task returned
    result.log("wait_for_export")  # every line the task logged, every try

Import it by its path, as above: the ``testing`` package does not load it for you.

The pieces
----------
* :func:`prepare_airflow_home` makes a throw-away ``AIRFLOW_HOME`` with a SQLite metadata
  DB. ``airflow db migrate`` is slow (several seconds), so the migrated DB is cached once
  per Airflow version in the temp directory and copied into each new home.
  :func:`hermetic_env` is the environment every Airflow process gets: yours minus any
  ``AIRFLOW*`` variable, plus the home's configuration, so a developer's own Airflow
  settings never leak in.
* :class:`AirflowHarness` runs a DAG source with the real CLI entry point
  (``airflow dags test <dag_id> <logical_date>``, i.e. ``DAG.test()``): deferred triggers
  run inline, reschedules (sensors in ``mode="reschedule"``, ``AirflowRescheduleException``)
  and retries are honoured. Runs never happen in the calling process, because Airflow reads
  its configuration at import time and configures logging globally. Instead a **fork
  server** subprocess (``python -m airflow_rds_export.testing.airflow_runs --serve``)
  imports Airflow and pre-builds the in-process Execution API once (the expensive part,
  ~8 s on a small machine), then forks one child per run. ``mode="subprocess"`` (or env
  ``AIRFLOW_HARNESS_MODE=subprocess``) runs the very same child code in a fresh
  interpreter per run instead (``--child REQUEST.json``): ~10 s slower per run, but with
  no warm state shared between runs, to rule out effects of forking.
* :func:`read_run` reads a run back from the metadata DB with :mod:`sqlite3` (tables
  ``dag_run``, ``task_instance``, ``task_reschedule``, ``task_instance_history``,
  ``xcom``) into a :class:`DagRunRecord`. Read it right after the run: re-running the same
  logical date deletes those rows. The harness does this in the child, so every
  :class:`DagRunResult` is a snapshot that stays valid after a re-run.

Task logs: ``dags test`` writes no per-task log files; everything goes to the run's stdout,
each task execution between ``[DAG TEST] starting task_id=...`` and ``[DAG TEST] end task
task_id=...`` lines. :func:`parse_task_marker` recognises those lines and
:func:`split_task_logs` slices stdout along them (each try, reschedule and deferral
resumption of a task is one slice).

At module level only the standard library is imported, so importing this module (from a
``conftest.py``, before anything else) never imports or configures Airflow.
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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

__all__ = [
    "DEFAULT_LOGICAL_DATE",
    "AirflowHarness",
    "AirflowHome",
    "AssetEventInfo",
    "DagRunRecord",
    "DagRunResult",
    "DagRunTimeout",
    "HarnessError",
    "TaskInfo",
    "TaskMarker",
    "airflow_bin",
    "decode_xcom",
    "hermetic_env",
    "latest_run_id",
    "main",
    "parse_task_marker",
    "prepare_airflow_home",
    "read_run",
    "split_task_logs",
]

DEFAULT_LOGICAL_DATE = "2024-01-01T00:00:00+00:00"
# The fork server and ``--child`` run this module by its real name (see the end of the file).
_MODULE = "airflow_rds_export.testing.airflow_runs"
_MARKER_RE = re.compile(
    r"\[DAG TEST\] (?P<kind>starting|end task) task_id=(?P<task_id>\S+) "
    r"map_index=(?P<map_index>-?\d+)"
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
    """The harness itself failed (not the DAG run): no home, no run created, server died."""


class DagRunTimeout(HarnessError):
    """The DAG run did not finish within the timeout (the run was killed)."""


# ---------------------------------------------------------------------------------------------
# Task logs in ``dags test`` output
# ---------------------------------------------------------------------------------------------


class TaskMarker(NamedTuple):
    """A ``[DAG TEST] starting ...`` (``starts``) or ``[DAG TEST] end task ...`` line."""

    starts: bool
    task_id: str
    map_index: int


def parse_task_marker(text: str) -> TaskMarker | None:
    """The task start / end marker in ``text`` (a stdout line or a log message), if any."""
    match = _MARKER_RE.search(text)
    if match is None:
        return None
    return TaskMarker(
        match.group("kind") == "starting", match.group("task_id"), int(match.group("map_index"))
    )


def split_task_logs(stdout: str) -> Iterator[tuple[str, int, str]]:
    """Yield ``(task_id, map_index, text)`` for every task execution slice in ``stdout``.

    A slice runs from a start marker to its end marker, both included; lines outside any
    slice (the run's own lines) are not yielded.
    """
    current: tuple[str, int] | None = None
    buf: list[str] = []
    for line in stdout.splitlines(keepends=True):
        marker = parse_task_marker(line)
        if marker is not None and marker.starts:
            if current is not None:  # unterminated previous slice (should not happen)
                yield current[0], current[1], "".join(buf)
            current, buf = (marker.task_id, marker.map_index), [line]
        elif marker is not None and current is not None:
            buf.append(line)
            yield current[0], current[1], "".join(buf)
            current, buf = None, []
        elif current is not None:
            buf.append(line)
    if current is not None:
        yield current[0], current[1], "".join(buf)


# ---------------------------------------------------------------------------------------------
# Reading a run back from the metadata DB
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """Final state of one task instance (plus its history), as the metadata DB has it."""

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
class AssetEventInfo:
    """An ``asset_event`` row: the asset's URI, the event's ``extra``, which task instance
    emitted it and the asset aliases it came through."""

    uri: str
    extra: Any
    task_id: str | None
    map_index: int
    aliases: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DagRunRecord:
    """A DAG run, its task instances and XComs, read from the metadata DB."""

    dag_id: str
    run_id: str
    state: str | None
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    task_instances: tuple[TaskInfo, ...] = ()
    """Every task instance, each map index of a mapped task on its own, by task id."""
    xcoms: dict[tuple[str, int, str], Any] = dataclasses.field(default_factory=dict)
    """``(task_id, map_index, key) -> value`` (decoded by :func:`decode_xcom`)."""
    asset_events: tuple[AssetEventInfo, ...] = ()
    """The asset events the run's tasks emitted, oldest first."""

    def task(self, task_id: str, map_index: int = -1) -> TaskInfo | None:
        """The task instance ``task_id`` / ``map_index``, if the run has it."""
        for info in self.task_instances:
            if info.task_id == task_id and info.map_index == map_index:
                return info
        return None

    def return_value(self, task_id: str, map_index: int = -1) -> Any:
        """What the task instance returned (its ``return_value`` XCom); None if nothing."""
        return self.xcoms.get((task_id, map_index, "return_value"))


def latest_run_id(db_path: Path, dag_id: str) -> str | None:
    """The ``run_id`` of ``dag_id``'s newest run (None if it has none, or there is no DB)."""
    if not db_path.exists():
        return None
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as con:
        row = con.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return str(row[0]) if row else None


def read_run(
    db_path: Path, dag_id: str, *, other_than: str | None = None, airflow_serde: bool = False
) -> DagRunRecord | None:
    """The newest run of ``dag_id``, or None if it has none.

    Take :func:`latest_run_id` before a run and pass it as ``other_than``: when the newest
    run still has that id, no new run was created and the answer is None. Run ids, not row
    ids, tell runs apart: a re-run of the same logical date deletes the old ``dag_run`` row,
    and SQLite may hand the new row the same id.

    :param db_path: the SQLite metadata DB (``AirflowHome.db_path``).
    :param dag_id: whose newest run to read.
    :param other_than: the ``run_id`` that does not count as a new run.
    :param airflow_serde: also decode XComs with Airflow's serde (datetimes, tuples...
        come back as objects). This imports Airflow, so only a process that runs Airflow
        anyway should ask for it; otherwise XComs are plain JSON values.
    """
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as con:
        con.row_factory = sqlite3.Row
        run = con.execute(
            "SELECT run_id, state, data_interval_start, data_interval_end FROM dag_run "
            "WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if run is None or (other_than is not None and run["run_id"] == other_than):
            return None
        return DagRunRecord(
            dag_id=dag_id,
            run_id=run["run_id"],
            state=run["state"],
            data_interval_start=run["data_interval_start"],
            data_interval_end=run["data_interval_end"],
            task_instances=_read_task_instances(con, dag_id, run["run_id"]),
            xcoms=_read_xcoms(con, dag_id, run["run_id"], airflow_serde),
            asset_events=_read_asset_events(con, dag_id, run["run_id"]),
        )


def _read_task_instances(con: sqlite3.Connection, dag_id: str, run_id: str) -> tuple[TaskInfo, ...]:
    rows = con.execute(
        "SELECT id, task_id, map_index, state, try_number, max_tries FROM task_instance "
        "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
        (dag_id, run_id),
    ).fetchall()
    infos = []
    for ti in rows:
        reschedules = con.execute(
            "SELECT COUNT(*) FROM task_reschedule WHERE ti_id = ?", (ti["id"],)
        ).fetchone()[0]
        history = tuple(
            row[0]
            for row in con.execute(
                "SELECT state FROM task_instance_history WHERE dag_id = ? AND run_id = ? "
                "AND task_id = ? AND map_index = ? ORDER BY try_number",
                (dag_id, run_id, ti["task_id"], ti["map_index"]),
            )
        )
        infos.append(
            TaskInfo(
                task_id=ti["task_id"],
                map_index=ti["map_index"],
                state=ti["state"],
                try_number=ti["try_number"],
                max_tries=ti["max_tries"],
                reschedules=int(reschedules),
                history_states=history,
            )
        )
    return tuple(infos)


def _read_asset_events(
    con: sqlite3.Connection, dag_id: str, run_id: str
) -> tuple[AssetEventInfo, ...]:
    rows = con.execute(
        "SELECT e.id, a.uri, e.extra, e.source_task_id, e.source_map_index FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id WHERE e.source_dag_id = ? AND e.source_run_id = ? "
        "ORDER BY e.id",
        (dag_id, run_id),
    ).fetchall()
    return tuple(
        AssetEventInfo(
            uri=row["uri"],
            extra=decode_xcom(row["extra"]),
            task_id=row["source_task_id"],
            map_index=row["source_map_index"],
            aliases=tuple(
                alias[0]
                for alias in con.execute(
                    "SELECT al.name FROM asset_alias_asset_event x JOIN asset_alias al "
                    "ON al.id = x.alias_id WHERE x.event_id = ? ORDER BY al.name",
                    (row["id"],),
                )
            ),
        )
        for row in rows
    )


def _read_xcoms(
    con: sqlite3.Connection, dag_id: str, run_id: str, airflow_serde: bool
) -> dict[tuple[str, int, str], Any]:
    return {
        (row["task_id"], row["map_index"], row["key"]): decode_xcom(
            row["value"], airflow_serde=airflow_serde
        )
        for row in con.execute(
            "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        )
    }


def decode_xcom(raw: Any, *, airflow_serde: bool = False) -> Any:
    """An XCom value as stored (JSON text) back to Python.

    Text that is not JSON comes back as it is. With ``airflow_serde`` the JSON value is
    also passed through ``airflow.sdk.serde.deserialize`` (which imports Airflow); if that
    fails, the plain JSON value is returned.
    """
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    if not isinstance(raw, str):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if not airflow_serde:
        return value
    try:
        from airflow.sdk.serde import deserialize

        return deserialize(value)
    except Exception:
        return value


# ---------------------------------------------------------------------------------------------
# Airflow home + metadata DB
# ---------------------------------------------------------------------------------------------


def hermetic_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow processes: inherited env minus ``AIRFLOW*``, plus our config.

    Inherited ``AIRFLOW__*`` settings (a developer's own Airflow) are dropped, so a run
    behaves the same on every machine; ``extra`` is applied last and wins.
    """
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


def airflow_bin() -> str:
    """The ``airflow`` executable next to this interpreter (the venv's), else on ``PATH``."""
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


@dataclasses.dataclass
class AirflowHome:
    """A prepared ``AIRFLOW_HOME``: folders and a migrated SQLite DB.

    Make one with :func:`prepare_airflow_home`; wrap an existing one as ``AirflowHome(path)``.
    """

    path: Path
    migrate_seconds: float = 0.0
    """Time spent in ``airflow db migrate`` (0.0 if the cached template DB was used)."""

    @property
    def dags_folder(self) -> Path:
        """Where DAG files go (``AIRFLOW__CORE__DAGS_FOLDER``)."""
        return self.path / "dags"

    @property
    def db_path(self) -> Path:
        """The SQLite metadata DB, for :func:`read_run`."""
        return self.path / "airflow.db"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Hermetic environment for this home (see :func:`hermetic_env`)."""
        return hermetic_env(self.path, extra)


def prepare_airflow_home(
    path: Path, *, use_cache: bool | None = None, migrate_log: Path | None = None
) -> AirflowHome:
    """Create ``path`` as an ``AIRFLOW_HOME`` with a migrated SQLite DB.

    :param path: the folder; created with ``dags``, ``plugins``, ``logs`` and ``runs`` in it.
    :param use_cache: copy a DB migrated once per Airflow version
        (``$TMPDIR/airflow-harness-db/<version-hash>/``) instead of migrating afresh.
        Default: yes, unless env ``AIRFLOW_HARNESS_DB_CACHE`` is ``0``.
    :param migrate_log: file for the output of ``airflow db migrate`` when it runs (it does
        not run when the cached DB is copied). Without it, the output is kept in memory
        and only shown if the migration fails.
    :raises HarnessError: if ``airflow db migrate`` fails.
    """
    if use_cache is None:
        use_cache = os.environ.get("AIRFLOW_HARNESS_DB_CACHE", "1") != "0"
    path.mkdir(parents=True, exist_ok=True)
    for sub in ("dags", "plugins", "logs", "runs"):
        (path / sub).mkdir(exist_ok=True)
    if use_cache:
        cache_root = Path(tempfile.gettempdir()) / "airflow-harness-db"
        template, seconds = _cached_template_db(cache_root, migrate_log)
        shutil.copyfile(template, path / "airflow.db")
    else:
        seconds = _migrate(path, migrate_log)
    return AirflowHome(path=path, migrate_seconds=seconds)


def _migrate(home: Path, log_file: Path | None = None, timeout: float = 600) -> float:
    """Run ``airflow db migrate`` for ``home``; return the wall time."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        out: IO[str] | int = (
            stack.enter_context(open(log_file, "w")) if log_file else subprocess.PIPE
        )
        proc = subprocess.run(
            [airflow_bin(), "db", "migrate"],
            env=hermetic_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )
    if proc.returncode != 0:
        detail = f"see {log_file}" if log_file else f"\n{proc.stdout[-4000:]}"
        raise HarnessError(f"airflow db migrate failed (exit {proc.returncode}): {detail}")
    return time.monotonic() - t0


def _airflow_version() -> str:
    from importlib.metadata import version

    parts = []
    for dist in ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"):
        try:
            parts.append(f"{dist}={version(dist)}")
        except Exception:
            parts.append(f"{dist}=?")
    return ",".join(parts)


def _cached_template_db(cache_root: Path, migrate_log: Path | None) -> tuple[Path, float]:
    """Return a migrated SQLite DB file (migrating once per Airflow version) and migrate time."""
    import hashlib

    key = hashlib.sha1(_airflow_version().encode()).hexdigest()[:12]
    cache_dir = cache_root / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    db = cache_dir / "airflow.db"
    with open(cache_dir / ".lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers share the cache
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        if db.exists():
            return db, 0.0
        work = Path(tempfile.mkdtemp(prefix="migrate-", dir=cache_dir))
        try:
            seconds = _migrate(work, migrate_log)
            os.replace(work / "airflow.db", db)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return db, seconds


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


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
    """``task_id -> TaskInfo``; for a mapped task, map index -1 or else the last one."""
    xcoms: dict[tuple[str, int, str], Any]
    """(task_id, map_index, key) -> deserialized value."""
    asset_events: tuple[AssetEventInfo, ...]
    """The asset events the run's tasks emitted, oldest first."""
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
            for tid, mi, text in split_task_logs(self.stdout)
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


def _one_per_task(task_instances: Sequence[TaskInfo]) -> dict[str, TaskInfo]:
    """``task_id -> TaskInfo``: map index -1 where there is one, else the last map index."""
    tasks: dict[str, TaskInfo] = {}
    for info in task_instances:
        if info.task_id not in tasks or info.map_index == -1:
            tasks[info.task_id] = info
    return tasks


# ---------------------------------------------------------------------------------------------
# The harness (caller side)
# ---------------------------------------------------------------------------------------------


class AirflowHarness:
    """Runs DAG sources through ``airflow dags test`` in an isolated ``AIRFLOW_HOME``.

    Runs are serialized (one at a time); the DAGs folder holds only the DAG under test while
    it runs, so a broken DAG file from an earlier run cannot interfere. Each run's files
    stay in ``<home>/runs/NNNN/`` (stdout, stderr, result) and ``<home>/runs/NNNN_<file>``
    (the DAG file). Use it as a context manager, or call :meth:`close`, to stop the server.

    :param home: from :func:`prepare_airflow_home`.
    :param mode: ``"fork"`` (default: a warm fork server, started right away) or
        ``"subprocess"`` (a fresh interpreter per run); default from env
        ``AIRFLOW_HARNESS_MODE``.
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
        :raises HarnessError: if no DAG run was created (the DAG is not in the file, the file
            does not import, the CLI failed); a failed *run* is a result, not an error.
        """
        request: dict[str, Any] = {
            "op": "dags_test",
            "dag_id": dag_id,
            "logical_date": logical_date or DEFAULT_LOGICAL_DATE,
            "conf": dict(conf) if conf else None,
        }
        with self._dag_file(dag_source, file_name or f"{dag_id}.py"):
            payload, stdout, stderr, rc, seconds = self._execute(request, env, timeout)
        record: DagRunRecord | None = payload.get("record")
        if record is None:  # DAG not found / failed to parse / CLI error
            raise HarnessError(
                f"no DAG run was created for {dag_id!r} (rc={rc})\n--- error ---\n"
                f"{payload.get('error')}\n--- stdout (tail) ---\n{stdout[-6000:]}\n"
                f"--- stderr ---\n{stderr[-3000:]}"
            )
        return DagRunResult(
            dag_id=dag_id,
            run_id=record.run_id,
            logical_date=request["logical_date"],
            state=record.state,
            tasks=_one_per_task(record.task_instances),
            xcoms=record.xcoms,
            asset_events=record.asset_events,
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
                [sys.executable, "-m", _MODULE, "--serve"],
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
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _run_subprocess(
        self, request: dict[str, Any], env: Mapping[str, str] | None, timeout: float
    ) -> dict[str, Any]:
        req_path = Path(request["result"]).with_name("request.json")
        req_path.write_text(json.dumps(request))
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(request["stdout"], "wb"))
            err = stack.enter_context(open(request["stderr"], "wb"))
            proc = subprocess.Popen(
                [sys.executable, "-m", _MODULE, "--child", str(req_path)],
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
        _write_result(payload, request["result"])
    return rc


def _write_result(payload: dict[str, Any], path: str) -> None:
    """Pickle ``payload`` to ``path`` atomically (XComs as ``repr`` if they do not pickle)."""
    try:
        data = pickle.dumps(payload)
    except Exception:
        record = payload.get("record")
        if isinstance(record, DagRunRecord):
            xcoms = {key: repr(value) for key, value in record.xcoms.items()}
            payload["record"] = dataclasses.replace(record, xcoms=xcoms)
        data = pickle.dumps(payload)
    tmp = path + ".tmp"
    Path(tmp).write_bytes(data)
    os.replace(tmp, path)


def _child_dags_test(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from airflow.__main__ import main as airflow_main

    argv = ["airflow", "dags", "test", request["dag_id"], request["logical_date"]]
    if request.get("conf"):
        argv += ["--conf", json.dumps(request["conf"])]
    sys.argv = argv
    db_path = _configured_db_path()
    before = latest_run_id(db_path, request["dag_id"])
    rc = 0
    error = None
    try:
        airflow_main()
    except SystemExit as exc:  # "DagRun failed" -> exit 1
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        rc = 2
        error = traceback.format_exc()
        traceback.print_exc()
    record = read_run(db_path, request["dag_id"], other_than=before, airflow_serde=True)
    return rc, {"record": record, "error": error}


def _configured_db_path() -> Path:
    """The SQLite file of the metadata DB Airflow is configured with in this process."""
    from airflow.configuration import conf

    uri = conf.get("database", "sql_alchemy_conn")
    return Path(uri.split("sqlite:///", 1)[1].split("?", 1)[0])


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
    _become_subreaper()
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
            reply = {"timed_out": False, "returncode": os.waitstatus_to_exitcode(status)}
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            reply = {"timed_out": True, "returncode": -9}
            break
        time.sleep(0.05)
    _reap_leftovers(request["stderr"])
    return reply


_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Linux: processes a run leaves behind (Airflow's task processes run in process
    groups of their own, so killing the run's group misses them) are re-parented to this
    server instead of init, so :func:`_reap_leftovers` can find them."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_leftovers(stderr_path: str) -> None:
    """Kill and reap what the run just finished left running (the server runs one run at a
    time, so any child of the server now is the run's), and say so in the run's stderr."""
    me = str(os.getpid())
    leftovers: list[str] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:  # the parent's pid
                pid = int(stat.parent.name)
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                leftovers.append(f"{pid} {cmdline.decode(errors='replace').strip()[:200]}")
    for _ in leftovers:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, 0)
    if leftovers:
        with contextlib.suppress(OSError), open(stderr_path, "a") as err:
            err.write(
                f"[harness] killed {len(leftovers)} process(es) the run left running: "
                + "; ".join(leftovers)
                + "\n"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """The harness's own processes: ``--serve`` (fork server) or ``--child REQUEST.json``.

    :class:`AirflowHarness` starts these; they are not meant to be run by hand.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--serve"]:
        _serve()
        return 0
    if args[:1] == ["--child"] and len(args) == 2:
        return _child_run(json.loads(Path(args[1]).read_text()))
    print(f"usage: python -m {_MODULE} --serve | --child REQUEST.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    # Run the copy of this module imported under its real name, not ``__main__``: what the
    # child pickles (DagRunRecord, TaskInfo) must unpickle as the caller's classes.
    from airflow_rds_export.testing.airflow_runs import main as _main

    raise SystemExit(_main())
