"""What a wait takes and the rules its arguments follow: all a DAG file's parse needs of
a wait.

A sensor checks its literal arguments when the DAG file is parsed, its rendered ones when
it runs; the wait specs of :mod:`airflow_rds_export.waits` (which describe and judge,
only when a task runs) are these argument tuples with their behaviour mixed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_rds_export.decisions import (
    DEFAULT_EXPORT_ERROR_STATUSES,
    POLICIES,
    SNAPSHOT_READY_STATUS,
    SNAPSHOT_STATUSES,
    TABLE_FAILURE_POLICIES,
)
from airflow_rds_export.records import Record
from airflow_rds_export.validation import (
    SNAPSHOT_TYPES,
    InvalidParameterError,
    is_unrendered,
    optional,
    parse_datetime,
    validate_db_identifier,
    validate_disjoint,
    validate_export_task_identifier,
    validate_flag,
    validate_policy,
    validate_snapshot_identifier,
    validate_statuses,
    validate_table_names,
)

if TYPE_CHECKING:
    #: ``check(value, validate, *args)``: what applying one rule means (a type for mypy).
    Checker = Callable[..., Any]

__all__ = [
    "ExportStateArguments",
    "SnapshotReadyArguments",
    "apply_rule",
    "validate_error_statuses",
]


def apply_rule(value: Any, validate: Callable[..., Any], *args: Any) -> None:
    """The default ``check``: apply the rule (a broken one raises
    :class:`InvalidParameterError`)."""
    validate(value, *args)


class SnapshotReadyArguments(Record):
    """A snapshot wait's arguments (:class:`~airflow_rds_export.waits.SnapshotReadyWait`)."""

    db_snapshot_identifier: str | None = None
    db_instance_identifier: str | None = None
    db_cluster_identifier: str | None = None
    snapshot_type: str = "automated"
    created_after: str | None = None
    created_before: str | None = None
    db_type: str | None = None
    on_missing: str = "reschedule"
    on_failure: str = "fail"
    target_statuses: tuple[str, ...] | list[str] = (SNAPSHOT_READY_STATUS,)

    @classmethod
    def check_arguments(cls, values: Mapping[str, Any], check: Checker = apply_rule) -> None:
        """Apply every input rule to ``values`` through ``check(value, validate, *args)``.

        ``check`` decides what a rule does: skip unrendered templates at parse time
        (:func:`~airflow_rds_export.validation.check_literal`), fail the task after
        rendering, or (by default) raise :class:`InvalidParameterError`.
        """
        named = [
            name
            for name in (
                "db_snapshot_identifier",
                "db_instance_identifier",
                "db_cluster_identifier",
            )
            if values.get(name)
        ]
        if len(named) != 1:
            raise InvalidParameterError(
                "db_snapshot_identifier",
                values.get("db_snapshot_identifier"),
                "give exactly one of db_snapshot_identifier, db_instance_identifier, "
                f"db_cluster_identifier (got {named or 'none'})",
            )
        check(values.get("db_type"), validate_policy, "db_type", (None, "instance", "cluster"))
        check(values.get("on_missing", "reschedule"), validate_policy, "on_missing", POLICIES)
        check(values.get("on_failure", "fail"), validate_policy, "on_failure", ("fail", "skip"))
        check(values.get("db_snapshot_identifier"), optional(validate_snapshot_identifier))
        for name in ("db_instance_identifier", "db_cluster_identifier"):
            check(values.get(name), optional(validate_db_identifier), name)
        check(
            values.get("snapshot_type", "automated"),
            validate_policy,
            "snapshot_type",
            SNAPSHOT_TYPES,
        )
        check(
            values.get("target_statuses", (SNAPSHOT_READY_STATUS,)),
            validate_statuses,
            "target_statuses",
            SNAPSHOT_STATUSES,
        )
        check(values.get("created_after"), parse_datetime, "created_after")
        check(values.get("created_before"), parse_datetime, "created_before")
        if not is_unrendered(values.get("created_after")) and not is_unrendered(
            values.get("created_before")
        ):
            check(values.get("created_before"), _later_than(values.get("created_after")))


class ExportStateArguments(Record):
    """An export wait's arguments (:class:`~airflow_rds_export.waits.ExportStateWait`)."""

    export_task_identifier: str = ""
    target_statuses: tuple[str, ...] | list[str] = ("complete",)
    error_statuses: tuple[str, ...] | list[str] = DEFAULT_EXPORT_ERROR_STATUSES
    on_missing: str = "reschedule"
    on_failure: str = "fail"
    verify_tables: bool = True
    expected_tables: tuple[str, ...] | list[str] = ()
    on_table_failure: str = "fail"

    @classmethod
    def check_arguments(cls, values: Mapping[str, Any], check: Checker = apply_rule) -> None:
        """Apply every input rule to ``values`` through ``check(value, validate, *args)``.

        ``check`` decides what a rule does: skip unrendered templates at parse time
        (:func:`~airflow_rds_export.validation.check_literal`), fail the task after
        rendering, or (by default) raise :class:`InvalidParameterError`.
        """
        check(values.get("on_missing", "reschedule"), validate_policy, "on_missing", POLICIES)
        check(values.get("on_failure", "fail"), validate_policy, "on_failure", ("fail", "skip"))
        check(values.get("export_task_identifier"), validate_export_task_identifier)
        targets = values.get("target_statuses", ("complete",))
        errors = values.get("error_statuses", DEFAULT_EXPORT_ERROR_STATUSES)
        check(targets, validate_statuses, "target_statuses")
        check(errors, validate_error_statuses, "error_statuses")
        if not is_unrendered(targets) and not is_unrendered(errors):
            check(errors, _disjoint_from(targets))
        check(values.get("verify_tables", True), validate_flag, "verify_tables")
        check(
            values.get("on_table_failure", "fail"),
            validate_policy,
            "on_table_failure",
            TABLE_FAILURE_POLICIES,
        )
        check(values.get("expected_tables", ()), validate_table_names, "expected_tables")


def validate_error_statuses(value: Any, field: str) -> frozenset[str]:
    """Error statuses may be none at all (every terminal status a target, or a wait that
    fails on nothing)."""
    return validate_statuses(value, field, may_be_empty=True)


def _disjoint_from(targets: Any) -> Callable[[Any], None]:
    def validate(errors: Any) -> None:
        validate_disjoint(
            validate_statuses(targets, "target_statuses"),
            validate_error_statuses(errors, "error_statuses"),
            error_field="error_statuses",
            value=errors,
        )

    return validate


def _later_than(created_after: Any) -> Callable[[Any], None]:
    def validate(created_before: Any) -> None:
        after = parse_datetime(created_after, "created_after")
        before = parse_datetime(created_before, "created_before")
        if after is not None and before is not None and before <= after:
            raise InvalidParameterError(
                "created_before",
                created_before,
                f"must be later than created_after ({created_after!r})",
            )

    return validate
