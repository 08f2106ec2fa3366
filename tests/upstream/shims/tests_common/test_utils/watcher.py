"""Stand-in for the Airflow repository's ``tests_common.test_utils.watcher``.

A system-test DAG makes ``watcher()`` downstream of every task: teardown tasks run with
``trigger_rule=ALL_DONE`` and would otherwise turn a failed run into a successful one.
The watcher runs only if some task failed, and then fails itself (and so the run).
"""

from __future__ import annotations

from airflow.sdk import TriggerRule, task
from airflow.sdk.exceptions import AirflowException

__all__ = ["watcher"]


@task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
def watcher() -> None:
    raise AirflowException("Failing the run: one or more of its tasks failed.")
