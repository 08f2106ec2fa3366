"""Stand-in for the official provider's ``system.amazon.aws.utils`` (system-test helpers).

The official ``SystemTestContextBuilder`` builds the first task of a system-test DAG:
it pushes an environment id and every variable the test asked for to XCom, each read from
an environment variable or else from an SSM parameter in the test account. This stand-in
keeps the environment-variable half only: no SSM, so no AWS call besides the emulator's.

* ``ENV_ID``: ``$SYSTEM_TESTS_ENV_ID`` (lower-cased; a letter, then letters and digits),
  else ``env`` and 8 random hex digits, as upstream;
* a variable added with ``add_variable("ROLE_ARN")``: ``$ROLE_ARN``, else its
  ``default_value``; missing and not ``optional``: the task fails naming it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from airflow.sdk import task

__all__ = ["ENV_ID_ENVIRON_KEY", "ENV_ID_KEY", "SystemTestContextBuilder"]

ENV_ID_ENVIRON_KEY = "SYSTEM_TESTS_ENV_ID"
ENV_ID_KEY = "ENV_ID"
_MISSING = object()


class SystemTestContextBuilder:
    """Builds the task that pushes ``ENV_ID`` and the requested variables to XCom."""

    def __init__(self) -> None:
        self.variables: dict[str, tuple[Any, bool]] = {}

    def add_variable(
        self,
        variable_name: str,
        split_string: bool = False,
        delimiter: str | None = None,
        optional: bool = False,
        **kwargs: Any,
    ) -> SystemTestContextBuilder:
        if variable_name in self.variables:
            raise ValueError(f"Variable name {variable_name} already exists")
        if split_string:
            raise NotImplementedError("split_string: no official RDS test uses it")
        self.variables[variable_name] = (kwargs.get("default_value", _MISSING), optional)
        return self

    def build(self) -> Any:
        variables = dict(self.variables)

        @task
        def variable_fetcher(ti: Any = None) -> None:
            ti.xcom_push(ENV_ID_KEY, _env_id())
            for name, (default, optional) in variables.items():
                value = os.environ.get(name) or (None if default is _MISSING else default)
                if value is None and not optional:
                    raise ValueError(f"No value for {name}: set the environment variable {name}")
                ti.xcom_push(name, value)

        return variable_fetcher


def _env_id() -> str:
    env_id = os.environ.get(ENV_ID_ENVIRON_KEY) or f"env{uuid.uuid4().hex[:8]}"
    if not env_id.isalnum() or not env_id[0].isalpha():
        raise ValueError(f"{ENV_ID_ENVIRON_KEY} must be alphanumeric and start with a letter")
    return env_id.lower()
