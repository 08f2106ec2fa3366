"""The RDS errors the emulator raises, with the codes and HTTP statuses AWS puts on the wire.

moto serializes a ``ServiceException`` by looking its ``code`` up among the error shapes
of botocore's RDS model, which gives the wire code and HTTP status (for example the shape
``InvalidExportSourceStateFault`` is sent as code ``InvalidExportSourceState``, HTTP 400).
So every class here whose code names a modelled shape goes on the wire exactly as AWS
sends it. Errors AWS sends that the model does not list (``LimitExceeded``) are raised as
:class:`UnmodelledRdsError`, rendered directly, because moto would warn about them.
"""

from __future__ import annotations

from typing import Any

from moto.core.exceptions import HTTPException
from moto.rds.exceptions import RDSClientError

from .faults import query_error_response

__all__ = [
    "EmulatorControlError",
    "IamRoleNotFoundFault",
    "InvalidExportOnlyFault",
    "InvalidExportSourceStateFault",
    "InvalidExportTaskStateFault",
    "InvalidS3BucketFault",
    "KMSKeyNotAccessibleFault",
    "UnmodelledRdsError",
]


class EmulatorControlError(Exception):
    """A control call (``emu.set_snapshot_status(...)`` ...) could not be carried out.

    Raised in-process, and raised by the server-mode control client with the server's
    message, so a test sees the same exception type in both modes.
    """


class InvalidExportSourceStateFault(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidExportSourceStateFault", message)


class InvalidExportTaskStateFault(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidExportTaskStateFault", message)


class IamRoleNotFoundFault(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("IamRoleNotFoundFault", message)


class InvalidS3BucketFault(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidS3BucketFault", message)


class KMSKeyNotAccessibleFault(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("KMSKeyNotAccessibleFault", message)


class InvalidExportOnlyFault(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidExportOnlyFault", message)


class UnmodelledRdsError(HTTPException):
    """An RDS Query-protocol error whose code botocore's model does not list.

    moto answers a ``HTTPException`` with its ``description`` as body and ``code`` as HTTP
    status, which lets us send any code without moto's "unknown error shape" warning.
    """

    def __init__(self, error_code: str, message: str, status: int = 400) -> None:
        _, self._headers, body = query_error_response(error_code, message, status)
        super().__init__(description=body)
        self.code = status
        self.error_code = error_code
        self.message = message

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return list(self._headers.items())

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"
