"""Table-driven tests of :mod:`airflow_rds_export.decisions`, the one place every rule lives.

Each table row is one AWS state or error and the decision it must lead to: the action and
the parts of the reason a user relies on (the resource, the status as AWS reports it, the
policy that decided, "To do" where the module gives a remedy). If a rule changes, a row
fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from airflow_rds_export.decisions import (
    DEFAULT_EXPORT_ERROR_STATUSES,
    EXPORT_WIDE,
    MAX_LISTED_TABLES,
    REMEDIES,
    SNAPSHOT_BROKEN_STATUSES,
    SNAPSHOT_PENDING_STATUSES,
    TABLE_FAILURE_POLICIES,
    THROTTLING_CODES,
    Decision,
    TableProblem,
    TablesVerdict,
    cancel_raced,
    decide_adoption,
    decide_call_error,
    decide_cancel,
    decide_cancel_on_kill,
    decide_export,
    decide_permanent_error,
    decide_snapshot,
    decide_start_error,
    decide_tables,
    describe_kill_cancel_error,
    describe_unreadable_metadata,
    is_access_denied,
    is_not_found,
    is_transient,
    normalise_status,
    progress_of,
    start_refusal,
    table_verdict,
)
from airflow_rds_export.export_metadata import (
    ExportInfo,
    ExportTables,
    TableStatus,
    WarningReport,
    parse_warning_message,
)

SNAPSHOT_ID = "nightly-2024-06-01"
EXPORT_ID = "export-nightly-2024-06-01"
EXPORT_LABEL = f"Export task {EXPORT_ID}"
SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:snapshot:nightly-2024-06-01"
OTHER_SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:snapshot:weekly-2024-06-02"
BUCKET = "exports-bucket"
PREFIX = "exports/nightly"
DENIED_DESCRIBE = (
    "User: arn:aws:sts::123456789012:assumed-role/airflow/w is not authorized to perform: "
    "rds:DescribeExportTasks on resource: arn:aws:rds:us-east-1:123456789012:export-task:x "
    "because no identity-based policy allows the rds:DescribeExportTasks action"
)
CREDENTIAL_CODES = (
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
)


@dataclass(frozen=True)
class Case:
    """One row: what to decide, the action expected (None: not decided here), what it says."""

    id: str
    decide: Callable[[], Decision | None]
    action: str | None
    says: tuple[str, ...] = ()
    resource: str = EXPORT_ID


def assert_decision(case: Case) -> None:
    """The one assertion: the action, and every expected part of the reason."""
    decision = case.decide()
    if case.action is None:
        assert decision is None, f"expected no decision, got {decision}"
        return
    assert decision is not None, f"expected {case.action!r}, got no decision"
    assert decision.action == case.action, decision.reason
    for part in case.says:
        assert part in decision.reason, f"{part!r} missing from reason: {decision.reason}"


def remedy_head(code: str) -> str:
    """The fixed start of a remedy (the permission remedy is a template: stop at ``{``)."""
    return REMEDIES[code].split("{")[0]


# --- decide_snapshot -----------------------------------------------------------------


def snapshot_case(
    id: str,
    snapshot: Mapping[str, Any] | None,
    action: str,
    *says: str,
    on_missing: str = "reschedule",
    on_failure: str = "fail",
) -> Case:
    decide = partial(
        decide_snapshot,
        snapshot,
        resource=SNAPSHOT_ID,
        on_missing=on_missing,
        on_failure=on_failure,
    )
    return Case(id, decide, action, (SNAPSHOT_ID, *says), resource=SNAPSHOT_ID)


SNAPSHOT_CASES = [
    snapshot_case(
        "missing-reschedule",
        None,
        "wait",
        "does not exist",
        "on_missing='reschedule'",
        "keep waiting",
    ),
    snapshot_case(
        "missing-skip",
        None,
        "skip",
        "does not exist",
        "on_missing='skip'",
        "To do: create the snapshot",
        on_missing="skip",
    ),
    snapshot_case(
        "missing-fail",
        None,
        "fail",
        "does not exist",
        "on_missing='fail'",
        "To do: create the snapshot",
        on_missing="fail",
    ),
    snapshot_case("available", {"Status": "available"}, "done", "is available"),
    snapshot_case("AVAILABLE-upper-case", {"Status": "AVAILABLE"}, "done", "is available"),
    snapshot_case("unknown-status", {"Status": "upgrading"}, "wait", "'upgrading'", "waiting"),
    *(
        snapshot_case(f"pending-{status}", {"Status": status}, "wait", f"{status!r}", "waiting")
        for status in sorted(SNAPSHOT_PENDING_STATUSES)
    ),
    *(
        snapshot_case(
            f"broken-{status}-on_failure={policy}",
            {"Status": status},
            policy,
            f"status {status!r}",
            f"on_failure={policy!r}",
            "To do: take a new snapshot",
            on_failure=policy,
        )
        for status in sorted(SNAPSHOT_BROKEN_STATUSES)
        for policy in ("fail", "skip")
    ),
]


@pytest.mark.parametrize("case", SNAPSHOT_CASES, ids=lambda case: case.id)
def test_decide_snapshot(case: Case) -> None:
    assert_decision(case)


# --- decide_export -------------------------------------------------------------------


def export_case(
    id: str,
    export_task: Mapping[str, Any] | None,
    action: str,
    *says: str,
    target_statuses: tuple[str, ...] = ("complete",),
    error_statuses: tuple[str, ...] = DEFAULT_EXPORT_ERROR_STATUSES,
    on_missing: str = "reschedule",
    on_failure: str = "fail",
) -> Case:
    decide = partial(
        decide_export,
        export_task,
        resource=EXPORT_ID,
        target_statuses=target_statuses,
        error_statuses=error_statuses,
        on_missing=on_missing,
        on_failure=on_failure,
    )
    return Case(id, decide, action, (EXPORT_ID, *says))


FAILED_EXPORT = {
    "Status": "FAILED",
    "FailureCause": "S3 bucket exports-bucket is not in this Region",
    "WarningMessage": "2 tables skipped",
}

EXPORT_CASES = [
    *(
        export_case(
            f"missing-on_missing={policy}",
            None,
            action,
            "does not exist",
            f"on_missing={policy!r}",
            advice,
            on_missing=policy,
        )
        for policy, action, advice in (
            ("reschedule", "wait", "keep waiting"),
            ("skip", "skip", "To do: check export_task_identifier"),
            ("fail", "fail", "To do: check export_task_identifier"),
        )
    ),
    *(
        export_case(f"in-progress-{status}", {"Status": status}, "wait", status, "waiting")
        for status in ("STARTING", "IN_PROGRESS", "CANCELING")
    ),
    export_case("in-progress-lower-case", {"Status": "in_progress"}, "wait", "IN_PROGRESS"),
    export_case(
        "unknown-status-waits",
        {"Status": "VALIDATING"},
        "wait",
        "is VALIDATING, a status this package does not know",
        "bounded by the task's timeout",
    ),
    export_case(
        "no-status-fails-showing-what-aws-said",
        {"ExportTaskIdentifier": EXPORT_ID, "PercentProgress": 5},
        "fail",
        "without a Status",
        "'PercentProgress': 5",
        "To do:",
    ),
    export_case("target-COMPLETE", {"Status": "COMPLETE"}, "done", "is complete"),
    export_case("target-complete-lower-case", {"Status": "complete"}, "done", "is complete"),
    export_case(
        "target-not-terminal",
        {"Status": "IN_PROGRESS"},
        "done",
        "is in_progress",
        target_statuses=("in_progress",),
    ),
    *(
        export_case(
            f"error-FAILED-on_failure={policy}",
            FAILED_EXPORT,
            policy,
            "status FAILED",
            "S3 bucket exports-bucket is not in this Region",
            "warning: 2 tables skipped",
            f"on_failure={policy!r}",
            "To do: fix the cause",
            on_failure=policy,
        )
        for policy in ("skip", "fail")
    ),
    export_case(
        "error-canceled-lower-case-no-cause",
        {"Status": "canceled"},
        "fail",
        "status CANCELED",
        "no FailureCause given",
        "on_failure='fail'",
        "new export_task_identifier",
    ),
    export_case(
        "terminal-not-target-nor-error",
        {"Status": "CANCELED"},
        "fail",
        "status CANCELED",
        "not among target_statuses ['complete']",
        "To do: add it to target_statuses or error_statuses",
        error_statuses=("failed",),
    ),
    export_case(
        "terminal-FAILED-not-listed-even-with-skip",
        {"Status": "FAILED"},
        "fail",
        "status FAILED",
        "To do: add it to target_statuses",
        error_statuses=(),
        on_failure="skip",
    ),
]


@pytest.mark.parametrize("case", EXPORT_CASES, ids=lambda case: case.id)
def test_decide_export(case: Case) -> None:
    assert_decision(case)


# --- decide_start_error --------------------------------------------------------------

BUSY_MESSAGE = (
    "Export task orders-20240101 is already exporting "
    "arn:aws:rds:us-east-1:123456789012:snapshot:nightly-2024-06-01; wait for it to finish."
)


def start_case(
    id: str,
    code: str,
    action: str | None,
    *says: str,
    on_invalid_state: str = "reschedule",
    message: str = "AWS says no",
) -> Case:
    decide = partial(
        decide_start_error, code, message, resource=EXPORT_ID, on_invalid_state=on_invalid_state
    )
    return Case(id, decide, action, (EXPORT_ID, code, message, *says) if action else ())


START_CASES = [
    *(
        start_case(
            f"{code}-on_invalid_state={policy}",
            code,
            action,
            "source snapshot is not available yet",
            f"on_invalid_state={policy!r}",
            advice,
            on_invalid_state=policy,
        )
        for code in ("InvalidExportSourceState", "InvalidExportSourceStateFault")
        for policy, action, advice in (
            ("reschedule", "wait", "try again"),
            ("skip", "skip", "To do: wait for the snapshot (RdsSnapshotReadySensor)"),
            ("fail", "fail", "To do: wait for the snapshot (RdsSnapshotReadySensor)"),
        )
    ),
    *(
        start_case(
            f"export-limit-{code}",
            code,
            "wait",
            "5 exports already run",
            "waiting for a slot",
            "max_active_tis_per_dag=5",
        )
        for code in ("LimitExceeded", "ExportTaskLimitReached", "QuotaExceeded")
    ),
    *(
        start_case(
            f"remedy-{code}",
            code,
            "fail",
            "permanent configuration error",
            f"To do: {remedy_head(code)}",
        )
        for code in sorted(REMEDIES)
    ),
    *(
        start_case(
            f"source-busy-{code}-on_invalid_state={policy}",
            code,
            action,
            "export orders-20240101 of the same source is still running",
            f"on_invalid_state={policy!r}",
            advice,
            on_invalid_state=policy,
            message=BUSY_MESSAGE,
        )
        # UNVERIFIED code: the refusal is recognised by its message, whatever the code.
        for code in ("InvalidExportSourceState", "InvalidParameterCombination")
        for policy, action, advice in (
            ("reschedule", "wait", "decided to wait for orders-20240101 to finish"),
            ("skip", "skip", "To do: export this source after orders-20240101 ends"),
            ("fail", "fail", "To do: export this source after orders-20240101 ends"),
        )
    ),
    start_case(
        "export-limit-by-message-any-code",
        "SomeNewQuotaCode",
        "wait",
        "5 exports already run",
        message="You can't have more than 5 export tasks in progress at the same time.",
    ),
    start_case("unknown-code", "SomethingNew", None),
    start_case("already-exists-is-an-adoption-question", "ExportTaskAlreadyExists", None),
]


@pytest.mark.parametrize("case", START_CASES, ids=lambda case: case.id)
def test_decide_start_error(case: Case) -> None:
    assert_decision(case)


# --- decide_permanent_error ----------------------------------------------------------


def permanent_case(id: str, code: str, message: str, action: str | None, *says: str) -> Case:
    decide = partial(decide_permanent_error, EXPORT_LABEL, code, message)
    return Case(id, decide, action, (EXPORT_LABEL, code, *says) if action else ())


PERMANENT_CASES = [
    permanent_case(
        "AccessDenied-names-the-denied-action",
        "AccessDenied",
        DENIED_DESCRIBE,
        "fail",
        "To do: the Airflow connection's identity lacks permission for "
        "rds:DescribeExportTasks: grant it",
        "the IAM policies page of the documentation, docs/reference/iam.md",
    ),
    permanent_case(
        "AccessDeniedException-names-another-action",
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/w is not authorized to perform: iam:PassRole",
        "fail",
        "lacks permission for iam:PassRole: grant it",
    ),
    permanent_case(
        "AccessDenied-without-an-action",
        "AccessDenied",
        "Access Denied",
        "fail",
        "Access Denied",
        "To do: the Airflow connection's identity lacks permission: grant it",
    ),
    *(
        permanent_case(
            f"credentials-{code}",
            code,
            "The security token included in the request is expired",
            "fail",
            "not retried",
            "To do: the Airflow connection's credentials are invalid or expired",
        )
        for code in CREDENTIAL_CODES
    ),
    permanent_case("unknown-code", "SomethingNew", "who knows", None),
    permanent_case("throttling-is-not-permanent", "Throttling", "Rate exceeded", None),
]


@pytest.mark.parametrize("case", PERMANENT_CASES, ids=lambda case: case.id)
def test_decide_permanent_error(case: Case) -> None:
    assert_decision(case)


# --- decide_call_error and is_transient ----------------------------------------------


def call_case(
    id: str,
    code: str | None,
    http_status: int | None,
    action: str | None,
    *says: str,
    message: str = "Rate exceeded",
    unreachable: bool = False,
) -> Case:
    decide = partial(
        decide_call_error,
        f"Snapshot {SNAPSHOT_ID}",
        error_code=code,
        error_message=message,
        http_status=http_status,
        unreachable=unreachable,
    )
    says_all = (SNAPSHOT_ID, *says) if action else ()
    return Case(id, decide, action, says_all, resource=SNAPSHOT_ID)


CALL_CASES = [
    *(
        call_case(
            f"throttled-{code}-400",
            code,
            400,
            "wait",
            "busy or unreachable",
            f"{code}: Rate exceeded",
        )
        for code in sorted(THROTTLING_CODES)
    ),
    call_case("http-500-no-code", None, 500, "wait", "busy or unreachable", "HTTP 500"),
    call_case("http-503-no-code", None, 503, "wait", "busy or unreachable", "HTTP 503"),
    call_case(
        "http-503-unknown-code",
        "ServiceUnavailable",
        503,
        "wait",
        "busy or unreachable",
        "ServiceUnavailable: Please retry",
        message="Please retry",
    ),
    call_case(
        "unreachable",
        None,
        None,
        "wait",
        "busy or unreachable",
        "the connection to AWS failed",
        unreachable=True,
    ),
    call_case(
        "unreachable-wins-over-a-permanent-code",
        "AccessDenied",
        403,
        "wait",
        "busy or unreachable",
        unreachable=True,
    ),
    call_case(
        "AccessDenied-403",
        "AccessDenied",
        403,
        "fail",
        "permanent configuration error",
        "lacks permission for rds:DescribeExportTasks",
        message=DENIED_DESCRIBE,
    ),
    call_case(
        "KMSKeyNotAccessibleFault",
        "KMSKeyNotAccessibleFault",
        400,
        "fail",
        "To do: the KMS key given as kms_key_id cannot be used",
        "kms:CreateGrant",
        message="The specified KMS key is not accessible",
    ),
    call_case("unknown-400-code", "SomethingNew", 400, None),
    call_case("no-code-400", None, 400, None),
]


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda case: case.id)
def test_decide_call_error(case: Case) -> None:
    assert_decision(case)


@pytest.mark.parametrize(
    ("error_code", "http_status", "expected"),
    [
        *((code, 400, True) for code in sorted(THROTTLING_CODES)),
        ("Throttling", None, True),
        (None, 500, True),
        (None, 503, True),
        ("InternalFailure", 500, True),
        (None, 499, False),
        ("AccessDenied", 403, False),
        ("SomethingNew", 400, False),
        (None, None, False),
    ],
    ids=lambda value: str(value),
)
def test_is_transient(error_code: str | None, http_status: int | None, expected: bool) -> None:
    assert is_transient(error_code, http_status) is expected


# --- error-code predicates -----------------------------------------------------------


PREDICATE_CASES = [
    (is_not_found, "ExportTaskNotFound", True),
    (is_not_found, "ExportTaskNotFoundFault", True),
    (is_not_found, "DBSnapshotNotFound", True),
    (is_not_found, "DBSnapshotNotFoundFault", True),
    (is_not_found, "DBClusterSnapshotNotFoundFault", True),
    (is_not_found, "AccessDenied", False),
    (is_not_found, None, False),
    (cancel_raced, "InvalidExportTaskStateFault", True),
    (cancel_raced, "InvalidExportTaskState", True),
    (cancel_raced, "ExportTaskNotFound", True),
    (cancel_raced, "ExportTaskNotFoundFault", True),
    (cancel_raced, "DBSnapshotNotFound", False),
    (cancel_raced, None, False),
]


@pytest.mark.parametrize(
    ("error_code", "message", "expected"),
    [
        ("ExportTaskAlreadyExists", "taken", "exists"),
        ("ExportTaskAlreadyExistsFault", "taken", "exists"),
        ("InvalidExportSourceState", "current status is creating", "source_not_ready"),
        ("InvalidExportSourceStateFault", "current status is creating", "source_not_ready"),
        ("InvalidExportSourceState", BUSY_MESSAGE, "source_busy"),
        ("AnyCode", BUSY_MESSAGE, "source_busy"),
        ("LimitExceeded", "no", "quota"),
        (None, "You can't have more than 5 export tasks in progress at once.", "quota"),
        ("InvalidExportTaskStateFault", "no", None),
        ("AccessDenied", "no", None),
    ],
)
def test_start_refusals_are_classified(
    error_code: str | None, message: str, expected: str | None
) -> None:
    assert start_refusal(error_code, message) == expected


@pytest.mark.parametrize(
    ("predicate", "error_code", "expected"),
    PREDICATE_CASES,
    ids=[f"{pred.__name__}-{code}" for pred, code, _ in PREDICATE_CASES],
)
def test_error_code_predicates(
    predicate: Callable[[str | None], bool], error_code: str | None, expected: bool
) -> None:
    assert predicate(error_code) is expected


# --- decide_adoption -----------------------------------------------------------------


def adoption_case(
    id: str,
    existing: Mapping[str, Any] | None,
    action: str,
    *says: str,
    if_exists: str = "adopt",
    s3_prefix: str = PREFIX,
    export_only: tuple[str, ...] = (),
) -> Case:
    decide = partial(
        decide_adoption,
        existing,
        resource=EXPORT_ID,
        if_exists=if_exists,
        source_arn=SOURCE_ARN,
        s3_bucket_name=BUCKET,
        s3_prefix=s3_prefix,
        export_only=export_only,
    )
    return Case(id, decide, action, (EXPORT_ID, *says))


def existing_export(**changes: Any) -> dict[str, Any]:
    """The description of an export this task would have started, with some changes."""
    return {
        "Status": "IN_PROGRESS",
        "SourceArn": SOURCE_ARN,
        "S3Bucket": BUCKET,
        "S3Prefix": PREFIX,
        **changes,
    }


ADOPTION_CASES = [
    adoption_case("not-yet-describable", None, "wait", "not yet describable"),
    adoption_case(
        "identical", existing_export(), "done", "same source, bucket and prefix", "IN_PROGRESS"
    ),
    adoption_case(
        "prefix-slashes-ignored",
        existing_export(S3Prefix="/exports/nightly/"),
        "done",
        "adopting it",
    ),
    adoption_case(
        "our-prefix-slashes-ignored",
        existing_export(),
        "done",
        "adopting it",
        s3_prefix="exports/nightly/",
    ),
    adoption_case(
        "no-prefix-either-side",
        existing_export(S3Prefix=None),
        "done",
        "adopting it",
        s3_prefix="",
    ),
    adoption_case(
        "different-source",
        existing_export(SourceArn=OTHER_SOURCE_ARN),
        "fail",
        "a different export",
        f"existing source={OTHER_SOURCE_ARN}",
        f"this task's source={SOURCE_ARN}",
        "To do: use an export_task_identifier unique to this source",
    ),
    adoption_case(
        "different-bucket",
        existing_export(S3Bucket="other-bucket"),
        "fail",
        "bucket=other-bucket",
        f"bucket={BUCKET}",
    ),
    adoption_case(
        "different-prefix",
        existing_export(S3Prefix="exports/weekly"),
        "fail",
        "prefix='exports/weekly'",
        f"prefix={PREFIX!r}",
    ),
    *(
        adoption_case(
            f"live-or-complete-{status}", existing_export(Status=status), "done", status.upper()
        )
        for status in ("STARTING", "IN_PROGRESS", "COMPLETE", "complete")
    ),
    *(
        adoption_case(
            f"dead-{status}-exports-again",
            existing_export(Status=status, FailureCause="S3 bucket gone"),
            "restart",
            f"is {status.upper()} (S3 bucket gone)",
            "exports again under a new one",
        )
        for status in ("FAILED", "CANCELED", "CANCELING", "failed")
    ),
    adoption_case(
        "same-tables-in-another-order",
        existing_export(ExportOnly=["db.b", "db.a"]),
        "done",
        "adopting it",
        export_only=("db.a", "db.b"),
    ),
    adoption_case(
        "different-tables-is-a-different-export",
        existing_export(ExportOnly=["db.a"]),
        "fail",
        "a different export",
        "export_only=['db.a']",
        "export_only=['db.a', 'db.b']",
        export_only=("db.a", "db.b"),
    ),
    adoption_case(
        "dead-but-if_exists=fail",
        existing_export(Status="FAILED"),
        "fail",
        "if_exists='fail'",
        if_exists="fail",
    ),
    adoption_case(
        "if_exists=fail-even-when-identical",
        existing_export(),
        "fail",
        "already exists",
        "if_exists='fail'",
        "To do: use a new export_task_identifier",
        if_exists="fail",
    ),
]


@pytest.mark.parametrize("case", ADOPTION_CASES, ids=lambda case: case.id)
def test_decide_adoption(case: Case) -> None:
    assert_decision(case)


# --- decide_cancel -------------------------------------------------------------------


def cancel_case(
    id: str,
    export_task: Mapping[str, Any] | None,
    action: str,
    *says: str,
    on_invalid_state: str = "skip",
    on_missing: str = "fail",
) -> Case:
    decide = partial(
        decide_cancel,
        export_task,
        resource=EXPORT_ID,
        on_invalid_state=on_invalid_state,
        on_missing=on_missing,
    )
    return Case(id, decide, action, (EXPORT_ID, *says))


CANCEL_CASES = [
    *(
        cancel_case(
            f"missing-on_missing={policy}",
            None,
            policy,
            "nothing to cancel",
            f"on_missing={policy!r}",
            "To do: check export_task_identifier",
            on_missing=policy,
        )
        for policy in ("skip", "fail")
    ),
    cancel_case("cancelable-STARTING", {"Status": "STARTING"}, "wait", "STARTING: cancelable"),
    cancel_case(
        "cancelable-IN_PROGRESS", {"Status": "IN_PROGRESS"}, "wait", "IN_PROGRESS: cancelable"
    ),
    cancel_case(
        "cancelable-lower-case", {"Status": "in_progress"}, "wait", "IN_PROGRESS: cancelable"
    ),
    cancel_case("already-CANCELING", {"Status": "CANCELING"}, "done", "already CANCELING"),
    *(
        cancel_case(
            f"finished-{status}-on_invalid_state={policy}",
            {"Status": status},
            policy,
            f"status {status.upper()}",
            "cannot be canceled",
            f"on_invalid_state={policy!r}",
            advice,
            on_invalid_state=policy,
        )
        for status in ("COMPLETE", "FAILED", "canceled")
        for policy, advice in (
            ("skip", "Nothing to do: the export already finished"),
            ("fail", "To do: use on_invalid_state='skip'"),
        )
    ),
]


@pytest.mark.parametrize("case", CANCEL_CASES, ids=lambda case: case.id)
def test_decide_cancel(case: Case) -> None:
    assert_decision(case)


# --- every skip and failure names the resource and what to do ------------------------

ALL_CASES = [
    *SNAPSHOT_CASES,
    *EXPORT_CASES,
    *START_CASES,
    *PERMANENT_CASES,
    *CALL_CASES,
    *ADOPTION_CASES,
    *CANCEL_CASES,
]
ENDING_CASES = [case for case in ALL_CASES if case.action in ("skip", "fail")]


@pytest.mark.parametrize(
    "case", ENDING_CASES, ids=lambda case: f"{case.decide.func.__name__}-{case.id}"
)
def test_every_skip_and_failure_names_the_resource_and_what_to_do(case: Case) -> None:
    decision = case.decide()
    assert decision is not None
    assert case.resource in decision.reason
    assert "to do" in decision.reason.lower(), decision.reason


# --- normalise_status and progress_of ------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (" COMPLETE ", "complete"),
        ("in_progress", "in_progress"),
        ("In_Progress", "in_progress"),
        ("Available", "available"),
    ],
    ids=["None", "empty", "blank", "padded-upper", "lower", "mixed-case", "capitalised"],
)
def test_normalise_status(status: object, expected: str | None) -> None:
    assert normalise_status(status) == expected


@pytest.mark.parametrize(
    ("export_task", "expected"),
    [
        ({}, (None, None)),
        ({"PercentProgress": 42, "TotalExtractedDataInGB": 3}, (42, 3.0)),
        ({"PercentProgress": "42", "TotalExtractedDataInGB": "1.5"}, (42, 1.5)),
        ({"PercentProgress": 0, "TotalExtractedDataInGB": 0}, (0, 0.0)),
        ({"PercentProgress": 100}, (100, None)),
    ],
    ids=["nothing-reported", "numbers", "strings", "zero-is-not-missing", "percent-only"],
)
def test_progress_of(
    export_task: Mapping[str, Any], expected: tuple[int | None, float | None]
) -> None:
    assert progress_of(export_task) == expected


# --- Decision ------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["done", "wait", "skip", "fail", "restart"])
def test_decision_round_trips_through_a_trigger_event(action: str) -> None:
    decision = Decision(action, f"Export task {EXPORT_ID} reason")  # type: ignore[arg-type]
    event = decision.to_dict()
    assert event == {"action": action, "reason": f"Export task {EXPORT_ID} reason"}
    assert Decision.from_dict(event) == decision


def test_decision_from_dict_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="Unknown decision action 'retry'"):
        Decision.from_dict({"action": "retry", "reason": "whatever"})


# --- table_verdict and decide_tables -------------------------------------------------


def table(
    target: str,
    status: str | None = "COMPLETE",
    size_gb: float | None = 0.5,
    reason: str | None = None,
) -> TableStatus:
    return TableStatus(target, status, size_gb, reason)


def tables_read(*tables: TableStatus, notes: tuple[str, ...] = ()) -> ExportTables:
    """What merge_tables_info gives for readable files listing ``tables``."""
    return ExportTables(tables, notes, 1)


FIVE_NAMES = tuple(f"orders.public.t{i}" for i in range(1, 6))
FIVE_COMPLETE = tables_read(*(table(name) for name in FIVE_NAMES))
TWO_OF_FIVE_FAILED = tables_read(
    table("orders.public.t1"),
    table("orders.public.t2", "FAILED", 0, "Table extraction failed: LOB too large"),
    table("orders.public.t3"),
    table("orders.public.t4", "FAILED", 0),
    table("orders.public.t5"),
)
UNREADABLE_NOTE = "s3://exports-bucket/x/export_tables_info_x_from_1_to_5.json: missing"
UNREADABLE = ExportTables((), (UNREADABLE_NOTE,), 0)
SKIPPED_SECRETS = json.dumps(
    {
        "skippedTables": [
            {"target": "orders.public.secrets", "reason": "PERMISSIONS_DO_NOT_EXIST"}
        ],
        "skippedObjectives": [],
        "general": [],
    }
)
DOCUMENTED_WARNING = (
    '{"skippedTables":[],"skippedObjectives":[],'
    '"general":[{"reason":"FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}]}'
)
SECRETS_SKIPPED = (
    "orders.public.secrets skipped (WarningMessage skippedTables: PERMISSIONS_DO_NOT_EXIST)"
)


def judge_and_decide(
    warning: object,
    tables: ExportTables | None,
    expected_tables: tuple[str, ...],
    on_table_failure: str,
    export_info: ExportInfo | None,
) -> Decision:
    verdict = table_verdict(
        parse_warning_message(warning), tables, expected_tables, export_info=export_info
    )
    return decide_tables(verdict, resource=EXPORT_ID, on_table_failure=on_table_failure)


def tables_case(
    id: str,
    action: str,
    *says: str,
    warning: object = None,
    tables: ExportTables | None = FIVE_COMPLETE,
    expected_tables: tuple[str, ...] = (),
    on_table_failure: str = "fail",
    export_info: ExportInfo | None = None,
) -> Case:
    decide = partial(
        judge_and_decide, warning, tables, expected_tables, on_table_failure, export_info
    )
    return Case(id, decide, action, (EXPORT_LABEL, *says))


POLICY_OUTCOMES = (
    ("fail", "fail", "decided to fail", "on_table_failure='warn' succeeds with a warning"),
    ("warn", "done", "decided to succeed and log this as a warning", "leave them out"),
    ("skip", "skip", "decided to skip", "on_table_failure='warn' to succeed"),
)

TABLES_CASES = [
    *(
        tables_case(
            f"2-of-5-failed-on_table_failure={policy}",
            action,
            "AWS reports it COMPLETE, but not every table was exported",
            "(2 failed, 3 complete)",
            "orders.public.t2 failed (status 'FAILED': Table extraction failed: LOB too large)",
            "orders.public.t4 failed (status 'FAILED')",
            f"on_table_failure={policy!r} {verb}",
            "To do: ",
            "export_only",
            advice,
            tables=TWO_OF_FIVE_FAILED,
            on_table_failure=policy,
        )
        for policy, action, verb, advice in POLICY_OUTCOMES
    ),
    *(
        tables_case(
            f"skippedTables-in-WarningMessage-on_table_failure={policy}",
            action,
            "(1 skipped, 5 complete)",
            SECRETS_SKIPPED,
            verb,
            warning=SKIPPED_SECRETS,
            on_table_failure=policy,
        )
        for policy, action, verb, _ in POLICY_OUTCOMES
    ),
    tables_case(
        "status-SKIPPED-per-table",
        "fail",
        "(1 skipped, 4 complete)",
        "orders.public.t9 skipped (status 'SKIPPED': unlogged table)",
        tables=tables_read(
            *FIVE_COMPLETE.tables[:4], table("orders.public.t9", "SKIPPED", 0, "unlogged table")
        ),
    ),
    tables_case(
        "general-reason-fails-the-export",
        "fail",
        "(1 failed, 5 complete)",
        f"{EXPORT_WIDE} failed (WarningMessage: FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE)",
        warning=DOCUMENTED_WARNING,
    ),
    tables_case(
        "general-reason-naming-a-database",
        "fail",
        "sales failed (WarningMessage: FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE)",
        warning='{"general":[{"target":"sales","reason":"FAILED_TO_EXTRACT_TABLES_LIST_FOR_DATABASE"}]}',
    ),
    tables_case(
        "free-text-warning-fails-the-export",
        "fail",
        f"{EXPORT_WIDE} failed (WarningMessage: 2 tables were skipped)",
        warning="2 tables were skipped",
    ),
    tables_case(
        "unknown-status-counts-as-failed-shown-raw",
        "fail",
        "(1 failed, 4 complete)",
        "orders.public.t5 failed (status 'NOT_A_STATUS')",
        tables=tables_read(*FIVE_COMPLETE.tables[:4], table("orders.public.t5", "NOT_A_STATUS")),
    ),
    tables_case(
        "in-progress-after-COMPLETE-counts-as-failed",
        "fail",
        "orders.public.t5 failed (status 'IN_PROGRESS')",
        tables=tables_read(*FIVE_COMPLETE.tables[:4], table("orders.public.t5", "IN_PROGRESS")),
    ),
    tables_case(
        "expected-table-missing",
        "fail",
        "(1 missing, 5 complete)",
        "orders.public.gone missing (in expected_tables; no COMPLETE table matches)",
        "check expected_tables",
        expected_tables=("orders.public.t1", "orders.public.gone"),
    ),
    tables_case(
        "expected-pattern-matching-nothing",
        "fail",
        "orders.archive.* missing",
        expected_tables=("orders.public.*", "orders.archive.*"),
    ),
    tables_case(
        "expected-failed-table-listed-as-failed-not-missing",
        "fail",
        "(2 failed, 3 complete)",
        tables=TWO_OF_FIVE_FAILED,
        expected_tables=("orders.public.t2",),
    ),
    tables_case(
        "expected-names-and-patterns-all-complete",
        "done",
        "5 tables, 2.5 GB verified",
        expected_tables=("orders.public.t1", "ORDERS.Public.T2", "orders.public.t[345]", "*.t1"),
    ),
    tables_case(
        "expected-mysql-db.table-matches-db.db.table",
        "done",
        "1 table, 0.5 GB verified",
        tables=tables_read(table("shop.shop.orders")),
        expected_tables=("shop.orders",),
    ),
    tables_case(
        "clean-sizes-summed", "done", f"{EXPORT_LABEL} is complete: 5 tables, 2.5 GB verified"
    ),
    tables_case(
        "clean-size-from-export_info",
        "done",
        f"{EXPORT_LABEL} is complete: 5 tables, 0.25 GB verified",
        export_info=ExportInfo({"totalExportedDataInGB": 0.25}, 0.25, ()),
    ),
    tables_case(
        "clean-one-table-lower-case-status",
        "done",
        f"{EXPORT_LABEL} is complete: 1 table, 0.5 GB verified",
        tables=tables_read(table("orders.public.t1", "complete")),
    ),
    tables_case(
        "clean-empty-json-warning",
        "done",
        "5 tables",
        warning='{"skippedTables":[],"skippedObjectives":[],"general":[]}',
    ),
    tables_case(
        "metadata-unreadable-warning-clean",
        "done",
        "its WarningMessage reports no failed or skipped table, size unknown",
        "could not be read (1 note), so no table was verified one by one",
        tables=UNREADABLE,
    ),
    tables_case(
        "metadata-not-read-at-all",
        "done",
        "no table was verified one by one",
        tables=None,
    ),
    tables_case(
        "metadata-unreadable-expected-tables-not-missing",
        "done",
        "no table was verified one by one",
        tables=UNREADABLE,
        expected_tables=("orders.public.t1",),
    ),
    tables_case(
        "metadata-unreadable-warning-skips",
        "fail",
        "(1 skipped; its export_tables_info files could not be read)",
        SECRETS_SKIPPED,
        tables=UNREADABLE,
        warning=SKIPPED_SECRETS,
    ),
    tables_case(
        "unknown-policy-fails",
        "fail",
        "on_table_failure='reschedule' decided to fail",
        tables=TWO_OF_FIVE_FAILED,
        on_table_failure="reschedule",
    ),
]


@pytest.mark.parametrize("case", TABLES_CASES, ids=lambda case: case.id)
def test_decide_tables(case: Case) -> None:
    assert_decision(case)


@pytest.mark.parametrize(
    "case",
    [case for case in TABLES_CASES if case.action in ("skip", "fail")],
    ids=lambda case: case.id,
)
def test_every_table_skip_and_failure_names_the_export_and_what_to_do(case: Case) -> None:
    decision = case.decide()
    assert decision is not None
    assert EXPORT_ID in decision.reason
    assert "To do: " in decision.reason


def test_table_failure_policies() -> None:
    assert TABLE_FAILURE_POLICIES == ("fail", "warn", "skip")


def test_warn_lists_the_same_tables_as_fail() -> None:
    decisions = {
        policy: judge_and_decide(SKIPPED_SECRETS, TWO_OF_FIVE_FAILED, (), policy, None)
        for policy in TABLE_FAILURE_POLICIES
    }
    listings = {
        policy: d.reason.split(": ", 1)[1].split(". on_table_failure")[0]
        for policy, d in decisions.items()
    }
    assert listings["fail"] == listings["warn"] == listings["skip"]
    assert "orders.public.t2" in listings["fail"] and SECRETS_SKIPPED in listings["fail"]


def test_more_than_twenty_problems_are_counted_not_listed() -> None:
    names = [f"orders.public.t{i:02d}" for i in range(1, 26)]
    tables = tables_read(*(table(name, "FAILED", 0, f"reason {name}") for name in names))
    verdict = table_verdict(WarningReport(), tables)
    decision = decide_tables(verdict, resource=EXPORT_ID, on_table_failure="fail")
    assert decision.action == "fail"
    assert "(25 failed, 0 complete)" in decision.reason
    shown = names[:MAX_LISTED_TABLES]
    for name in shown:
        assert f"{name} failed (status 'FAILED': reason {name})" in decision.reason
    for name in names[MAX_LISTED_TABLES:]:
        assert name not in decision.reason
    assert f"; and {25 - MAX_LISTED_TABLES} more." in decision.reason
    assert [problem.table for problem in verdict.failed] == names


def test_a_long_reason_is_shortened_in_the_message_not_in_the_verdict() -> None:
    reason = "x" * 1000
    verdict = table_verdict(
        WarningReport(), tables_read(table("orders.public.t1", "FAILED", 0, reason))
    )
    decision = decide_tables(verdict, resource=EXPORT_ID, on_table_failure="fail")
    assert "x" * 300 not in decision.reason and "xxx..." in decision.reason
    assert verdict.failed == (TableProblem("orders.public.t1", f"status 'FAILED': {reason}"),)


def test_a_table_reported_twice_counts_once_as_its_worst_outcome() -> None:
    tables = tables_read(
        table("orders.public.a", "SKIPPED", 0, "unlogged table"),
        table("orders.public.b", "COMPLETE"),
        table("orders.public.c", "FAILED", 0, "LOB too large"),
        table("ORDERS.public.C", "COMPLETE"),
        table("orders.public.d", "COMPLETE"),
    )
    warning = parse_warning_message(
        '{"skippedTables":[{"target":"Orders.Public.A","reason":"UNLOGGED"},'
        '{"target":"orders.public.b","reason":"PERMISSIONS_DO_NOT_EXIST"}]}'
    )
    verdict = table_verdict(warning, tables)
    assert verdict.complete == 1
    assert verdict.failed == (TableProblem("orders.public.c", "status 'FAILED': LOB too large"),)
    assert verdict.skipped == (
        TableProblem(
            "orders.public.a",
            "status 'SKIPPED': unlogged table; WarningMessage skippedTables: UNLOGGED",
        ),
        TableProblem("orders.public.b", "WarningMessage skippedTables: PERMISSIONS_DO_NOT_EXIST"),
    )


def test_export_wide_problems_are_listed_first() -> None:
    verdict = table_verdict(parse_warning_message(DOCUMENTED_WARNING), TWO_OF_FIVE_FAILED)
    assert [problem.table for problem in verdict.failed] == [
        EXPORT_WIDE,
        "orders.public.t2",
        "orders.public.t4",
    ]


def test_notes_gather_every_tolerated_problem_and_never_fail() -> None:
    tables = tables_read(
        table("orders.public.t1", reason="Some values were converted to strings."),
        table("postgres", None, None, "db-level warning"),
        notes=("s3://exports-bucket/x/export_tables_info_x_from_2_to_2.json: empty",),
    )
    info = ExportInfo({}, None, ("s3://exports-bucket/x/export_info_x.json: missing",))
    verdict = table_verdict(WarningReport(), tables, export_info=info)
    assert verdict.clean
    assert verdict.notes == (
        "s3://exports-bucket/x/export_info_x.json: missing",
        "s3://exports-bucket/x/export_tables_info_x_from_2_to_2.json: empty",
        "1 perTableStatus entry without a status, not judged: postgres (db-level warning)",
        "1 COMPLETE table(s) carry a warning: orders.public.t1 (Some values were converted "
        "to strings.)",
    )
    assert decide_tables(verdict, resource=EXPORT_ID, on_table_failure="fail").action == "done"


def test_expected_tables_unchecked_without_tables_files_is_a_note() -> None:
    verdict = table_verdict(WarningReport(), UNREADABLE, ("orders.public.t1",))
    assert verdict.missing == ()
    assert verdict.total_gb is None
    assert verdict.notes == (
        UNREADABLE_NOTE,
        "expected_tables not checked: no export_tables_info file could be read, so which "
        "tables were exported is unknown",
    )


def test_the_tables_xcom_shape() -> None:
    verdict = table_verdict(
        parse_warning_message(SKIPPED_SECRETS),
        tables_read(
            table("orders.public.t1", size_gb=1.5), table("orders.public.t2", "FAILED", 0, "LOB")
        ),
        ("orders.public.t3",),
    )
    assert verdict.to_jsonable() == {
        "Clean": False,
        "Complete": 1,
        "Failed": [{"Table": "orders.public.t2", "Reason": "status 'FAILED': LOB"}],
        "Skipped": [
            {
                "Table": "orders.public.secrets",
                "Reason": "WarningMessage skippedTables: PERMISSIONS_DO_NOT_EXIST",
            }
        ],
        "Missing": ["orders.public.t3"],
        "TotalGB": 1.5,
        "TablesInfoRead": True,
        "Notes": [],
    }
    round_tripped = json.loads(json.dumps(verdict.to_jsonable()))
    assert TablesVerdict.from_jsonable(round_tripped) == verdict


def test_a_clean_verdict_round_trips() -> None:
    verdict = table_verdict(WarningReport(), UNREADABLE)
    assert verdict.to_jsonable()["Clean"] is True
    assert TablesVerdict.from_jsonable(json.loads(json.dumps(verdict.to_jsonable()))) == verdict


# --- unreadable export metadata ------------------------------------------------------


@pytest.mark.parametrize(
    ("error_code", "http_status", "expected"),
    [
        ("AccessDenied", 403, True),
        ("AccessDenied", None, True),
        ("403", None, True),
        ("Forbidden", None, True),
        (None, 403, True),
        ("NoSuchKey", 404, False),
        ("InternalError", 500, False),
        (None, None, False),
    ],
)
def test_is_access_denied(error_code: str | None, http_status: int | None, expected: bool) -> None:
    assert is_access_denied(error_code, http_status) is expected


@pytest.mark.parametrize(
    ("action", "key_or_prefix", "error_code", "says", "not_says"),
    [
        (
            "list",
            "exports/x/",
            "AccessDenied",
            (
                "Export metadata s3://exports-bucket/exports/x/: s3:ListBucket failed "
                "(AccessDenied)",
                "judged from its WarningMessage alone",
                "To do: to verify the export table by table, grant the Airflow connection's "
                "identity s3:ListBucket on arn:aws:s3:::exports-bucket (for the prefix "
                "'exports/x/')",
            ),
            "s3:GetObject",
        ),
        (
            "get",
            "exports/x/export_info_x.json",
            "403",
            (
                "s3://exports-bucket/exports/x/export_info_x.json: s3:GetObject failed (403)",
                "grant the Airflow connection's identity s3:GetObject on "
                "arn:aws:s3:::exports-bucket/exports/x/* and kms:Decrypt on the export's KMS key",
            ),
            "s3:ListBucket",
        ),
        (
            "get",
            "export_info_x.json",
            "AccessDenied",
            ("s3:GetObject on arn:aws:s3:::exports-bucket/* and kms:Decrypt",),
            "s3:ListBucket",
        ),
        (
            "get",
            "exports/x/export_info_x.json",
            "NoSuchKey",
            (
                "s3:GetObject failed (NoSuchKey); the export's tables are judged from its "
                "WarningMessage alone",
                "To do: if this persists",
            ),
            "grant",
        ),
    ],
    ids=["list-denied", "get-denied", "get-denied-no-prefix", "get-not-found"],
)
def test_describe_unreadable_metadata(
    action: str, key_or_prefix: str, error_code: str, says: tuple[str, ...], not_says: str
) -> None:
    text = describe_unreadable_metadata(action, BUCKET, key_or_prefix, error_code)
    for part in says:
        assert part in text, text
    assert not_says not in text


def test_describe_unreadable_metadata_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="action must be one of"):
        describe_unreadable_metadata("put", BUCKET, "x", "AccessDenied")


# --- a deferred start-and-wait stopped by the triggerer: cancel its export? ---------------

KILLED = "dag.start_and_wait (run r, try 1)"


@pytest.mark.parametrize(
    ("task_state", "task_known", "cancels", "says"),
    [
        (
            "failed",
            True,
            True,
            "stopped waiting for export task orders-1 by a user's action (its state is now "
            "failed): canceling the export it started or adopted, as on_kill does on a worker",
        ),
        ("success", True, True, "its state is now success): canceling"),
        ("skipped", True, True, "its state is now skipped): canceling"),
        ("upstream_failed", True, True, "its state is now upstream_failed): canceling"),
        ("removed", True, True, "its state is now removed): canceling"),
        (
            "deferred",
            True,
            False,
            "still deferred: it moved to another triggerer, or the task was cleared and its "
            "next try already adopted the export; either way export task orders-1 is watched",
        ),
        (
            None,
            True,
            False,
            "the task was cleared (its state is now none): its next try adopts export task "
            "orders-1, which keeps running, so it is not canceled. To export afresh instead, "
            "mark the task failed",
        ),
        ("scheduled", True, False, "cleared (its state is now scheduled): its next try adopts"),
        ("queued", True, False, "cleared (its state is now queued): its next try adopts"),
        ("running", True, False, "cleared (its state is now running): its next try adopts"),
        ("restarting", True, False, "cleared (its state is now restarting)"),
        ("no such task instance", False, False, "could not read the task's state"),
        ("TimeoutError: ", False, False, "may still run in AWS"),
    ],
)
def test_decide_cancel_on_kill(
    task_state: str | None, task_known: bool, cancels: bool, says: str
) -> None:
    cancel, reason = decide_cancel_on_kill(
        task_state, task_known=task_known, resource="orders-1", task=KILLED
    )
    assert cancel is cancels
    assert says in reason
    assert "orders-1" in reason


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("InvalidExportTaskStateFault", "no longer running"),
        ("ExportTaskNotFound", "no longer running"),
        ("AccessDenied", "may still run in AWS. To do: cancel it"),
        (None, "no answer"),
    ],
)
def test_describe_kill_cancel_error(code: str | None, says: str) -> None:
    assert says in describe_kill_cancel_error("orders-1", code, "boom")
