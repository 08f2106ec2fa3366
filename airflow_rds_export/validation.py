"""Input rules, checked before any AWS call.

Literal values are checked when the DAG file is parsed (in the constructors), so a typo is
a DAG import error; templated values are checked after rendering, before the first AWS
call. Every error names the parameter, the value and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_rds_export.decisions import (
    EVENT_MEANINGS,
    EXPORT_STATUSES,
    event_id_of,
    normalise_status,
)

__all__ = [
    "InvalidParameterError",
    "check_literal",
    "is_unrendered",
    "optional",
    "parse_datetime",
    "region_of_arn",
    "source_arn_of",
    "validate_accounts",
    "validate_bucket_name",
    "validate_event_ids",
    "validate_export_only",
    "validate_export_task_identifier",
    "validate_flag",
    "validate_iam_role_arn",
    "validate_kms_key_id",
    "validate_policy",
    "validate_positive_interval",
    "validate_region_agrees",
    "validate_regions",
    "validate_s3_prefix",
    "validate_snapshot_identifier",
    "validate_source_arn",
    "validate_source_patterns",
    "validate_statuses",
    "validate_table_names",
    "validate_text",
]

# The API reference states no length bound for ExportTaskIdentifier; 60 is an assumption
# (the bound the console enforces for most RDS identifiers), kept here in one place.
EXPORT_TASK_IDENTIFIER_MAX_LENGTH = 60

_EXPORT_ID_RULE = (
    "1-60 ASCII letters, digits or hyphens; must begin with a letter; no trailing hyphen; "
    "no two consecutive hyphens"
)
# Patterns are strings, compiled (and cached by ``re``) on first use, not on import.
_EXPORT_ID = r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*$"
_ARN = (
    r"^arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<resource>.+)$"
)
SNAPSHOT_TYPES = ("automated", "manual", "shared", "public", "awsbackup")
_EXPORT_SOURCE_TYPES = {"snapshot", "cluster-snapshot", "cluster"}
_SNAPSHOT_NAME = r"^(?:rds:|awsbackup:)?[A-Za-z][A-Za-z0-9-:_.]{0,254}$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_EXPORT_ONLY_PART = r"^[^.\s]+$"


class InvalidParameterError(ValueError):
    """A parameter value that breaks a rule; the message names parameter, value and rule."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={value!r} is invalid: {rule}")


def is_unrendered(value: Any) -> bool:
    """True for values that only rendering can tell: Jinja strings, XComArgs and the like."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    literal = (int, float, bool, list, tuple, set, frozenset, dict, timedelta, datetime)
    return value is not None and not isinstance(value, literal)


def check_literal(value: Any, validate: Callable[..., Any], *args: Any) -> None:
    """At parse time: run ``validate(value, *args)`` unless only rendering can tell."""
    if not is_unrendered(value):
        validate(value, *args)


def optional(validate: Callable[..., Any]) -> Callable[..., Any]:
    """A validator that lets None through (for parameters that may be left out)."""

    def validate_optional(value: Any, *args: Any) -> Any:
        return None if value is None else validate(value, *args)

    return validate_optional


def parse_datetime(value: Any, field: str) -> datetime | None:
    """A rendered date-time: datetime, ISO 8601 string or empty; naive means UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidParameterError(field, value, "must be an ISO 8601 date-time") from exc
    if not isinstance(value, datetime):
        raise InvalidParameterError(field, value, "must be a datetime or ISO 8601 string")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def validate_export_task_identifier(value: Any, field: str = "export_task_identifier") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(field, value, "must be a non-empty string; " + _EXPORT_ID_RULE)
    if len(value) > EXPORT_TASK_IDENTIFIER_MAX_LENGTH:
        raise InvalidParameterError(field, value, f"is {len(value)} characters; {_EXPORT_ID_RULE}")
    if not value[0].isalpha() or not value[0].isascii():
        raise InvalidParameterError(field, value, "must begin with a letter; " + _EXPORT_ID_RULE)
    if value.endswith("-"):
        raise InvalidParameterError(field, value, "must not end with a hyphen")
    if "--" in value:
        raise InvalidParameterError(field, value, "must not contain two consecutive hyphens")
    if not re.match(_EXPORT_ID, value):
        raise InvalidParameterError(
            field, value, "may hold only ASCII letters, digits and hyphens; " + _EXPORT_ID_RULE
        )
    return value


def _partitions() -> dict[str, dict[str, Any]]:
    """botocore's partition data, loaded the first time an ARN or Region is checked, not
    by every DAG file that imports an operator."""
    from airflow_rds_export.partitions import PARTITIONS

    return PARTITIONS


def _parse_arn(value: str, field: str) -> re.Match[str]:
    match = re.match(_ARN, value)
    if not match:
        raise InvalidParameterError(
            field, value, "must be an ARN: arn:<partition>:<service>:<region>:<account>:<resource>"
        )
    partitions = _partitions()
    if match["partition"] not in partitions:
        raise InvalidParameterError(
            field, value, f"unknown partition {match['partition']!r}; one of {list(partitions)}"
        )
    return match


def _check_region(match: re.Match[str], field: str, value: str) -> None:
    """The ARN's Region must be one of its partition's (botocore's partition data)."""
    pattern = str(_partitions()[match["partition"]]["region_regex"])
    if not re.match(pattern, match["region"]):
        raise InvalidParameterError(
            field,
            value,
            f"region {match['region']!r} is not a Region of partition {match['partition']!r}",
        )


def source_arn_of(value: Any) -> Any:
    """An export source given as a description: its ``SourceArn``, else the value as is.

    So ``source_arn`` may be an ARN, a snapshot sensor's XCom (``{"SourceArn": ...}``) or
    an announced snapshot (:class:`~airflow_rds_export.announcements.AnnouncedSnapshot`,
    or its ``to_dict()``); anything else is left for validation to refuse.
    """
    if isinstance(value, Mapping) and "SourceArn" in value:
        return value["SourceArn"]
    arn = getattr(value, "arn", None)
    return arn if isinstance(arn, str) and isinstance(value, tuple) else value


def region_of_arn(value: str) -> str | None:
    """The Region named in an ARN (None for a malformed ARN or one without a Region)."""
    match = re.match(_ARN, value)
    return (match["region"] or None) if match else None


def validate_region_agrees(source_arn: Any, region_name: Any, field: str = "region_name") -> None:
    """An export source lives in one Region: the connection's Region must be it (either
    may be unknown yet: nothing to compare then)."""
    if is_unrendered(source_arn) or is_unrendered(region_name):
        return
    arn_region = region_of_arn(source_arn) if isinstance(source_arn, str) else None
    if arn_region and region_name and region_name != arn_region:
        raise InvalidParameterError(
            field,
            region_name,
            f"source_arn {source_arn} is in Region {arn_region!r}, but the task's AWS "
            f"connection uses Region {region_name!r}; RDS exports a snapshot only in its own "
            f"Region. To do: use region_name={arn_region!r} (or a connection in it), or copy "
            f"the snapshot to {region_name!r} and export the copy",
        )


def validate_source_arn(value: Any, field: str = "source_arn") -> str:
    """An export source: a DB snapshot, DB cluster snapshot or DB cluster ARN."""
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(field, value, "must be a non-empty ARN string")
    match = _parse_arn(value, field)
    if match["service"] != "rds":
        raise InvalidParameterError(
            field, value, f"must be an RDS ARN (service 'rds'), not {match['service']!r}"
        )
    _check_region(match, field, value)
    if not re.fullmatch(r"\d{12}", match["account"]):
        raise InvalidParameterError(field, value, "the account must be 12 digits")
    resource_type, _, name = match["resource"].partition(":")
    if resource_type == "db":
        raise InvalidParameterError(
            field,
            value,
            "is a DB instance ARN; exports need a DB snapshot, DB cluster snapshot or DB "
            "cluster ARN (wait for a snapshot with RdsSnapshotReadySensor and pass its "
            "SourceArn)",
        )
    if resource_type not in _EXPORT_SOURCE_TYPES or not name:
        raise InvalidParameterError(
            field,
            value,
            f"resource type {resource_type!r} cannot be exported; expected one of "
            f"{sorted(_EXPORT_SOURCE_TYPES)} followed by ':<name>'",
        )
    return value


def validate_snapshot_identifier(value: Any, field: str = "db_snapshot_identifier") -> str:
    """A DB or cluster snapshot name (automated ones start with ``rds:``), or the ARN of
    an export source: a DB snapshot, a DB cluster snapshot or a live DB cluster."""
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(field, value, "must be a non-empty snapshot name or ARN")
    if value.startswith("arn:"):
        return validate_source_arn(value, field)
    if not re.match(_SNAPSHOT_NAME, value):
        raise InvalidParameterError(
            field,
            value,
            "a snapshot name begins with a letter (or 'rds:' for automated snapshots) and "
            "holds letters, digits and hyphens, at most 255 characters",
        )
    return value


def validate_db_identifier(value: Any, field: str) -> str:
    """A DB instance or cluster identifier: 1-63 letters, digits, hyphens; starts a letter."""
    if (
        not isinstance(value, str)
        or not re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}", value)
        or value.endswith("-")
    ):
        raise InvalidParameterError(
            field,
            value,
            "1-63 letters, digits or hyphens; must begin with a letter; no trailing hyphen "
            "and no two consecutive hyphens",
        )
    return value


def validate_bucket_name(value: Any, field: str = "s3_bucket_name") -> str:
    """S3 bucket naming rules (general purpose buckets)."""
    rule = (
        "3-63 lower-case letters, digits, dots or hyphens; begins and ends with a letter or "
        "digit; no '..'; not an IP address; a bucket name, not an s3:// URI or ARN"
    )
    if not isinstance(value, str) or not re.match(_BUCKET, value) or ".." in value:
        raise InvalidParameterError(field, value, rule)
    try:
        import ipaddress  # only when a bucket name is checked: it costs ~1 ms to import

        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise InvalidParameterError(field, value, rule)
    if value.startswith("xn--") or value.endswith("-s3alias"):
        raise InvalidParameterError(field, value, "must not begin 'xn--' or end '-s3alias'")
    return value


def validate_s3_prefix(value: Any, field: str = "s3_prefix") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameterError(field, value, "must be a string")
    if ":" in value:
        raise InvalidParameterError(field, value, "must not contain ':'")
    if value.endswith("/"):
        raise InvalidParameterError(
            field,
            value,
            "must not end with '/': AWS then writes to a broken path (apache/airflow#46555); "
            "drop the trailing slash",
        )
    if value.startswith("/"):
        raise InvalidParameterError(field, value, "must not begin with '/'")
    return value


def validate_iam_role_arn(value: Any, field: str = "iam_role_arn") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(field, value, "must be an IAM role ARN")
    match = _parse_arn(value, field)
    if match["service"] != "iam" or not match["resource"].startswith("role/"):
        raise InvalidParameterError(
            field, value, "must be an IAM role ARN: arn:aws:iam::<account>:role/<name>"
        )
    return value


def validate_kms_key_id(value: Any, field: str = "kms_key_id") -> str:
    """A KMS key id, key ARN, alias name or alias ARN."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(
            field, value, "is required by AWS: a KMS key id, key ARN, alias name or alias ARN"
        )
    if value.startswith("arn:"):
        match = _parse_arn(value, field)
        if match["service"] != "kms" or not match["resource"].startswith(("key/", "alias/")):
            raise InvalidParameterError(field, value, "must be a KMS key or alias ARN")
    elif any(ch.isspace() for ch in value):
        raise InvalidParameterError(field, value, "must not contain white space")
    return value


def validate_export_only(value: Any, field: str = "export_only") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidParameterError(field, value, "must be a list of strings")
    entries = list(value)
    for entry in entries:
        parts = entry.split(".") if isinstance(entry, str) else []
        if not 1 <= len(parts) <= 4 or not all(re.match(_EXPORT_ONLY_PART, p) for p in parts):
            raise InvalidParameterError(
                field,
                entry,
                "each entry is database, database.table, database.schema or "
                "database.schema.table, without spaces",
            )
    return entries


def validate_policy(value: Any, field: str, allowed: Collection[str | None]) -> Any:
    if value not in allowed:
        raise InvalidParameterError(field, value, f"must be one of {list(allowed)}")
    return value


def validate_statuses(
    value: Any,
    field: str,
    allowed: Collection[str] = EXPORT_STATUSES,
    *,
    may_be_empty: bool = False,
) -> frozenset[str]:
    """A list of known statuses (non-empty unless ``may_be_empty``); returned normalised."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidParameterError(field, value, "must be a list of statuses")
    statuses = [normalise_status(s) for s in value]
    if not statuses and not may_be_empty:
        raise InvalidParameterError(field, value, "must name at least one status")
    unknown = [s for s in statuses if s not in allowed]
    if unknown:
        raise InvalidParameterError(
            field, value, f"unknown status {unknown[0]!r}; known: {sorted(allowed)}"
        )
    return frozenset(s for s in statuses if s)


def validate_flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(field, value, "must be True or False")
    return value


def validate_table_names(value: Any, field: str) -> tuple[str, ...]:
    """Table names or fnmatch patterns (``db.schema.table``, ``db.table``, ``db.*``)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidParameterError(
            field, value, "must be a list of table names or patterns, e.g. ['orders.public.*']"
        )
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name.strip() or "." not in name:
            raise InvalidParameterError(
                field,
                value,
                f"entry {name!r} is not a table name or pattern: write db.schema.table, "
                "db.table or a pattern such as db.schema.*",
            )
    return names


def validate_disjoint(
    target: frozenset[str], error: frozenset[str], *, error_field: str, value: Any
) -> None:
    overlap = target & error
    if overlap:
        raise InvalidParameterError(
            error_field,
            value,
            f"overlaps target_statuses on {sorted(overlap)}; a status is a target or an error",
        )


def validate_positive_interval(value: Any, field: str) -> float:
    """A strictly positive number of seconds or timedelta; returned as seconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise InvalidParameterError(field, value, "must be a positive number of seconds")
    return float(seconds)


def validate_positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameterError(field, value, "must be a positive whole number")
    return value


def _string_list(value: Any, field: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidParameterError(field, value, f"must be a list of {what}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidParameterError(field, value, f"entry {item!r} is not one of {what}")
    return items


def validate_event_ids(value: Any, field: str = "event_ids") -> tuple[str, ...]:
    """RDS event IDs this package knows the meaning of (``RDS-EVENT-0091``, ...);
    returned in the ``RDS-EVENT-NNNN`` form. At least one."""
    raw = _string_list(value, field, "RDS event IDs")
    if not raw:
        raise InvalidParameterError(field, value, "must name at least one event ID")
    ids = tuple(event_id_of(item) for item in raw)
    for item, event_id in zip(raw, ids, strict=True):
        if event_id not in EVENT_MEANINGS:
            raise InvalidParameterError(
                field,
                value,
                f"{item!r} is not an event ID this package acts on; known: "
                f"{sorted(EVENT_MEANINGS)}",
            )
    return tuple(sorted(set(i for i in ids if i)))


def validate_source_patterns(value: Any, field: str = "source_identifiers") -> tuple[str, ...]:
    """Source identifiers or fnmatch patterns (``rds:orders-*``, or ARN patterns)."""
    return _string_list(value, field, "source identifiers or patterns, e.g. ['rds:orders-*']")


def validate_accounts(value: Any, field: str = "accounts") -> tuple[str, ...]:
    """AWS account IDs: 12 digits each."""
    accounts = _string_list(value, field, "12-digit AWS account IDs")
    for account in accounts:
        if not re.match(r"^\d{12}$", account):
            raise InvalidParameterError(
                field, value, f"{account!r} is not an AWS account ID (12 digits)"
            )
    return accounts


def validate_regions(value: Any, field: str = "regions") -> tuple[str, ...]:
    """AWS Region names of a known partition (``eu-west-1``, ...)."""
    regions = _string_list(value, field, "AWS Region names")
    for region in regions:
        if not any(re.match(str(p["region_regex"]), region) for p in _partitions().values()):
            raise InvalidParameterError(
                field, value, f"{region!r} is not an AWS Region name (e.g. 'eu-west-1')"
            )
    return regions


def validate_text(value: Any, field: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(field, value, "must be a non-empty string")
    return value
