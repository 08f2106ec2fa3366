"""Waits as data: what to describe, how to validate it, and how to judge the answer.

A wait spec is a frozen, JSON-serialisable description of one wait (a snapshot becoming
available, an export reaching a status). It validates its rendered arguments, describes
its resource through :class:`~airflow_rds_export.hooks.RdsExportHook` (blocking or async,
alone or batched with other waits by :mod:`airflow_rds_export.polling`), and judges the
answer, or the error, into a :class:`Check` through :mod:`airflow_rds_export.decisions`.

The drivers are thin: a sensor's ``poke``, an operator's wait loop, ``execute_complete``
and a trigger's ``run`` all call the same spec, so a wait decides the same on a worker and
in the triggerer. Only how they sleep between checks and how they end the task differ.

Importing this module does not import boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow_rds_export.decisions import (
    EXPORT_COMPLETE_STATUS,
    EXPORT_STATUSES,
    SNAPSHOT_STATUSES,
    Decision,
    decide_export,
    decide_snapshot,
    normalise_status,
)
from airflow_rds_export.records import Record
from airflow_rds_export.validation import parse_datetime, validate_statuses
from airflow_rds_export.wait_arguments import (
    ExportStateArguments,
    SnapshotReadyArguments,
    apply_rule,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from typing import TypeVar

    from airflow_rds_export.hooks import RdsExportHook

    # Types for mypy only: building them costs every DAG file that imports a sensor.
    Describe = Callable[[], Awaitable[dict[str, Any] | None]]
    Checker = Callable[..., Any]
    W = TypeVar("W", bound="Wait")

__all__ = [
    "EXPORT",
    "SNAPSHOT",
    "Check",
    "ExportStateWait",
    "SharedRequest",
    "SnapshotReadyWait",
    "Wait",
]

#: The kinds of resource a wait watches (and the shared pollers' kinds).
EXPORT = "export"
SNAPSHOT = "snapshot"


class Check(Record):
    """One check's outcome: the decision, the description (the XCom), whether the check
    failed on a transient AWS error (the driver then backs off), and warnings to log."""

    decision: Decision
    description: dict[str, Any] | None = None
    transient: bool = False
    #: What the driver logs as warnings (e.g. unreadable export metadata).
    warnings: tuple[str, ...] = ()


class SharedRequest(Record):
    """What a shared poller needs to describe this wait's resource with others'."""

    kind: str
    identifier: str
    snapshot_kind: str | None = None


class Wait:
    """The common ground of every wait spec; see the module docstring.

    A spec is its arguments (a named tuple, with their rules, from
    :mod:`airflow_rds_export.wait_arguments`) with this class mixed in.
    """

    __slots__ = ()
    kind: ClassVar[str]
    noun: ClassVar[str]  # "Snapshot", "Export task"

    # -- arguments -------------------------------------------------------------------

    @classmethod
    def argument_names(cls) -> tuple[str, ...]:
        return tuple(cast(Any, cls)._fields)

    def arguments(self) -> dict[str, Any]:
        """The spec's arguments by name."""
        return dict(cast(Any, self)._asdict())

    @classmethod
    def from_kwargs(cls: type[W], kwargs: Mapping[str, Any]) -> W:
        """The spec from JSON-friendly keyword arguments (as triggers hold them)."""
        return cls(**{name: kwargs[name] for name in cls.argument_names() if name in kwargs})

    def to_kwargs(self) -> dict[str, Any]:
        """JSON-friendly keyword arguments; ``from_kwargs`` rebuilds the same spec."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.arguments().items()}

    @classmethod
    def check_arguments(cls, values: Mapping[str, Any], check: Checker = apply_rule) -> None:
        """Apply every input rule to ``values`` through ``check(value, validate, *args)``.

        ``check`` decides what a rule does: skip unrendered templates at parse time
        (:func:`~airflow_rds_export.validation.check_literal`), fail the task after
        rendering, or (by default) raise :class:`InvalidParameterError`.
        """
        raise NotImplementedError

    def validated(self: W) -> W:
        """This spec, after every rule passed; raises :class:`InvalidParameterError`."""
        self.check_arguments(self.arguments())
        return self

    # -- describing and judging ---------------------------------------------------------

    @property
    def resource(self) -> str:
        """How messages name what this wait watches."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """The resource with its kind, as error messages name it."""
        return f"{self.noun} {self.resource}"

    def describe(self, hook: RdsExportHook) -> dict[str, Any] | None:
        raise NotImplementedError

    async def describe_async(self, hook: RdsExportHook, client: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def shared_request(self) -> SharedRequest | None:
        """How a shared poller can describe this wait's resource; None: poll alone."""
        return None

    def judge(self, description: dict[str, Any] | None) -> Check:
        """The check for a description (None: AWS says the resource does not exist)."""
        raise NotImplementedError

    def judge_error(self, exc: Exception) -> Check:
        """The check for a failed describe call; raises ``exc`` when no rule knows it."""
        from airflow_rds_export.errors import AwsError

        error = AwsError.of(exc)
        decision = error.decide(self.label)
        if decision is None:
            raise exc
        return Check(decision, None, transient=error.transient)

    def conclude(self, check: Check, hook: RdsExportHook) -> Check:
        """A last step once the wait is done (e.g. verifying an export's tables)."""
        return check

    async def conclude_async(self, check: Check, hook: RdsExportHook) -> Check:
        """As :meth:`conclude`, in the triggerer."""
        return check

    def check(self, hook: RdsExportHook) -> Check:
        """Describe (blocking), judge and, once done, conclude: one check, on a worker."""
        try:
            description = self.describe(hook)
        except Exception as exc:
            return self.judge_error(exc)
        return self.conclude(self.judge(description), hook)

    async def check_async(self, describe: Describe) -> Check:
        """Describe with ``describe()`` (alone or shared) and judge: one check, in a trigger
        (which concludes once, with :meth:`conclude_async`, when the wait is done)."""
        try:
            description = await describe()
        except Exception as exc:
            return self.judge_error(exc)
        return self.judge(description)


class SnapshotReadyWait(SnapshotReadyArguments, Wait):
    """Wait until a DB or cluster snapshot is ``available`` (or in ``target_statuses``).

    Name the snapshot (``db_snapshot_identifier``, name or ARN; a live cluster's ARN waits
    for the cluster to be ``available``), or its source (``db_instance_identifier`` /
    ``db_cluster_identifier``) for the run's snapshot of ``snapshot_type``: the earliest
    created at or after ``created_after`` and before ``created_before`` (ISO 8601), or
    the newest when ``created_after`` is not given.
    """

    __slots__ = ()
    kind: ClassVar[str] = SNAPSHOT
    noun: ClassVar[str] = "Snapshot"

    @property
    def resource(self) -> str:
        if self.db_snapshot_identifier:
            return self.db_snapshot_identifier
        source = self.db_instance_identifier or self.db_cluster_identifier
        if self.created_after:
            return f"(first {self.snapshot_type} snapshot of {source} since {self.created_after})"
        return f"(newest {self.snapshot_type} snapshot of {source})"

    @property
    def snapshot_kind(self) -> str | None:
        return {"instance": "db", "cluster": "cluster"}.get(self.db_type or "")

    def describe(self, hook: RdsExportHook) -> dict[str, Any] | None:
        if self.db_snapshot_identifier:
            return hook.describe_snapshot(self.db_snapshot_identifier, self.snapshot_kind)
        return hook.find_latest_snapshot(**self._latest_arguments())

    async def describe_async(self, hook: RdsExportHook, client: Any) -> dict[str, Any] | None:
        if self.db_snapshot_identifier:
            return await hook.describe_snapshot_async(
                client, self.db_snapshot_identifier, self.snapshot_kind
            )
        return await hook.find_latest_snapshot_async(client, **self._latest_arguments())

    def _latest_arguments(self) -> dict[str, Any]:
        return {
            "db_instance_identifier": self.db_instance_identifier,
            "db_cluster_identifier": self.db_cluster_identifier,
            "snapshot_type": self.snapshot_type,
            "created_after": parse_datetime(self.created_after, "created_after"),
            "created_before": parse_datetime(self.created_before, "created_before"),
        }

    def shared_request(self) -> SharedRequest | None:
        identifier = self.db_snapshot_identifier
        # ARNs (possibly another account's shared snapshot) are looked up on their own.
        if not identifier or identifier.startswith("arn:"):
            return None
        return SharedRequest(SNAPSHOT, identifier, self.snapshot_kind)

    def judge(self, description: dict[str, Any] | None) -> Check:
        found = description and (
            description.get("DBSnapshotIdentifier")
            or description.get("DBClusterSnapshotIdentifier")
        )
        decision = decide_snapshot(
            description,
            resource=found or self.resource,
            on_missing=self.on_missing,
            on_failure=self.on_failure,
            target_statuses=_statuses(tuple(self.target_statuses), SNAPSHOT_STATUSES),
        )
        return Check(decision, description)


class ExportStateWait(ExportStateArguments, Wait):
    """Wait until an export task reaches one of ``target_statuses``.

    A status in ``error_statuses`` ends the wait by ``on_failure``, with AWS's
    ``FailureCause``; a missing task by ``on_missing``. The description gains ``S3Uri``.
    Once COMPLETE, with ``verify_tables``, the export is verified table by table
    (:mod:`airflow_rds_export.verification`): ``on_table_failure`` decides what a failed,
    skipped or (``expected_tables``) missing table does, and the description gains
    ``Tables``.
    """

    __slots__ = ()
    kind: ClassVar[str] = EXPORT
    noun: ClassVar[str] = "Export task"

    @property
    def resource(self) -> str:
        return self.export_task_identifier

    def describe(self, hook: RdsExportHook) -> dict[str, Any] | None:
        return hook.describe_export_task(self.export_task_identifier)

    async def describe_async(self, hook: RdsExportHook, client: Any) -> dict[str, Any] | None:
        return await hook.describe_export_task_async(client, self.export_task_identifier)

    def shared_request(self) -> SharedRequest | None:
        return SharedRequest(EXPORT, self.export_task_identifier)

    def judge(self, description: dict[str, Any] | None) -> Check:
        from airflow_rds_export.descriptions import with_s3_uri

        if description is not None:
            description = with_s3_uri(description)
        decision = decide_export(
            description,
            resource=self.export_task_identifier,
            target_statuses=_statuses(tuple(self.target_statuses)),
            error_statuses=_statuses(tuple(self.error_statuses)),
            on_missing=self.on_missing,
            on_failure=self.on_failure,
        )
        return Check(decision, description)

    def _verifies(self, check: Check) -> bool:
        return bool(
            self.verify_tables
            and check.decision.action == "done"
            and check.description is not None
            and normalise_status(check.description.get("Status")) == EXPORT_COMPLETE_STATUS
        )

    def conclude(self, check: Check, hook: RdsExportHook) -> Check:
        if not self._verifies(check):
            return check
        from airflow_rds_export.verification import verify

        assert check.description is not None
        return Check(
            *verify(
                hook,
                check.description,
                expected_tables=self.expected_tables,
                on_table_failure=self.on_table_failure,
            ).as_check()
        )

    async def conclude_async(self, check: Check, hook: RdsExportHook) -> Check:
        if not self._verifies(check):
            return check
        from airflow_rds_export.verification import verify_async

        assert check.description is not None
        verified = await verify_async(
            hook,
            check.description,
            expected_tables=self.expected_tables,
            on_table_failure=self.on_table_failure,
        )
        return Check(*verified.as_check())


@lru_cache(maxsize=64)
def _statuses(statuses: tuple[str, ...], known: frozenset[str] = EXPORT_STATUSES) -> frozenset[str]:
    """Validated statuses, normalised: once per distinct list, not once per check (a
    triggerer judges thousands of descriptions per cycle)."""
    return validate_statuses(statuses, "statuses", known, may_be_empty=True)
