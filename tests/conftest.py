"""Shared pytest fixtures: an isolated Airflow home and a DAG-run harness.

The pytest process itself never imports Airflow for DAG runs: runs happen in a fork-server
subprocess with a hermetic environment (see :mod:`airflow_harness`), so it does not matter
whether some plugin imported ``airflow`` earlier with a different configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from airflow_harness import (
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
