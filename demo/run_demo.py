"""The demo: the example DAGs, run by real Airflow against an emulated AWS account.

Usage (``bash scripts/demo.sh`` installs the environment first, then runs this)::

    .venv/bin/python demo/run_demo.py [--workdir DIR] [--timeout SECONDS]

Steps: a throw-away ``AIRFLOW_HOME`` with SQLite (``airflow db migrate``) in the work
directory (default ``.airflow-demo/``, wiped at start); the emulator server on
127.0.0.1 (a free port); the scenario of :mod:`scenario` seeded into it; then each run of
the scenario as ``airflow dags test <dag_id> <logical date> --conf <json>``, with the
example DAG files copied into the DAGs folder and ``RDS_EXPORT_POLL_SECONDS=1``.

Output: progress lines while the runs go (task starts, deferrals, the components' one-line
decisions, export progress, failures), then a summary: every task's final state and the
decision taken, the S3 URIs written (from the XComs), and the AWS calls made (as the
emulator counted them). Each run's full output is in ``<workdir>/logs/``.

Exit status: 0 when every outcome is what the scenario expects, 1 when any differs, 2
when the demo could not set itself up, 130 when interrupted. The summary is printed in
every case, and the emulator and any Airflow process are stopped in every case.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import signal
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from airflow_runs import RunOutput, TaskEvent, run_dags_test
from scenario import Check, RunSpec, World, build_runs, seed, world_checks

from airflow_rds_export.testing.airflow_runs import (
    AirflowHome,
    DagRunRecord,
    TaskInfo,
    latest_run_id,
    prepare_airflow_home,
    read_run,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
DEFAULT_WORKDIR = REPO / ".airflow-demo"
WORKDIR_MARKER = ".airflow-rds-export-demo"
POLL_SECONDS = "1"
NAME_WIDTH = 28
_PROGRESS_RE = re.compile(r"^Export \S+ is (?P<status>[A-Z_]+): (?P<percent>[\d?]+)% done")
_WAITING_RE = re.compile(r"^(?P<what>.*?)(?:, not available yet)?; waiting$")


class Interrupted(Exception):
    """SIGTERM / SIGHUP: stop the way Ctrl-C does, cleaning up on the way out."""


@dataclasses.dataclass
class RunResult:
    """One run of the scenario: its spec, what Airflow did, and the checks."""

    number: int
    spec: RunSpec
    output: RunOutput | None = None
    events: list[TaskEvent] = dataclasses.field(default_factory=list)
    """Every event seen, kept as they arrive (so an interrupted run still has them)."""
    record: DagRunRecord | None = None
    aws_calls: Counter[str] = dataclasses.field(default_factory=Counter)
    checks: list[Check] = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------ output helpers


class Console:
    """Prints progress and the summary; keeps a copy of the summary for summary.txt."""

    def __init__(self, stream: TextIO, started: float) -> None:
        self.stream = stream
        self.started = started
        self.width = max(80, min(160, shutil.get_terminal_size((120, 24)).columns))

    def line(self, text: str = "") -> None:
        """Print one line as it is."""
        print(text, file=self.stream, flush=True)

    def step(self, text: str) -> None:
        """A setup step, stamped with the time since the demo started."""
        self.wrapped(f"[{time.monotonic() - self.started:5.1f}s] ", text)

    def wrapped(self, prefix: str, text: str, indent: int | None = None) -> None:
        """``prefix`` + ``text``, wrapped to the terminal with a hanging indent."""
        pad = " " * (len(prefix) if indent is None else indent)
        lines = textwrap.wrap(
            text,
            width=self.width,
            initial_indent=prefix,
            subsequent_indent=pad,
            break_on_hyphens=False,
            break_long_words=False,
        )
        for line in lines or [prefix.rstrip()]:
            self.line(line)


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def task_name(spec: RunSpec, task_id: str, map_index: int) -> str:
    """The scenario's name for a task instance (``start_and_wait[inventory]``)."""
    expectation = spec.expectation(task_id, map_index)
    if expectation is not None:
        return expectation.name
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


# ------------------------------------------------------------------ describing tasks


def describe_task(events: Sequence[TaskEvent], record: TaskInfo | None) -> str:
    """The decision a task took, in one line, from its events (and DB record).

    ``deferred 1x [Snapshot X is 'creating' x2]; then: Snapshot X is available``
    """
    deferrals = sum(1 for e in events if e.kind == "deferred")
    reschedules = record.reschedules if record is not None else 0
    reschedules = max(reschedules, sum(1 for e in events if e.kind == "rescheduled"))
    waits: list[str] = []
    progress: list[tuple[str, str]] = []
    final: list[str] = []
    for event in events:
        if event.kind == "decision":
            if match := _PROGRESS_RE.match(event.text):
                progress.append((match["status"], match["percent"]))
            elif match := _WAITING_RE.match(event.text):
                waits.append(match["what"])
            else:
                final = [event.text]
        elif event.kind in ("skipped", "failed", "error"):
            final = [f"{event.kind}: {event.text}"]
        elif event.kind == "warning":
            final.append(f"warning: {event.text}")
    parts = []
    if reschedules:
        parts.append(f"rescheduled {reschedules}x")
    if deferrals:
        parts.append(f"deferred {deferrals}x")
    head = ", ".join(parts)
    detail = " > ".join(_progress_steps(progress)) if progress else "; ".join(_collapse(waits))
    if detail:
        head = f"{head} [{detail}]" if head else f"[{detail}]"
    if final:
        tail = "; ".join(final)
        return f"{head}; then: {tail}" if head else tail
    return head or "-"


def _progress_steps(progress: Sequence[tuple[str, str]]) -> list[str]:
    """``[(IN_PROGRESS, 25), (IN_PROGRESS, 50)]`` -> ``["IN_PROGRESS 25%", "50%"]``."""
    steps = []
    previous = None
    for status, percent in progress:
        steps.append(f"{percent}%" if status == previous else f"{status} {percent}%")
        previous = status
    return steps


def _collapse(items: Iterable[str]) -> list[str]:
    """Consecutive repeats as one item with a count: ``a, a, b`` -> ``a x2, b``."""
    out: list[tuple[str, int]] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1] = (item, out[-1][1] + 1)
        else:
            out.append((item, 1))
    return [item if count == 1 else f"{item} x{count}" for item, count in out]


def events_of(events: Sequence[TaskEvent], task_id: str, map_index: int) -> list[TaskEvent]:
    """The events of one task instance."""
    return [e for e in events if e.task_id == task_id and e.map_index == map_index]


# ------------------------------------------------------------------ checks


def check_run(result: RunResult) -> list[Check]:
    """Compare a run with its spec: run state, task states, decisions, XComs."""
    spec, record, output = result.spec, result.record, result.output
    checks: list[Check] = []
    run_name = f"run {result.number} ({spec.dag_id})"
    if output is not None and output.timed_out:
        checks.append(Check(run_name, "finishes in time", False, "timed out and was killed"))
    if record is None:
        checks.append(
            Check(run_name, f"run {spec.expected_state}", False, "no DAG run was recorded")
        )
        return checks
    checks.append(
        Check(
            run_name,
            f"run {spec.expected_state}",
            record.state == spec.expected_state,
            str(record.state),
        )
    )
    for expected in spec.tasks:
        subject = f"run {result.number} {expected.name}"
        task = record.task(expected.task_id, expected.map_index)
        if task is None:
            checks.append(Check(subject, f"state {expected.state}", False, "no such task instance"))
            continue
        checks.append(
            Check(subject, f"state {expected.state}", task.state == expected.state, str(task.state))
        )
        events = events_of(result.events, expected.task_id, expected.map_index)
        said = "\n".join(e.text for e in events)
        for text in expected.log_contains:
            checks.append(Check(subject, f"logs {text!r}", text in said, _said(events)))
        if expected.min_deferrals:
            deferrals = sum(1 for e in events if e.kind == "deferred")
            checks.append(
                Check(
                    subject,
                    f"deferred at least {expected.min_deferrals}x",
                    deferrals >= expected.min_deferrals,
                    f"deferred {deferrals}x",
                )
            )
        if expected.tries is not None:
            checks.append(
                Check(
                    subject,
                    f"try {expected.tries} is the last (not retried)",
                    task.try_number == expected.tries,
                    f"try_number {task.try_number}",
                )
            )
        returned = record.return_value(expected.task_id, expected.map_index)
        xcom = returned if isinstance(returned, Mapping) else {}
        if expected.s3_uri is not None:
            checks.append(
                Check(
                    subject,
                    f"XCom S3Uri {expected.s3_uri}",
                    xcom.get("S3Uri") == expected.s3_uri,
                    str(xcom.get("S3Uri")),
                )
            )
        for field, value in expected.xcom_fields.items():
            checks.append(
                Check(
                    subject,
                    f"XCom {field} {value}",
                    xcom.get(field) == value,
                    str(xcom.get(field)),
                )
            )
    if spec.inspect is not None:
        checks.extend(spec.inspect(record))
    return checks


def _in_run_order(record: DagRunRecord | None, events: Sequence[TaskEvent]) -> list[TaskInfo]:
    """The run's task instances in the order they started (never-started ones last)."""
    if record is None:
        return []
    first: dict[tuple[str, int], int] = {}
    for index, event in enumerate(events):
        first.setdefault((event.task_id, event.map_index), index)
    return sorted(record.task_instances, key=lambda t: first.get((t.task_id, t.map_index), 1 << 30))


def _said(events: Sequence[TaskEvent]) -> str:
    lines = [e.text for e in events if e.text]
    return " | ".join(lines[-3:]) if lines else "nothing logged"


# ------------------------------------------------------------------ the demo


class WorkdirRefused(Exception):
    """The work directory exists but the demo did not create it: it is not wiped."""


def prepare_workdir(workdir: Path) -> None:
    """Wipe and recreate the work directory (only one the demo created before)."""
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / WORKDIR_MARKER).exists():
        raise WorkdirRefused(
            f"{workdir} exists and was not created by the demo; refusing to wipe it. "
            "Remove it or pass another --workdir"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / WORKDIR_MARKER).write_text("Created by demo/run_demo.py; wiped on every run.\n")
    (workdir / "logs").mkdir()


def airflow_version() -> str:
    """The installed apache-airflow version."""
    try:
        return version("apache-airflow")
    except PackageNotFoundError:  # pragma: no cover - the venv always has it
        return "?"


def run_scenario(
    console: Console,
    workdir: Path,
    timeout: float,
    results: list[RunResult],
    totals: dict[str, Any],
) -> None:
    """Set up, seed and run every run of the scenario; fill ``results`` as it goes."""
    from airflow_rds_export.testing import EmulatorServer, airflow_connection_env

    logs = workdir / "logs"
    home = prepare_airflow_home(
        workdir / "airflow-home", use_cache=False, migrate_log=logs / "0-airflow-db-migrate.log"
    )
    console.step(
        f"Airflow {airflow_version()}: throw-away AIRFLOW_HOME {display_path(home.path)} "
        f"with SQLite; airflow db migrate done in {home.migrate_seconds:.1f}s"
    )
    for spec_file in ("nightly_rds_export.py", "nightly_export_consumer.py", "fleet_rds_export.py"):
        shutil.copy(EXAMPLE_DAGS / spec_file, home.dags_folder / spec_file)

    with EmulatorServer() as server:
        control = server.control
        console.step(f"emulator: AWS (RDS, S3, IAM, KMS) on {server.endpoint_url}")
        world = seed(control)
        totals["world"] = world
        for fact in world.describe():
            console.wrapped(" " * 9 + "seeded: ", fact)
        env = {
            **airflow_connection_env(server.endpoint_url, region_name=server.region_name),
            **world.variables(),
            "RDS_EXPORT_POLL_SECONDS": POLL_SECONDS,
        }
        control.reset_calls()
        for number, spec in enumerate(build_runs(world), start=1):
            result = RunResult(number, spec)
            results.append(result)
            run_one(console, home, world, spec, result, env, logs, control, timeout)
        totals["calls"] = Counter(control.calls())
        totals["exports"] = control.export_tasks()
        totals["world_checks"] = world_checks(world, totals["exports"])


def run_one(
    console: Console,
    home: AirflowHome,
    world: World,
    spec: RunSpec,
    result: RunResult,
    env: Mapping[str, str],
    logs: Path,
    control: Any,
    timeout: float,
) -> None:
    """One ``airflow dags test`` of the scenario, with live progress; then its checks."""
    log_file = logs / f"{result.number}-{spec.key}.log"
    console.line()
    console.line(f"== Run {result.number}: {spec.title}")
    console.wrapped("   shows: ", spec.shows)
    console.line(f"   $ airflow dags test {spec.dag_id} {world.logical_date} --conf '...'")
    console.line(f"   full log: {display_path(log_file)}")

    def show(event: TaskEvent, seconds: float) -> None:
        result.events.append(event)
        stamp = f"   [{seconds:5.1f}s] "
        if event.kind == "run_end":
            console.line(f"{stamp}run {event.text}")
            return
        name = task_name(spec, event.task_id, event.map_index) if event.task_id else "(run)"
        text = "started" if event.kind == "start" else event.text
        if event.kind in ("failed", "error", "warning"):
            text = f"{event.kind.upper()}: {text}"
        elif event.kind == "skipped":
            text = f"SKIPPED: {text}"
        prefix = f"{stamp}{name:<{NAME_WIDTH}} "
        console.wrapped(prefix, text, indent=len(stamp) + 2)

    calls_before = Counter(control.calls())
    before = latest_run_id(home.db_path, spec.dag_id)
    try:
        result.output = run_dags_test(
            home,
            spec.dag_id,
            world.logical_date,
            spec.conf,
            env=env,
            log_file=log_file,
            on_event=show,
            timeout=timeout,
        )
    finally:
        result.aws_calls = Counter(control.calls()) - calls_before
        result.record = read_run(home.db_path, spec.dag_id, other_than=before)
    result.checks = check_run(result)
    if spec.after is not None:
        result.checks.extend(spec.after(control))
    failed = sum(1 for c in result.checks if not c.ok)
    state = result.record.state if result.record else "not recorded"
    console.line(
        f"   -> run {state} in {result.output.seconds:.1f}s, "
        f"{sum(result.aws_calls.values())} AWS calls; "
        + ("as expected" if not failed else f"{failed} outcome(s) NOT as expected")
    )


def print_summary(
    console: Console,
    results: Sequence[RunResult],
    totals: Mapping[str, Any],
    workdir: Path,
    problem: str | None,
) -> bool:
    """Print the summary; return whether every outcome was as expected."""
    lines: list[str] = []

    def out(prefix: str, text: str = "", indent: int | None = None) -> None:
        if not text:
            lines.append(prefix)
            return
        pad = " " * (len(prefix) if indent is None else indent)
        lines.extend(
            textwrap.wrap(
                text,
                width=console.width,
                initial_indent=prefix,
                subsequent_indent=pad,
                break_on_hyphens=False,
                break_long_words=False,
            )
            or [prefix]
        )

    out("")
    out("=" * min(console.width, 100))
    out("Summary")
    out("=" * min(console.width, 100))
    all_checks: list[Check] = []
    uris: list[str] = []
    for result in results:
        spec, record = result.spec, result.record
        state = record.state if record else "not recorded"
        seconds = f"{result.output.seconds:.1f}s" if result.output else "-"
        out(
            f"Run {result.number}: {spec.title}: run {state} "
            f"(expected {spec.expected_state}), {seconds}, "
            f"{sum(result.aws_calls.values())} AWS calls"
        )
        if record is not None and record.data_interval_start:
            out(
                "  data interval: "
                f"[{record.data_interval_start[:16]}, {(record.data_interval_end or '')[:16]}]"
            )
        for task in _in_run_order(record, result.events):
            name = task_name(spec, task.task_id, task.map_index)
            events = events_of(result.events, task.task_id, task.map_index)
            tries = f" (try {task.try_number})" if task.try_number > 1 else ""
            prefix = f"  {name:<{NAME_WIDTH}} {str(task.state) + tries:<9} "
            out(prefix, describe_task(events, task), indent=NAME_WIDTH + 13)
            returned = record.return_value(task.task_id, task.map_index) if record else None
            if isinstance(returned, Mapping) and returned.get("S3Uri"):
                uri = str(returned["S3Uri"])
                if uri not in uris:
                    uris.append(uri)
        all_checks.extend(result.checks)
    all_checks.extend(totals.get("world_checks", []))
    out("")
    out("S3 URIs written (from the XComs):")
    for uri in uris or ["(none)"]:
        out(f"  {uri}")
    exports = totals.get("exports")
    if exports is not None:
        out(
            "Exports in the emulated account: ",
            ", ".join(
                f"{t['ExportTaskIdentifier']} {str(t['Status']).upper()}"
                for t in sorted(exports, key=lambda t: str(t["ExportTaskIdentifier"]))
            ),
            indent=2,
        )
    calls: Counter[str] = totals.get("calls") or sum((r.aws_calls for r in results), Counter[str]())
    by_action = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
    out(f"AWS calls made: {sum(calls.values())} ", f"({by_action})" if by_action else "", indent=2)
    failed = [c for c in all_checks if not c.ok]
    ok = not failed and problem is None and bool(results)
    out("")
    for check in failed:
        out(
            "  NOT AS EXPECTED: ",
            f"{check.subject}: expected {check.expected}; got {check.actual}",
            indent=4,
        )
    if problem:
        out("  PROBLEM: ", problem, indent=4)
    out(f"Full logs: {display_path(workdir / 'logs')}/")
    if ok:
        out(f"DEMO OK: all {len(all_checks)} expected outcomes seen.")
    elif problem:
        before = f" ({len(failed)} outcomes differed before that)" if failed else ""
        out(f"DEMO FAILED: it did not finish{before}.")
    else:
        out(f"DEMO FAILED: {len(failed)} of {len(all_checks)} expected outcomes differ.")
    for line in lines:
        console.line(line)
    (workdir / "summary.txt").write_text("\n".join(lines) + "\n")
    return ok


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="work directory, wiped at start (default: .airflow-demo/ in the repository)",
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds allowed per DAG run (default 180)"
    )
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    # Ctrl-C must reach the cleanup even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)

    started = time.monotonic()
    console = Console(sys.stdout, started)
    console.line(
        "RDS snapshot export demo: the example DAGs, run by real Airflow (airflow dags test) "
        "against an emulated AWS account"
    )
    try:
        prepare_workdir(workdir)
    except WorkdirRefused as exc:
        console.line(f"demo: {exc}")
        return 2
    console.line(f"work dir: {display_path(workdir)} (wiped on every run)")
    results: list[RunResult] = []
    totals: dict[str, Any] = {}
    problem: str | None = None
    status = 0
    try:
        run_scenario(console, workdir, args.timeout, results, totals)
    except (KeyboardInterrupt, Interrupted) as exc:
        problem = f"interrupted ({str(exc) or 'Ctrl-C'}); everything it started was stopped"
        status = 130
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
        status = 2
    ok = print_summary(console, results, totals, workdir, problem)
    console.line(f"Demo took {time.monotonic() - started:.0f}s.")
    if status:
        return status
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
