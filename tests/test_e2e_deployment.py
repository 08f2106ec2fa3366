"""End to end: a real Airflow 3.3 deployment on this machine runs the components deferred.

Scheduler, dag-processor, triggerer and api-server run as separate ``airflow`` processes
(LocalExecutor, SQLite metadata DB in a throw-away ``AIRFLOW_HOME``), the emulator runs as
a server on 127.0.0.1, and every process gets ``AIRFLOW_CONN_AWS_DEFAULT`` pointing at it.
Runs are triggered and read back through the REST API (JWT from SimpleAuthManager with
``simple_auth_manager_all_admins``); task logs are read from ``AIRFLOW_HOME/logs``.

How "where did it run" is told apart (Airflow 3.3, LocalExecutor):

* a LocalExecutor worker writes ``attempt=N.log``, one ``::group::Pre Execute`` block per
  start (first start, and each resumption after a deferral); it also sets ``hostname``,
  ``pid`` and ``queued_when`` on the task instance;
* the triggerer writes ``attempt=N.log.trigger.<triggerer job id>.log`` per trigger run;
  a task started from the trigger is never queued: no ``queued_when``, ``hostname``, ``pid``.

Timing: ~20 s to start the deployment, ~75 s per run (the export is paced to take 65 s).
"""

from __future__ import annotations

import collections
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e.deployment import Deployment

from airflow_rds_export.testing.airflow_runs import prepare_airflow_home

pytestmark = pytest.mark.e2e

DAG_ID = "rds_e2e"
RUN_TIMEOUT = 240.0
PRE_EXECUTE = "::group::Pre Execute"

DAG_SOURCE = '''
"""Written by tests/test_e2e_deployment.py: every component, waiting in the triggerer."""
import json

import pendulum
from airflow.sdk import DAG, task

from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsExportTaskStateSensor, RdsSnapshotReadySensor

EXPORT = {
    "s3_bucket_name": "rds-exports",
    "s3_prefix": "e2e",
    "iam_role_arn": %(role)r,
    "kms_key_id": %(key)r,
}


def as_dict(value):
    """An XCom pushed by a trigger (end_from_trigger): Airflow 3.3.2 stores it as a JSON
    string (encoded twice), so downstream templates see a str. Accept both."""
    return json.loads(value) if isinstance(value, str) else value


with DAG(
    "rds_e2e",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"snapshot": "", "export_id": "", "other_id": "", "other_arn": ""},
    user_defined_filters={"as_dict": as_dict},
):
    wait_snapshot = RdsSnapshotReadySensor(
        task_id="wait_snapshot",
        db_snapshot_identifier="{{ params.snapshot }}",
        deferrable=True,
        start_from_trigger=True,
        end_from_trigger=True,
        poke_interval=2,
        timeout=600,
    )
    start_export = RdsStartExportTaskOperator(
        task_id="start_export",
        export_task_identifier="{{ params.export_id }}",
        source_arn="{{ (ti.xcom_pull(task_ids='wait_snapshot') | as_dict)['SourceArn'] }}",
        **EXPORT,
        deferrable=True,
        wait_for_completion=True,
        end_from_trigger=True,
        emit_asset=False,  # the whole wait ends in the triggerer
        waiter_interval=3,
        waiter_max_attempts=200,
    )
    wait_export = RdsExportTaskStateSensor(
        task_id="wait_export",
        export_task_identifier="{{ params.export_id }}",
        deferrable=True,
        start_from_trigger=True,
        end_from_trigger=True,
        # The example nightly_export_consumer DAG (deployed too) is scheduled on the
        # nightly example's alias: announce this run's export there.
        asset_alias="rds-export:nightly_rds_export.wait_for_export",
        poke_interval=3,
        timeout=600,
    )
    start_other = RdsStartExportTaskOperator(
        task_id="start_other",
        export_task_identifier="{{ params.other_id }}",
        source_arn="{{ params.other_arn }}",
        **EXPORT,
        wait_for_completion=False,
    )
    other_running = RdsExportTaskStateSensor(
        task_id="other_running",
        export_task_identifier="{{ params.other_id }}",
        target_statuses=["in_progress"],
        mode="reschedule",
        poke_interval=%(reschedule_poke)d,
        timeout=600,
    )
    cancel_other = RdsCancelExportTaskOperator(
        task_id="cancel_other",
        export_task_identifier="{{ params.other_id }}",
        deferrable=True,
        check_interval=5,
    )

    @task
    def xcom_types(**context):
        """The type of what a downstream task pulls from each upstream task."""
        pulled = ("wait_snapshot", "start_export", "wait_export", "start_other")
        return {t: type(context["ti"].xcom_pull(task_ids=t)).__name__ for t in pulled}

    wait_snapshot >> [start_export, wait_export] >> xcom_types()
    start_other >> other_running >> cancel_other
'''

# apache/airflow#71172 (reschedule-mode race) was reported with a 5 s poke interval.
RESCHEDULE_POKE_SECONDS = 20
# The scheduler's "stale executor success" races (apache/airflow#67287: the TI is already
# QUEUED again; #71580 / #72716: already RUNNING) fail a deferred task whose trigger fires
# before the scheduler has drained the executor event of the worker's defer-exit (seen
# here ~5 s after the deferral, on 2 cores with SQLite). Airflow 3.3.2 only guards the
# SCHEDULED variant. So every worker-deferred wait here lasts well over that: the cancel
# takes 20 s to reach CANCELED (with 4 s it failed the cancel task in a trial run).
STATE_MISMATCH = "but the task instance's state attribute is"
DEFERRED_WAITS = ("wait_snapshot", "start_export", "wait_export", "cancel_other")
TRIGGER_STARTED = ("wait_snapshot", "wait_export")
CONSUMER_DAG_ID = "nightly_export_consumer"
EXAMPLE_DAGS = Path(__file__).resolve().parent.parent / "example_dags"
# Region of the deployment's connection; the console links are for it.
REGION = "us-east-1"
CONSOLE = f"https://{REGION}.console.aws.amazon.com"


class RunFailed(Exception):
    """The DAG run did not succeed (not an AssertionError: see the strict xfail below)."""


@dataclass
class Env:
    """The running deployment, the emulator server behind it, and its seeded resources."""

    deployment: Deployment
    control: Any
    home: Path


@dataclass
class RunRecord:
    """What one DAG run left behind, read right after it finished."""

    run_id: str
    ids: dict[str, str]
    run: dict[str, Any]
    tis: dict[str, dict[str, Any]]
    seen_states: dict[str, set[str]]
    logs: dict[str, dict[str, str]] = field(default_factory=dict)
    """``task_id -> {log file name -> text}``."""
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def worker_log(self, task_id: str) -> str:
        return self.logs[task_id].get("attempt=1.log", "")

    def trigger_logs(self, task_id: str) -> dict[str, str]:
        return {n: t for n, t in self.logs[task_id].items() if ".log.trigger." in n}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Start the emulator server and the four Airflow components; stop them all after."""
    from airflow_rds_export.testing import EmulatorServer, airflow_connection_env

    home = prepare_airflow_home(tmp_path_factory.mktemp("e2e") / "home")
    with EmulatorServer(region_name="us-east-1") as server:
        control = server.control
        prereq = control.seed_export_prerequisites(bucket="rds-exports")
        control.create_db_instance("orders")
        consumer = EXAMPLE_DAGS / f"{CONSUMER_DAG_ID}.py"
        (home.dags_folder / consumer.name).write_text(consumer.read_text())
        (home.dags_folder / f"{DAG_ID}.py").write_text(
            DAG_SOURCE
            % {
                "role": prereq["iam_role_arn"],
                "key": prereq["kms_key_id"],
                "reschedule_poke": RESCHEDULE_POKE_SECONDS,
            }
        )
        deployment = Deployment(home.path, home.env(), airflow_connection_env(server.endpoint_url))
        started = time.monotonic()
        try:
            deployment.start_and_wait_for(DAG_ID, CONSUMER_DAG_ID)
            print(f"deployment ready in {time.monotonic() - started:.1f} s")
            yield Env(deployment=deployment, control=control, home=home.path)
        except BaseException:
            print(deployment.diagnostics())
            raise
        finally:
            deployment.stop_all()
            print(f"deployment up for {time.monotonic() - started:.1f} s in total")


def run_dag(env: Env, suffix: str, *, kill_triggerer: bool = False) -> RunRecord:
    """Seed a snapshot and two paced exports, trigger a run, wait for it, record it.

    With ``kill_triggerer``: once ``start_export`` is deferred and its export is
    IN_PROGRESS, SIGKILL the triggerer (its whole process group) and start a new one.
    """
    dep, control = env.deployment, env.control
    ids = {
        "snapshot": f"orders-{suffix}",
        "export_id": f"orders-export-{suffix}",
        "other_id": f"orders-other-{suffix}",
    }
    control.create_db_snapshot(
        ids["snapshot"], db_instance_identifier="orders", ready_after_polls=3
    )
    other = control.create_db_snapshot(f"orders-other-{suffix}", db_instance_identifier="orders")
    ids["other_arn"] = other["DBSnapshotArn"]
    control.pace_export(ids["export_id"], starting_seconds=20, in_progress_seconds=45)
    control.pace_export(
        ids["other_id"], starting_polls=1, in_progress_seconds=3600, canceling_seconds=20
    )
    control.reset_calls()
    run_id = f"e2e-{suffix}"
    seen: dict[str, set[str]] = collections.defaultdict(set)
    killed = [not kill_triggerer]

    def watch() -> None:
        for task_id, ti in dep.task_instances(DAG_ID, run_id).items():
            seen[task_id].add(str(ti["state"]))
        if killed[0]:
            return
        statuses = {t["ExportTaskIdentifier"]: t["Status"] for t in control.export_tasks()}
        if "deferred" in seen["start_export"] and statuses.get(ids["export_id"]) == "IN_PROGRESS":
            print(f"SIGKILL to the triggerer at {time.strftime('%H:%M:%S')}")
            dep.stop("triggerer", signal.SIGKILL)
            time.sleep(2)
            dep.start("triggerer")
            killed[0] = True

    started = time.monotonic()
    try:
        dep.trigger(DAG_ID, ids, run_id)
        run = dep.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT, on_poll=watch)
        watch()
        record = RunRecord(
            run_id=run_id,
            ids=ids,
            run=run,
            tis=dep.task_instances(DAG_ID, run_id),
            seen_states=dict(seen),
            seconds=time.monotonic() - started,
        )
        for task_id in record.tis:
            record.logs[task_id] = {
                p.name: p.read_text(errors="replace")
                for p in dep.task_log_files(DAG_ID, run_id, task_id)
            }
        record.exports = {t["ExportTaskIdentifier"]: t for t in control.export_tasks()}
        record.calls = control.calls()
        print(f"run {run_id}: {run['state']} in {record.seconds:.1f} s; states seen {seen}")
        races = [
            line
            for line in dep.log_path("scheduler").read_text(errors="replace").splitlines()
            if STATE_MISMATCH in line and run_id in line
        ]
        if not killed[0]:
            raise RunFailed("the triggerer was never killed: the export finished too early")
        if run["state"] != "success":
            states = {t: ti["state"] for t, ti in record.tis.items()}
            raise RunFailed(f"run {run_id} {run['state']}: {states}; scheduler races: {races}")
    except BaseException:
        print(dep.diagnostics())
        print(dep.task_log_tails(DAG_ID, run_id))
        raise
    return record


@pytest.fixture(scope="module")
def first_run(env: Env) -> RunRecord:
    """One plain run of the DAG (module-wide: several tests read it)."""
    return run_dag(env, "one")


def xcom_value(env: Env, run_id: str, task_id: str) -> Any:
    """The ``return_value`` XCom as stored (REST API, native format: the DB value)."""
    answer = env.deployment.request(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
    )
    return answer["value"]


def _as_dict(value: Any) -> dict[str, Any]:
    decoded = json.loads(value) if isinstance(value, str) else value
    assert isinstance(decoded, dict), value
    return decoded


# --- the first run ----------------------------------------------------------------------


def test_run_succeeds_with_every_task_successful(first_run: RunRecord) -> None:
    assert first_run.run["state"] == "success"
    assert {t: ti["state"] for t, ti in first_run.tis.items()} == {
        "wait_snapshot": "success",
        "start_export": "success",
        "wait_export": "success",
        "start_other": "success",
        "other_running": "success",
        "cancel_other": "success",
        "xcom_types": "success",
    }
    ids = first_run.ids
    assert first_run.exports[ids["export_id"]]["Status"] == "COMPLETE"
    assert first_run.exports[ids["other_id"]]["Status"] == "CANCELED"
    assert first_run.calls["StartExportTask"] == 2
    assert first_run.calls["CancelExportTask"] == 1
    assert first_run.seconds >= 60  # the export alone is paced to 65 s


def test_every_wait_was_deferred_to_the_triggerer(first_run: RunRecord) -> None:
    for task_id in DEFERRED_WAITS:
        trigger_logs = first_run.trigger_logs(task_id)
        assert len(trigger_logs) == 1, (task_id, sorted(first_run.logs[task_id]))
        text = next(iter(trigger_logs.values()))
        assert "Trigger fired event" in text, (task_id, text[-2000:])
    # The long waits were seen deferred by the REST API as well.
    for task_id in ("wait_snapshot", "start_export", "wait_export"):
        assert "deferred" in first_run.seen_states[task_id], first_run.seen_states


def test_triggers_logged_their_decisions(first_run: RunRecord) -> None:
    ids = first_run.ids
    (snapshot_log,) = first_run.trigger_logs("wait_snapshot").values()
    # The wait reason is logged once per change, not once per poll (thousands of waits).
    assert snapshot_log.count(f"Snapshot {ids['snapshot']} is 'creating'") == 1
    assert f"Snapshot {ids['snapshot']} is available" in snapshot_log
    (export_log,) = first_run.trigger_logs("wait_export").values()
    assert f"Export {ids['export_id']} is IN_PROGRESS" in export_log
    assert f"Export task {ids['export_id']} is complete" in export_log
    (start_log,) = first_run.trigger_logs("start_export").values()
    assert f"Export {ids['export_id']} is COMPLETE" in start_log


def test_start_and_end_from_trigger_never_touch_a_worker(first_run: RunRecord) -> None:
    ti = first_run.tis["wait_snapshot"]
    assert ti["queued_when"] is None, ti
    assert not ti["hostname"], ti
    assert ti["pid"] is None, ti
    assert ti["try_number"] == 1
    names = sorted(first_run.logs["wait_snapshot"])
    assert "attempt=1.log" not in names, names  # no worker ever wrote this task's log
    assert len(first_run.trigger_logs("wait_snapshot")) == 1, names


def test_a_trigger_started_export_wait_resumes_on_a_worker_only_to_announce(
    first_run: RunRecord,
) -> None:
    """The export wait started and waited in the triggerer; COMPLETE, it resumed on a
    worker once, for the asset event a trigger's end event cannot carry."""
    (trigger_log,) = first_run.trigger_logs("wait_export").values()
    assert "resuming the task on a worker to emit its asset event" in trigger_log
    worker_log = first_run.worker_log("wait_export")
    assert worker_log.count(PRE_EXECUTE) == 1, worker_log[-3000:]
    export_id = first_run.ids["export_id"]
    assert f"Asset event for s3://rds-exports/e2e/{export_id} through asset alias" in worker_log


def test_end_from_trigger_operator_ran_on_a_worker_once(first_run: RunRecord) -> None:
    ti = first_run.tis["start_export"]
    assert ti["queued_when"] is not None and ti["hostname"] and ti["pid"], ti
    worker_log = first_run.worker_log("start_export")
    assert worker_log.count(PRE_EXECUTE) == 1, worker_log[-3000:]  # never resumed
    assert worker_log.count("Started export") == 1
    assert "Pausing task as DEFERRED" in worker_log


def test_deferrable_cancel_resumed_on_a_worker(first_run: RunRecord) -> None:
    worker_log = first_run.worker_log("cancel_other")
    assert worker_log.count(PRE_EXECUTE) == 2, worker_log[-3000:]  # start + resumption
    assert f"Asked AWS to cancel export {first_run.ids['other_id']}" in worker_log
    assert f"Export task {first_run.ids['other_id']} is canceled" in worker_log


def test_reschedule_mode_sensor_on_the_real_scheduler(env: Env, first_run: RunRecord) -> None:
    """``mode="reschedule"`` with a 20 s poke interval: one reschedule, then success."""
    ti = first_run.tis["other_running"]
    assert ti["state"] == "success"
    assert ti["try_number"] == 1  # reschedules are not tries
    reschedules = env.deployment.query(
        "SELECT r.* FROM task_reschedule r JOIN task_instance t ON t.id = r.ti_id "
        "WHERE t.dag_id = ? AND t.run_id = ? AND t.task_id = 'other_running'",
        DAG_ID,
        first_run.run_id,
    )
    assert len(reschedules) == 1, reschedules
    worker_log = first_run.worker_log("other_running")
    assert worker_log.count(PRE_EXECUTE) == 2  # two pokes, each a worker start
    assert f"Export {first_run.ids['other_id']} is STARTING" in worker_log
    assert f"Export task {first_run.ids['other_id']} is in_progress" in worker_log
    assert "up_for_reschedule" in first_run.seen_states["other_running"]


def test_xcoms_reach_downstream_tasks(env: Env, first_run: RunRecord) -> None:
    ids = first_run.ids
    snapshot = _as_dict(xcom_value(env, first_run.run_id, "wait_snapshot"))
    assert snapshot["DBSnapshotIdentifier"] == ids["snapshot"]
    started = _as_dict(xcom_value(env, first_run.run_id, "start_export"))
    assert started["SourceArn"] == snapshot["SourceArn"]
    assert started["S3Uri"] == f"s3://rds-exports/e2e/{ids['export_id']}/"
    waited = _as_dict(xcom_value(env, first_run.run_id, "wait_export"))
    assert waited["Status"] == "COMPLETE"
    canceled = xcom_value(env, first_run.run_id, "cancel_other")
    assert isinstance(canceled, dict) and canceled["Status"] == "CANCELED"
    # wait_export resumed on a worker (for its asset event), which pushed its XCom: a dict
    # downstream, unlike what a trigger's end event leaves (see the xfail below).
    assert xcom_value(env, first_run.run_id, "xcom_types")["wait_export"] == "dict"


@pytest.mark.xfail(
    reason=(
        "Airflow 3.3.2: XComs of TaskSuccessEvent(xcoms=...) are stored JSON-encoded twice "
        "(airflow/models/trigger.py _push_xcoms_if_necessary -> TaskInstance.xcom_push -> "
        "XComModel.set json.dumps()s into a JSON column), so downstream tasks pull a str, "
        "not the dict: '{{ ti.xcom_pull(...)['SourceArn'] }}' after an end_from_trigger "
        "sensor fails. airflow_rds_export/triggers.py _finish relies on it"
    ),
    strict=True,
    raises=AssertionError,
)
@pytest.mark.parametrize("task_id", ["wait_snapshot", "start_export"])
def test_end_from_trigger_xcom_is_the_same_dict_a_worker_pushes(
    env: Env, first_run: RunRecord, task_id: str
) -> None:
    # What the downstream task pulled (a worker-pushed XCom, start_other's, is a dict).
    pulled = xcom_value(env, first_run.run_id, "xcom_types")
    assert pulled["start_other"] == "dict", pulled
    assert pulled[task_id] == "dict", pulled


def export_links(export_id: str) -> dict[str, str]:
    """The two console links of an export in the bucket's ``e2e`` prefix, spelled out."""
    return {
        "Exported Data in S3": (
            f"{CONSOLE}/s3/buckets/rds-exports?region={REGION}&prefix=e2e/{export_id}/"
        ),
        "RDS Export Task": (
            f"{CONSOLE}/rds/home?region={REGION}#export-task:id={export_id};"
            "source-location=exports-in-s3"
        ),
    }


@pytest.mark.parametrize(
    ("task_id", "export"),
    [
        ("start_export", "export_id"),
        ("wait_export", "export_id"),
        ("start_other", "other_id"),
        ("other_running", "other_id"),
        ("cancel_other", "other_id"),
    ],
)
def test_the_api_server_serves_both_console_links_of_each_task(
    env: Env, first_run: RunRecord, task_id: str, export: str
) -> None:
    """The UI's extra-links endpoint, as the browser calls it, after the run."""
    answer = env.deployment.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{first_run.run_id}/taskInstances/{task_id}/links"
    )
    assert answer["extra_links"] == export_links(first_run.ids[export])


def test_a_snapshot_wait_that_never_touched_a_worker_has_no_link(
    env: Env, first_run: RunRecord
) -> None:
    """Airflow 3.3 builds links on a worker only: a wait started and ended in the triggerer
    has none (documented)."""
    answer = env.deployment.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{first_run.run_id}/taskInstances/wait_snapshot/links"
    )
    assert answer["extra_links"] == {"RDS Snapshot": None}


def test_the_example_consumer_dag_ran_on_the_announced_export(
    env: Env, first_run: RunRecord
) -> None:
    """The scheduler ran nightly_export_consumer for the export wait_export announced
    (which ended in the triggerer), and its task read the event's extra."""
    export_id = first_run.ids["export_id"]
    uri = f"s3://rds-exports/e2e/{export_id}/"
    plans: list[Any] = []

    def consumed() -> dict[str, Any] | None:
        runs = env.deployment.request("GET", f"/api/v2/dags/{CONSUMER_DAG_ID}/dagRuns")
        for run in runs["dag_runs"]:
            if run["state"] != "success":
                continue
            plan = env.deployment.request(
                "GET",
                f"/api/v2/dags/{CONSUMER_DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/"
                "plan_load/xcomEntries/return_value",
            )["value"]
            plans.append(plan)
            if any(entry["s3_uri"] == uri for entry in plan):
                return dict(run)
        return None

    run = env.deployment.wait_until(
        f"a successful {CONSUMER_DAG_ID} run for {uri}", consumed, timeout=120
    )
    assert run["run_type"] == "asset_triggered", run
    (plan,) = [entry for entry in plans[-1] if entry["s3_uri"] == uri]
    assert plan["export_task_identifier"] == export_id
    assert plan["tables_complete"] == 4 and plan["tables_clean"] is True


# --- a second run, with the triggerer killed mid-wait ------------------------------------


def test_triggerer_killed_mid_wait_run_still_succeeds(env: Env, first_run: RunRecord) -> None:
    record = run_dag(env, "two", kill_triggerer=True)
    ids = record.ids
    assert all(ti["state"] == "success" for ti in record.tis.values()), record.tis
    # The start operator's wait resumed in the new triggerer: a second trigger log, no
    # second worker start, no second StartExportTask.
    start_triggers = record.trigger_logs("start_export")
    assert len(start_triggers) == 2, sorted(record.logs["start_export"])
    assert record.worker_log("start_export").count(PRE_EXECUTE) == 1
    finished = [text for text in start_triggers.values() if "Trigger fired event" in text]
    assert len(finished) == 1
    assert f"Export {ids['export_id']} is COMPLETE" in finished[0]
    # The export-state sensor, waiting in the triggerer at the time, was re-run as well;
    # a worker ran it once, at the end, for its asset event.
    assert len(record.trigger_logs("wait_export")) == 2
    assert record.worker_log("wait_export").count(PRE_EXECUTE) == 1
    # Exactly one export per identifier, across both runs.
    assert record.calls["StartExportTask"] == 2
    per_identifier = collections.Counter(
        t["ExportTaskIdentifier"] for t in env.control.export_tasks()
    )
    expected = {first_run.ids["export_id"], first_run.ids["other_id"]} | {
        ids["export_id"],
        ids["other_id"],
    }
    assert per_identifier == dict.fromkeys(expected, 1)
    assert record.exports[ids["export_id"]]["Status"] == "COMPLETE"
    assert record.exports[ids["other_id"]]["Status"] == "CANCELED"
