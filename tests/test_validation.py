"""Bad input is refused when the DAG is parsed, naming the parameter, the value and the rule.

Each case builds a real operator or sensor with one bad literal argument, as a DAG file
would, and checks the error. Templated values are covered in test_operators/test_sensors.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Ledger

from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsExportTaskStateSensor, RdsSnapshotReadySensor
from airflow_rds_export.validation import InvalidParameterError

SNAPSHOT_ARN = "arn:aws:rds:us-east-1:123456789012:snapshot:orders-2026-11-21"
START_OK: dict[str, Any] = {
    "task_id": "start",
    "export_task_identifier": "orders-20261121",
    "source_arn": SNAPSHOT_ARN,
    "s3_bucket_name": "exports-bucket",
    "iam_role_arn": "arn:aws:iam::123456789012:role/rds-s3-export",
    "kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}

# (component, overriding kwargs, field named in the error, words of the rule)
BAD_INPUTS: list[tuple[type, dict[str, Any], str, str]] = [
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": ""},
        "export_task_identifier",
        "non-empty",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": "a" * 61},
        "export_task_identifier",
        "61 characters",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": "1orders"},
        "export_task_identifier",
        "begin with a letter",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": "orders_2026"},
        "export_task_identifier",
        "only ASCII letters, digits and hyphens",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": "orders-"},
        "export_task_identifier",
        "end with a hyphen",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": "orders--x"},
        "export_task_identifier",
        "two consecutive hyphens",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_task_identifier": "ordérs"},
        "export_task_identifier",
        "ASCII",
    ),
    (RdsStartExportTaskOperator, {"source_arn": "orders-snapshot"}, "source_arn", "must be an ARN"),
    (
        RdsStartExportTaskOperator,
        {"source_arn": "arn:aws:s3:::bucket/key"},
        "source_arn",
        "service 'rds'",
    ),
    (
        RdsStartExportTaskOperator,
        {"source_arn": "arn:aws:rds:us-east-1:123456789012:db:orders"},
        "source_arn",
        "DB instance ARN",
    ),
    (
        RdsStartExportTaskOperator,
        {"source_arn": "arn:aws:rds:us-east-1:123456789012:og:default"},
        "source_arn",
        "cannot be exported",
    ),
    (
        RdsStartExportTaskOperator,
        {"source_arn": "arn:awz:rds:us-east-1:123456789012:snapshot:s"},
        "source_arn",
        "unknown partition",
    ),
    (
        RdsStartExportTaskOperator,
        {"source_arn": "arn:aws:rds:mars-1:123456789012:snapshot:s"},
        "source_arn",
        "not a Region",
    ),
    (
        RdsStartExportTaskOperator,
        {"source_arn": "arn:aws:rds:us-east-1:1234:snapshot:s"},
        "source_arn",
        "12 digits",
    ),
    (RdsStartExportTaskOperator, {"s3_bucket_name": "Exports"}, "s3_bucket_name", "lower-case"),
    (
        RdsStartExportTaskOperator,
        {"s3_bucket_name": "s3://exports"},
        "s3_bucket_name",
        "not an s3:// URI",
    ),
    (RdsStartExportTaskOperator, {"s3_bucket_name": "ab"}, "s3_bucket_name", "3-63"),
    (RdsStartExportTaskOperator, {"s3_bucket_name": "my..bucket"}, "s3_bucket_name", "no '..'"),
    (
        RdsStartExportTaskOperator,
        {"s3_bucket_name": "192.168.1.10"},
        "s3_bucket_name",
        "not an IP address",
    ),
    (RdsStartExportTaskOperator, {"s3_prefix": "nightly/"}, "s3_prefix", "must not end with '/'"),
    (
        RdsStartExportTaskOperator,
        {"s3_prefix": "nightly:orders"},
        "s3_prefix",
        "must not contain ':'",
    ),
    (
        RdsStartExportTaskOperator,
        {"iam_role_arn": "rds-s3-export"},
        "iam_role_arn",
        "must be an ARN",
    ),
    (
        RdsStartExportTaskOperator,
        {"iam_role_arn": "arn:aws:iam::123456789012:user/bob"},
        "iam_role_arn",
        "IAM role ARN",
    ),
    (RdsStartExportTaskOperator, {"kms_key_id": ""}, "kms_key_id", "required by AWS"),
    (
        RdsStartExportTaskOperator,
        {"kms_key_id": "arn:aws:s3:::bucket"},
        "kms_key_id",
        "KMS key or alias ARN",
    ),
    (
        RdsStartExportTaskOperator,
        {"export_only": ["db.schema.table.column.x"]},
        "export_only",
        "database.schema.table",
    ),
    (RdsStartExportTaskOperator, {"export_only": ["my db"]}, "export_only", "without spaces"),
    (RdsStartExportTaskOperator, {"export_only": "orders"}, "export_only", "list of strings"),
    (
        RdsStartExportTaskOperator,
        {"on_invalid_state": "retry"},
        "on_invalid_state",
        "must be one of",
    ),
    (RdsStartExportTaskOperator, {"if_exists": "overwrite"}, "if_exists", "must be one of"),
    (RdsStartExportTaskOperator, {"source_wait_interval": 0}, "source_wait_interval", "positive"),
    (
        RdsStartExportTaskOperator,
        {"source_wait_timeout": timedelta(seconds=-5)},
        "source_wait_timeout",
        "positive",
    ),
    (RdsStartExportTaskOperator, {"waiter_interval": -1}, "waiter_interval", "positive"),
    (
        RdsStartExportTaskOperator,
        {"waiter_max_attempts": 0},
        "waiter_max_attempts",
        "positive whole number",
    ),
    (
        RdsCancelExportTaskOperator,
        {"export_task_identifier": "bad_id"},
        "export_task_identifier",
        "letters, digits and hyphens",
    ),
    (
        RdsCancelExportTaskOperator,
        {"on_invalid_state": "reschedule"},
        "on_invalid_state",
        "['skip', 'fail']",
    ),
    (RdsCancelExportTaskOperator, {"on_missing": "ignore"}, "on_missing", "must be one of"),
    (RdsCancelExportTaskOperator, {"check_interval": 0}, "check_interval", "positive"),
    (
        RdsSnapshotReadySensor,
        {"db_snapshot_identifier": "1-snapshot"},
        "db_snapshot_identifier",
        "begins with a letter",
    ),
    (
        RdsSnapshotReadySensor,
        {"db_snapshot_identifier": "arn:aws:rds:us-east-1:123456789012:db:orders"},
        "db_snapshot_identifier",
        "DB instance ARN",
    ),
    (
        RdsSnapshotReadySensor,
        {"db_snapshot_identifier": "s1", "db_instance_identifier": "orders"},
        "db_snapshot_identifier",
        "exactly one",
    ),
    (
        RdsSnapshotReadySensor,
        {"db_snapshot_identifier": None},
        "db_snapshot_identifier",
        "exactly one",
    ),
    (
        RdsSnapshotReadySensor,
        {"db_snapshot_identifier": None, "db_instance_identifier": "orders_db"},
        "db_instance_identifier",
        "letters, digits or hyphens",
    ),
    (RdsSnapshotReadySensor, {"snapshot_type": "nightly"}, "snapshot_type", "must be one of"),
    (RdsSnapshotReadySensor, {"on_missing": "wait"}, "on_missing", "must be one of"),
    (RdsSnapshotReadySensor, {"on_failure": "reschedule"}, "on_failure", "must be one of"),
    (
        RdsSnapshotReadySensor,
        {
            "db_snapshot_identifier": None,
            "db_instance_identifier": "orders",
            "created_after": "yesterday",
        },
        "created_after",
        "ISO 8601",
    ),
    (RdsExportTaskStateSensor, {"target_statuses": []}, "target_statuses", "at least one status"),
    (
        RdsExportTaskStateSensor,
        {"target_statuses": ["done"]},
        "target_statuses",
        "unknown status 'done'",
    ),
    (
        RdsExportTaskStateSensor,
        {"error_statuses": ["FAILED", "complete"]},
        "error_statuses",
        "overlaps target_statuses",
    ),
    (
        RdsExportTaskStateSensor,
        {"target_statuses": "complete"},
        "target_statuses",
        "list of statuses",
    ),
    (RdsExportTaskStateSensor, {"on_missing": "skipp"}, "on_missing", "must be one of"),
]

DEFAULTS: dict[type, dict[str, Any]] = {
    RdsStartExportTaskOperator: START_OK,
    RdsCancelExportTaskOperator: {"task_id": "cancel", "export_task_identifier": "orders-1"},
    RdsSnapshotReadySensor: {"task_id": "snap", "db_snapshot_identifier": "orders-snap"},
    RdsExportTaskStateSensor: {"task_id": "state", "export_task_identifier": "orders-1"},
}


@pytest.mark.parametrize(
    ("component", "bad", "field", "rule"),
    BAD_INPUTS,
    ids=[f"{c.__name__}-{f}-{i}" for i, (c, _, f, _r) in enumerate(BAD_INPUTS)],
)
def test_bad_literal_is_refused_at_parse_time(
    component: type, bad: dict[str, Any], field: str, rule: str, ledger: Ledger
) -> None:
    ledger.bad_inputs_tried += 1
    with pytest.raises(InvalidParameterError) as raised:
        component(**{**DEFAULTS[component], **bad})
    message = str(raised.value)
    assert raised.value.field == field
    assert message.startswith(f"{field}=")
    assert rule in message
    assert repr(raised.value.value) in message
    ledger.bad_inputs_with_clear_error += 1


def test_there_are_at_least_30_bad_input_cases() -> None:
    assert len(BAD_INPUTS) >= 30


@pytest.mark.parametrize(
    "value",
    ["{{ params.export_id }}", "{% if true %}x{% endif %}"],
)
def test_templated_values_wait_for_rendering(value: str) -> None:
    operator = RdsStartExportTaskOperator(**{**START_OK, "export_task_identifier": value})
    assert operator.export_task_identifier == value


def test_good_literals_are_accepted_unchanged() -> None:
    operator = RdsStartExportTaskOperator(
        **START_OK, s3_prefix="nightly/orders", export_only=["orders", "orders.public.items"]
    )
    assert operator.s3_prefix == "nightly/orders"
    assert operator.export_only == ["orders", "orders.public.items"]
    sensor = RdsSnapshotReadySensor(
        task_id="snap", db_snapshot_identifier="rds:orders-2026-11-21-03-00"
    )
    assert sensor.mode == "reschedule"


def test_partitions_are_botocores() -> None:
    """``airflow_rds_export/partitions.py`` is generated from the installed botocore's
    partition data; after a botocore upgrade, run ``scripts/generate_partitions.py``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate_partitions",
        Path(__file__).resolve().parent.parent / "scripts" / "generate_partitions.py",
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    from airflow_rds_export.partitions import PARTITIONS

    assert generator.botocore_partitions() == PARTITIONS
    assert {"aws", "aws-cn", "aws-us-gov", "aws-eusc"} <= set(PARTITIONS)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-eusc:rds:eusc-de-east-1:123456789012:snapshot:s",
        "arn:aws-cn:rds:cn-north-1:123456789012:cluster-snapshot:s",
        "arn:aws-us-gov:rds:us-gov-west-1:123456789012:cluster:c",
        "arn:aws:rds:eu-west-1:123456789012:cluster:analytics",
    ],
)
def test_export_sources_of_every_partition_and_live_clusters_are_accepted(arn: str) -> None:
    from airflow_rds_export.validation import validate_snapshot_identifier, validate_source_arn

    assert validate_source_arn(arn) == arn
    assert validate_snapshot_identifier(arn) == arn  # the start operator's source wait


def test_a_region_of_another_partition_is_refused() -> None:
    from airflow_rds_export.validation import validate_source_arn

    with pytest.raises(InvalidParameterError, match="not a Region of partition 'aws-cn'"):
        validate_source_arn("arn:aws-cn:rds:us-east-1:123456789012:snapshot:s")


@pytest.mark.parametrize(
    ("identifier", "attempt", "expected"),
    [
        ("orders-20240101", 1, "orders-20240101"),
        ("orders-20240101", 2, "orders-20240101-r2"),
        ("orders-20240101", 12, "orders-20240101-r12"),
        ("a" * 60, 2, "a" * 57 + "-r2"),
        ("a" * 56 + "-bcd", 2, "a" * 56 + "-r2"),  # the cut leaves no double hyphen
        ("a" * 58 + "-b", 20, "a" * 56 + "-r20"),
    ],
)
def test_a_re_export_gets_a_valid_identifier(identifier: str, attempt: int, expected: str) -> None:
    from airflow_rds_export.identifiers import attempt_identifier
    from airflow_rds_export.validation import validate_export_task_identifier

    derived = attempt_identifier(identifier, attempt)
    assert derived == expected
    assert validate_export_task_identifier(derived) == derived
