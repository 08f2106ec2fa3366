"""The Amazon provider's connection parameters, held once and handed on as they are.

Operators and sensors take them as arguments, triggers as JSON kwargs, the shared poller
as part of its key; all build their hook from :class:`AwsConnection`. Importing this
module does not import boto3: the hook is imported the first time one is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_rds_export.records import Record
from airflow_rds_export.validation import InvalidParameterError

if TYPE_CHECKING:
    from airflow_rds_export.hooks import RdsExportHook

__all__ = ["AWS_TEMPLATE_FIELDS", "AwsConnection", "AwsConnectionMixin"]

#: As the Amazon provider's ``aws_template_fields``: the connection can be templated too.
AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name", "verify")
#: What ``hook_params`` may hold: the hook's own connection arguments.
_HOOK_PARAM_KEYS = ("aws_conn_id", "region_name", "verify", "botocore_config", "config")


class AwsConnection(Record):
    """``aws_conn_id``, ``region_name``, ``verify`` and ``botocore_config``, JSON-friendly."""

    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    verify: bool | str | None = None
    botocore_config: dict[str, Any] | None = None

    def to_kwargs(self) -> dict[str, Any]:
        """The keyword arguments operators, sensors and triggers take."""
        return self._asdict()

    def hook(self) -> RdsExportHook:
        """A new hook for this connection (imports boto3 the first time)."""
        from airflow_rds_export.hooks import RdsExportHook

        return RdsExportHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )


class AwsConnectionMixin:
    """The connection parameters of an operator or sensor, and the hook built from them.

    :param aws_conn_id: The Airflow connection used for AWS credentials
        (default ``aws_default``); ``None`` uses boto3's default credential chain.
    :param region_name: AWS Region; the connection's or boto3's default when not given.
    :param verify: Whether to verify SSL certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration as a dict. Its ``retries``
        replaces this package's default (``standard`` mode, 5 attempts).
    """

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None
    hook_params: dict[str, Any]

    def _set_connection(
        self,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: dict[str, Any] | None,
        *,
        region: str | None = None,
        hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        """Hold the connection. ``region`` and ``hook_params`` are the Amazon provider's
        spellings: ``hook_params`` may carry the same four keys (``config`` for
        ``botocore_config``); an argument given explicitly wins."""
        given = dict(hook_params or {})
        unknown = sorted(set(given) - set(_HOOK_PARAM_KEYS))
        if unknown:
            raise InvalidParameterError(
                "hook_params",
                hook_params,
                f"unknown key(s) {unknown}; this package's hook takes {list(_HOOK_PARAM_KEYS)}",
            )
        if "aws_conn_id" in given and aws_conn_id not in ("aws_default", given["aws_conn_id"]):
            raise InvalidParameterError(
                "hook_params",
                hook_params,
                f"names aws_conn_id {given['aws_conn_id']!r} but aws_conn_id={aws_conn_id!r} "
                "was given too; give one",
            )
        self.hook_params = given
        self.aws_conn_id = given.get("aws_conn_id", aws_conn_id)
        self.region_name = region_name or region or given.get("region_name")
        self.verify = verify if verify is not None else given.get("verify")
        self.botocore_config = (
            botocore_config or given.get("botocore_config") or given.get("config")
        )

    @property
    def connection(self) -> AwsConnection:
        """The (rendered) connection parameters."""
        return AwsConnection(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        """JSON-friendly connection arguments, handed to triggers as they are."""
        return self.connection.to_kwargs()

    @cached_property
    def hook(self) -> RdsExportHook:
        return self.connection.hook()
