"""In-process emulator: moto's ``mock_aws`` plus the RDS behaviour real AWS has."""

from __future__ import annotations

from moto.core import DEFAULT_ACCOUNT_ID

from . import backend
from .control import EmulatorControl

__all__ = ["RdsEmulator"]


class RdsEmulator(EmulatorControl):
    """Emulated RDS (and S3, IAM, KMS) for the boto3 clients of this process.

    ``with RdsEmulator() as emu:`` starts ``moto.mock_aws()`` (fresh backends), patches
    moto's RDS as described in :mod:`.backend`, resets the emulator's settings, and on
    exit removes the patches and stops the mock. Every control method of
    :class:`~airflow_rds_export.testing.control.EmulatorControl` is available on it.

    One emulator at a time per process: ``mock_aws`` and the emulator state are global.

    :param region_name: the Region the control methods act on (clients may use others).
    :param account_id: the account the control methods act on.
    """

    def __init__(
        self, region_name: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID
    ) -> None:
        super().__init__(region_name=region_name, account_id=account_id)
        self._mock: object | None = None

    def __enter__(self) -> RdsEmulator:
        from moto import mock_aws

        mock = mock_aws()
        mock.start()
        self._mock = mock
        backend.install()
        backend.STATE.reset()
        backend.STATE.hang_mode = "timeout"
        return self

    def __exit__(self, *exc_info: object) -> None:
        backend.STATE.reset()
        backend.uninstall()
        mock, self._mock = self._mock, None
        if mock is not None:
            mock.stop()  # type: ignore[attr-defined]
