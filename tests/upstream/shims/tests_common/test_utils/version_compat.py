"""Stand-in for the Airflow repository's ``tests_common.test_utils.version_compat``.

This project pins Airflow 3.3, so every "at least 3.x" flag the tests read is true.
"""

from __future__ import annotations

__all__ = ["AIRFLOW_V_3_0_PLUS", "AIRFLOW_V_3_1_PLUS", "AIRFLOW_V_3_2_PLUS"]

AIRFLOW_V_3_0_PLUS = True
AIRFLOW_V_3_1_PLUS = True
AIRFLOW_V_3_2_PLUS = True
