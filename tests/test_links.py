"""Console links: the URLs per partition, what is persisted and when not, the round trip
through XCom as the task runner makes it, and the module's import cost."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseOperator
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time.comms import GetXCom, SetXCom, XComResult

from airflow_rds_export.links import (
    EXPORT_LINKS,
    SNAPSHOT_LINKS,
    RdsExportTaskLink,
    RdsSnapshotLink,
    S3ExportPrefixLink,
    persist_export_links,
    persist_snapshot_link,
)

ACCOUNT = "123456789012"


class ExportTask(BaseOperator):
    """Stands for the export components once they declare the links."""

    operator_extra_links = EXPORT_LINKS


class SnapshotWait(BaseOperator):
    operator_extra_links = SNAPSHOT_LINKS


class SupervisorXComs:
    """The supervisor's end of ``SetXCom`` / ``GetXCom``: what the task runner talks to.

    The only fake here: XCom itself (``ti.xcom_push``, ``XCom.get_value``, the backend's
    serialisation) is the task SDK's own.
    """

    def __init__(self) -> None:
        self.values: dict[tuple[Any, ...], Any] = {}

    def send(self, msg: Any) -> Any:
        where = (msg.dag_id, msg.task_id, msg.run_id, msg.map_index, msg.key)
        if isinstance(msg, SetXCom):
            self.values[where] = msg.value
            return None
        if isinstance(msg, GetXCom):
            return XComResult(key=msg.key, value=self.values.get(where))
        raise AssertionError(f"unexpected message {msg!r}")

    def keys(self) -> set[str]:
        return {where[-1] for where in self.values}


@pytest.fixture
def xcoms(monkeypatch: pytest.MonkeyPatch) -> SupervisorXComs:
    comms = SupervisorXComs()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    return comms


def running(task: BaseOperator) -> dict[str, Any]:
    """The ``ti`` and ``task`` of a task's context, as a worker has them."""
    ti = task_runner.RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id="nightly_rds_export",
        run_id="scheduled__2026-01-01",
        try_number=1,
        map_index=-1,
        task=task,
        start_date=datetime.now(timezone.utc),
    )
    return {"ti": ti, "task": task}


def shown_links(context: dict[str, Any]) -> dict[str, str]:
    """What the task runner stores for the UI at the end of a run (``finalize``)."""
    task = context["task"]
    return {
        link.name: link.get_link(operator=task, ti_key=context["ti"])
        for link in task.operator_extra_links
    }


def export(
    region: str = "us-east-1",
    partition: str = "aws",
    *,
    prefix: str | None = "nightly/orders",
    **fields: Any,
) -> dict[str, Any]:
    """A DescribeExportTasks entry, as the hook returns it."""
    return {
        "ExportTaskIdentifier": "orders-20260101",
        "SourceArn": f"arn:{partition}:rds:{region}:{ACCOUNT}:snapshot:rds:orders-2026-01-01",
        "S3Bucket": "exports-bucket",
        "S3Prefix": prefix,
        "Status": "STARTING",
        **fields,
    }


def export_links(description: dict[str, Any], region_name: str | None = None) -> tuple[str, str]:
    """(export task URL, S3 URL) as a run that persisted them shows them."""
    context = running(ExportTask(task_id="export"))
    persist_export_links(context, description, region_name)
    links = shown_links(context)
    return links[RdsExportTaskLink.name], links[S3ExportPrefixLink.name]


# --- URLs per partition --------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition", "console"),
    [
        ("us-east-1", "aws", "https://us-east-1.console.aws.amazon.com"),
        ("eu-central-2", "aws", "https://eu-central-2.console.aws.amazon.com"),
        # Not in botocore's list (yet): its partition's pattern still places it.
        ("ap-southeast-9", "aws", "https://ap-southeast-9.console.aws.amazon.com"),
        ("cn-north-1", "aws-cn", "https://cn-north-1.console.amazonaws.cn"),
        ("cn-northwest-1", "aws-cn", "https://cn-northwest-1.console.amazonaws.cn"),
        ("us-gov-west-1", "aws-us-gov", "https://us-gov-west-1.console.amazonaws-us-gov.com"),
    ],
)
def test_links_open_the_partitions_console_in_the_exports_region(
    xcoms: SupervisorXComs, region: str, partition: str, console: str
) -> None:
    task_url, s3_url = export_links(export(region, partition), region)
    assert task_url == (
        f"{console}/rds/home?region={region}"
        "#export-task:id=orders-20260101;source-location=exports-in-s3"
    )
    assert s3_url == (
        f"{console}/s3/buckets/exports-bucket?region={region}"
        "&prefix=nightly/orders/orders-20260101/"
    )


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("us-isof-south-1", "aws-iso-f"),
        ("eusc-de-east-1", "aws-eusc"),
    ],
)
def test_a_partition_without_a_public_console_shows_no_link(
    xcoms: SupervisorXComs, region: str, partition: str
) -> None:
    assert export_links(export(region, partition), region) == ("", "")
    # The values are kept all the same: links appear if the partition gains a console.
    assert xcoms.keys() == {RdsExportTaskLink.key, S3ExportPrefixLink.key}


def test_the_region_comes_from_source_arn_when_the_task_has_none(
    xcoms: SupervisorXComs,
) -> None:
    task_url, s3_url = export_links(export("cn-northwest-1", "aws-cn"), region_name=None)
    assert task_url.startswith(
        "https://cn-northwest-1.console.amazonaws.cn/rds/home?region=cn-northwest-1#"
    )
    assert s3_url.startswith("https://cn-northwest-1.console.amazonaws.cn/s3/buckets/")


@pytest.mark.parametrize(
    ("region_name", "source_arn"),
    [
        (None, None),
        (None, "not-an-arn"),
        (None, f"arn:aws:rds::{ACCOUNT}:snapshot:no-region"),
        ("moon-central-1", None),  # no partition has such a Region
        ("aws-global", None),  # botocore's pseudo-Region, not a console Region
        ("us-east-1\n", None),
    ],
)
def test_without_a_known_region_nothing_is_persisted(
    xcoms: SupervisorXComs, region_name: str | None, source_arn: str | None
) -> None:
    assert export_links(export(SourceArn=source_arn), region_name) == ("", "")
    assert xcoms.values == {}


# --- the exported prefix in S3 -------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "shown"),
    [
        ("nightly/orders", "nightly/orders/orders-20260101/"),
        ("/nightly/orders/", "nightly/orders/orders-20260101/"),  # as AWS writes it
        ("my exports/2026", "my%20exports/2026/orders-20260101/"),
        ("a+b&c=d#e?f", "a%2Bb%26c%3Dd%23e%3Ff/orders-20260101/"),
        ("données/été", "donn%C3%A9es/%C3%A9t%C3%A9/orders-20260101/"),
        ("100%", "100%25/orders-20260101/"),
        ("", "orders-20260101/"),
        (None, "orders-20260101/"),
    ],
)
def test_the_prefix_is_url_encoded_keeping_its_slashes(
    xcoms: SupervisorXComs, prefix: str | None, shown: str
) -> None:
    _, s3_url = export_links(export(prefix=prefix), "us-east-1")
    assert s3_url == (
        "https://us-east-1.console.aws.amazon.com/s3/buckets/exports-bucket"
        f"?region=us-east-1&prefix={shown}"
    )


def test_a_description_without_s3prefix_links_the_export_folder(
    xcoms: SupervisorXComs,
) -> None:
    description = export()
    del description["S3Prefix"]
    _, s3_url = export_links(description, "us-east-1")
    assert s3_url.endswith("?region=us-east-1&prefix=orders-20260101/")


def test_without_a_bucket_only_the_export_task_is_linked(xcoms: SupervisorXComs) -> None:
    task_url, s3_url = export_links(export(S3Bucket=None), "us-east-1")
    assert task_url.endswith("#export-task:id=orders-20260101;source-location=exports-in-s3")
    assert s3_url == ""
    assert xcoms.keys() == {RdsExportTaskLink.key}


# --- the snapshot sensors' link ------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "fragment"),
    [
        (
            {
                "DBSnapshotIdentifier": "rds:orders-2026-01-01-03-05",
                "DBInstanceIdentifier": "orders",
                "SourceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:snapshot:rds:orders-2026-01-01",
            },
            "#db-snapshot:id=rds:orders-2026-01-01-03-05",
        ),
        (
            {
                "DBClusterSnapshotIdentifier": "orders-manual",
                "DBClusterIdentifier": "orders-cluster",
                "SourceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster-snapshot:orders-manual",
            },
            "#snapshot:engine=aurora;id=orders-manual",
        ),
        (
            {
                "DBClusterIdentifier": "orders-cluster",
                "SourceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:orders-cluster",
            },
            "#database:id=orders-cluster;is-cluster=true",
        ),
    ],
    ids=["db-snapshot", "cluster-snapshot", "live-cluster"],
)
def test_the_snapshot_sensor_links_the_snapshot(
    xcoms: SupervisorXComs, description: dict[str, Any], fragment: str
) -> None:
    context = running(SnapshotWait(task_id="snapshot"))
    persist_snapshot_link(context, description, None)
    assert shown_links(context) == {
        RdsSnapshotLink.name: "https://eu-west-1.console.aws.amazon.com/rds/home"
        f"?region=eu-west-1{fragment}"
    }


@pytest.mark.parametrize("description", [None, {}, {"Status": "creating"}])
def test_no_snapshot_in_the_description_persists_nothing(
    xcoms: SupervisorXComs, description: dict[str, Any] | None
) -> None:
    context = running(SnapshotWait(task_id="snapshot"))
    persist_snapshot_link(context, description, "us-east-1")
    assert xcoms.values == {}
    assert shown_links(context) == {RdsSnapshotLink.name: ""}


# --- when nothing is persisted, and reading back -------------------------------------


def test_the_persisted_values_are_json_and_get_link_formats_them(
    xcoms: SupervisorXComs,
) -> None:
    export_links(export(), "us-east-1")
    assert sorted(xcoms.values.values(), key=str) == sorted(
        [
            {
                "region_name": "us-east-1",
                "partition": "aws",
                "export_task_identifier": "orders-20260101",
            },
            {
                "region_name": "us-east-1",
                "partition": "aws",
                "bucket": "exports-bucket",
                "prefix": "nightly/orders/orders-20260101/",
            },
        ],
        key=str,
    )


def test_a_task_with_do_xcom_push_false_persists_nothing(xcoms: SupervisorXComs) -> None:
    context = running(ExportTask(task_id="export", do_xcom_push=False))
    persist_export_links(context, export(), "us-east-1")
    assert xcoms.values == {}
    assert shown_links(context) == {RdsExportTaskLink.name: "", S3ExportPrefixLink.name: ""}


@pytest.mark.parametrize(
    "context",
    [{}, {"ti": None}, {"ti": object()}, {"ti": object(), "task": ExportTask(task_id="x")}],
    ids=["no-ti", "ti-none", "ti-cannot-push", "ti-cannot-push-with-task"],
)
def test_a_context_that_cannot_push_is_skipped_silently(context: dict[str, Any]) -> None:
    persist_export_links(context, export(), "us-east-1")
    persist_snapshot_link(context, {"DBSnapshotIdentifier": "s"}, "us-east-1")


def test_a_failed_push_is_logged_and_never_fails_the_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenTi:
        task = ExportTask(task_id="export")

        def xcom_push(self, key: str, value: Any) -> None:
            raise ConnectionError("API server unreachable")

    with caplog.at_level(logging.WARNING, logger="airflow_rds_export.links"):
        persist_export_links({"ti": BrokenTi()}, export(), "us-east-1")
    assert "rds_export_task_link console link (API server unreachable)" in caplog.text


def test_get_link_is_empty_when_xcom_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unreachable:
        def send(self, msg: Any) -> Any:
            raise ConnectionError("supervisor gone")

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Unreachable(), raising=False)
    assert shown_links(running(ExportTask(task_id="export"))) == {
        RdsExportTaskLink.name: "",
        S3ExportPrefixLink.name: "",
    }


@pytest.mark.parametrize("stored", ["https://example.com", ["us-east-1"], 7])
def test_get_link_ignores_a_value_it_did_not_write(xcoms: SupervisorXComs, stored: Any) -> None:
    context = running(ExportTask(task_id="export"))
    context["ti"].xcom_push(key=RdsExportTaskLink.key, value=stored)
    assert shown_links(context)[RdsExportTaskLink.name] == ""


def test_persisting_again_replaces_the_values(xcoms: SupervisorXComs) -> None:
    """A re-export (``-r2``) after an adoption: the link follows the export in hand."""
    context = running(ExportTask(task_id="export"))
    persist_export_links(context, export(), "us-east-1")
    persist_export_links(context, export(ExportTaskIdentifier="orders-20260101-r2"), None)
    assert shown_links(context) == {
        RdsExportTaskLink.name: "https://us-east-1.console.aws.amazon.com/rds/home"
        "?region=us-east-1#export-task:id=orders-20260101-r2;source-location=exports-in-s3",
        S3ExportPrefixLink.name: "https://us-east-1.console.aws.amazon.com/s3/buckets"
        "/exports-bucket?region=us-east-1&prefix=nightly/orders/orders-20260101-r2/",
    }


# --- declared on operators ----------------------------------------------------------


def test_the_links_serialise_with_the_dag_under_distinct_names() -> None:
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("links", schedule=None) as dag:
        ExportTask(task_id="export")
        SnapshotWait(task_id="snapshot")
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert {
        task_id: {
            link.name: link.xcom_key for link in serialized.get_task(task_id).operator_extra_links
        }
        for task_id in ("export", "snapshot")
    } == {
        "export": {
            "RDS Export Task": "_link_RdsExportTaskLink",
            "Exported Data in S3": "_link_S3ExportPrefixLink",
        },
        "snapshot": {"RDS Snapshot": "_link_RdsSnapshotLink"},
    }
    keys = [link.key for link in (*EXPORT_LINKS, *SNAPSHOT_LINKS)]
    assert len(set(keys)) == len(keys)


def test_importing_links_loads_no_aws_sdk_and_no_amazon_provider_module(
    tmp_path: Path,
) -> None:
    """DAG files import the links (``operator_extra_links``) on every parse. Airflow's
    providers manager imports ``airflow.providers.amazon`` (the package, for its provider
    info) on its own; nothing under it may come from importing the links."""
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_rds_export.links\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print(json.dumps({'new': new, 'all': sorted(sys.modules)}))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.splitlines()[-1])

    def is_heavy(module: str) -> bool:
        top = module.split(".")[0]
        return top in ("boto3", "botocore", "aiobotocore") or module.startswith(
            "airflow.providers.amazon.aws"
        )

    assert [m for m in modules["all"] if is_heavy(m)] == []
    # Only this package's modules and the task SDK's (BaseOperatorLink) are new.
    assert [
        m for m in modules["new"] if not m.startswith(("airflow_rds_export.", "airflow.sdk."))
    ] == []
