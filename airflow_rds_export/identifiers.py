"""Export task identifiers: built from free text, and those of a run's re-exports.

AWS's rule (:func:`~airflow_rds_export.validation.validate_export_task_identifier`):
1-60 ASCII letters, digits or hyphens, beginning with a letter, no trailing or double
hyphen. Source names (``orders_prod``), dates and prefixes rarely fit it as they are:
:func:`export_identifier` makes one that does, in templates too
(``{{ macros.rds_export.identifier("orders_prod", ds_nodash) }}``).

An export task identifier is unique in the account and Region forever: a FAILED or
CANCELED export still holds its name. A run that must export again (its export died)
does so under ``<identifier>-r2``, then ``-r3``, ... Pure.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from airflow_rds_export.validation import EXPORT_TASK_IDENTIFIER_MAX_LENGTH, InvalidParameterError

__all__ = [
    "ASSET_ALIAS_PREFIX",
    "MAX_EXPORT_ATTEMPTS",
    "attempt_identifier",
    "export_asset_alias",
    "export_identifier",
]

#: Hex digits of the hash that keeps two long names apart once they are cut.
HASH_LENGTH = 8
#: What starts an identifier whose text does not begin with a letter.
LEAD = "export"
#: What starts the default name of the asset alias an export task announces its data on.
ASSET_ALIAS_PREFIX = "rds-export:"


def export_identifier(*parts: object, max_length: int = EXPORT_TASK_IDENTIFIER_MAX_LENGTH) -> str:
    """A valid export task identifier from free text, e.g. a source name and a date.

    ``export_identifier("Orders_Prod", "20261129")`` is ``"orders-prod-20261129"``.
    The parts are joined with hyphens, lower-cased, accents dropped (``"Café"`` ->
    ``"cafe"``), every run of other characters made one hyphen; a text not beginning
    with a letter gets the lead ``"export-"``. When the result is longer than
    ``max_length`` (AWS's 60 by default), it is cut and ends in ``-`` plus 8 hex digits
    of a SHA-256 of the whole text, so two long names sharing their first 60
    characters still get different identifiers, and the same name always the same
    one. Text of symbols only is named by that hash alone (``"export-1a2b3c4d"``).

    :raises InvalidParameterError: no text at all (every part empty or None), or a
        ``max_length`` too small to hold a lead and a hash.
    """
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or not (len(LEAD) + 1 + HASH_LENGTH <= max_length <= EXPORT_TASK_IDENTIFIER_MAX_LENGTH)
    ):
        raise InvalidParameterError(
            "max_length",
            max_length,
            f"must be an integer from {len(LEAD) + 1 + HASH_LENGTH} to "
            f"{EXPORT_TASK_IDENTIFIER_MAX_LENGTH}",
        )
    text = "-".join(str(part) for part in parts if part is not None and str(part) != "")
    if not text:
        raise InvalidParameterError(
            "parts", parts, "give some text to build an export identifier from"
        )
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    digest = hashlib.sha256((name or text).encode()).hexdigest()[:HASH_LENGTH]
    if not name:
        return f"{LEAD}-{digest}"
    if not name[0].isalpha():
        name = f"{LEAD}-{name}"
    if len(name) <= max_length:
        return name
    return name[: max_length - HASH_LENGTH - 1].rstrip("-") + "-" + digest


#: How many exports one run may start for one identifier (the first and its re-exports).
MAX_EXPORT_ATTEMPTS = 20


def attempt_identifier(identifier: str, attempt: int) -> str:
    """The identifier of a run's ``attempt``-th export: itself, then ``<id>-r<attempt>``.

    Cut to fit :data:`~airflow_rds_export.validation.EXPORT_TASK_IDENTIFIER_MAX_LENGTH`
    (no trailing or double hyphen is left by the cut), so the result is always valid when
    ``identifier`` is.
    """
    if attempt <= 1:
        return identifier
    suffix = f"-r{attempt}"
    base = identifier[: EXPORT_TASK_IDENTIFIER_MAX_LENGTH - len(suffix)].rstrip("-")
    return base + suffix


def export_asset_alias(dag_id: str, task_id: str) -> str:
    """The default name of the ``AssetAlias`` a task announces its COMPLETE exports on:
    ``rds-export:{dag_id}.{task_id}`` (``task_id`` with its task group's prefix).

    Schedule a downstream DAG on it without repeating the spelling::

        schedule=[AssetAlias(export_asset_alias("nightly_rds_export", "wait_for_export"))]
    """
    if not dag_id or not task_id:
        raise InvalidParameterError(
            "dag_id" if not dag_id else "task_id",
            dag_id if not dag_id else task_id,
            "an asset alias is named after the DAG and the task: both must be non-empty",
        )
    return f"{ASSET_ALIAS_PREFIX}{dag_id}.{task_id}"
