"""pytest fixtures for the RDS emulator (registered as the ``pytest11`` entry point).

pytest imports this module for every project that has ``airflow-rds-export`` installed,
so it imports nothing heavy: moto is loaded inside the fixtures.

* ``rds_emulator`` -- an in-process :class:`~airflow_rds_export.testing.RdsEmulator`.
* ``rds_emulator_server_session`` -- one emulator server subprocess for the session.
* ``rds_emulator_server`` -- that server, with every resource, pacing setting, fault
  and call count wiped before the test (and restarted if a test stopped it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_rds_export.testing import EmulatorServer, RdsEmulator

__all__ = ["rds_emulator", "rds_emulator_server", "rds_emulator_server_session"]


@pytest.fixture
def rds_emulator() -> Iterator[RdsEmulator]:
    """In-process emulated RDS (plus S3, IAM, KMS) for this test; region ``us-east-1``."""
    from airflow_rds_export.testing import RdsEmulator

    with RdsEmulator(region_name="us-east-1") as emulator:
        yield emulator


@pytest.fixture(scope="session")
def rds_emulator_server_session() -> Iterator[EmulatorServer]:
    """One emulator server subprocess shared by the whole session (state not reset)."""
    from airflow_rds_export.testing import EmulatorServer

    with EmulatorServer(region_name="us-east-1") as server:
        yield server


@pytest.fixture
def rds_emulator_server(rds_emulator_server_session: EmulatorServer) -> EmulatorServer:
    """The session's emulator server, reset to empty for this test."""
    server = rds_emulator_server_session
    if not server.running:
        server.start()
    server.control.reset()
    return server
