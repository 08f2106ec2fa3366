"""Running ``airflow dags test`` for the demo, and telling what happens as it happens.

The Airflow home, the metadata DB and reading a run back from it are the shared harness's
(:mod:`airflow_rds_export.testing.airflow_runs`); what is here is what only the demo
needs, and like the harness it never imports Airflow into the demo's own process:

* :func:`parse_log` and :func:`task_events`: ``airflow dags test`` output turned into the
  events worth showing (task starts, deferrals, reschedules, the components' one-line
  decisions, export progress, failures), each attributed to its task.
* :func:`run_dags_test`: one ``airflow dags test <dag_id> <logical_date> --conf ...`` as a
  plain CLI process, its whole output written to a log file while the events are handed
  to a callback as they arrive (the harness hands output back only after a run).

Log format: ``airflow dags test`` writes structlog lines
``<timestamp> [<level>] <message> [<logger>] key=value ...``; tracebacks follow on
continuation lines. Every task execution is delimited by ``[DAG TEST] starting
task_id=... map_index=...`` and ``[DAG TEST] end task task_id=...`` lines
(:func:`~airflow_rds_export.testing.airflow_runs.parse_task_marker`), so each log record
can be attributed to the task running at the time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from airflow_rds_export.testing.airflow_runs import AirflowHome, airflow_bin, parse_task_marker

__all__ = [
    "LogRecord",
    "RunOutput",
    "TaskEvent",
    "parse_log",
    "run_dags_test",
    "task_events",
]

_RECORD_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?) \[(?P<level>[a-z]+)\s*\] (?P<rest>.*)$"
)
_LOGGER_RE = re.compile(r"^(?P<msg>.*?)\s+\[(?P<logger>[A-Za-z_][\w.]*)\](?:\s+(?P<kv>.*))?$")
_REASON_RE = re.compile(r'\breason=(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')
_EXCEPTION_LINE_RE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): ")
_MARK_RUN_RE = re.compile(r"^Marking run <DagRun .*> (?P<state>successful|failed)$")


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
    logged by an ``airflow_rds_export`` component: a decision, a wait, progress; or by
    the example consumer DAG's task),
    ``skipped``, ``failed``, ``error`` (Airflow could not run the task at all),
    ``warning`` and ``run_end``.
    """

    kind: str
    task_id: str
    map_index: int
    text: str


#: The example DAG whose own task logs what it does (its module logger: Airflow imports a
#: DAG file as ``unusual_prefix_<hash>_<file stem>``).
_EXAMPLE_LOGGERS = ("nightly_export_consumer",)


def _is_component(logger: str) -> bool:
    return "airflow_rds_export" in logger or any(name in logger for name in _EXAMPLE_LOGGERS)


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
        marker = parse_task_marker(record.message)
        if marker is not None:
            if marker.starts:
                task_id, map_index = marker.task_id, marker.map_index
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
