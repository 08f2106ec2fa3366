"""Self-tests of the DAG-run harness (``airflow_rds_export.testing.airflow_runs``).

Each test runs a tiny DAG through ``airflow dags test`` and asserts on what Airflow recorded.
State shared between task tries (poke counters, ...) lives in files under ``HARNESS_STATE``
(passed to the run through ``env=``), because each try / reschedule re-executes the operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_rds_export.testing.airflow_runs import (
    AirflowHarness,
    DagRunResult,
    DagRunTimeout,
    HarnessError,
)

RunDag = Callable[..., DagRunResult]

PREAMBLE = """
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pendulum
from airflow.sdk import DAG, BaseOperator, BaseSensorOperator, task
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSkipException,
)

STATE = Path(os.environ.get("HARNESS_STATE", "/nonexistent"))


def bump(name: str) -> int:
    path = STATE / name
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


START = pendulum.datetime(2024, 1, 1, tz="UTC")
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HARNESS_STATE": str(tmp_path), **extra}


def test_reschedule_sensor_succeeds_on_third_poke(run_dag: RunDag, tmp_path: Path) -> None:
    source = (
        PREAMBLE
        + """
class ThirdPokeSensor(BaseSensorOperator):
    def poke(self, context):
        n = bump("pokes")
        self.log.info("poke number %s", n)
        return n >= 3


with DAG("h_sensor", schedule=None, start_date=START, catchup=False):
    ThirdPokeSensor(task_id="wait", mode="reschedule", poke_interval=1, timeout=120)
"""
    )
    result = run_dag(source, "h_sensor", env=_env(tmp_path))

    result.assert_state("success")
    assert result.task_states == {"wait": "success"}
    assert result.reschedules("wait") == 2
    assert result.tries("wait") == 1  # reschedules are not retries
    assert (tmp_path / "pokes").read_text() == "3"
    log = result.log("wait")
    for n in (1, 2, 3):
        assert f"poke number {n}" in log  # lines from every reschedule are kept
    assert log.count("UP_FOR_RESCHEDULE") == 2
    assert result.duration < 60


def test_operator_reschedule_exception_is_honoured(run_dag: RunDag, tmp_path: Path) -> None:
    source = (
        PREAMBLE
        + """
class RescheduleOnce(BaseOperator):
    def execute(self, context):
        if bump("runs") == 1:
            self.log.info("not ready yet, rescheduling")
            raise AirflowRescheduleException(
                reschedule_date=datetime.now(timezone.utc) + timedelta(seconds=1)
            )
        self.log.info("ready on execution %s", (STATE / "runs").read_text())
        return "done"


with DAG("h_resched", schedule=None, start_date=START, catchup=False):
    RescheduleOnce(task_id="op")
"""
    )
    result = run_dag(source, "h_resched", env=_env(tmp_path))

    result.assert_state("success")
    assert result.task_states == {"op": "success"}
    assert result.reschedules("op") == 1
    assert result.tries("op") == 1
    assert result.xcom("op") == "done"
    assert "not ready yet, rescheduling" in result.log("op")
    assert "ready on execution 2" in result.log("op")


def test_failures_retries_and_skips(run_dag: RunDag, tmp_path: Path) -> None:
    source = (
        PREAMBLE
        + """
def fail_fast():
    raise AirflowFailException("fatal-boom-123")


def fail_retry():
    raise ValueError(f"retry-boom-{bump('retry')}")


def skip_me():
    raise AirflowSkipException("nothing to do here")


def never():
    raise AssertionError("must not run")


with DAG("h_fail", schedule=None, start_date=START, catchup=False):
    from airflow.providers.standard.operators.python import PythonOperator

    PythonOperator(task_id="fail_fast", python_callable=fail_fast, retries=3)
    PythonOperator(
        task_id="fail_retry",
        python_callable=fail_retry,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
    skipped = PythonOperator(task_id="skip", python_callable=skip_me)
    skipped >> PythonOperator(task_id="after_skip", python_callable=never)
"""
    )
    result = run_dag(source, "h_fail", env=_env(tmp_path))

    assert result.state == "failed"
    assert result.returncode == 1  # `airflow dags test` exits with "DagRun failed"
    assert result.task_states == {
        "fail_fast": "failed",
        "fail_retry": "failed",
        "skip": "skipped",
        "after_skip": "skipped",
    }
    # AirflowFailException: no retry even though retries=3.
    assert result.tries("fail_fast") == 1
    assert "AirflowFailException: fatal-boom-123" in result.log("fail_fast")
    # An ordinary exception is retried (retries=1 -> 2 tries), both tries are in the log.
    assert result.tries("fail_retry") == 2
    assert result.tasks["fail_retry"].history_states == ("failed",)
    retry_log = result.log("fail_retry")
    assert "ValueError: retry-boom-1" in retry_log
    assert "ValueError: retry-boom-2" in retry_log
    assert "nothing to do here" in result.log("skip")
    assert result.log("after_skip") == ""  # never executed


def test_xcoms_and_deferral(run_dag: RunDag) -> None:
    source = (
        PREAMBLE
        + """
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger


class Deferring(BaseOperator):
    def execute(self, context):
        self.log.info("deferring for a second")
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=1)), method_name="resume")

    def resume(self, context, event=None):
        self.log.info("resumed after trigger")
        return {"resumed": True}


with DAG("h_xcom", schedule=None, start_date=START, catchup=False):

    @task
    def produce(**context):
        context["ti"].xcom_push(key="custom", value=[1, 2, 3])
        return {"answer": 42, "when": datetime(2024, 5, 6, tzinfo=timezone.utc)}

    @task
    def consume(value):
        return value["answer"] + 1

    consume(produce()) >> Deferring(task_id="defer")
"""
    )
    result = run_dag(source, "h_xcom")

    result.assert_state("success")
    produced = result.xcom("produce")
    assert produced["answer"] == 42
    assert produced["when"].isoformat() == "2024-05-06T00:00:00+00:00"  # serde-decoded
    assert result.xcom("produce", key="custom") == [1, 2, 3]
    assert result.xcom("consume") == 43
    assert result.xcom("defer") == {"resumed": True}
    defer_log = result.log("defer")
    assert "deferring for a second" in defer_log
    assert "running trigger in line" in defer_log
    assert "resumed after trigger" in defer_log
    with pytest.raises(KeyError):
        result.xcom("produce", key="missing")


def test_import_errors_detected(airflow_harness: AirflowHarness) -> None:
    broken = (
        PREAMBLE
        + """
raise RuntimeError("bucket name is required")

with DAG("h_broken", schedule=None, start_date=START):
    pass
"""
    )
    errors = airflow_harness.dag_import_errors(broken)
    assert "RuntimeError: bucket name is required" in errors

    bad_arg = (
        PREAMBLE
        + """
with DAG("h_bad_arg", schedule=None, start_date=START):
    BaseOperator(task_id="x", retries="many")
"""
    )
    assert "retries" in airflow_harness.dag_import_errors(bad_arg)

    fine = (
        PREAMBLE
        + """
with DAG("h_fine", schedule=None, start_date=START):
    BaseOperator(task_id="x")
"""
    )
    assert airflow_harness.dag_import_errors(fine) == ""
    assert airflow_harness.dag_ids(fine) == ["h_fine"]


def test_rerun_same_logical_date_replaces_run(
    airflow_harness: AirflowHarness, tmp_path: Path
) -> None:
    source = (
        PREAMBLE
        + """
with DAG("h_rerun", schedule=None, start_date=START, catchup=False):

    @task
    def flaky():
        n = bump("calls")
        if os.environ.get("SHOULD_FAIL") == "1":
            raise AirflowFailException(f"failing on call {n}")
        return n

    flaky()
"""
    )
    first = airflow_harness.run_dag(source, "h_rerun", env=_env(tmp_path, SHOULD_FAIL="1"))
    assert first.state == "failed"
    assert "failing on call 1" in first.log("flaky")

    second = airflow_harness.rerun(first, source, env=_env(tmp_path, SHOULD_FAIL="0"))
    second.assert_state("success")
    assert second.logical_date == first.logical_date
    assert second.run_id != first.run_id  # Airflow deleted the old run and made a new one
    assert second.tries("flaky") == 1  # fresh task instance, not "try 2"
    assert second.xcom("flaky") == 2
    # The first snapshot is unaffected by the re-run.
    assert first.task_states == {"flaky": "failed"}


def test_timeout_kills_run_and_harness_recovers(
    airflow_harness: AirflowHarness, tmp_path: Path
) -> None:
    source = (
        PREAMBLE
        + """
with DAG("h_slow", schedule=None, start_date=START, catchup=False):

    @task
    def slow():
        import time

        time.sleep(120)

    slow()
"""
    )
    started = time.monotonic()
    with pytest.raises(DagRunTimeout, match="exceeded"):
        airflow_harness.run_dag(source, "h_slow", timeout=3)
    assert time.monotonic() - started < 30

    ok = (
        PREAMBLE
        + """
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("h_after_timeout", schedule=None, start_date=START, catchup=False):
    EmptyOperator(task_id="noop")
"""
    )
    airflow_harness.run_dag(ok, "h_after_timeout").assert_state("success")

    with pytest.raises(HarnessError, match="no DAG run was created"):
        airflow_harness.run_dag(ok, "h_no_such_dag")
