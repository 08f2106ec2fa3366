"""Running ``airflow dags test`` for the demo, and reading back what happened.

Three jobs, none of which imports Airflow into the demo's own process (Airflow configures
itself from the environment at import time; every Airflow command runs as a subprocess
with an explicit, hermetic environment instead):

* :class:`AirflowHome`: a throw-away ``AIRFLOW_HOME`` with a SQLite metadata DB
  (``airflow db migrate``) and a DAGs folder.
* :func:`run_dags_test`: one ``airflow dags test <dag_id> <logical_date> --conf ...`` with
  its whole output written to a log file while the interesting lines (task starts,
  deferrals, reschedules, the components' one-line decisions, export progress, failures)
  are handed to a callback as they arrive.
* :func:`read_run`: the run's final state as the metadata DB records it (tables
  ``dag_run``, ``task_instance``, ``task_reschedule``, ``task_instance_history``,
  ``xcom``), read with :mod:`sqlite3` right after the run, before a re-run of the same
  logical date deletes those rows. The queries follow ``tests/airflow_harness.py``.

Log format: ``airflow dags test`` writes structlog lines
``<timestamp> [<level>] <message> [<logger>] key=value ...``; tracebacks follow on
continuation lines. Every task execution is delimited by ``[DAG TEST] starting
task_id=... map_index=...`` and ``[DAG TEST] end task task_id=...`` lines, so each log
record can be attributed to the task running at the time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "AirflowHome",
    "DagRunRecord",
    "LogRecord",
    "RunOutput",
    "TaskEvent",
    "TaskRecord",
    "parse_log",
    "read_run",
    "run_dags_test",
    "task_events",
]

_RECORD_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?) \[(?P<level>[a-z]+)\s*\] (?P<rest>.*)$"
)
_LOGGER_RE = re.compile(r"^(?P<msg>.*?)\s+\[(?P<logger>[A-Za-z_][\w.]*)\](?:\s+(?P<kv>.*))?$")
_TASK_MARKER_RE = re.compile(
    r"^\[DAG TEST\] (?P<kind>starting|end task) task_id=(?P<task_id>\S+) "
    r"map_index=(?P<map_index>-?\d+)"
)
_REASON_RE = re.compile(r'\breason=(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')
_EXCEPTION_LINE_RE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): ")
_MARK_RUN_RE = re.compile(r"^Marking run <DagRun .*> (?P<state>successful|failed)$")


# ------------------------------------------------------------------ Airflow home


@dataclasses.dataclass(frozen=True)
class AirflowHome:
    """A throw-away ``AIRFLOW_HOME``: SQLite metadata DB, DAGs folder, no examples."""

    path: Path

    @property
    def dags_folder(self) -> Path:
        """Where the DAG files under test are copied."""
        return self.path / "dags"

    @property
    def db_path(self) -> Path:
        """The SQLite metadata database."""
        return self.path / "airflow.db"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for Airflow commands: ours minus any ``AIRFLOW*``, plus config.

        Inherited ``AIRFLOW__*`` settings (a user's own Airflow) are dropped so the demo
        behaves the same on every machine.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.path / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.path / "logs"),
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

    def create(self) -> None:
        """Create the home's folders (the DB is created by :meth:`migrate`)."""
        for sub in ("dags", "plugins", "logs"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def migrate(self, log_file: Path, timeout: float = 300) -> None:
        """Run ``airflow db migrate`` (output to ``log_file``); raise if it fails."""
        with open(log_file, "w") as out:
            proc = subprocess.run(
                [airflow_bin(), "db", "migrate"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        if proc.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed (exit {proc.returncode}); see {log_file}"
            )


def airflow_bin() -> str:
    """The ``airflow`` executable next to this interpreter (the venv's), else on PATH."""
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


# ------------------------------------------------------------------ log parsing


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """One structlog record of ``airflow dags test`` output (with continuation lines)."""

    level: str
    message: str
    logger: str
    kv: str
    continuation: tuple[str, ...] = ()

    @property
    def exception(self) -> str | None:
        """The ``SomeError: message`` line of an attached traceback, if any."""
        for line in reversed(self.continuation):
            if _EXCEPTION_LINE_RE.match(line.strip()):
                return line.strip()
        return None

    @property
    def reason(self) -> str | None:
        """The ``reason=...`` key of the record (Airflow's "Skipping task." carries it)."""
        match = _REASON_RE.search(self.kv)
        if not match:
            return None
        if match.group("quoted") is not None:
            return match.group("quoted").replace('\\"', '"').replace("\\\\", "\\")
        return match.group("bare")


def parse_log(lines: Iterable[str]) -> Iterator[LogRecord]:
    """Group output lines into :class:`LogRecord` objects (continuations attached).

    Lines before the first record, and lines that are not records (tracebacks, warnings
    printed by libraries) become continuations of the record before them.
    """
    pending: tuple[str, str, str, str] | None = None
    extra: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n")
        match = _RECORD_RE.match(line)
        if match is None:
            if pending is not None:
                extra.append(line)
            continue
        if pending is not None:
            yield LogRecord(*pending, continuation=tuple(extra))
        rest = match.group("rest")
        parts = _LOGGER_RE.match(rest)
        if parts is None:
            pending = (match.group("level"), rest.strip(), "", "")
        else:
            pending = (
                match.group("level"),
                parts.group("msg").strip(),
                parts.group("logger"),
                parts.group("kv") or "",
            )
        extra = []
    if pending is not None:
        yield LogRecord(*pending, continuation=tuple(extra))


@dataclasses.dataclass(frozen=True)
class TaskEvent:
    """Something worth telling about a task (or the run, with ``task_id`` empty).

    ``kind`` is one of ``start``, ``deferred``, ``rescheduled``, ``decision`` (a line
    logged by an ``airflow_rds_export`` component: a decision, a wait, progress),
    ``skipped``, ``failed``, ``error`` (Airflow could not run the task at all),
    ``warning`` and ``run_end``.
    """

    kind: str
    task_id: str
    map_index: int
    text: str


def _is_component(logger: str) -> bool:
    return "airflow_rds_export" in logger


def _strip_exception_type(line: str) -> str:
    """``airflow.sdk.exceptions.AirflowFailException: msg`` -> ``msg``; others unchanged."""
    match = _EXCEPTION_LINE_RE.match(line)
    if match and match.group("type").rsplit(".", 1)[-1] in (
        "AirflowFailException",
        "AirflowException",
        "AirflowSensorTimeout",
    ):
        return line[match.end() :]
    return line


def task_events(records: Iterable[LogRecord]) -> Iterator[TaskEvent]:
    """The events worth showing, each attributed to the task that was running.

    ``XCom not found`` errors are not reported: Airflow logs one whenever a task iterates
    the XComs of a mapped task (it reads one past the end to find the length).
    """
    task_id, map_index = "", -1
    for record in records:
        marker = _TASK_MARKER_RE.match(record.message)
        if marker is not None:
            if marker.group("kind") == "starting":
                task_id, map_index = marker.group("task_id"), int(marker.group("map_index"))
                yield TaskEvent("start", task_id, map_index, "")
            else:
                task_id, map_index = "", -1
            continue
        message = record.message
        event: tuple[str, str] | None = None
        if message.startswith("Pausing task as DEFERRED"):
            event = ("deferred", "deferred: the wait continues in the triggerer")
        elif message.startswith("Rescheduling task"):
            event = ("rescheduled", "rescheduled: the worker slot is freed until the next try")
        elif message == "Skipping task.":
            event = ("skipped", record.reason or "skipped")
        elif message == "Task failed with exception":
            event = ("failed", _strip_exception_type(record.exception or "failed"))
        elif message.startswith("[DAG TEST] Error running task"):
            event = ("error", f"Airflow could not run the task: {record.exception or message}")
        elif run_end := _MARK_RUN_RE.match(message):
            event = ("run_end", run_end.group("state"))
        elif _is_component(record.logger):
            event = ("decision" if record.level == "info" else "warning", message)
        elif record.level in ("error", "critical") and message != "XCom not found":
            event = ("warning", f"{message} {record.exception or ''}".strip())
        if event is not None:
            yield TaskEvent(event[0], task_id, map_index, event[1])


# ------------------------------------------------------------------ running


@dataclasses.dataclass(frozen=True)
class RunOutput:
    """What one ``airflow dags test`` process did, as seen from outside."""

    returncode: int
    seconds: float
    log_file: Path
    events: tuple[TaskEvent, ...]
    timed_out: bool


def run_dags_test(
    home: AirflowHome,
    dag_id: str,
    logical_date: str,
    conf: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    log_file: Path,
    on_event: Callable[[TaskEvent, float], None],
    timeout: float,
) -> RunOutput:
    """Run ``airflow dags test dag_id logical_date --conf <json>`` to completion.

    Every output line goes to ``log_file``; each :class:`TaskEvent` is passed to
    ``on_event(event, seconds_since_start)`` as it happens. The process runs in its own
    session and its whole process group is killed on timeout, on Ctrl-C and on any
    error here, so nothing is left running.
    """
    command = [airflow_bin(), "dags", "test", dag_id, logical_date, "--conf", json.dumps(conf)]
    started = time.monotonic()
    events: list[TaskEvent] = []
    timed_out = threading.Event()
    with open(log_file, "w") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(
            command,
            env=home.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )

        def expire() -> None:
            timed_out.set()
            _kill_group(proc)

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for event in task_events(parse_log(_tee(proc.stdout, log))):
                events.append(event)
                on_event(event, time.monotonic() - started)
            returncode = proc.wait()
        finally:
            timer.cancel()
            _kill_group(proc)
    return RunOutput(
        returncode=returncode,
        seconds=time.monotonic() - started,
        log_file=log_file,
        events=tuple(events),
        timed_out=timed_out.is_set(),
    )


def _tee(stream: IO[str], log: IO[str]) -> Iterator[str]:
    for line in stream:
        log.write(line)
        log.flush()
        yield line


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop ``proc`` and everything it started, at once.

    SIGINT first (what Ctrl-C in a terminal would send it), then SIGKILL after 2 s: the
    run is being abandoned and everything it touched (the emulator, the throw-away
    metadata DB) is discarded, so a graceful shutdown buys nothing. (``airflow dags test``
    keeps running its tasks for seconds after a SIGTERM.)
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ------------------------------------------------------------------ metadata DB


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """One task instance as the metadata DB has it after the run."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    reschedules: int
    """Rows in ``task_reschedule``: how many times it was put up for reschedule."""
    earlier_tries: tuple[str | None, ...]
    """States of earlier tries (``task_instance_history``), oldest first."""
    xcom: Any
    """The ``return_value`` XCom, JSON-decoded; None when none was pushed."""


@dataclasses.dataclass(frozen=True)
class DagRunRecord:
    """A DAG run and its task instances, read from the metadata DB."""

    dag_id: str
    run_id: str
    state: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    tasks: tuple[TaskRecord, ...]

    def task(self, task_id: str, map_index: int = -1) -> TaskRecord | None:
        """The task instance ``task_id`` / ``map_index``, if the run has it."""
        for task in self.tasks:
            if task.task_id == task_id and task.map_index == map_index:
                return task
        return None


def latest_run_id(db_path: Path, dag_id: str) -> str | None:
    """The ``run_id`` of ``dag_id``'s newest run (None if it has none)."""
    if not db_path.exists():
        return None
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as con:
        row = con.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return str(row[0]) if row else None


def read_run(db_path: Path, dag_id: str, other_than: str | None = None) -> DagRunRecord | None:
    """The newest run of ``dag_id``, or None; None too when its ``run_id`` is
    ``other_than`` (the run that existed before: no new run was created).

    Run ids, not row ids, tell runs apart: a re-run of the same logical date deletes the
    old ``dag_run`` row, and SQLite may hand the new row the same id.
    """
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as con:
        con.row_factory = sqlite3.Row
        run = con.execute(
            "SELECT id, run_id, state, data_interval_start, data_interval_end FROM dag_run "
            "WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if run is None or (other_than is not None and run["run_id"] == other_than):
            return None
        xcoms = {
            (row["task_id"], row["map_index"]): _decode_xcom(row["value"])
            for row in con.execute(
                "SELECT task_id, map_index, value FROM xcom WHERE dag_id = ? AND run_id = ? "
                "AND key = 'return_value'",
                (dag_id, run["run_id"]),
            )
        }
        tasks = []
        for ti in con.execute(
            "SELECT id, task_id, map_index, state, try_number FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
            (dag_id, run["run_id"]),
        ).fetchall():
            reschedules = con.execute(
                "SELECT COUNT(*) FROM task_reschedule WHERE ti_id = ?", (ti["id"],)
            ).fetchone()[0]
            earlier = tuple(
                row[0]
                for row in con.execute(
                    "SELECT state FROM task_instance_history WHERE dag_id = ? AND run_id = ? "
                    "AND task_id = ? AND map_index = ? ORDER BY try_number",
                    (dag_id, run["run_id"], ti["task_id"], ti["map_index"]),
                )
            )
            tasks.append(
                TaskRecord(
                    task_id=ti["task_id"],
                    map_index=ti["map_index"],
                    state=ti["state"],
                    try_number=ti["try_number"],
                    reschedules=int(reschedules),
                    earlier_tries=earlier,
                    xcom=xcoms.get((ti["task_id"], ti["map_index"])),
                )
            )
        return DagRunRecord(
            dag_id=dag_id,
            run_id=run["run_id"],
            state=run["state"],
            data_interval_start=run["data_interval_start"],
            data_interval_end=run["data_interval_end"],
            tasks=tuple(tasks),
        )


def _decode_xcom(raw: Any) -> Any:
    """XCom values are stored as JSON text (dicts and lists of plain values here)."""
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw
