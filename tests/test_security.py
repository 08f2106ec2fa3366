"""No secret reaches a log line or an XCom, and the README's IAM policy is the code's."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from conftest import ExportWorld
from scenarios import EXPECTED, lifecycle

from airflow_rds_export.testing.airflow_runs import DagRunResult

RunDag = Callable[..., DagRunResult]
REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzSECRETzz"
SESSION_TOKEN = "FwoGZXIvYXdzEDontLogMeTOKENzzQ2h7yR"
ACCESS_KEY = "AKIAEXAMPLEDONTLOG42"

# What StartExportTask needs besides the RDS call itself (AWS's StartExportTask reference:
# the caller passes the export role to RDS and must be allowed these grant operations on
# the KMS key).
START_EXPORT_NEEDS = {
    "PassTheExportRole": {"iam:PassRole"},
    "UseTheExportKey": {
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:RetireGrant",
    },
}


@pytest.mark.parametrize("deferrable", [False, True], ids=["reschedule", "deferrable"])
def test_no_credential_reaches_a_log_or_an_xcom(
    world: ExportWorld, run_dag: RunDag, deferrable: bool
) -> None:
    world.control.create_db_snapshot(
        "orders-snap", db_instance_identifier="orders", ready_after_polls=1
    )
    connection = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {
            "aws_session_token": SESSION_TOKEN,
            "region_name": "us-east-1",
            "endpoint_url": world.server.endpoint_url,
        },
    }
    env = {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}
    dag_id = f"secrets_{int(deferrable)}"
    result = run_dag(lifecycle(world, dag_id, deferrable=deferrable), dag_id, env=env)
    assert result.task_states == EXPECTED
    everything = result.stdout + result.stderr + repr(result.xcoms)
    for secret in (SECRET_KEY, SESSION_TOKEN):
        assert secret not in everything
    assert "X-Amz-Signature" not in everything  # no presigned URL either


def rds_actions_called_by_the_package() -> set[str]:
    """Every RDS API operation whose botocore method name the package's code uses."""
    client = boto3.client("rds", region_name="us-east-1")
    operations = client.meta.method_to_api_mapping  # e.g. describe_db_snapshots -> ...
    source = "\n".join(
        path.read_text()
        for path in (REPO / "airflow_rds_export").glob("*.py")  # the components, not testing/
    )
    used = {
        api for method, api in operations.items() if re.search(rf"\b{re.escape(method)}\b", source)
    }
    return {f"rds:{api}" for api in used}


def documented_policy() -> dict[str, set[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Run it against real AWS", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the README's real-AWS section has no policy JSON"
    policy = json.loads(block.group(1))
    return {
        statement["Sid"]: set(
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
        for statement in policy["Statement"]
    }


def test_documented_policy_grants_exactly_what_the_code_calls() -> None:
    called = rds_actions_called_by_the_package()
    assert called >= {"rds:StartExportTask", "rds:DescribeExportTasks", "rds:CancelExportTask"}
    policy = documented_policy()
    assert policy.pop("RdsExportCalls") == called
    assert policy == START_EXPORT_NEEDS


def test_the_calls_seen_at_the_emulator_are_documented(world: ExportWorld, run_dag: RunDag) -> None:
    world.control.create_db_snapshot("orders-snap", db_instance_identifier="orders")
    world.control.create_db_cluster("analytics")
    run_dag(lifecycle(world, "policy_calls", deferrable=True), "policy_calls", env=world.env)
    seen = {f"rds:{action}" for action in world.control.calls()}
    assert seen <= documented_policy()["RdsExportCalls"]
    assert {"rds:DescribeDBSnapshots", "rds:StartExportTask"} <= seen
