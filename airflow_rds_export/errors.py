"""What a failed AWS call said, read off the exception in one form for every driver.

botocore (on a worker) and aiobotocore (in the triggerer) raise the same ``ClientError``
for an AWS answer, but different exceptions for a connection that failed. This module
turns either into :class:`AwsError`; :mod:`airflow_rds_export.decisions` says what it
means. It imports botocore only when asked about an exception that is not an AWS answer,
so importing it costs nothing at DAG-parse time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import NamedTuple

from airflow_rds_export.decisions import Decision, decide_call_error, is_not_found, is_transient

__all__ = ["AwsError"]


class AwsError(NamedTuple):
    """A failed call: AWS's error code, message and HTTP status, or an unreachable AWS."""

    code: str | None
    message: str
    http_status: int | None = None
    unreachable: bool = False

    @classmethod
    def of(cls, exc: BaseException) -> AwsError:
        response = getattr(exc, "response", None)
        if isinstance(response, Mapping):
            error = response.get("Error") or {}
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return cls(
                code=str(error["Code"]) if error.get("Code") else None,
                message=str(error.get("Message") or exc),
                http_status=int(status) if status else None,
            )
        return cls(code=None, message=str(exc), unreachable=_is_connection_failure(exc))

    @property
    def transient(self) -> bool:
        """Worth waiting out: throttling, a 5xx answer, or no answer at all."""
        return self.unreachable or is_transient(self.code, self.http_status)

    @property
    def not_found(self) -> bool:
        return is_not_found(self.code)

    def decide(self, resource: str) -> Decision | None:
        """The decision for a wait whose describe call failed so; None: unknown error."""
        return decide_call_error(
            resource,
            error_code=self.code,
            error_message=self.message,
            http_status=self.http_status,
            unreachable=self.unreachable,
        )


def _is_connection_failure(exc: BaseException) -> bool:
    """Timeouts and dropped or refused connections, as botocore and aiobotocore raise them."""
    if isinstance(exc, (asyncio.TimeoutError, OSError)):
        return True
    from botocore.exceptions import ConnectionError, HTTPClientError

    return isinstance(exc, (ConnectionError, HTTPClientError))
