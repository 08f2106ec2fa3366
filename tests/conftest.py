"""Shared pytest fixtures: an isolated Airflow home and a DAG-run harness.

The pytest process itself never imports Airflow for DAG runs: runs happen in a fork-server
subprocess with a hermetic environment (see :mod:`airflow_rds_export.testing.airflow_runs`),
so it does not matter whether some plugin imported ``airflow`` earlier with a different
configuration.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Tests that import Airflow in this process get a throw-away home, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-rds-export-tests-"))

from airflow_rds_export.testing.airflow_runs import (
    AirflowHarness,
    AirflowHome,
    DagRunResult,
    prepare_airflow_home,
)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A throw-away ``AIRFLOW_HOME`` with a migrated SQLite metadata DB (once per session).

    ``airflow_home.env(extra)`` gives the hermetic environment (``AIRFLOW_HOME``,
    ``AIRFLOW__CORE__DAGS_FOLDER``, ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, ...) for any Airflow
    process a test wants to start itself.
    """
    return prepare_airflow_home(tmp_path_factory.mktemp("airflow") / "home")


@pytest.fixture(scope="session")
def airflow_harness(airflow_home: AirflowHome) -> Iterator[AirflowHarness]:
    """Session-wide :class:`AirflowHarness` (its fork server warms up in the background)."""
    harness = AirflowHarness(airflow_home)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def run_dag(airflow_harness: AirflowHarness) -> Callable[..., DagRunResult]:
    """``run_dag(dag_source, dag_id, *, env=None, logical_date=None, conf=None, timeout=180)``."""
    return airflow_harness.run_dag


@pytest.fixture
def dag_import_errors(airflow_harness: AirflowHarness) -> Callable[..., str]:
    """``dag_import_errors(dag_source, *, env=None) -> str`` ("" when the file imports fine)."""
    return airflow_harness.dag_import_errors


# --- The emulator-backed world most component tests run in ------------------------------

REGION = "us-east-1"


@dataclasses.dataclass
class ExportWorld:
    """An emulator server seeded with what an export needs, and env for Airflow runs."""

    server: Any
    control: Any
    env: dict[str, str]
    bucket: str
    iam_role_arn: str
    kms_key_id: str

    def rds_client(self) -> Any:
        """A plain boto3 RDS client on the emulator server, for setting the scene."""
        import boto3

        return boto3.client(
            "rds",
            region_name=REGION,
            endpoint_url=self.server.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def world(rds_emulator_server: Any) -> ExportWorld:
    """A reset emulator server with bucket, role and KMS key, plus the Airflow env for it."""
    from airflow_rds_export.testing import airflow_connection_env

    control = rds_emulator_server.control
    prereq = control.seed_export_prerequisites(bucket="rds-exports", role_name="rds-s3-export")
    control.create_db_instance("orders")
    control.reset_calls()
    return ExportWorld(
        server=rds_emulator_server,
        control=control,
        env=airflow_connection_env(rds_emulator_server.endpoint_url, region_name=REGION),
        bucket=prereq["bucket"],
        iam_role_arn=prereq["iam_role_arn"],
        kms_key_id=prereq["kms_key_id"],
    )


# --- The fault / bad-input ledger the suite prints at the end -------------------------


@dataclasses.dataclass
class Ledger:
    """What the fault and bad-input tests did, summed over the session."""

    faults_injected: int = 0
    dag_runs: int = 0
    exports_started: int = 0
    exports_lost: int = 0
    exports_doubled: int = 0
    unhandled_tracebacks: int = 0
    bad_inputs_tried: int = 0
    bad_inputs_with_clear_error: int = 0

    def used(self) -> bool:
        return any(dataclasses.astuple(self))


LEDGER = Ledger()


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


#: Figures the end-to-end tests measured (kill-to-cancel time, calls per cycle, the chaos
#: run's ledger ...), repeated at the end of the run so CI's output shows them.
MEASURED: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """``report(text)``: print ``text`` and repeat it in the "measured" section at the end."""

    def report(text: str) -> None:
        print(text)
        MEASURED.append(text)

    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.section("measured")
        for text in MEASURED:
            for line in text.splitlines():
                terminalreporter.write_line(line)
    if not LEDGER.used():
        return
    terminalreporter.section("faults and bad input")
    for field in dataclasses.fields(LEDGER):
        terminalreporter.write_line(
            f"{field.name.replace('_', ' ')}: {getattr(LEDGER, field.name)}"
        )
