"""DAG sources shared by several test modules."""

from __future__ import annotations

from typing import Any

from conftest import ExportWorld

DAG_HEADER = """
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator
from airflow_rds_export.sensors import (
    RdsExportTaskExistenceSensor,
    RdsExportTaskStateSensor,
    RdsSnapshotExistenceSensor,
    RdsSnapshotReadySensor,
)

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
"""


def dag(dag_id: str, body: str) -> str:
    """A DAG file: the header, then ``body`` indented into the ``with DAG`` block."""
    indented = "\n".join("    " + line if line else line for line in body.strip().splitlines())
    return DAG_HEADER.format(dag_id=dag_id) + indented + "\n"


LIFECYCLE = """
import pendulum
from airflow.sdk import DAG

from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator
from airflow_rds_export.sensors import (
    RdsExportTaskExistenceSensor,
    RdsExportTaskStateSensor,
    RdsSnapshotExistenceSensor,
    RdsSnapshotReadySensor,
)

AWS = {aws!r}

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    snapshot = RdsSnapshotReadySensor(
        task_id="wait_for_snapshot",
        db_snapshot_identifier="orders-snap",
        poke_interval=0.5,
        deferrable={deferrable},
        **AWS,
    )
    start = RdsStartExportTaskOperator(
        task_id="start",
        export_task_identifier="orders-20240101",
        source_arn="{{{{ ti.xcom_pull(task_ids='wait_for_snapshot')['SourceArn'] }}}}",
        s3_bucket_name={bucket!r},
        s3_prefix="nightly",
        iam_role_arn={role!r},
        kms_key_id={key!r},
        wait_for_completion=False,
        source_wait_interval=1,
        retries={start_retries},
        **AWS,
    )
    wait = RdsExportTaskStateSensor(
        task_id="wait_for_export",
        export_task_identifier="orders-20240101",
        poke_interval=0.5,
        deferrable={deferrable},
        **AWS,
    )
    cancel = RdsCancelExportTaskOperator(
        task_id="cancel_if_unfinished",
        export_task_identifier="orders-20240101",
        on_invalid_state="skip",
        wait_for_completion=False,
        **AWS,
    )
    snapshot >> start >> wait >> cancel
"""

EXPECTED = {
    "wait_for_snapshot": "success",
    "start": "success",
    "wait_for_export": "success",
    "cancel_if_unfinished": "skipped",
}


def lifecycle(
    world: ExportWorld,
    dag_id: str,
    *,
    deferrable: bool,
    botocore_config: dict[str, Any] | None = None,
    start_retries: int = 0,
) -> str:
    aws = {"botocore_config": botocore_config} if botocore_config else {}
    return LIFECYCLE.format(
        dag_id=dag_id,
        aws=aws,
        deferrable=deferrable,
        bucket=world.bucket,
        role=world.iam_role_arn,
        key=world.kms_key_id,
        start_retries=start_retries,
    )
