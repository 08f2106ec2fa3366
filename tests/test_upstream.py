"""The official Amazon provider's own tests, run against our drop-in classes.

* The provider's unit tests of ``RdsStartExportTaskOperator``,
  ``RdsCancelExportTaskOperator``, ``RdsSnapshotExistenceSensor`` and
  ``RdsExportTaskExistenceSensor``, from the pinned sdist, with only those imports
  switched (``scripts/upstream_tests.py``): each must end as the script's ``EXPECTED``
  table says. A pass that turns into a failure fails this test, and so does an expected
  failure that starts passing (the table, and the README's differences, are then stale).
* The provider's system-test DAG ``example_rds_export.py``, imports switched the same
  way, run with ``airflow dags test`` against the emulator: it must succeed, having
  started the export once, cancelled it, and seen it ``canceled``.

Both are marked ``upstream`` and fetch the sdist on first use (``pip download``, cached
in the temp directory). The script's own checks (the import switch, the comparison with
the table, the hash) are tested below without the sdist.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ExportWorld

from airflow_rds_export.testing.airflow_runs import AirflowHarness, prepare_airflow_home

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "upstream_tests.py"
ENV_ID = "rdsexportsys"
EXPORT_ID = f"{ENV_ID}-export-task"


@functools.cache
def upstream_tests() -> ModuleType:
    """``scripts/upstream_tests.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("upstream_tests", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the official tests, fetched and run (the pinned sdist, the emulator, Airflow) -------


@pytest.mark.upstream
def test_official_unit_tests_end_as_the_table_expects(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout[-12000:] + proc.stderr[-4000:]
    assert proc.returncode in (0, 1), output  # 2: the tests could not be run at all
    rows = json.loads(results.read_text())
    expected = upstream_tests().EXPECTED
    assert {row["test_id"] for row in rows} == set(expected), output
    outcomes = {row["test_id"]: row["actual"] for row in rows}
    assert outcomes == {test_id: e.outcome for test_id, e in expected.items()}, output
    wrong_reason = [row["test_id"] for row in rows if not row["as_expected"]]
    assert not wrong_reason, output  # failed, but not for the reason the table gives
    assert proc.returncode == 0, output


@pytest.mark.upstream
def test_official_system_test_dag_runs_against_the_emulator(
    world: ExportWorld, tmp_path: Path
) -> None:
    script = upstream_tests()
    source = script.system_dag_source()
    assert "from airflow_rds_export.operators import" in source
    assert "from airflow_rds_export.sensors import" in source
    # The export is still running when the cancel arrives, and CANCELED once cancelled.
    world.control.pace_export(EXPORT_ID, in_progress_polls=1000, canceling_polls=0)
    env = {
        **world.env,
        # The DAG imports the system-test helpers (tests/upstream/shims) by name: they must
        # be on the path when the interpreter starts, hence a fresh interpreter per run.
        "PYTHONPATH": str(script.SHIMS),
        "SYSTEM_TESTS_ENV_ID": ENV_ID,
        "ROLE_ARN": world.iam_role_arn,
        "KMS_KEY_ID": world.kms_key_id,
    }
    home = prepare_airflow_home(tmp_path / "airflow-home")
    with AirflowHarness(home, mode="subprocess") as harness:
        # A DAG file that does not parse creates no run: run_dag raises with the import error.
        result = harness.run_dag(
            source, "example_rds_export", env=env, file_name=script.DAG_FILE, timeout=240
        )
    result.assert_state("success")
    assert result.task_states == {
        "variable_fetcher": "success",
        "create_bucket": "success",
        "create_db_instance": "success",
        "create_snapshot": "success",
        "snapshot_sensor": "success",
        "get_snapshot_arn": "success",
        "start_export": "success",
        "cancel_export": "success",
        "export_sensor": "success",
        "delete_snapshot": "success",
        "delete_bucket": "success",
        "delete_db_instance": "success",
        "watcher": "skipped",
    }
    calls = world.control.calls()
    assert calls.get("StartExportTask") == 1, calls
    assert calls.get("CancelExportTask") == 1, calls
    (export,) = world.control.export_tasks()
    assert export["ExportTaskIdentifier"] == EXPORT_ID
    assert export["Status"].upper() == "CANCELED"
    assert export["S3Bucket"] == f"{ENV_ID}-bucket"
    assert export["IamRoleArn"] == world.iam_role_arn
    assert result.xcom("start_export")["ExportTaskIdentifier"] == EXPORT_ID
    assert result.xcom("cancel_export")["Status"].upper() == "CANCELED"
    assert result.xcom("export_sensor")["Status"].upper() == "CANCELED"


# --- the script's own checks, without the sdist ----------------------------------------------

OFFICIAL_IMPORTS = """\
from airflow.providers.amazon.aws.operators.rds import (
    RdsCancelExportTaskOperator,
    RdsCreateDbSnapshotOperator,
    RdsStartExportTaskOperator,
)
from airflow.providers.amazon.aws.sensors.rds import RdsDbSensor, RdsSnapshotExistenceSensor

operator = RdsStartExportTaskOperator
"""


def test_switching_imports_moves_the_four_classes_only_and_keeps_line_numbers() -> None:
    rewritten = upstream_tests().switch_imports(OFFICIAL_IMPORTS)
    lines = rewritten.splitlines()
    assert len(lines) == len(OFFICIAL_IMPORTS.splitlines())
    assert lines[-1] == "operator = RdsStartExportTaskOperator"
    assert (
        "from airflow_rds_export.operators import RdsCancelExportTaskOperator, "
        "RdsStartExportTaskOperator"
    ) in lines
    assert (  # one line in, one line out: both imports share it
        "from airflow.providers.amazon.aws.sensors.rds import RdsDbSensor; "
        "from airflow_rds_export.sensors import RdsSnapshotExistenceSensor"
    ) in lines
    assert "    RdsCreateDbSnapshotOperator," in lines  # stays imported from the provider


@pytest.mark.parametrize(
    "source",
    [
        OFFICIAL_IMPORTS
        + 'patch("airflow.providers.amazon.aws.operators.rds.RdsStartExportTaskOperator.x")\n',
        OFFICIAL_IMPORTS + "import airflow.providers.amazon.aws.sensors.rds\n",
        "from airflow.providers.amazon.aws.operators.rds import RdsStartDbOperator\n",
    ],
    ids=["patched-by-official-path", "module-import", "none-of-the-four"],
)
def test_switching_imports_refuses_what_it_cannot_switch(source: str) -> None:
    script = upstream_tests()
    with pytest.raises(script.UpstreamTestsError):
        script.switch_imports(source)


def as_expected_outcomes() -> dict[str, dict[str, str]]:
    """Outcomes exactly as the table expects, in the recorder's JSON shape."""
    return {
        test_id: {"outcome": e.outcome, "text": f"E   {e.evidence}"}
        for test_id, e in upstream_tests().EXPECTED.items()
    }


def test_outcomes_as_the_table_expects_are_no_mismatch() -> None:
    rows = upstream_tests().compare(as_expected_outcomes())
    assert rows and all(row.as_expected for row in rows)


def test_every_change_of_outcome_is_a_mismatch() -> None:
    script = upstream_tests()
    passing = next(t for t, e in script.EXPECTED.items() if e.outcome == "passed")
    failing = [t for t, e in script.EXPECTED.items() if e.outcome == "failed"]
    new_test = "tests/unit/amazon/aws/sensors/test_rds.py::TestNew::test_new"
    outcomes = as_expected_outcomes()
    outcomes[passing] = {"outcome": "failed", "text": "E   AssertionError"}
    outcomes[failing[0]] = {"outcome": "passed", "text": ""}  # an expected failure passes
    outcomes[failing[1]] = {"outcome": "failed", "text": "E   KeyError: 'boom'"}  # wrong why
    del outcomes[failing[2]]  # no longer in the sdist, or not run
    outcomes[new_test] = {"outcome": "passed", "text": ""}  # not in the table
    mismatches = {row.test_id for row in script.compare(outcomes) if not row.as_expected}
    assert mismatches == {passing, *failing[:3], new_test}


def test_an_sdist_with_another_hash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = upstream_tests()
    tampered = tmp_path / script.SDIST_NAME
    tampered.write_bytes(b"not the pinned sdist")
    monkeypatch.setenv("AIRFLOW_RDS_EXPORT_UPSTREAM_SDIST", str(tampered))
    with pytest.raises(script.UpstreamTestsError, match="is not the pinned"):
        script.fetch_sdist(tmp_path)
