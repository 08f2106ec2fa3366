"""Export task identifiers this package derives: the identifier of a run's re-export.

An export task identifier is unique in the account and Region forever: a FAILED or
CANCELED export still holds its name. A run that must export again (its export died)
does so under ``<identifier>-r2``, then ``-r3``, ..., within AWS's identifier rules
(:func:`~airflow_rds_export.validation.validate_export_task_identifier`). Pure.
"""

from __future__ import annotations

from airflow_rds_export.validation import EXPORT_TASK_IDENTIFIER_MAX_LENGTH

__all__ = ["MAX_EXPORT_ATTEMPTS", "attempt_identifier"]

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
