"""The demo as a test: its scenarios must all come out as the scenario expects.

The end-to-end test runs the demo driver (``demo/run_demo.py``) in a subprocess exactly
as ``scripts/demo.sh`` does, in its own work directory, and checks its exit status and the
key lines of its summary. The other tests check, without Airflow, how the driver reads
``airflow dags test`` output and that it fails (non-zero, summary printed) whenever an
outcome differs from the scenario or the demo is interrupted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_rds_export.testing.airflow_runs import DagRunRecord

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo"
sys.path.insert(0, str(DEMO))

import airflow_runs  # noqa: E402
import run_demo  # noqa: E402
import scenario  # noqa: E402


def flat(text: str) -> str:
    """``text`` with every run of whitespace as one space (the summary wraps lines)."""
    return " ".join(text.split())


@pytest.mark.e2e
def test_demo_runs_every_scenario_as_expected(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(DEMO / "run_demo.py"), "--workdir", str(workdir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = flat(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-12000:] + proc.stderr[-4000:]
    assert "DEMO OK: all" in out
    summary = flat((workdir / "summary.txt").read_text())
    assert summary in out
    # Run 1: the snapshot was still creating (deferral), the export ran, the cancel skipped.
    assert "Run 1: nightly_rds_export 2026-11-21, first run: run success (expected success)" in (
        summary
    )
    # How many polls see 'creating' before the trigger sees 'available' varies with timing.
    assert re.search(
        r"wait_for_snapshot success deferred 1x \[Snapshot rds:orders-2026-11-21-00-00 is "
        r"'creating'( x\d)?\]; then: Snapshot rds:orders-2026-11-21-00-00 is available",
        summary,
    )
    assert "start_export success Started export orders-20261121 (status STARTING)" in summary
    assert "Export orders-20261121 is IN_PROGRESS: 50% done" in out  # progress, live
    assert (
        "cancel_if_unfinished skipped skipped: Export task orders-20261121: AWS reports status "
        "COMPLETE, which cannot be canceled" in summary
    )
    # Run 2: the re-run adopted the export.
    assert "Run 2: nightly_rds_export 2026-11-21, re-run of the same date: run success" in summary
    assert "adopting it as this run's export instead of starting a second one" in summary
    # Run 1's export wait announced the export as an asset event; run 3, the example
    # consumer DAG, read it back.
    assert (
        "Asset event for s3://rds-exports/nightly/orders-20261121 through asset alias "
        "'rds-export:nightly_rds_export.wait_for_export'" in out
    )
    assert (
        "Run 3: nightly_export_consumer, downstream of the nightly export's asset: run success"
        in summary
    )
    assert (
        "plan_load success Load s3://rds-exports/nightly/orders-20261121/ (export "
        "orders-20261121 of arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-11-21-"
        "00-00, taken 2026-11-21T00:00:00+00:00): 4 tables, 20 GB" in summary
    )
    # Run 4: one export of the fleet failed, with AWS's FailureCause, not retried.
    assert "Run 4: fleet_rds_export 2026-11-21: run failed (expected failed)" in summary
    assert (
        "start_and_wait[inventory] failed deferred 1x [STARTING 0% > FAILED 0%]; then: failed: "
        "Export task fleet-inventory-20261121: AWS reports status FAILED (Access Denied" in summary
    )
    # billing's export is COMPLETE but skipped a table: verification names it, the task
    # fails once, and no S3 URI is handed downstream.
    assert "start_and_wait[billing] failed deferred 1x" in summary
    assert (
        "then: failed: Export task fleet-billing-20261121: AWS reports it "
        "COMPLETE, but not every table was exported (1 skipped, 3 complete): "
        "billing.public.customers skipped (WarningMessage skippedTables: "
        "PERMISSIONS_DO_NOT_EXIST)" in summary
    )
    assert "Export task orders-20261121 is complete: 4 tables, 20 GB verified" in out
    assert (
        "COMPLETE 100%]; then: Asset event for s3://rds-exports/nightly/orders-20261121 "
        "through asset alias 'rds-export:nightly_rds_export.wait_for_export'" in summary
    )
    for uri in (
        "s3://rds-exports/nightly/orders-20261121/",
        "s3://rds-exports/fleet/fleet-analytics-20261121/",
    ):
        assert f" {uri} " in summary
    assert "s3://rds-exports/fleet/fleet-billing-20261121/ " not in summary
    exports = summary.split("Exports in the emulated account: ", 1)[1].split(" AWS calls", 1)[0]
    assert sorted(exports.split(", ")) == [
        "fleet-analytics-20261121 COMPLETE",
        "fleet-billing-20261121 COMPLETE",
        "fleet-inventory-20261121 FAILED",
        "orders-20261121 COMPLETE",
    ]
    assert "AWS calls made: " in summary
    assert (workdir / "logs" / "1-nightly-first.log").stat().st_size > 0
    assert (workdir / "logs" / "4-fleet.log").stat().st_size > 0


# --- the driver without Airflow ---------------------------------------------------------

SAMPLE_LOG = """\
2026-11-22T16:43:08.818707Z [info     ] [DAG TEST] starting task_id=wait_for_snapshot map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-22T16:43:14.767426Z [info     ] Pausing task as DEFERRED.      [task] dag_id=nightly_rds_export loc=task_runner.py:1466
2026-11-22T16:43:15.007737Z [info     ] Snapshot rds:orders-2026-11-21-00-00 is 'creating', not available yet; waiting [airflow_rds_export.triggers.RdsSnapshotReadyTrigger] loc=triggers.py:260
2026-11-22T16:43:17.122818Z [info     ] Snapshot rds:orders-2026-11-21-00-00 is available [airflow.task.operators.airflow_rds_export.sensors.RdsSnapshotReadySensor] loc=sensors.py:111
2026-11-22T16:43:17.174799Z [info     ] [DAG TEST] end task task_id=wait_for_snapshot map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-22T16:43:19.184355Z [error    ] XCom not found                 [airflow.sdk.api.client] dag_id=fleet_rds_export
2026-11-22T16:43:20.861903Z [info     ] [DAG TEST] starting task_id=cancel_if_unfinished map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-22T16:43:21.019521Z [info     ] Skipping task.                 [task] loc=task_runner.py:1622 reason="Export task orders-20261121: AWS reports status COMPLETE, which cannot be canceled; on_invalid_state='skip' decided to skip. Nothing to do: the export already finished"
2026-11-22T16:43:21.038181Z [info     ] [DAG TEST] end task task_id=cancel_if_unfinished map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-22T16:46:00.171331Z [info     ] [DAG TEST] starting task_id=start_and_wait map_index=1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-22T16:46:00.133239Z [error    ] Task failed with exception     [task] loc=task_runner.py:1639
Traceback (most recent call last):
  File "x.py", line 1, in <module>
airflow.sdk.exceptions.AirflowFailException: Export task inventory-20261121: AWS reports status FAILED (denied); on_failure='fail' decided to fail
2026-11-22T16:46:00.170948Z [info     ] [DAG TEST] end task task_id=start_and_wait map_index=1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-22T16:46:03.598643Z [info     ] Marking run <DagRun fleet_rds_export @ 2026-11-21 00:00:00+00:00: manual__x, state:running, queued_at: None. run_type: manual> failed [airflow.models.dagrun.DagRun] loc=dagrun.py:1219
"""  # noqa: E501


def test_log_events_are_attributed_to_their_tasks() -> None:
    events = list(airflow_runs.task_events(airflow_runs.parse_log(SAMPLE_LOG.splitlines())))
    assert [(e.kind, e.task_id, e.map_index) for e in events] == [
        ("start", "wait_for_snapshot", -1),
        ("deferred", "wait_for_snapshot", -1),
        ("decision", "wait_for_snapshot", -1),
        ("decision", "wait_for_snapshot", -1),
        ("start", "cancel_if_unfinished", -1),
        ("skipped", "cancel_if_unfinished", -1),
        ("start", "start_and_wait", 1),
        ("failed", "start_and_wait", 1),
        ("run_end", "", -1),
    ]
    assert events[5].text.endswith("Nothing to do: the export already finished")
    assert events[7].text == (
        "Export task inventory-20261121: AWS reports status FAILED (denied); "
        "on_failure='fail' decided to fail"
    )
    assert events[-1].text == "failed"
    snapshot_events = [e for e in events if e.task_id == "wait_for_snapshot"]
    assert run_demo.describe_task(snapshot_events, None) == (
        "deferred 1x [Snapshot rds:orders-2026-11-21-00-00 is 'creating']; then: "
        "Snapshot rds:orders-2026-11-21-00-00 is available"
    )


def _world() -> scenario.World:
    return scenario.World(
        logical_date="2026-11-21",
        bucket="rds-exports",
        iam_role_arn="arn:aws:iam::123456789012:role/rds-s3-export",
        kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k",
        nightly_snapshot={
            "DBSnapshotIdentifier": "rds:orders-2026-11-21-00-00",
            "SnapshotCreateTime": "2026-11-21T00:00:00+00:00",
            "Status": "creating",
        },
        stale_snapshot={"DBSnapshotIdentifier": "rds:orders-2026-11-20-00-00"},
    )


def _fake_scenario(state: str) -> Any:
    """A ``run_scenario`` that records run 1 as ending in ``state`` without running it."""

    def fake(console: Any, workdir: Path, timeout: float, results: list[Any], totals: Any) -> None:
        spec = scenario.build_runs(_world())[0]
        result = run_demo.RunResult(1, spec)
        result.record = DagRunRecord(
            dag_id=spec.dag_id,
            run_id="manual__x",
            state=state,
            data_interval_start="2026-11-21 00:00:00.000000",
            data_interval_end="2026-11-21 00:00:00.000000",
        )
        results.append(result)
        result.checks = run_demo.check_run(result)

    return fake


def test_an_unexpected_outcome_fails_the_demo_and_still_prints_the_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run_demo, "run_scenario", _fake_scenario("failed"))
    assert run_demo.main(["--workdir", str(tmp_path / "w")]) == 1
    out = flat(capsys.readouterr().out)
    assert "NOT AS EXPECTED: run 1 (nightly_rds_export): expected run success; got failed" in out
    assert "NOT AS EXPECTED: run 1 wait_for_snapshot: expected state success; got no such" in out
    assert "DEMO FAILED:" in out
    assert (tmp_path / "w" / "summary.txt").exists()


def test_an_interrupted_demo_exits_130_with_the_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_demo, "run_scenario", interrupted)
    assert run_demo.main(["--workdir", str(tmp_path / "w")]) == 130
    out = flat(capsys.readouterr().out)
    assert "PROBLEM: interrupted (Ctrl-C); everything it started was stopped" in out
    assert "DEMO FAILED: it did not finish" in out


def test_a_foreign_workdir_is_never_wiped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    assert run_demo.main(["--workdir", str(precious)]) == 2
    assert (precious / "keep.txt").read_text() == "mine"
    assert "refusing to wipe it" in capsys.readouterr().out
