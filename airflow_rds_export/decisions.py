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
from collections.abc import Collection, Mapping
from typing import Any, Literal, NamedTuple

__all__ = [
    "DEFAULT_EXPORT_ERROR_STATUSES",
    "EXPORT_ERROR_STATUSES",
    "EXPORT_IN_PROGRESS_STATUSES",
    "EXPORT_STATUSES",
    "EXPORT_TERMINAL_STATUSES",
    "POLICIES",
    "SNAPSHOT_BROKEN_STATUSES",
    "SNAPSHOT_PENDING_STATUSES",
    "Decision",
    "cancel_raced",
    "decide_adoption",
    "decide_call_error",
    "decide_cancel",
    "decide_export",
    "decide_permanent_error",
    "decide_snapshot",
    "decide_start_error",
    "decide_transient_error",
    "describe_unknown_refusal",
    "is_not_found",
    "is_transient",
    "normalise_status",
    "other_export_of",
    "progress_of",
    "start_refusal",
]

Policy = Literal["reschedule", "skip", "fail"]
Action = Literal["done", "wait", "skip", "fail", "restart"]
ACTIONS: tuple[str, ...] = ("done", "wait", "skip", "fail", "restart")

POLICIES: tuple[str, ...] = ("reschedule", "skip", "fail")

# Export task statuses (ExportTask.Status), normalised to lower case.
EXPORT_IN_PROGRESS_STATUSES = frozenset({"starting", "in_progress", "canceling"})
EXPORT_TERMINAL_STATUSES = frozenset({"complete", "canceled", "failed"})
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
NOT_FOUND_CODES = EXPORT_NOT_FOUND_CODES | SNAPSHOT_NOT_FOUND_CODES | CLUSTER_NOT_FOUND_CODES
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)

_PERMISSION_REMEDY = (
    "the Airflow connection's identity lacks permission{action}: grant it (the README's "
    "'Run it against real AWS' policy lists every action this package calls: "
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


class Decision(NamedTuple):
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
) -> Decision:
    """Decide what a snapshot wait does with a snapshot description (None: not found)."""
    if snapshot is None:
        return Decision(
            _policy_action(on_missing),
            f"Snapshot {resource}: AWS reports it does not exist; on_missing={on_missing!r} "
            + _missing_advice(on_missing, "create the snapshot or fix the identifier"),
        )
    status = normalise_status(snapshot.get("Status"))
    if status == SNAPSHOT_READY_STATUS:
        return Decision("done", f"Snapshot {resource} is available")
    if status in SNAPSHOT_BROKEN_STATUSES:
        return Decision(
            "skip" if on_failure == "skip" else "fail",
            f"Snapshot {resource}: AWS reports status {status!r}; on_failure={on_failure!r} "
            f"decided to {on_failure}. To do: take a new snapshot or point the task at "
            "another one; this one can never be exported",
        )
    return Decision("wait", f"Snapshot {resource} is {status!r}, not available yet; waiting")


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
    """AWS says the export task or snapshot does not exist (a describe answers None)."""
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


def _missing_advice(policy: str, todo: str) -> str:
    if policy == "reschedule":
        return "decided to keep waiting"
    return f"decided to {policy}. To do: {todo}"
