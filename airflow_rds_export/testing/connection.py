"""Point Airflow's AWS connection at an emulator server."""

from __future__ import annotations

import json

__all__ = ["airflow_connection_env"]


def airflow_connection_env(
    endpoint_url: str, conn_id: str = "aws_default", region_name: str = "us-east-1"
) -> dict[str, str]:
    """Environment variables defining an Airflow ``aws`` connection to ``endpoint_url``.

    Returns ``{"AIRFLOW_CONN_<CONN_ID>": <JSON connection>}`` with login/password
    ``testing`` and extra ``{"region_name", "endpoint_url"}``: the Amazon provider's
    ``AwsConnectionWrapper`` reads ``endpoint_url`` from the extra and passes it to every
    boto3 client the hook creates. Merge it into ``os.environ`` (or a subprocess env).
    """
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": region_name, "endpoint_url": endpoint_url},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}
