"""No secret reaches a log line or an XCom, and the documented IAM policies (the site's
docs/reference/iam.md) are the code's."""

from __future__ import annotations

import inspect
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

# What StartExportTask asks of its caller on the KMS key, in the words of the RDS API
# Reference (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_StartExportTask.html,
# parameter KmsKeyId): "The caller of this operation must be authorized to run the following
# operations. These can be set in the AWS KMS key policy: kms:CreateGrant, kms:DescribeKey".
# The export role is asked for no KMS permission there (nor in the RDS user guide).
START_EXPORT_KMS_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey")
# "Allows principals to call CreateGrant, ListGrants, or RevokeGrant only when an AWS service
# that is integrated with AWS KMS sends the request on the principal's behalf" (KMS developer
# guide, https://docs.aws.amazon.com/kms/latest/developerguide/grant-authorization.html).
GRANT_ONLY_FOR_AN_AWS_SERVICE = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
# The caller also passes the export role to RDS.
PASS_THE_EXPORT_ROLE = {"iam:PassRole"}
# Table verification reads the export's metadata files: the IAM action each S3 API call
# needs ("ListObjectsV2 ... you must have the s3:ListBucket permission", S3 API Reference;
# GetObject needs s3:GetObject), and kms:Decrypt for objects encrypted with the export key
# (SSE-KMS: "you need kms:Decrypt permission" to GET them, S3 user guide).
S3_ACTIONS_OF_CALLS = {"ListObjectsV2": "s3:ListBucket", "GetObject": "s3:GetObject"}
READ_ENCRYPTED_OUTPUT = "kms:Decrypt"
# The event trigger's SQS calls and the IAM action each needs. A batch action is authorized
# by its single action's permission (Amazon SQS developer guide, "Amazon SQS API
# permissions: Actions and resource reference": DeleteMessageBatch -> sqs:DeleteMessage).
SQS_ACTIONS_OF_CALLS = {
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
}
IAM_PAGE = REPO / "docs" / "reference" / "iam.md"


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


def s3_actions_called_by_the_package() -> set[str]:
    """The IAM actions of every S3 API operation whose botocore method the package uses."""
    client = boto3.client("s3", region_name="us-east-1")
    source = "\n".join(path.read_text() for path in (REPO / "airflow_rds_export").glob("*.py"))
    used = {
        api
        for method, api in client.meta.method_to_api_mapping.items()
        if re.search(rf"\b{re.escape(method)}\(", source)
    }
    unknown = used - set(S3_ACTIONS_OF_CALLS)
    assert not unknown, f"S3 calls without a documented IAM action: {unknown}"
    return {S3_ACTIONS_OF_CALLS[api] for api in used}


def policy_in(heading: str) -> list[dict]:
    """The statements of the first policy JSON under a ``## `` heading of the IAM page."""
    section = IAM_PAGE.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, f"the IAM page's section {heading!r} has no policy JSON"
    return json.loads(block.group(1))["Statement"]


def documented_statements() -> list[dict]:
    """The statements of the connection identity's policy on the IAM page."""
    return policy_in("The connection identity's policy")


def actions_of(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def documented_policy() -> dict[str, set[str]]:
    return {statement["Sid"]: actions_of(statement) for statement in documented_statements()}


def kms_statements() -> list[dict]:
    statements = [
        statement
        for statement in documented_statements()
        if any(action.startswith("kms:") for action in actions_of(statement))
    ]
    assert statements, "the documented policy grants nothing on the KMS key"
    return statements


def test_documented_policy_grants_exactly_what_the_code_calls() -> None:
    called = rds_actions_called_by_the_package()
    assert called >= {"rds:StartExportTask", "rds:DescribeExportTasks", "rds:CancelExportTask"}
    policy = documented_policy()
    assert policy.pop("RdsExportCalls") == called
    assert policy.pop("PassTheExportRole") == PASS_THE_EXPORT_ROLE
    s3_read = policy.pop("ListTheExportFolders") | policy.pop("ReadTheExportMetadata")
    assert s3_read == s3_actions_called_by_the_package() == {"s3:ListBucket", "s3:GetObject"}
    # Whatever is left is the key: exactly what StartExportTask asks of its caller, and
    # decrypting the export's output to verify it; no more.
    assert set().union(*policy.values()) == {*START_EXPORT_KMS_ACTIONS, READ_ENCRYPTED_OUTPUT}


def test_the_kms_action_list_is_the_one_aws_documents() -> None:
    """botocore ships the API reference's KmsKeyId text: a botocore upgrade that changes it
    (AWS asking the caller for another action, or one fewer) fails here."""
    model = boto3.client("rds", region_name="us-east-1").meta.service_model
    documentation = (
        model.operation_model("StartExportTask").input_shape.members["KmsKeyId"].documentation
    )
    assert "The caller of this operation must be authorized" in documentation
    assert set(re.findall(r"\bkms:[A-Za-z]+", documentation)) == set(START_EXPORT_KMS_ACTIONS)


def test_only_an_aws_service_can_create_grants_on_the_key() -> None:
    for statement in kms_statements():
        assert statement["Effect"] == "Allow"
        assert re.fullmatch(r"arn:aws:kms:[a-z0-9-]+:\d{12}:key/\S+", statement["Resource"]), (
            f"{statement['Sid']} must name the export key, not {statement['Resource']!r}"
        )
        if "kms:CreateGrant" in actions_of(statement):
            assert statement.get("Condition") == GRANT_ONLY_FOR_AN_AWS_SERVICE, statement["Sid"]
            # The condition key exists only on grant requests: any other action sharing the
            # statement would never be allowed.
            assert actions_of(statement) == {"kms:CreateGrant"}, statement["Sid"]
        else:
            assert "kms:GrantIsForAWSResource" not in json.dumps(statement.get("Condition", {}))


def test_the_calls_seen_at_the_emulator_are_documented(world: ExportWorld, run_dag: RunDag) -> None:
    world.control.create_db_snapshot("orders-snap", db_instance_identifier="orders")
    world.control.create_db_cluster("analytics")
    run_dag(lifecycle(world, "policy_calls", deferrable=True), "policy_calls", env=world.env)
    seen = {f"rds:{action}" for action in world.control.calls()}
    assert seen <= documented_policy()["RdsExportCalls"]
    assert {"rds:DescribeDBSnapshots", "rds:StartExportTask"} <= seen


def sqs_actions_called_by_the_event_trigger() -> set[str]:
    """The IAM actions of every SQS API operation the event trigger's code calls: ours
    (event_triggers.py) and the Amazon provider's SqsSensorTrigger, which receives and
    deletes for it."""
    from airflow.providers.amazon.aws.triggers import sqs as amazon_sqs_trigger

    client = boto3.client("sqs", region_name="us-east-1")
    source = (REPO / "airflow_rds_export" / "event_triggers.py").read_text() + inspect.getsource(
        amazon_sqs_trigger
    )
    used = {
        api
        for method, api in client.meta.method_to_api_mapping.items()
        if re.search(rf"\b{re.escape(method)}\(", source)
    }
    assert {"ReceiveMessage", "DeleteMessageBatch"} <= used, used
    unknown = used - set(SQS_ACTIONS_OF_CALLS)
    assert not unknown, f"SQS calls without a documented IAM action: {unknown}"
    return {SQS_ACTIONS_OF_CALLS[api] for api in used}


def test_documented_queue_policy_grants_exactly_what_the_event_trigger_calls() -> None:
    statements = {s["Sid"]: s for s in policy_in("The event trigger's queue")}
    queue = statements.pop("ReadAndDeleteRdsEvents")
    assert actions_of(queue) == sqs_actions_called_by_the_event_trigger()
    assert actions_of(queue) == {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    assert re.fullmatch(r"arn:aws:sqs:[a-z0-9-]+:\d{12}:[\w-]+", queue["Resource"]), queue
    # Only the queue's key, only to decrypt what it delivers: nothing else.
    [key] = statements.values()
    assert actions_of(key) == {READ_ENCRYPTED_OUTPUT}
    assert re.fullmatch(r"arn:aws:kms:[a-z0-9-]+:\d{12}:key/\S+", key["Resource"]), key


def test_the_queue_remedy_names_the_documented_actions() -> None:
    """What the trigger logs when a receive is denied names the actions the page grants."""
    from airflow_rds_export.decisions import decide_queue_error

    verdict = decide_queue_error(
        "q", error_code="AccessDenied", error_message="denied", http_status=403
    )
    assert verdict.permanent
    granted = set().union(*(actions_of(s) for s in policy_in("The event trigger's queue")))
    assert set(re.findall(r"\b(?:sqs|kms):[A-Za-z]+", verdict.reason)) == granted
