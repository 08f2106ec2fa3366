"""A deferred start-and-wait ended by a user cancels its export, as ``on_kill`` does on a worker.

Airflow 3.3 calls ``BaseTrigger.on_kill()`` in the triggerer when a trigger leaves that
triggerer's assignment: after a user marked the deferred task failed or success, or
cleared it (never on a triggerer shutdown or a trigger timeout). A trigger reassigned to
another triggerer, because this one missed its heartbeats while alive, takes the same
path, so before canceling this module reads the task instance's state through the Task
SDK (the triggerer's supervisor channel, ``GetTaskStates``) and lets
:func:`~airflow_rds_export.decisions.decide_cancel_on_kill` decide: an ended state
(failed, success, ...) cancels; still ``deferred`` means the trigger moved, and a state
the task runs again from (cleared) hands the export over to its next try.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from airflow_rds_export.connection import AwsConnection
from airflow_rds_export.decisions import decide_cancel_on_kill, describe_kill_cancel_error
from airflow_rds_export.errors import AwsError

__all__ = ["cancel_on_user_kill", "prepare", "task_state"]

#: Bounds on the two calls on_kill makes (Airflow bounds the whole of on_kill at 30 s).
STATE_TIMEOUT_SECONDS = 15.0
CANCEL_TIMEOUT_SECONDS = 10.0

_warm_up: asyncio.Task[Any] | None = None


def prepare(task_instance: Any) -> None:
    """Once per triggerer process, read a task state in the background.

    The triggerer's supervisor answers ``GetTaskStates`` through an in-process API server
    it builds on first use, which took 10 s on a busy 2-core machine: paid here, when the
    first such trigger starts, a user's kill reaches AWS within a poll interval.
    """
    global _warm_up
    if _warm_up is not None or task_instance is None:
        return

    async def read() -> None:
        try:
            await task_state(task_instance)
        except Exception:  # only a warm-up: on_kill reads (and reports) the state itself
            return

    _warm_up = asyncio.get_running_loop().create_task(read(), name="rds-export-kill-warm-up")


def _label(task_instance: Any) -> str:
    map_index = getattr(task_instance, "map_index", -1)
    suffix = f"[{map_index}]" if map_index is not None and map_index >= 0 else ""
    return (
        f"{task_instance.dag_id}.{task_instance.task_id}{suffix} "
        f"(run {task_instance.run_id}, try {getattr(task_instance, 'try_number', '?')})"
    )


async def task_state(task_instance: Any) -> tuple[bool, str | None]:
    """``(known, state)`` of the trigger's task instance, as the API server has it now."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    map_index = getattr(task_instance, "map_index", -1)
    if map_index is None:
        map_index = -1
    request = GetTaskStates(
        dag_id=task_instance.dag_id,
        task_ids=[task_instance.task_id],
        run_ids=[task_instance.run_id],
        map_index=map_index,
    )
    comms = task_runner.SUPERVISOR_COMMS
    response = await asyncio.wait_for(comms.asend(request), STATE_TIMEOUT_SECONDS)
    states = getattr(response, "task_states", {}).get(task_instance.run_id, {})
    key = task_instance.task_id if map_index < 0 else f"{task_instance.task_id}_{map_index}"
    if key not in states:
        return False, "no such task instance"
    state = states[key]
    return True, None if state is None else str(getattr(state, "value", state))


async def cancel_on_user_kill(
    connection: AwsConnection,
    task_instance: Any,
    export_task_identifier: str,
    log: logging.Logger | Any,
) -> bool:
    """Cancel ``export_task_identifier`` if the task was killed by a user; log who and why.

    Returns whether CancelExportTask was accepted. Never raises (on_kill's errors would
    only be logged by Airflow, without the export's name). Airflow 3.3.2's triggerer
    repeats its cancel of the trigger's task on every sync (about once a second) until
    the trigger has finished, which would interrupt on_kill mid-call: the work runs as its
    own task, awaited through those repeats; each call inside is bounded.
    """
    work = asyncio.ensure_future(
        _cancel_on_user_kill(connection, task_instance, export_task_identifier, log)
    )
    while True:
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if work.done():
                return work.result()
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()


async def _cancel_on_user_kill(
    connection: AwsConnection,
    task_instance: Any,
    export_task_identifier: str,
    log: logging.Logger | Any,
) -> bool:
    if task_instance is None:
        log.warning(
            "Trigger stopped without a task instance; export task %s is not canceled",
            export_task_identifier,
        )
        return False
    task = _label(task_instance)
    try:
        known, state = await task_state(task_instance)
    except Exception as exc:  # the API server unreachable, a timeout: cancel nothing
        known, state = False, f"{type(exc).__name__}: {exc}"
    cancel, reason = decide_cancel_on_kill(
        state, task_known=known, resource=export_task_identifier, task=task
    )
    if not cancel:
        (log.warning if not known else log.info)("%s", reason)
        return False
    log.warning("%s", reason)
    hook = connection.hook()
    try:
        async with await hook.get_async_conn() as client:
            answer = await asyncio.wait_for(
                hook.cancel_export_task_async(client, export_task_identifier),
                CANCEL_TIMEOUT_SECONDS,
            )
    except Exception as exc:
        error = AwsError.of(exc)
        log.warning(
            "%s", describe_kill_cancel_error(export_task_identifier, error.code, error.message)
        )
        return False
    log.warning(
        "Canceled export task %s on behalf of %s (user action while deferred); AWS reports it %s",
        export_task_identifier,
        task,
        answer.get("Status"),
    )
    return True
