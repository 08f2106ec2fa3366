"""Stand-in for the Airflow repository's ``tests_common.test_utils.compat``.

The official RDS tests use it only for ``timezone.datetime(2019, 1, 1)``.
"""

from __future__ import annotations

from airflow.sdk import timezone

__all__ = ["timezone"]
