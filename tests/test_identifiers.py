"""export_identifier: valid export task identifiers from free text, hostile text included."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_rds_export.identifiers import HASH_LENGTH, export_identifier
from airflow_rds_export.testing.airflow_runs import DagRunResult
from airflow_rds_export.validation import InvalidParameterError, validate_export_task_identifier


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("orders_prod", "20261129"), "orders-prod-20261129"),
        (("Orders Prod",), "orders-prod"),
        (("orders--prod__", "x"), "orders-prod-x"),
        (("  leading and trailing  ",), "leading-and-trailing"),
        (("2026-11-29", "orders"), "export-2026-11-29-orders"),
        (("_orders",), "orders"),
        (("Café", "Ünïcôdé"), "cafe-unicode"),
        (("ørders",), "rders"),
        (("nightly/", "db.schema.table"), "nightly-db-schema-table"),
        (("orders", None, "", 7), "orders-7"),
    ],
)
def test_free_text_becomes_a_readable_valid_identifier(
    parts: tuple[object, ...], expected: str
) -> None:
    assert export_identifier(*parts) == expected
    assert validate_export_task_identifier(expected) == expected


@pytest.mark.parametrize("text", ["!!!", "___---", "日本語", "🙂🙂", "-"])
def test_text_without_a_letter_or_digit_is_named_by_its_hash(text: str) -> None:
    identifier = export_identifier(text)
    validate_export_task_identifier(identifier)
    assert identifier.startswith("export-")
    assert len(identifier) == len("export-") + HASH_LENGTH
    # Different symbols, different identifiers; the same symbols, the same one.
    assert identifier != export_identifier(text + "?")
    assert identifier == export_identifier(text)


@pytest.mark.parametrize("parts", [(), ("",), (None,), (None, "")])
def test_no_text_at_all_is_refused(parts: tuple[object, ...]) -> None:
    with pytest.raises(InvalidParameterError, match="give some text"):
        export_identifier(*parts)


def test_300_characters_are_cut_to_60_with_a_stable_hash() -> None:
    text = "orders_" * 43  # 301 characters
    identifier = export_identifier(text)
    assert len(identifier) == 60
    validate_export_task_identifier(identifier)
    assert identifier == export_identifier(text)  # stable across calls
    body, digest = identifier.rsplit("-", 1)
    assert len(digest) == HASH_LENGTH and int(digest, 16) >= 0
    assert body.startswith("orders-orders-")
    assert not body.endswith("-")


def test_two_long_names_sharing_their_first_60_characters_do_not_collide() -> None:
    shared = "analytics-warehouse-production-eu-west-1-orders-and-invoices"
    assert len(shared) == 60
    first = export_identifier(shared + "-a", "20261129")
    second = export_identifier(shared + "-b", "20261129")
    assert first != second
    for identifier in (first, second):
        assert len(identifier) <= 60
        validate_export_task_identifier(identifier)


def test_a_cut_never_leaves_a_double_or_trailing_hyphen() -> None:
    for cut in range(50, 75):  # move the cut across a word boundary
        identifier = export_identifier("a" * cut + "-" + "b" * 20)
        validate_export_task_identifier(identifier)
        assert "--" not in identifier


def test_exactly_60_characters_are_kept_as_they_are() -> None:
    text = "a" + "b" * 59
    assert export_identifier(text) == text


@pytest.mark.parametrize("max_length", [0, 10, 61, True, "60"])
def test_max_length_outside_aws_rule_is_refused(max_length: object) -> None:
    with pytest.raises(InvalidParameterError, match="max_length"):
        export_identifier("orders", max_length=max_length)  # type: ignore[arg-type]


def test_a_shorter_max_length_is_honoured() -> None:
    identifier = export_identifier("orders-production-replica", max_length=20)
    assert len(identifier) == 20
    validate_export_task_identifier(identifier)


# --- in a template, through Airflow's plugin macros ------------------------------------------

MACRO_DAG = """
from datetime import datetime

from airflow.sdk import DAG, task

with DAG("identifier_macro", schedule=None, start_date=datetime(2024, 1, 1)):

    @task(
        templates_dict={
            "short": "{{ macros.rds_export.identifier('Orders_Prod', ds_nodash) }}",
            "long": "{{ macros.rds_export.identifier('x' * 300, ds_nodash) }}",
        }
    )
    def render(templates_dict=None):
        return templates_dict

    render()
"""


def test_the_macro_renders_in_a_dag_run(run_dag: Callable[..., DagRunResult]) -> None:
    result = run_dag(MACRO_DAG, "identifier_macro")
    result.assert_state("success")
    rendered = result.xcom("render")
    assert rendered["short"] == "orders-prod-20240101"
    assert rendered["long"] == export_identifier("x" * 300, "20240101")
    assert len(rendered["long"]) == 60


def test_the_default_asset_alias_names_the_dag_and_the_task() -> None:
    from airflow_rds_export.identifiers import export_asset_alias

    assert export_asset_alias("nightly_rds_export", "group.wait") == (
        "rds-export:nightly_rds_export.group.wait"
    )
    for dag_id, task_id, field in (("", "t", "dag_id"), ("d", "", "task_id")):
        with pytest.raises(InvalidParameterError, match=f"{field}=''"):
            export_asset_alias(dag_id, task_id)
