"""Every "this AWS state or error means reschedule, skip or fail" rule, in one place.

Operators, sensors and triggers never interpret an AWS status or error code themselves:
they describe the resource, hand what AWS said to a function here, and carry out the
:class:`Decision` it returns. To see what any component does with any state, read this file.

A decision has one of five actions:

* ``done``: the goal is reached (snapshot available, export complete, cancel underway);
* ``wait``: not yet; keep waiting (poke again, reschedule, or stay deferred);
* ``skip``: end the task as skipped;
* ``fail``: end the task as failed, without retries;
* ``restart``: (start operator only) the export under this identifier is dead (FAILED or
  CANCELED) and identifiers are never reusable: start anew under the next one.

Policies are what users choose for a state: ``"reschedule"`` (keep waiting), ``"skip"`` or
``"fail"``. Statuses are compared case-insensitively: AWS returns export statuses in upper
case, plain moto in lower case; everything here works on :func:`normalise_status` output.

Every skip and failure message says, in one line: which resource, what AWS reported, which
policy decided, and what to do about it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from airflow_rds_export.records import Record

if TYPE_CHECKING:
    from airflow_rds_export.export_metadata import ExportInfo, ExportTables, WarningReport

    #: What a :class:`Decision` tells its driver to do (one of :data:`ACTIONS`); a type for
    #: mypy only, so importing this module builds no ``Literal``.
    Action = Literal["done", "wait", "skip", "fail", "restart"]

__all__ = [
    "DEFAULT_EXPORT_ERROR_STATUSES",
    "EVENT_MEANINGS",
    "EXPORT_COMPLETE_STATUS",
    "EXPORT_ENDED_EVENT_IDS",
    "EXPORT_ERROR_STATUSES",
    "EXPORT_IN_PROGRESS_STATUSES",
    "EXPORT_STATUSES",
    "EXPORT_TERMINAL_STATUSES",
    "EXPORT_WIDE",
    "MAX_LISTED_TABLES",
    "POLICIES",
    "S3_ACCESS_DENIED_CODES",
    "SNAPSHOT_BROKEN_STATUSES",
    "SNAPSHOT_CREATED_EVENT_IDS",
    "SNAPSHOT_PENDING_STATUSES",
    "SNAPSHOT_READY_STATUS",
    "SNAPSHOT_STATUSES",
    "TABLE_COMPLETE_STATUS",
    "TABLE_FAILURE_POLICIES",
    "TABLE_SKIPPED_STATUSES",
    "Decision",
    "EventVerdict",
    "QueueErrorVerdict",
    "TableProblem",
    "TablesVerdict",
    "cancel_raced",
    "decide_adoption",
    "decide_call_error",
    "decide_cancel",
    "decide_cancel_on_kill",
    "decide_event",
    "decide_export",
    "decide_permanent_error",
    "decide_queue_error",
    "decide_snapshot",
    "decide_start_error",
    "decide_tables",
    "decide_transient_error",
    "describe_kill_cancel_error",
    "describe_unknown_refusal",
    "describe_unreadable_metadata",
    "event_id_of",
    "export_wrote_data",
    "is_access_denied",
    "is_not_found",
    "is_transient",
    "normalise_status",
    "other_export_of",
    "progress_of",
    "start_refusal",
    "table_verdict",
]

ACTIONS: tuple[str, ...] = ("done", "wait", "skip", "fail", "restart")

POLICIES: tuple[str, ...] = ("reschedule", "skip", "fail")

# Export task statuses (ExportTask.Status), normalised to lower case.
EXPORT_IN_PROGRESS_STATUSES = frozenset({"starting", "in_progress", "canceling"})
EXPORT_COMPLETE_STATUS = "complete"
EXPORT_TERMINAL_STATUSES = frozenset({EXPORT_COMPLETE_STATUS, "canceled", "failed"})
EXPORT_ERROR_STATUSES = frozenset({"canceled", "failed"})
#: What an export wait treats as an error unless told otherwise, in a stable order.
DEFAULT_EXPORT_ERROR_STATUSES: tuple[str, ...] = tuple(sorted(EXPORT_ERROR_STATUSES))
EXPORT_STATUSES = EXPORT_IN_PROGRESS_STATUSES | EXPORT_TERMINAL_STATUSES

# DB / cluster snapshot statuses (lower case already on the wire).
SNAPSHOT_READY_STATUS = "available"
SNAPSHOT_PENDING_STATUSES = frozenset({"creating", "copying", "pending"})
SNAPSHOT_BROKEN_STATUSES = frozenset(
    {"failed", "deleted", "deleting", "incompatible-restore", "incompatible-parameters"}
)
#: Every snapshot status a wait may name in ``target_statuses``.
SNAPSHOT_STATUSES = (
    SNAPSHOT_PENDING_STATUSES | SNAPSHOT_BROKEN_STATUSES | frozenset({SNAPSHOT_READY_STATUS})
)

# Error codes, both spellings: AWS sends the short code, plain moto sometimes the class name.
SOURCE_NOT_READY_CODES = frozenset({"InvalidExportSourceState", "InvalidExportSourceStateFault"})
ALREADY_EXISTS_CODES = frozenset({"ExportTaskAlreadyExists", "ExportTaskAlreadyExistsFault"})
EXPORT_NOT_FOUND_CODES = frozenset({"ExportTaskNotFound", "ExportTaskNotFoundFault"})
INVALID_EXPORT_STATE_CODES = frozenset({"InvalidExportTaskStateFault", "InvalidExportTaskState"})
SNAPSHOT_NOT_FOUND_CODES = frozenset(
    {"DBSnapshotNotFound", "DBSnapshotNotFoundFault", "DBClusterSnapshotNotFoundFault"}
)
# UNVERIFIED: the 5-concurrent-exports quota. AWS documents the limit ("up to five concurrent
# export tasks in progress") but neither botocore's RDS model nor the API reference names
# its error: these are the codes quota refusals take elsewhere in RDS (the emulator sends
# LimitExceeded), and the message is matched as well, whatever the code.
EXPORT_LIMIT_CODES = frozenset({"LimitExceeded", "ExportTaskLimitReached", "QuotaExceeded"})
# Patterns are strings, compiled (and cached by ``re``) on first use, not on import.
_EXPORT_LIMIT_MESSAGE = (
    r"(?i)(more than|up to|maximum of|limit of)\s+\w+\s+(concurrent\s+)?export tasks"
    r"|export tasks in progress"
)
# UNVERIFIED: "no two concurrent exports of the same snapshot" is documented, its error is
# not. The emulator refuses with InvalidExportSourceState and a message naming the running
# export; matched by message (any code), and the other export's identifier read off it.
_SOURCE_BUSY_MESSAGE = (
    r"(?i)already (being )?export|export task \S+ is (already|currently)"
    r"|in use by (another )?export"
)
_OTHER_EXPORT = r"[Ee]xport task ([A-Za-z][A-Za-z0-9-]*)"
CLUSTER_NOT_FOUND_CODES = frozenset({"DBClusterNotFoundFault", "DBClusterNotFound"})
INSTANCE_NOT_FOUND_CODES = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault"})
NOT_FOUND_CODES = (
    EXPORT_NOT_FOUND_CODES
    | SNAPSHOT_NOT_FOUND_CODES
    | CLUSTER_NOT_FOUND_CODES
    | INSTANCE_NOT_FOUND_CODES
)
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)

_PERMISSION_REMEDY = (
    "the Airflow connection's identity lacks permission{action}: grant it (the IAM "
    "policies page of the documentation, docs/reference/iam.md, lists every action this "
    "package calls: "
    "rds:DescribeDBSnapshots, rds:DescribeDBClusterSnapshots, rds:DescribeDBClusters, "
    "rds:DescribeExportTasks, rds:StartExportTask, rds:CancelExportTask, iam:PassRole on "
    "the export role, kms:CreateGrant and kms:DescribeKey on the key)"
)
_CREDENTIALS_REMEDY = (
    "the Airflow connection's credentials are invalid or expired: fix the connection "
    "(keys, role_arn, profile) or the worker's and triggerer's instance role"
)
# Where AWS names the denied action: "... is not authorized to perform: rds:X on resource".
_DENIED_ACTION = r"not authorized to perform:?\s+([A-Za-z0-9-]+:[A-Za-z0-9*]+)"

# Permanent configuration errors: retrying cannot help, so they fail at once with the remedy.
REMEDIES: Mapping[str, str] = {
    "IamRoleNotFound": (
        "the IAM role given as iam_role_arn does not exist: create it (trusted by "
        "export.rds.amazonaws.com) or fix the ARN"
    ),
    "IamRoleNotFoundFault": "the IAM role given as iam_role_arn does not exist",
    "IamRoleMissingPermissions": (
        "the export role lacks permissions: allow s3:PutObject*, s3:GetObject*, "
        "s3:ListBucket, s3:DeleteObject*, s3:GetBucketLocation on the bucket, and make sure "
        "its trust policy allows export.rds.amazonaws.com"
    ),
    "IamRoleMissingPermissionsFault": "the export role lacks S3 permissions or trust",
    "KMSKeyNotAccessibleFault": (
        "the KMS key given as kms_key_id cannot be used: check the key exists and is enabled "
        "in this Region, and that its key policy lets the Airflow connection's identity call "
        "kms:CreateGrant and kms:DescribeKey (StartExportTask's documented requirement)"
    ),
    "InvalidS3BucketFault": (
        "the S3 bucket given as s3_bucket_name does not exist or is not reachable by the "
        "export role: create it in this Region or fix the name and the role's S3 policy"
    ),
    "InvalidExportOnly": (
        "an export_only entry names nothing in the snapshot: use database, "
        "database.table, database.schema or database.schema.table names that exist"
    ),
    "InvalidExportOnlyFault": "an export_only entry names nothing in the snapshot",
    "InvalidParameterValue": "AWS rejected a parameter value: fix it as the message says",
    "InvalidParameterCombination": "AWS rejected a parameter combination: fix it as it says",
    "AccessDenied": _PERMISSION_REMEDY,
    "AccessDeniedException": _PERMISSION_REMEDY,
    "UnauthorizedOperation": _PERMISSION_REMEDY,
    "NotAuthorized": _PERMISSION_REMEDY,
    "InvalidClientTokenId": _CREDENTIALS_REMEDY,
    "UnrecognizedClientException": _CREDENTIALS_REMEDY,
    "SignatureDoesNotMatch": _CREDENTIALS_REMEDY,
    "ExpiredToken": _CREDENTIALS_REMEDY,
    "ExpiredTokenException": _CREDENTIALS_REMEDY,
    "AuthFailure": _CREDENTIALS_REMEDY,
    "DBSnapshotNotFound": "the source snapshot does not exist: check source_arn",
    "DBSnapshotNotFoundFault": "the source snapshot does not exist: check source_arn",
    "DBClusterSnapshotNotFoundFault": "the source cluster snapshot does not exist",
    "DBClusterNotFoundFault": (
        "the source DB cluster does not exist in this account and Region: check source_arn "
        "(its Region and account must be the connection's)"
    ),
}


class Decision(Record):
    """What a component does next, and the one-line reason it logs or raises."""

    action: Action
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-friendly form, carried in trigger events."""
        return {"action": self.action, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        action = data["action"]
        if action not in ACTIONS:
            raise ValueError(f"Unknown decision action {action!r} in trigger event")
        return cls(action=action, reason=str(data["reason"]))


def normalise_status(status: object) -> str | None:
    """Return a status in the one form compared everywhere: stripped, lower case."""
    if status is None:
        return None
    return str(status).strip().lower() or None


def progress_of(export_task: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """Return ``(PercentProgress, TotalExtractedDataInGB)`` of an export task description."""
    percent = export_task.get("PercentProgress")
    extracted = export_task.get("TotalExtractedDataInGB")
    return (
        int(percent) if percent is not None else None,
        float(extracted) if extracted is not None else None,
    )


def _policy_action(policy: str) -> Action:
    return "wait" if policy == "reschedule" else policy  # type: ignore[return-value]


def decide_snapshot(
    snapshot: Mapping[str, Any] | None,
    *,
    resource: str,
    on_missing: str,
    on_failure: str,
    target_statuses: Collection[str] = (SNAPSHOT_READY_STATUS,),
) -> Decision:
    """Decide what a snapshot wait does with a snapshot description (None: not found).

    ``target_statuses`` (normalised) end the wait; only ``available`` can be exported, the
    others exist for the Amazon provider's ``RdsSnapshotExistenceSensor`` semantics.
    """
    if snapshot is None:
        return Decision(
            _policy_action(on_missing),
            f"Snapshot {resource}: AWS reports it does not exist; on_missing={on_missing!r} "
            + _missing_advice(on_missing, "create the snapshot or fix the identifier"),
        )
    status = normalise_status(snapshot.get("Status"))
    if status in target_statuses:
        return Decision("done", f"Snapshot {resource} is {status}")
    if status in SNAPSHOT_BROKEN_STATUSES:
        return Decision(
            "skip" if on_failure == "skip" else "fail",
            f"Snapshot {resource}: AWS reports status {status!r}; on_failure={on_failure!r} "
            f"decided to {on_failure}. To do: take a new snapshot or point the task at "
            "another one; this one can never be exported",
        )
    return Decision("wait", f"Snapshot {resource} is {status!r}, not available yet; waiting")


def export_wrote_data(export_task: Mapping[str, Any] | None) -> bool:
    """Whether an export's data is there to announce (an asset event, lineage outputs):
    only a COMPLETE export has written it. A wait may end on another status (the
    existence sensor's STARTING, a cancel's CANCELED): nothing to announce then."""
    return (
        export_task is not None
        and normalise_status(export_task.get("Status")) == EXPORT_COMPLETE_STATUS
    )


def decide_export(
    export_task: Mapping[str, Any] | None,
    *,
    resource: str,
    target_statuses: Collection[str],
    error_statuses: Collection[str],
    on_missing: str,
    on_failure: str,
) -> Decision:
    """Decide what an export-task wait does with a task description (None: not found).

    ``target_statuses`` and ``error_statuses`` must already be normalised (lower case).
    """
    if export_task is None:
        return Decision(
            _policy_action(on_missing),
            f"Export task {resource}: AWS reports it does not exist; on_missing="
            f"{on_missing!r} "
            + _missing_advice(on_missing, "check export_task_identifier and the Region"),
        )
    status = normalise_status(export_task.get("Status"))
    if status is None:
        return Decision(
            "fail",
            f"Export task {resource}: AWS returned a description without a Status "
            f"({dict(export_task)}); nothing can be decided from it. To do: report it; check "
            "the task in the RDS console",
        )
    if status in target_statuses:
        return Decision("done", f"Export task {resource} is {status}")
    if status in error_statuses:
        cause = export_task.get("FailureCause") or "no FailureCause given"
        warning = export_task.get("WarningMessage")
        detail = f"{cause}; warning: {warning}" if warning else cause
        return Decision(
            "skip" if on_failure == "skip" else "fail",
            f"Export task {resource}: AWS reports status {str(status).upper()} ({detail}); "
            f"on_failure={on_failure!r} decided to {on_failure}. To do: fix the cause, then "
            "start a new export under a new export_task_identifier (identifiers are never "
            "reusable)",
        )
    if status in EXPORT_TERMINAL_STATUSES:
        return Decision(
            "fail",
            f"Export task {resource}: AWS reports status {str(status).upper()}, which is "
            f"final and not among target_statuses {sorted(target_statuses)}; it will never "
            "change. To do: add it to target_statuses or error_statuses",
        )
    if status not in EXPORT_STATUSES:
        return Decision(
            "wait",
            f"Export task {resource} is {str(status).upper()}, a status this package does not "
            "know; waiting for one it knows (bounded by the task's timeout)",
        )
    return Decision("wait", f"Export task {resource} is {str(status).upper()}; waiting")


def start_refusal(error_code: str | None, error_message: str) -> str | None:
    """What a StartExportTask refusal is about, or None when no rule knows it.

    ``"exists"`` (the identifier is taken), ``"source_busy"`` (another export of the same
    snapshot runs), ``"quota"`` (5 exports run already), ``"source_not_ready"`` (the
    snapshot is not available). The busy and quota refusals are matched by message as
    well as code: AWS documents neither error (UNVERIFIED, see above).
    """
    if error_code in ALREADY_EXISTS_CODES:
        return "exists"
    if re.search(_SOURCE_BUSY_MESSAGE, error_message):
        return "source_busy"
    if error_code in EXPORT_LIMIT_CODES or re.search(_EXPORT_LIMIT_MESSAGE, error_message):
        return "quota"
    if error_code in SOURCE_NOT_READY_CODES:
        return "source_not_ready"
    return None


def other_export_of(error_message: str) -> str | None:
    """The identifier of the export a "same snapshot" refusal names, if it names one."""
    match = re.search(_OTHER_EXPORT, error_message)
    return match.group(1) if match else None


def decide_start_error(
    error_code: str,
    error_message: str,
    *,
    resource: str,
    on_invalid_state: str,
) -> Decision | None:
    """Decide what StartExportTask's error means; None: not ours to decide (re-raise it).

    ``ExportTaskAlreadyExists`` is not decided here: adopting needs the existing task, see
    :func:`decide_adoption`.
    """
    refusal = start_refusal(error_code, error_message)
    seen = f"({error_code}: {error_message})"
    if refusal == "source_busy":
        other = other_export_of(error_message) or "another export"
        return Decision(
            _policy_action(on_invalid_state),
            f"Export task {resource}: AWS refused to start it because export {other} of the "
            f"same source is still running {seen}; on_invalid_state={on_invalid_state!r} "
            + {
                "reschedule": f"decided to wait for {other} to finish, then start",
                "skip": f"decided to skip. To do: export this source after {other} ends",
                "fail": f"decided to fail. To do: export this source after {other} ends, or "
                "use on_invalid_state='reschedule' to wait for it",
            }[on_invalid_state],
        )
    if refusal == "quota":
        return Decision(
            "wait",
            f"Export task {resource}: AWS refused to start it because 5 exports already run "
            f"in this account and Region {seen}; waiting for a slot. "
            "To do, if this happens often: cap concurrency with max_active_tis_per_dag=5 or a "
            "pool of 5 slots with include_deferred",
        )
    if refusal == "source_not_ready":
        return Decision(
            _policy_action(on_invalid_state),
            f"Export task {resource}: AWS refused to start it because the source snapshot is "
            f"not available yet {seen}; on_invalid_state={on_invalid_state!r} "
            + {
                "reschedule": "decided to wait and try again",
                "skip": "decided to skip. To do: wait for the snapshot (RdsSnapshotReadySensor)",
                "fail": "decided to fail. To do: wait for the snapshot (RdsSnapshotReadySensor) "
                "or use on_invalid_state='reschedule'",
            }[on_invalid_state],
        )
    return decide_permanent_error(f"Export task {resource}", error_code, error_message)


def describe_unknown_refusal(resource: str, error_code: str | None, error_message: str) -> str:
    """What to say about a refusal no rule knows: it is raised (Airflow's retries apply),
    never turned into a permanent failure silently."""
    return (
        f"{resource}: AWS refused the call with an error this package has no rule for "
        f"({error_code or 'no error code'}: {error_message}); it is raised as it is, so the "
        "task's retries apply. To do: if it persists, fix what the message says"
    )


def decide_permanent_error(resource: str, error_code: str, error_message: str) -> Decision | None:
    """A permission or configuration error: fail at once (no retry can help); else None.

    For a permission error the remedy names the action AWS says was denied, when it says.
    """
    remedy = REMEDIES.get(error_code)
    if remedy is None:
        return None
    if remedy is _PERMISSION_REMEDY:
        denied = re.search(_DENIED_ACTION, error_message)
        remedy = remedy.format(action=f" for {denied.group(1)}" if denied else "")
    return Decision(
        "fail",
        f"{resource}: AWS refused the call ({error_code}: {error_message}). This is a "
        f"permanent configuration error, not retried. To do: {remedy}",
    )


def is_transient(error_code: str | None, http_status: int | None) -> bool:
    """Throttling or a 5xx answer: AWS is busy, which says nothing about the resource."""
    return error_code in THROTTLING_CODES or (http_status or 0) >= 500


def is_not_found(error_code: str | None) -> bool:
    """AWS says the export task, snapshot, cluster or instance does not exist (a describe
    answers None)."""
    return error_code in NOT_FOUND_CODES


def cancel_raced(error_code: str | None) -> bool:
    """CancelExportTask refused because the task changed state (or vanished) meanwhile."""
    return error_code in INVALID_EXPORT_STATE_CODES | EXPORT_NOT_FOUND_CODES


def decide_transient_error(resource: str, error: str) -> Decision:
    """AWS throttled, answered 5xx or could not be reached, even after botocore's retries.

    That says nothing about the resource: keep waiting (a wait polls again later; a start
    tries again later, and adopts its export if the lost answer had started it).
    """
    return Decision(
        "wait",
        f"{resource}: AWS is busy or unreachable ({error}) after retries; trying again later",
    )


def decide_call_error(
    resource: str,
    *,
    error_code: str | None,
    error_message: str,
    http_status: int | None,
    unreachable: bool = False,
) -> Decision | None:
    """What a failed describe call means for a wait; None: unknown, let it raise.

    Transient failures (throttling, 5xx, no connection) mean "not yet"; permission and
    configuration errors fail at once with the remedy. Not-found answers never get here:
    the hook turns them into "no description".
    """
    if unreachable:
        return decide_transient_error(resource, "the connection to AWS failed")
    if is_transient(error_code, http_status):
        what = f"{error_code}: {error_message}" if error_code else f"HTTP {http_status}"
        return decide_transient_error(resource, what)
    if error_code is None:
        return None
    return decide_permanent_error(resource, error_code, error_message)


def decide_adoption(
    existing: Mapping[str, Any] | None,
    *,
    resource: str,
    if_exists: str,
    source_arn: str,
    s3_bucket_name: str,
    s3_prefix: str,
    export_only: Collection[str] = (),
) -> Decision:
    """Decide whether an existing export task with our identifier is this run's export.

    ``done`` means adopt it: the same export (source, bucket, prefix and table list) that
    an earlier try (or a racing run) of this very task started, still live or COMPLETE.
    ``restart`` means the same export is dead (FAILED, CANCELED, CANCELING): identifiers
    are never reusable, so this run exports again under the next identifier.
    """
    if existing is None:
        # Reported as existing, then gone: AWS is eventually consistent. Try again shortly.
        return Decision("wait", f"Export task {resource} exists but is not yet describable")
    status = normalise_status(existing.get("Status"))
    shown = str(status).upper()
    theirs = (
        str(existing.get("SourceArn") or ""),
        str(existing.get("S3Bucket") or ""),
        (existing.get("S3Prefix") or "").strip("/"),
        sorted(existing.get("ExportOnly") or []),
    )
    ours = (source_arn, s3_bucket_name, (s3_prefix or "").strip("/"), sorted(export_only))
    if if_exists == "fail":
        return Decision(
            "fail",
            f"Export task {resource} already exists (status {shown}, source {theirs[0]}); "
            "if_exists='fail' decided to fail. To do: use a new export_task_identifier, or "
            "if_exists='adopt' to carry on with it",
        )
    if theirs != ours:
        return Decision(
            "fail",
            f"Export task {resource} already exists but is a different export: existing "
            f"source={theirs[0]} bucket={theirs[1]} prefix={theirs[2]!r} "
            f"export_only={theirs[3]}, this task's source={ours[0]} bucket={ours[1]} "
            f"prefix={ours[2]!r} export_only={ours[3]}; if_exists='adopt' only adopts an "
            "identical export. To do: use an export_task_identifier unique to this source, "
            "e.g. one that includes the snapshot name and the logical date",
        )
    if status in EXPORT_ERROR_STATUSES or status == "canceling":
        cause = existing.get("FailureCause")
        return Decision(
            "restart",
            f"Export task {resource} already exists with the same source, bucket and prefix "
            f"but is {shown}{f' ({cause})' if cause else ''}: it will never complete and "
            "its identifier cannot be reused, so this run exports again under a new one",
        )
    return Decision(
        "done",
        f"Export task {resource} already exists with the same source, bucket and prefix "
        f"(status {shown}): adopting it as this run's export instead of starting a second one",
    )


def decide_cancel(
    export_task: Mapping[str, Any] | None,
    *,
    resource: str,
    on_invalid_state: str,
    on_missing: str,
) -> Decision:
    """Decide what a cancel does with the export task as it is now.

    ``wait`` means "cancelable: call CancelExportTask"; ``done`` means a cancel is already
    underway (CANCELING). A task already CANCELED is finished like COMPLETE and FAILED:
    ``on_invalid_state`` decides.
    """
    if export_task is None:
        return Decision(
            "skip" if on_missing == "skip" else "fail",
            f"Export task {resource}: AWS reports it does not exist, nothing to cancel; "
            f"on_missing={on_missing!r} decided to {on_missing}. To do: check "
            "export_task_identifier and the Region, or use on_missing='skip'",
        )
    status = normalise_status(export_task.get("Status"))
    if status in ("starting", "in_progress"):
        return Decision("wait", f"Export task {resource} is {status.upper()}: cancelable")
    if status == "canceling":
        return Decision("done", f"Export task {resource} is already CANCELING")
    return Decision(
        "skip" if on_invalid_state == "skip" else "fail",
        f"Export task {resource}: AWS reports status {str(status).upper()}, which cannot be "
        f"canceled; on_invalid_state={on_invalid_state!r} decided to {on_invalid_state}. "
        + (
            "Nothing to do: the export already finished"
            if on_invalid_state == "skip"
            else "To do: use on_invalid_state='skip' if a finished export is fine here"
        ),
    )


#: Task states a user's "mark failed / success" (or a DAG run marked failed) leaves: the
#: task will not run again, so nothing else will watch its export.
TASK_STATES_ENDED_BY_USER = frozenset(
    {"failed", "success", "skipped", "upstream_failed", "removed"}
)


def decide_cancel_on_kill(
    task_state: str | None, *, task_known: bool, resource: str, task: str
) -> tuple[bool, str]:
    """Whether a trigger that the triggerer stopped "by user action" cancels its export.

    Airflow 3.3 calls ``BaseTrigger.on_kill()`` for every trigger that left the triggerer's
    assignment: a user marked the deferred task failed or success, or cleared it, but
    also a trigger reassigned to another triggerer after this one missed its heartbeats.
    The task instance's state tells them apart:

    * an ended state (failed, success, skipped, ...): the user ended the task, nothing will
      watch the export again: cancel it, as ``on_kill`` does on a worker;
    * any other (``deferred``: the trigger moved, or the cleared task's next try already
      deferred; none, scheduled, queued, running: the task was cleared and runs again):
      the task's next try adopts the running export under the same identifier, as every
      re-run does, so it is handed over, not canceled. Canceling after a clear would race
      that try, which the scheduler starts while the triggerer is still stopping the old
      trigger: the new try could adopt the export, then wait on one canceled under it.

    An unreadable state cancels nothing (a cancel cannot be undone; an export left running
    is named in the log). Returns ``(cancel, reason)``.
    """
    if not task_known:
        return (
            False,
            f"Trigger of {task} stopped; could not read the task's state ({task_state}), so "
            f"export task {resource} is not canceled and may still run in AWS. To do: check "
            "the task, and cancel the export if nothing waits for it",
        )
    if task_state in TASK_STATES_ENDED_BY_USER:
        return (
            True,
            f"Task {task} stopped waiting for export task {resource} by a user's action (its "
            f"state is now {task_state}): canceling the export it started or adopted, as "
            "on_kill does on a worker",
        )
    if task_state == "deferred":
        return (
            False,
            f"Trigger of {task} stopped while the task is still deferred: it moved to another "
            "triggerer, or the task was cleared and its next try already adopted the export; "
            f"either way export task {resource} is watched, so it is not canceled",
        )
    return (
        False,
        f"Trigger of {task} stopped because the task was cleared (its state is now "
        f"{task_state or 'none'}): its next try adopts export task {resource}, which keeps "
        "running, so it is not canceled. To export afresh instead, mark the task failed "
        "(which cancels the export) before clearing it",
    )


def describe_kill_cancel_error(resource: str, error_code: str | None, message: str) -> str:
    """The log line when the kill-time CancelExportTask is refused or fails."""
    if cancel_raced(error_code):
        return (
            f"Export task {resource} could not be canceled ({error_code}): it is no longer "
            "running (finished, canceling or gone); nothing left to cancel"
        )
    return (
        f"Could not cancel export task {resource} ({error_code or 'no answer'}: {message}): "
        "it may still run in AWS. To do: cancel it (RdsCancelExportTaskOperator or "
        "aws rds cancel-export-task)"
    )


def _missing_advice(policy: str, todo: str) -> str:
    if policy == "reschedule":
        return "decided to keep waiting"
    return f"decided to {policy}. To do: {todo}"


# --- Table verdicts ------------------------------------------------------------------
#
# AWS reports an export COMPLETE even when tables were skipped or failed. After COMPLETE an
# export is verified from what it reports about its tables, read (tolerantly) by
# export_metadata: the task's WarningMessage and its export_tables_info files. Only those
# can fail a task; metadata that cannot be read adds notes, never a failure.

TABLE_FAILURE_POLICIES: tuple[str, ...] = ("fail", "warn", "skip")
# perTableStatus statuses, normalised. UNCONFIRMED: AWS documents none; COMPLETE is the one
# seen in real files. A status that is neither COMPLETE nor SKIPPED counts as failed.
TABLE_COMPLETE_STATUS = "complete"
TABLE_SKIPPED_STATUSES = frozenset({"skipped"})
#: How many tables a decision's message names; the rest are counted.
MAX_LISTED_TABLES = 20
#: The name a problem of the export as a whole is listed under.
EXPORT_WIDE = "(export)"
_MAX_REASON_CHARS = 200
# S3's answers to "you may not": ListObjectsV2 and GetObject say AccessDenied (also when
# kms:Decrypt on an SSE-KMS object is what is missing), HeadObject a bare 403.
S3_ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "Forbidden", "403"}
)
_S3_READ_ACTIONS = {"list": "s3:ListBucket", "get": "s3:GetObject"}
_TABLE_OUTCOME_RANK = {"complete": 0, "skipped": 1, "failed": 2}


class TableProblem(Record):
    """A table (or :data:`EXPORT_WIDE`) not exported, and why, as AWS reported it."""

    table: str
    reason: str


class TablesVerdict(Record):
    """What an export's own reports say about its tables (see :func:`table_verdict`).

    ``tables_info_read``: whether any ``export_tables_info`` file could be read (False:
    only the WarningMessage was judged). ``total_gb``: the export's total size, None when
    unknown. ``notes``: problems tolerated on the way (unreadable files, odd entries).
    """

    complete: int
    failed: tuple[TableProblem, ...]
    skipped: tuple[TableProblem, ...]
    missing: tuple[str, ...]
    total_gb: float | None
    tables_info_read: bool
    notes: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """No table failed, was skipped or is missing."""
        return not (self.failed or self.skipped or self.missing)

    def to_jsonable(self) -> dict[str, Any]:
        """The XCom form (the operators push it as ``Tables``)."""
        return {
            "Clean": self.clean,
            "Complete": self.complete,
            "Failed": [{"Table": p.table, "Reason": p.reason} for p in self.failed],
            "Skipped": [{"Table": p.table, "Reason": p.reason} for p in self.skipped],
            "Missing": list(self.missing),
            "TotalGB": self.total_gb,
            "TablesInfoRead": self.tables_info_read,
            "Notes": list(self.notes),
        }

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> TablesVerdict:
        """Read back :meth:`to_jsonable`'s form (e.g. from a trigger event)."""

        def problems(key: str) -> tuple[TableProblem, ...]:
            return tuple(TableProblem(str(p["Table"]), str(p["Reason"])) for p in data[key])

        total = data.get("TotalGB")
        return cls(
            complete=int(data["Complete"]),
            failed=problems("Failed"),
            skipped=problems("Skipped"),
            missing=tuple(str(name) for name in data["Missing"]),
            total_gb=None if total is None else float(total),
            tables_info_read=bool(data["TablesInfoRead"]),
            notes=tuple(str(note) for note in data.get("Notes", ())),
        )


class _Judged(Record):
    name: str
    outcome: str
    reason: str
    size_gb: float | None


def table_verdict(
    warning: WarningReport,
    tables: ExportTables | None,
    expected_tables: Sequence[str] = (),
    *,
    export_info: ExportInfo | None = None,
) -> TablesVerdict:
    """Judge a COMPLETE export's tables from its WarningMessage and its metadata files.

    * a ``perTableStatus`` entry COMPLETE is complete, SKIPPED skipped, any other status
      (FAILED or unknown) failed, its reason ``status 'RAW': warningMessage``; an entry
      without a status is not judged (a note);
    * a ``skippedTables`` or ``skippedObjectives`` entry of the WarningMessage is skipped;
      a ``general`` reason, any other field and free text are failures, listed under the
      database they name or :data:`EXPORT_WIDE`;
    * a table reported more than once counts once, as its worst outcome (failed, then
      skipped, then complete), with every reason given for that outcome;
    * each ``expected_tables`` name or fnmatch pattern (case-insensitive) must match a
      COMPLETE table, or it is missing (unless a failed or skipped table it matches is
      listed already). ``db.table`` also matches ``db.db.table``, the MySQL form
      (UNCONFIRMED). Without readable tables files nothing is missing: a note says
      expected_tables could not be checked.

    ``tables`` None (or no file read) leaves the WarningMessage alone to judge. The size is
    ``export_info``'s ``totalExportedDataInGB``, else the sum of the tables' ``sizeGB``.
    """
    judged: dict[str, _Judged] = {}
    notes = [*(export_info.notes if export_info else ()), *(tables.notes if tables else ())]
    read = tables is not None and tables.files_read > 0
    unjudged: list[str] = []
    warned: list[str] = []
    for table in tables.tables if tables else ():
        status = normalise_status(table.status)
        if status is None:
            unjudged.append(table.target + (f" ({table.reason})" if table.reason else ""))
            continue
        if status == TABLE_COMPLETE_STATUS:
            outcome = "complete"
            if table.reason:
                warned.append(f"{table.target} ({table.reason})")
        else:
            outcome = "skipped" if status in TABLE_SKIPPED_STATUSES else "failed"
        reason = f"status {table.status!r}" + (f": {table.reason}" if table.reason else "")
        _judge(judged, table.target, outcome, reason, table.size_gb)
    for entry in warning.skipped_tables:
        _judge(
            judged,
            entry.target or "(table not named)",
            "skipped",
            f"WarningMessage skippedTables: {entry.reason or 'no reason given'}",
        )
    for entry in warning.skipped_objectives:
        _judge(
            judged,
            entry.target or EXPORT_WIDE,
            "skipped",
            f"WarningMessage skippedObjectives: {entry.reason or 'no reason given'}",
        )
    for entry in warning.general:
        reason = entry.reason or "an entry without a reason"
        _judge(judged, entry.target or EXPORT_WIDE, "failed", f"WarningMessage: {reason}")
    if warning.text:
        _judge(judged, EXPORT_WIDE, "failed", f"WarningMessage: {warning.text}")
    if unjudged:
        notes.append(
            f"{len(unjudged)} perTableStatus entr{'y' if len(unjudged) == 1 else 'ies'} "
            f"without a status, not judged: {_first_few(unjudged)}"
        )
    if warned:
        notes.append(f"{len(warned)} COMPLETE table(s) carry a warning: {_first_few(warned)}")
    missing = _missing(judged.values(), expected_tables) if read else ()
    if expected_tables and not read:
        notes.append(
            "expected_tables not checked: no export_tables_info file could be read, so "
            "which tables were exported is unknown"
        )
    if export_info is not None and export_info.total_gb is not None:
        total_gb: float | None = export_info.total_gb
    elif read:
        total_gb = sum(j.size_gb or 0.0 for j in judged.values())
    else:
        total_gb = None

    def problems(outcome: str) -> tuple[TableProblem, ...]:
        found = [TableProblem(j.name, j.reason) for j in judged.values() if j.outcome == outcome]
        return tuple(sorted(found, key=lambda problem: problem.table != EXPORT_WIDE))

    return TablesVerdict(
        complete=sum(j.outcome == "complete" for j in judged.values()),
        failed=problems("failed"),
        skipped=problems("skipped"),
        missing=missing,
        total_gb=total_gb,
        tables_info_read=read,
        notes=tuple(notes),
    )


def decide_tables(
    verdict: TablesVerdict, *, resource: str, on_table_failure: str = "fail"
) -> Decision:
    """Decide what a COMPLETE export whose tables were judged into ``verdict`` does.

    Clean: ``done``. Otherwise ``on_table_failure`` decides: ``"fail"`` (the default)
    fails, ``"warn"`` is ``done`` (the driver logs the reason as a warning), ``"skip"``
    skips. The reason names up to :data:`MAX_LISTED_TABLES` tables with their reasons.
    """
    label = f"Export task {resource}"
    if verdict.clean:
        if not verdict.tables_info_read:
            return Decision(
                "done",
                f"{label} is complete: its WarningMessage reports no failed or skipped table, "
                f"{_size(verdict.total_gb)}; its export_tables_info files could not be read"
                + (f" ({_count(len(verdict.notes), 'note')})" if verdict.notes else "")
                + ", so no table was verified one by one",
            )
        return Decision(
            "done",
            f"{label} is complete: {_count(verdict.complete, 'table')}, "
            f"{_size(verdict.total_gb)} verified",
        )
    problems = [
        *(f"{p.table} failed ({_shorten(p.reason)})" for p in verdict.failed),
        *(f"{p.table} skipped ({_shorten(p.reason)})" for p in verdict.skipped),
        *(
            f"{name} missing (in expected_tables; no COMPLETE table matches)"
            for name in verdict.missing
        ),
    ]
    listed = "; ".join(problems[:MAX_LISTED_TABLES])
    if len(problems) > MAX_LISTED_TABLES:
        listed += f"; and {len(problems) - MAX_LISTED_TABLES} more"
    counts = ", ".join(
        f"{len(found)} {outcome}"
        for outcome, found in (
            ("failed", verdict.failed),
            ("skipped", verdict.skipped),
            ("missing", verdict.missing),
        )
        if found
    )
    fix = (
        "fix what the reasons say (the RDS user guide's export limitations and "
        "'Troubleshooting PostgreSQL permissions errors' name the usual causes) and export "
        "again under a new export_task_identifier"
    )
    todo = {
        "warn": f"the export's output lacks these tables: {fix}, or leave them out with "
        "export_only so this warning stops",
        "skip": f"{fix}; or use on_table_failure='warn' to succeed with a warning, or "
        "export_only to leave these tables out",
    }.get(
        on_table_failure,
        f"{fix}; or accept these tables: on_table_failure='warn' succeeds with a warning, "
        "on_table_failure='skip' skips, export_only leaves them out of the export",
    )
    if verdict.missing:
        todo += (
            "; for a missing table, check expected_tables (each name or pattern must match "
            "a table the export reports COMPLETE) and export_only"
        )
    action: Action = "fail"
    verb = "fail"
    if on_table_failure == "warn":
        action, verb = "done", "succeed and log this as a warning"
    elif on_table_failure == "skip":
        action, verb = "skip", "skip"
    if verdict.tables_info_read:
        counts += f", {verdict.complete} complete"
    else:
        counts += "; its export_tables_info files could not be read"
    return Decision(
        action,
        f"{label}: AWS reports it COMPLETE, but not every table was exported ({counts}): "
        f"{listed}. on_table_failure={on_table_failure!r} decided to {verb}. To do: {todo}",
    )


def is_access_denied(error_code: str | None, http_status: int | None = None) -> bool:
    """An S3 read refused for want of permission (AccessDenied, a bare 403)."""
    return error_code in S3_ACCESS_DENIED_CODES or http_status == 403


def describe_unreadable_metadata(
    action: str,
    bucket: str,
    key_or_prefix: str,
    error_code: str | None,
    http_status: int | None = None,
) -> str:
    """The one warning a driver logs when it cannot list (``action="list"``, the export's
    folder) or read (``"get"``, one metadata file) an export's metadata; it then carries
    on with the WarningMessage alone: unreadable metadata never fails a task.

    For a permission error it names the permission to grant.
    """
    if action not in _S3_READ_ACTIONS:
        raise ValueError(f"action must be one of {sorted(_S3_READ_ACTIONS)}, not {action!r}")
    iam_action = _S3_READ_ACTIONS[action]
    where = f"s3://{bucket}/{key_or_prefix.lstrip('/')}"
    seen = error_code or (f"HTTP {http_status}" if http_status else "no error code")
    head = (
        f"Export metadata {where}: {iam_action} failed ({seen}); the export's tables are "
        "judged from its WarningMessage alone"
    )
    if not is_access_denied(error_code, http_status):
        return f"{head}. To do: if this persists, check that the bucket and the object exist"
    if action == "list":
        grant = f"s3:ListBucket on arn:aws:s3:::{bucket} (for the prefix {key_or_prefix!r})"
    else:
        folder = key_or_prefix.strip("/").rpartition("/")[0]
        grant = (
            f"s3:GetObject on arn:aws:s3:::{bucket}/{folder + '/' if folder else ''}* and "
            "kms:Decrypt on the export's KMS key (kms_key_id), which encrypts what the "
            "export writes"
        )
    return (
        f"{head}. To do: to verify the export table by table, grant the Airflow "
        f"connection's identity {grant}"
    )


def _judge(
    judged: dict[str, _Judged],
    name: str,
    outcome: str,
    reason: str,
    size_gb: float | None = None,
) -> None:
    """Record one report on a table: the worst outcome wins; reasons for it accumulate."""
    key = name.lower()
    seen = judged.get(key)
    if seen is None:
        judged[key] = _Judged(name, outcome, reason, size_gb)
        return
    if _TABLE_OUTCOME_RANK[outcome] > _TABLE_OUTCOME_RANK[seen.outcome]:
        seen = seen._replace(outcome=outcome, reason=reason)
    elif outcome == seen.outcome and reason not in seen.reason:
        seen = seen._replace(reason=f"{seen.reason}; {reason}")
    if seen.size_gb is None:
        seen = seen._replace(size_gb=size_gb)
    judged[key] = seen


def _missing(judged: Iterable[_Judged], expected_tables: Sequence[str]) -> tuple[str, ...]:
    """The expected names and patterns that match no table reported at all (one that
    matches a failed or skipped table is listed with it already)."""
    names = [table.name for table in judged]
    return tuple(
        pattern
        for pattern in expected_tables
        if not any(_names_table(pattern, name) for name in names)
    )


def _names_table(pattern: str, target: str) -> bool:
    """Whether an expected_tables entry (a name or fnmatch pattern) names ``target``."""
    pattern, target = pattern.lower(), target.lower()
    database, dot, table = pattern.partition(".")
    # A MySQL database has no schemas: db.table is written db.db.table (UNCONFIRMED).
    mysql_form = f"{database}.{database}.{table}" if dot and "." not in table else None
    return fnmatchcase(target, pattern) or (
        mysql_form is not None and fnmatchcase(target, mysql_form)
    )


def _first_few(items: Sequence[str], shown: int = 5) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def _shorten(reason: str) -> str:
    if len(reason) <= _MAX_REASON_CHARS:
        return reason
    return reason[: _MAX_REASON_CHARS - 3].rstrip() + "..."


def _size(total_gb: float | None) -> str:
    return "size unknown" if total_gb is None else f"{total_gb:g} GB"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# --- RDS events ------------------------------------------------------------------------
#
# Which RDS event IDs mean what (RDS user guide, "Amazon RDS event categories and event
# messages"; Aurora user guide for the cluster ones). An event trigger fires only for the
# IDs it is asked for; every other message is dropped with the reason decided here.

#: "Snapshot created" events: a snapshot just became available, so it can be exported.
SNAPSHOT_CREATED_EVENT_IDS: tuple[str, ...] = (
    "RDS-EVENT-0042",  # db-snapshot, creation: manual snapshot created
    "RDS-EVENT-0075",  # db-cluster-snapshot, backup: manual cluster snapshot created
    "RDS-EVENT-0091",  # db-snapshot, creation: automated snapshot created
    "RDS-EVENT-0169",  # db-cluster-snapshot, backup: automated cluster snapshot created
)
#: "Export ended" events. RDS has no "export started" event.
EXPORT_ENDED_EVENT_IDS: tuple[str, ...] = (
    "RDS-EVENT-0159",  # db-snapshot: snapshot export task failed
    "RDS-EVENT-0160",  # db-snapshot: snapshot export task canceled
    "RDS-EVENT-0161",  # db-snapshot: snapshot export task completed
    "RDS-EVENT-0162",  # db-cluster-snapshot: cluster snapshot export task failed
    "RDS-EVENT-0163",  # db-cluster-snapshot: cluster snapshot export task canceled
    "RDS-EVENT-0164",  # db-cluster-snapshot: cluster snapshot export task completed
)
#: Event ID -> (kind, what it says). ``kind``: ``snapshot_created`` or ``export_ended``.
EVENT_MEANINGS: Mapping[str, tuple[str, str]] = {
    "RDS-EVENT-0042": ("snapshot_created", "manual DB snapshot created"),
    "RDS-EVENT-0075": ("snapshot_created", "manual DB cluster snapshot created"),
    "RDS-EVENT-0091": ("snapshot_created", "automated DB snapshot created"),
    "RDS-EVENT-0169": ("snapshot_created", "automated DB cluster snapshot created"),
    "RDS-EVENT-0159": ("export_ended", "snapshot export task failed"),
    "RDS-EVENT-0160": ("export_ended", "snapshot export task canceled"),
    "RDS-EVENT-0161": ("export_ended", "snapshot export task completed"),
    "RDS-EVENT-0162": ("export_ended", "cluster snapshot export task failed"),
    "RDS-EVENT-0163": ("export_ended", "cluster snapshot export task canceled"),
    "RDS-EVENT-0164": ("export_ended", "cluster snapshot export task completed"),
}
# SNS delivery names the event by a documentation URL whose host varies
# ("http://docs.aws.amazon.com/...#RDS-EVENT-0169"), EventBridge by the bare ID: match the
# suffix.
_EVENT_ID_SUFFIX = r"(?i)RDS-EVENT-(\d{4})\s*$"


class EventVerdict(Record):
    """Whether an RDS event fires the trigger, and the one-line reason it logs."""

    relevant: bool
    reason: str


def event_id_of(raw_event_id: object) -> str | None:
    """``RDS-EVENT-NNNN`` from an ``Event ID`` / ``EventID`` value (matched by its suffix)."""
    match = re.search(_EVENT_ID_SUFFIX, str(raw_event_id or ""))
    return f"RDS-EVENT-{match.group(1)}" if match else None


def decide_event(
    *,
    event_id: str | None,
    source_id: str,
    source_arn: str,
    account: str | None,
    region: str | None,
    event_ids: Collection[str],
    source_identifiers: Sequence[str] = (),
    accounts: Collection[str] = (),
    regions: Collection[str] = (),
) -> EventVerdict:
    """Decide whether a parsed RDS event is one the trigger was asked for.

    It is when its event ID is in ``event_ids``, its source (``Source ID``, or the
    ``Source ARN`` for a pattern starting ``arn:``) matches one of ``source_identifiers``
    (fnmatch patterns, case-insensitive; none: any), and its account and Region (read
    off the source ARN, or EventBridge's envelope) are in ``accounts`` / ``regions``
    (none: any). An event whose account or Region is unknown passes only unfiltered.
    """
    described = f"{event_id or 'an event without an RDS event ID'} for {source_id or source_arn}"
    if event_id not in event_ids:
        meaning = EVENT_MEANINGS.get(event_id or "", ("", "an event this trigger ignores"))[1]
        return EventVerdict(False, f"{described} ({meaning}) is not one of the event IDs asked for")
    if source_identifiers and not any(
        fnmatchcase(
            (source_arn if pattern.lower().startswith("arn:") else source_id).lower(),
            pattern.lower(),
        )
        for pattern in source_identifiers
    ):
        return EventVerdict(
            False,
            f"{described}: the source matches none of source_identifiers "
            f"{list(source_identifiers)}",
        )
    if accounts and account not in accounts:
        return EventVerdict(
            False, f"{described}: account {account or 'unknown'} is not one of {sorted(accounts)}"
        )
    if regions and region not in regions:
        return EventVerdict(
            False, f"{described}: Region {region or 'unknown'} is not one of {sorted(regions)}"
        )
    return EventVerdict(True, f"{described}: {EVENT_MEANINGS[event_id or ''][1]}")


class QueueErrorVerdict(Record):
    """A failed receive from an event trigger's queue: permanent or not, and the log line."""

    permanent: bool
    reason: str


# SQS answers that no retry fixes: the queue is gone or the identity may not read it.
QUEUE_MISSING_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


def decide_queue_error(
    queue: str,
    *,
    error_code: str | None,
    error_message: str,
    http_status: int | None,
    unreachable: bool = False,
) -> QueueErrorVerdict:
    """What a failed receive from an event trigger's SQS queue means, as a log line.

    ``permanent``: log it as an error, with the remedy; else a warning. Either way the
    trigger keeps watching, backing off: an event trigger that stopped would watch
    nothing until the DAG is parsed again.
    """
    seen = f"{error_code or 'no error code'}: {error_message}"
    if unreachable or is_transient(error_code, http_status):
        return QueueErrorVerdict(
            False,
            f"Receiving from {queue} failed ({seen}); AWS is busy or unreachable, trying again",
        )
    if error_code in QUEUE_MISSING_CODES:
        todo = (
            "create the queue, or fix sqs_queue (a queue URL of the connection's account "
            "and Region)"
        )
    elif REMEDIES.get(error_code or "") is _PERMISSION_REMEDY:
        todo = (
            "grant the connection's identity sqs:ReceiveMessage and sqs:DeleteMessage on "
            "the queue (and kms:Decrypt on its key if it is encrypted with one)"
        )
    elif REMEDIES.get(error_code or "") is _CREDENTIALS_REMEDY:
        todo = _CREDENTIALS_REMEDY
    else:
        todo = "fix what the message says"
    return QueueErrorVerdict(
        True,
        f"Receiving from {queue} failed ({seen}); retrying cannot fix this, the trigger "
        f"keeps trying with backoff. To do: {todo}",
    )
