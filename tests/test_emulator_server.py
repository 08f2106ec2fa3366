"""Server mode specifics: Airflow connection, restart, command line, and the API surface."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from airflow_rds_export.testing import (
    CONTROL_METHODS,
    EmulatorControl,
    EmulatorControlError,
    EmulatorServer,
    FlakyProxy,
    RdsEmulator,
    RemoteControl,
    airflow_connection_env,
)


def test_airflow_connection_env_shape() -> None:
    env = airflow_connection_env("http://127.0.0.1:5555", conn_id="aws_exports")
    assert list(env) == ["AIRFLOW_CONN_AWS_EXPORTS"]
    assert json.loads(env["AIRFLOW_CONN_AWS_EXPORTS"]) == {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:5555"},
    }


_HOOK_SCRIPT = """
import json
from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

client = AwsGenericHook(aws_conn_id="aws_default", client_type="rds").conn
snapshots = client.describe_db_snapshots()["DBSnapshots"]
print(json.dumps({"endpoint": client.meta.endpoint_url,
                  "snapshots": [s["DBSnapshotIdentifier"] for s in snapshots]}))
"""


def test_aws_generic_hook_talks_to_the_server(
    rds_emulator_server: EmulatorServer, tmp_path: Path
) -> None:
    # A subprocess with its own AIRFLOW_HOME: the connection comes only from the env var.
    rds_emulator_server.control.create_db_instance("orders")
    rds_emulator_server.control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))},
        "AIRFLOW_HOME": str(tmp_path),
        **airflow_connection_env(rds_emulator_server.endpoint_url),
    }
    result = subprocess.run(
        [sys.executable, "-c", _HOOK_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "endpoint": rds_emulator_server.endpoint_url,
        "snapshots": ["orders-manual"],
    }
    assert rds_emulator_server.control.calls() == {"DescribeDBSnapshots": 1}


def _client(endpoint_url: str, region_name: str = "us-east-1", **config: Any) -> Any:
    return boto3.client(
        "rds",
        region_name=region_name,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


def test_refuse_over_http_reaches_botocore_as_that_client_error(
    rds_emulator_server: EmulatorServer,
) -> None:
    control = rds_emulator_server.control
    control.create_db_instance("orders")
    control.create_db_snapshot("orders-manual", db_instance_identifier="orders")
    # A retrying client, as the hook uses: a refusal is not retried, so one call arrives.
    client = _client(rds_emulator_server.endpoint_url, retries={"mode": "standard"})
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/airflow/worker is not authorized to "
        "perform: rds:DescribeExportTasks on resource: arn:aws:rds:us-east-1:123456789012:"
        "export-task:x because no identity-based policy allows the rds:DescribeExportTasks "
        "action <&> \u00e9"
    )
    control.refuse("DescribeExportTasks", code="AccessDenied", message=message, status=403)
    with pytest.raises(ClientError) as excinfo:
        client.describe_export_tasks()
    error = excinfo.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDenied",
        403,
    )
    assert error["Error"]["Message"] == message
    assert control.calls() == {"DescribeExportTasks": 1}

    control.refuse("DescribeDBSnapshots", code="KMSKeyNotAccessibleFault", message="key gone")
    with pytest.raises(client.exceptions.KMSKeyNotAccessibleFault) as kms:
        client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")
    assert kms.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert kms.value.response["Error"]["Message"] == "key gone"
    assert client.describe_db_snapshots(DBSnapshotIdentifier="orders-manual")["DBSnapshots"]
    with pytest.raises(EmulatorControlError, match="4xx"):
        control.refuse("DescribeDBSnapshots", code="InternalFailure", status=500)


def test_server_of_another_region_resolves_only_its_own_arns() -> None:
    # The emulator's Region is the backend's: a server for eu-west-1 exports eu-west-1
    # snapshots and answers an ARN of us-east-1 as a snapshot that does not exist.
    with EmulatorServer(region_name="eu-west-1") as server:
        control = server.control
        prereq = control.seed_export_prerequisites(bucket="exports-eu")
        control.create_db_instance("orders")
        arn = control.create_db_snapshot("orders-manual", "orders")["DBSnapshotArn"]
        assert arn.startswith("arn:aws:rds:eu-west-1:")
        client = _client(server.endpoint_url, region_name="eu-west-1")
        arguments = {
            "S3BucketName": prereq["bucket"],
            "IamRoleArn": prereq["iam_role_arn"],
            "KmsKeyId": prereq["kms_key_id"],
        }
        us_arn = arn.replace(":eu-west-1:", ":us-east-1:")
        with pytest.raises(client.exceptions.DBSnapshotNotFoundFault) as excinfo:
            client.start_export_task(ExportTaskIdentifier="exp-us", SourceArn=us_arn, **arguments)
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        with pytest.raises(client.exceptions.DBSnapshotNotFoundFault):
            client.describe_db_snapshots(DBSnapshotIdentifier=us_arn)
        started = client.start_export_task(
            ExportTaskIdentifier="Exp-EU", SourceArn=arn, **arguments
        )
        assert (started["ExportTaskIdentifier"], started["Status"]) == ("exp-eu", "STARTING")
        assert [t["ExportTaskIdentifier"] for t in control.export_tasks()] == ["exp-eu"]


def test_flaky_proxy_refuses_connections_while_down(rds_emulator_server: EmulatorServer) -> None:
    with FlakyProxy(rds_emulator_server.port) as proxy:
        client = _client(proxy.endpoint_url, retries={"total_max_attempts": 1})
        assert client.describe_export_tasks()["ExportTasks"] == []
        port = proxy.port
        proxy.go_down()
        with pytest.raises(EndpointConnectionError):
            client.describe_export_tasks()
        proxy.come_back()
        assert proxy.port == port
        assert client.describe_export_tasks()["ExportTasks"] == []
    assert rds_emulator_server.control.calls() == {"DescribeExportTasks": 2}


def test_restart_keeps_the_port_and_loses_state(rds_emulator_server: EmulatorServer) -> None:
    server = rds_emulator_server
    server.control.create_db_instance("orders")
    endpoint = server.endpoint_url
    server.stop()
    assert not server.running
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/_rds_emulator/health", timeout=1)
    server.start()
    assert server.endpoint_url == endpoint
    client = boto3.client(
        "rds",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert client.describe_db_instances()["DBInstances"] == []


def test_command_line_serve_writes_port_file(tmp_path: Path) -> None:
    port_file = tmp_path / "rds.port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_rds_export.testing",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.05)
        port = int(port_file.read_text())
        assert port > 0
        url = f"http://127.0.0.1:{port}/_rds_emulator/health"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read()) == {"ok": True}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_remote_control_has_the_same_methods_as_the_emulator() -> None:
    public = {
        name
        for name, member in inspect.getmembers(EmulatorControl, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == set(CONTROL_METHODS)
    for name in CONTROL_METHODS:
        local = inspect.signature(getattr(EmulatorControl, name))
        assert inspect.signature(getattr(RemoteControl, name)) == local, name
        assert inspect.signature(getattr(RdsEmulator, name)) == local, name


def test_plugin_and_package_imports_stay_cheap() -> None:
    code = (
        "import sys, airflow_rds_export, airflow_rds_export.testing.pytest_plugin\n"
        "heavy = [m for m in ('moto', 'boto3', 'botocore') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert result.stdout.strip() == ""
