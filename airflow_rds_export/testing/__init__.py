"""Emulated Amazon RDS snapshot exports for tests: moto, made to behave as real RDS does.

Test-only: this subpackage imports moto (install the ``testing`` extra), and nothing else
in ``airflow_rds_export`` imports it. Names are loaded lazily, so importing the package
(as pytest does for the plugin) costs nothing until a name is used.

* :class:`RdsEmulator` -- in-process (``with RdsEmulator() as emu:``), on ``moto.mock_aws``.
* :class:`EmulatorServer` -- the same emulator in a subprocess with an HTTP endpoint;
  ``srv.control`` has the same control methods as ``emu``.
* :func:`airflow_connection_env` -- an Airflow ``aws`` connection pointing at a server.
* :class:`EmulatorControlError` -- what a failed control call raises, in both modes.
* :class:`FlakyProxy` -- a TCP proxy in front of a server, for refused / reset connections.

What the emulator changes in moto, and how polls are counted: see :mod:`.backend` and
:mod:`.pacing`. Fixtures: :mod:`.pytest_plugin`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import airflow_connection_env
    from .control import CONTROL_METHODS, EmulatorControl
    from .emulator import RdsEmulator
    from .errors import EmulatorControlError
    from .proxy import FlakyProxy
    from .server import EmulatorServer, RemoteControl

__all__ = [
    "CONTROL_METHODS",
    "EmulatorControl",
    "EmulatorControlError",
    "EmulatorServer",
    "FlakyProxy",
    "RdsEmulator",
    "RemoteControl",
    "airflow_connection_env",
]

_HOMES = {
    "CONTROL_METHODS": ".control",
    "EmulatorControl": ".control",
    "EmulatorControlError": ".errors",
    "EmulatorServer": ".server",
    "FlakyProxy": ".proxy",
    "RdsEmulator": ".emulator",
    "RemoteControl": ".server",
    "airflow_connection_env": ".connection",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
