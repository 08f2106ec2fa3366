"""Stand-in for the Airflow repository's ``tests_common.test_utils.system_tests``.

System-test DAG files end with ``test_run = get_test_run(dag)`` so pytest can run them.
Here they run with ``airflow dags test`` instead (tests/test_upstream.py); the function
is provided so the DAG file imports unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["get_test_run"]


def get_test_run(dag: Any, **test_kwargs: Any) -> Callable[[], None]:
    """A pytest-style function that runs ``dag`` with ``dag.test()`` and wants success."""

    def test_run() -> None:
        dag_run = dag.test(**test_kwargs)
        assert dag_run.state == "success", f"DAG run ended {dag_run.state}"

    return test_run
