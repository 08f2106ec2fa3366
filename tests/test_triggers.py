"""The triggers' ``run()`` against the emulator, and their trip through Airflow's storage.

The triggers poll with aiobotocore. moto's in-process ``mock_aws`` (the ``rds_emulator``
fixture) does not intercept aiobotocore: its stubbed botocore response has a ``bytes``
body, and aiobotocore awaits ``http_response.content`` (``TypeError: object bytes can't be
used in 'await' expression``). So these tests use the emulator *server* (``rds_emulator_server``)
and an ``aws_default`` connection pointing at it through ``AIRFLOW_CONN_AWS_DEFAULT``, as a
real triggerer would have it.

``run()`` is driven with ``asyncio.run``; polls are 0.05 s apart, the triggers' own backoff
base and botocore's retry delays are shrunk so that fault tests stay fast (the *number* of
botocore retries is left as the hook configures it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import boto3
import pytest
from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

import airflow_rds_export.triggers as triggers_module
from airflow_rds_export.triggers import (
    RdsExportTaskStateTrigger,
    RdsSnapshotReadyTrigger,
    RdsStartedExportTrigger,
)

REGION = "us-east-1"
POLL = 0.05
BUCKET = "rds-exports"
PREFIX = "nightly"


# --- fixtures and helpers ---------------------------------------------------------------


class Emu:
    """The reset emulator server, its control, and a boto3 client for test set-up."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.control = server.control
        self.rds = boto3.client(
            "rds",
            endpoint_url=server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.prereq: dict[str, str] = {}

    def ready_snapshot(self, name: str = "orders-snap") -> str:
        """An ``available`` DB snapshot of instance ``orders``; returns its ARN."""
        return str(
            self.control.create_db_snapshot(name, db_instance_identifier="orders")["DBSnapshotArn"]
        )

    def start_export(self, identifier: str, **pacing: Any) -> dict[str, Any]:
        """Start an export of a fresh available snapshot, with ``pace_export`` pacing."""
        if pacing:
            self.control.pace_export(identifier, **pacing)
        arn = self.ready_snapshot(f"snap-{identifier}")
        response = self.rds.start_export_task(
            ExportTaskIdentifier=identifier,
            SourceArn=arn,
            S3BucketName=self.prereq["bucket"],
            S3Prefix=PREFIX,
            IamRoleArn=self.prereq["iam_role_arn"],
            KmsKeyId=self.prereq["kms_key_id"],
        )
        self.control.reset_calls()
        return dict(response)


@pytest.fixture
def emu(rds_emulator_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emu]:
    """A reset emulator server seeded with instance ``orders`` and export prerequisites.

    ``aws_default`` points at it; trigger backoff and botocore retry delays are tiny.
    """
    from airflow_rds_export.testing import airflow_connection_env

    for name, value in airflow_connection_env(
        rds_emulator_server.endpoint_url, region_name=REGION
    ).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(triggers_module, "BACKOFF_BASE_SECONDS", 0.01)
    # botocore's standard mode sleeps up to 1 + 2 + 4 + 8 s between its 5 attempts; keep
    # the attempts, drop the sleeping.
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    world = Emu(rds_emulator_server)
    world.prereq = world.control.seed_export_prerequisites(bucket=BUCKET)
    world.control.create_db_instance("orders")
    world.control.reset_calls()
    yield world
    world.control.clear_faults()


async def _events(trigger: BaseTrigger) -> list[TriggerEvent]:
    events: list[TriggerEvent] = []
    run: AsyncIterator[TriggerEvent] = trigger.run()
    async for event in run:
        events.append(event)
    return events


def run_trigger(trigger: BaseTrigger, timeout: float = 15.0) -> TriggerEvent:
    """Run ``trigger.run()`` to its end; assert it yielded exactly one event; return it."""
    events = asyncio.run(asyncio.wait_for(_events(trigger), timeout))
    assert len(events) == 1, events
    return events[0]


def decision_of(event: TriggerEvent) -> tuple[str, str, Any]:
    """``(action, reason, description)`` of a plain (not end_from_trigger) event."""
    assert type(event) is TriggerEvent, event
    payload = event.payload
    json.dumps(payload)  # events cross process boundaries: must be JSON
    return payload["decision"]["action"], payload["decision"]["reason"], payload["description"]


def spy_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the ``failures`` argument of every trigger backoff."""
    seen: list[int] = []
    real = triggers_module.backoff_delay

    def spy(failures: int, base: float = 0.01) -> float:
        seen.append(failures)
        return real(failures, base=0.01)

    monkeypatch.setattr(triggers_module, "backoff_delay", spy)
    return seen


def export_trigger(identifier: str, **kwargs: Any) -> RdsExportTaskStateTrigger:
    return RdsExportTaskStateTrigger(
        export_task_identifier=identifier, poll_interval=POLL, **kwargs
    )


# --- RdsSnapshotReadyTrigger ------------------------------------------------------------


def test_snapshot_creating_then_available_yields_done_with_source_arn(emu: Emu) -> None:
    snapshot = emu.control.create_db_snapshot(
        "orders-manual", db_instance_identifier="orders", ready_after_polls=3
    )
    event = run_trigger(
        RdsSnapshotReadyTrigger(db_snapshot_identifier="orders-manual", poll_interval=POLL)
    )
    action, reason, description = decision_of(event)
    assert action == "done"
    assert reason == "Snapshot orders-manual is available"
    assert description["SourceArn"] == snapshot["DBSnapshotArn"]
    assert description["Status"] == "available"
    assert emu.control.calls() == {"DescribeDBSnapshots": 4}  # 3 x creating, 1 x available


def test_snapshot_newest_automated_of_instance_after_created_after(emu: Emu) -> None:
    emu.control.create_automated_snapshot("orders", created_at="2023-12-31T03:00:00+00:00")
    newest = emu.control.create_automated_snapshot(
        "orders", created_at="2024-01-02T03:00:00+00:00", ready_after_polls=1
    )
    event = run_trigger(
        RdsSnapshotReadyTrigger(
            db_instance_identifier="orders",
            created_after="2024-01-01T00:00:00+00:00",
            poll_interval=POLL,
        )
    )
    action, _, description = decision_of(event)
    assert action == "done"
    assert description["DBSnapshotIdentifier"] == "rds:orders-2024-01-02-03-00"
    assert description["SourceArn"] == newest["DBSnapshotArn"]


@pytest.mark.parametrize("on_failure", ["fail", "skip"])
def test_snapshot_failed_follows_on_failure(emu: Emu, on_failure: str) -> None:
    emu.control.create_db_snapshot("orders-broken", db_instance_identifier="orders")
    emu.control.set_snapshot_status("orders-broken", "failed")
    event = run_trigger(
        RdsSnapshotReadyTrigger(
            db_snapshot_identifier="orders-broken", on_failure=on_failure, poll_interval=POLL
        )
    )
    action, reason, description = decision_of(event)
    assert action == on_failure
    assert "orders-broken" in reason
    assert "'failed'" in reason
    assert f"on_failure={on_failure!r}" in reason
    assert description["Status"] == "failed"


@pytest.mark.parametrize("on_missing", ["fail", "skip"])
def test_snapshot_missing_follows_on_missing(emu: Emu, on_missing: str) -> None:
    event = run_trigger(
        RdsSnapshotReadyTrigger(
            db_snapshot_identifier="nowhere", on_missing=on_missing, poll_interval=POLL
        )
    )
    action, reason, description = decision_of(event)
    assert action == on_missing
    assert "nowhere" in reason and "does not exist" in reason
    assert description is None


def test_snapshot_missing_with_reschedule_keeps_polling_until_it_appears(emu: Emu) -> None:
    trigger = RdsSnapshotReadyTrigger(
        db_snapshot_identifier="later", on_missing="reschedule", poll_interval=POLL
    )

    async def scenario() -> tuple[int, list[TriggerEvent]]:
        task = asyncio.create_task(_events(trigger))
        await asyncio.sleep(1.0)
        assert not task.done(), "a missing snapshot with on_missing='reschedule' ended the wait"
        polls_while_missing = emu.control.calls().get("DescribeDBSnapshots", 0)
        await asyncio.to_thread(
            emu.control.create_db_snapshot, "later", db_instance_identifier="orders"
        )
        return polls_while_missing, await asyncio.wait_for(task, 10)

    polls, events = asyncio.run(scenario())
    # Looked up as DB snapshot, then as cluster snapshot, every 0.05 s for a second.
    assert polls >= 6
    assert len(events) == 1
    action, _, description = decision_of(events[0])
    assert action == "done"
    assert description["DBSnapshotIdentifier"] == "later"


# --- RdsExportTaskStateTrigger ----------------------------------------------------------


def test_export_complete_yields_done_with_s3_uri(emu: Emu) -> None:
    emu.start_export("orders-2024-01-01", starting_polls=1, in_progress_polls=2)
    event = run_trigger(export_trigger("orders-2024-01-01"))
    action, reason, description = decision_of(event)
    assert action == "done"
    assert reason.startswith("Export task orders-2024-01-01 is complete: ")
    assert reason.endswith(" GB verified")
    assert description["Tables"]["Failed"] == []
    assert description["Status"].lower() == "complete"
    assert description["S3Uri"] == f"s3://{BUCKET}/{PREFIX}/orders-2024-01-01/"
    assert emu.control.calls()["DescribeExportTasks"] == 4  # STARTING, 2 x IN_PROGRESS, done


@pytest.mark.parametrize("on_failure", ["fail", "skip"])
def test_export_failed_carries_failure_cause(emu: Emu, on_failure: str) -> None:
    cause = "The IAM role lacks s3:PutObject on arn:aws:s3:::rds-exports"
    emu.start_export("orders-failing")
    emu.control.fail_export("orders-failing", cause=cause, after_polls=1)
    event = run_trigger(export_trigger("orders-failing", on_failure=on_failure))
    action, reason, description = decision_of(event)
    assert action == on_failure
    assert "FAILED" in reason
    assert cause in reason
    assert description["FailureCause"] == cause


def test_export_canceled_is_an_error_status(emu: Emu) -> None:
    emu.start_export("orders-canceled", starting_polls=5)
    emu.rds.cancel_export_task(ExportTaskIdentifier="orders-canceled")
    action, reason, _ = decision_of(run_trigger(export_trigger("orders-canceled")))
    assert action == "fail"
    assert "CANCELED" in reason


def test_export_target_canceled_is_done(emu: Emu) -> None:
    emu.start_export("orders-cancel-me", starting_polls=5)
    emu.rds.cancel_export_task(ExportTaskIdentifier="orders-cancel-me")
    trigger = export_trigger(
        "orders-cancel-me", target_statuses=["canceled"], error_statuses=["failed"]
    )
    action, _, description = decision_of(run_trigger(trigger))
    assert action == "done"
    assert description["Status"].lower() == "canceled"


@pytest.mark.parametrize("on_missing", ["fail", "skip"])
def test_export_missing_follows_on_missing(emu: Emu, on_missing: str) -> None:
    action, reason, description = decision_of(
        run_trigger(export_trigger("orders-nowhere", on_missing=on_missing))
    )
    assert action == on_missing
    assert "does not exist" in reason
    assert description is None


def test_export_missing_with_reschedule_waits(emu: Emu) -> None:
    trigger = export_trigger("orders-not-yet", on_missing="reschedule")
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(_events(trigger), 1.0))
    assert emu.control.calls()["DescribeExportTasks"] >= 5


def test_export_max_attempts_fails_with_advice(emu: Emu) -> None:
    emu.start_export("orders-slow", starting_polls=100)
    action, reason, _ = decision_of(run_trigger(export_trigger("orders-slow", max_attempts=3)))
    assert action == "fail"
    assert "still waiting after 3 checks" in reason
    assert emu.control.calls()["DescribeExportTasks"] == 3


def test_export_survives_a_throttling_burst(emu: Emu, monkeypatch: pytest.MonkeyPatch) -> None:
    backoffs = spy_backoff(monkeypatch)
    emu.start_export("orders-throttled", starting_polls=1, in_progress_polls=1)
    emu.control.throttle(operation="DescribeExportTasks", count=20)
    action, _, description = decision_of(run_trigger(export_trigger("orders-throttled")))
    assert action == "done"
    assert description["S3Uri"].endswith("/orders-throttled/")
    # The hook's botocore retries (standard mode, max_attempts=5 retries: 6 requests per
    # call) absorb 6 throttles per poll; the trigger backs off after each of the 3 polls
    # that still failed, with a growing delay, then carries on: 2 more throttles, then
    # STARTING, IN_PROGRESS, COMPLETE.
    assert backoffs == [1, 2, 3]
    assert emu.control.calls()["DescribeExportTasks"] == 20 + 3


def test_snapshot_survives_server_errors(emu: Emu, monkeypatch: pytest.MonkeyPatch) -> None:
    backoffs = spy_backoff(monkeypatch)
    emu.control.create_db_snapshot("orders-5xx", db_instance_identifier="orders")
    emu.control.server_error(operation="DescribeDBSnapshots", count=7, status=503)
    action, _, description = decision_of(
        run_trigger(RdsSnapshotReadyTrigger(db_snapshot_identifier="orders-5xx", poll_interval=1))
    )
    assert action == "done"
    assert description["DBSnapshotIdentifier"] == "orders-5xx"
    assert backoffs == [1]  # 6 x 503 in the first poll; 1 x 503 then success in the second
    assert emu.control.calls()["DescribeDBSnapshots"] == 8


def test_permission_error_fails_at_once_with_the_remedy(emu: Emu) -> None:
    """AccessDenied after the task deferred (the policy changed): the same message as on a
    worker, naming the denied action and the remedy; never a raw botocore traceback."""
    emu.control.refuse(
        "DescribeDBSnapshots",
        code="AccessDenied",
        message="User: arn:aws:sts::123456789012:assumed-role/airflow/t is not authorized to "
        "perform: rds:DescribeDBSnapshots on resource: arn:aws:rds:us-east-1:123456789012:x",
        status=403,
        count=10,
    )
    trigger = RdsSnapshotReadyTrigger(
        db_instance_identifier="orders", snapshot_type="automated", poll_interval=POLL
    )
    action, reason, _ = decision_of(run_trigger(trigger))
    assert action == "fail"
    assert "AccessDenied" in reason and "rds:DescribeDBSnapshots" in reason
    assert "To do:" in reason
    assert emu.control.calls()["DescribeDBSnapshots"] == 1  # not retried


def test_unknown_error_is_raised(emu: Emu) -> None:
    """An error no rule knows is not waited out forever, nor guessed at: run() raises."""
    from botocore.exceptions import ClientError

    emu.control.refuse("DescribeExportTasks", code="SomethingNew", message="new", count=10)
    with pytest.raises(ClientError, match="SomethingNew"):
        run_trigger(export_trigger("orders-unknown"))


# --- end_from_trigger -------------------------------------------------------------------


def test_end_from_trigger_success_pushes_the_return_value(emu: Emu) -> None:
    emu.start_export("orders-efs", starting_polls=1, in_progress_polls=1)
    event = run_trigger(export_trigger("orders-efs", end_from_trigger=True))
    assert isinstance(event, TaskSuccessEvent)
    assert event.task_instance_state == "success"
    assert event.xcoms is not None and set(event.xcoms) == {"return_value"}
    value = event.xcoms["return_value"]
    assert isinstance(value, dict)
    assert value["S3Uri"] == f"s3://{BUCKET}/{PREFIX}/orders-efs/"
    assert str(value["Status"]).lower() == "complete"


def test_end_from_trigger_snapshot_success_pushes_description(emu: Emu) -> None:
    arn = emu.ready_snapshot("orders-efs-snap")
    event = run_trigger(
        RdsSnapshotReadyTrigger(
            db_snapshot_identifier="orders-efs-snap", end_from_trigger=True, poll_interval=POLL
        )
    )
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms is not None
    assert event.xcoms["return_value"]["SourceArn"] == arn  # type: ignore[index]


def test_end_from_trigger_skip(emu: Emu) -> None:
    event = run_trigger(
        RdsSnapshotReadyTrigger(
            db_snapshot_identifier="nowhere",
            on_missing="skip",
            end_from_trigger=True,
            poll_interval=POLL,
        )
    )
    assert isinstance(event, TaskSkippedEvent)
    assert event.task_instance_state == "skipped"


def test_end_from_trigger_failure(emu: Emu) -> None:
    emu.start_export("orders-efs-fail")
    emu.control.fail_export("orders-efs-fail", cause="boom")
    event = run_trigger(export_trigger("orders-efs-fail", end_from_trigger=True))
    assert isinstance(event, TaskFailedEvent)
    assert event.task_instance_state == "failed"


# --- arguments rendered in the triggerer ------------------------------------------------


@pytest.mark.parametrize(
    ("trigger_factory", "needle"),
    [
        (lambda: export_trigger("1-bad--identifier"), "export_task_identifier"),
        (lambda: export_trigger("orders-ok", target_statuses=["finished"]), "target_statuses"),
        (lambda: export_trigger("orders-ok", error_statuses=["kaput"]), "error_statuses"),
        (
            lambda: RdsSnapshotReadyTrigger(
                db_instance_identifier="orders", created_after="not a date", poll_interval=POLL
            ),
            "created_after",
        ),
    ],
    ids=["identifier", "target_statuses", "error_statuses", "created_after"],
)
def test_invalid_rendered_arguments_fail_without_aws_calls(
    emu: Emu, trigger_factory: Callable[[], BaseTrigger], needle: str
) -> None:
    action, reason, description = decision_of(run_trigger(trigger_factory()))
    assert action == "fail"
    assert needle in reason
    assert description is None
    assert emu.control.calls() == {}


def test_invalid_rendered_arguments_end_the_task_as_failed(emu: Emu) -> None:
    event = run_trigger(export_trigger("bad--id-", end_from_trigger=True))
    assert isinstance(event, TaskFailedEvent)
    assert emu.control.calls() == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"db_snapshot_identifier": "-bad--snapshot"},
        {"db_instance_identifier": "bad--instance"},
        {"db_instance_identifier": "orders", "snapshot_type": "nightly"},
    ],
    ids=["snapshot-id", "instance-id", "snapshot-type"],
)
def test_snapshot_trigger_validates_rendered_identifiers(emu: Emu, kwargs: dict[str, Any]) -> None:
    trigger = RdsSnapshotReadyTrigger(on_missing="reschedule", poll_interval=POLL, **kwargs)
    action, _, _ = decision_of(run_trigger(trigger, timeout=1))
    assert action == "fail"
    assert emu.control.calls() == {}


# --- serialization through Airflow's own storage ----------------------------------------


def _rebuild_like_the_triggerer(classpath: str, encrypted_kwargs: str) -> BaseTrigger:
    """What ``TriggerRunner.create_triggers`` does with a ``trigger`` row (Airflow 3.3)."""
    from airflow._shared.module_loading import import_string
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs

    kwargs = Trigger._decrypt_kwargs(encrypted_kwargs)
    decoded = {k: smart_decode_trigger_kwargs(v) for k, v in kwargs.items()}
    trigger = import_string(classpath)(**decoded)
    assert isinstance(trigger, BaseTrigger)
    return trigger


TRIGGERS: dict[str, Callable[[], BaseTrigger]] = {
    "snapshot-by-name": lambda: RdsSnapshotReadyTrigger(
        db_snapshot_identifier="orders-rt", db_type="instance", poll_interval=POLL
    ),
    "snapshot-newest": lambda: RdsSnapshotReadyTrigger(
        db_instance_identifier="orders",
        snapshot_type="automated",
        created_after="2024-01-01T00:00:00+00:00",
        on_missing="fail",
        on_failure="skip",
        max_attempts=7,
        end_from_trigger=True,
        region_name=REGION,
        verify=False,
        botocore_config={"retries": {"mode": "standard", "max_attempts": 3}},
        poll_interval=POLL,
    ),
    "export": lambda: RdsExportTaskStateTrigger(
        export_task_identifier="orders-rt",
        target_statuses=("complete",),
        error_statuses=("canceled", "failed"),
        on_missing="skip",
        max_attempts=40,
        end_from_trigger=True,
        aws_conn_id="aws_default",
        poll_interval=POLL,
    ),
    # The start operator's wait: the same arguments; its class cancels on a user's kill.
    "started export": lambda: RdsStartedExportTrigger(
        export_task_identifier="orders-rt",
        target_statuses=("complete",),
        error_statuses=("canceled", "failed"),
        on_missing="reschedule",
        max_attempts=40,
        aws_conn_id="aws_default",
        poll_interval=POLL,
    ),
}


@pytest.fixture
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real Fernet key for this test (trigger kwargs are then actually encrypted)."""
    from airflow.models.crypto import get_fernet
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    get_fernet.cache_clear()
    yield key
    get_fernet.cache_clear()


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_serialize_round_trips_through_the_trigger_table(name: str, fernet_key: str) -> None:
    """``Trigger.from_object`` (encrypted kwargs) and back, as the triggerer rebuilds it."""
    from airflow.models.trigger import Trigger

    original = TRIGGERS[name]()
    row = Trigger.from_object(original)
    assert not row.encrypted_kwargs.startswith("{")  # really encrypted
    rebuilt = _rebuild_like_the_triggerer(row.classpath, row.encrypted_kwargs)
    assert type(rebuilt) is type(original)
    assert rebuilt.serialize() == original.serialize()
    assert row.kwargs == original.serialize()[1]


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_serialize_round_trips_through_the_worker_defer_path(name: str) -> None:
    """A task's ``defer()``: serde-serialized kwargs, JSON, stored as the row's kwargs."""
    from airflow.sdk.serde import serialize

    original = TRIGGERS[name]()
    classpath, kwargs = original.serialize()
    stored = json.dumps(serialize(kwargs))  # the Execution API stores it as it comes
    rebuilt = _rebuild_like_the_triggerer(classpath, stored)
    assert rebuilt.serialize() == (classpath, kwargs)


def _start_trigger_row(sensor_source: Callable[[], Any]) -> tuple[str, str, Any]:
    """A sensor with start_from_trigger, through DAG serialization, to a ``trigger`` row.

    That is the scheduler's path (``TaskInstance.defer_task``): the trigger's kwargs come
    from the *serialized DAG*, never from the sensor object.
    """
    import pendulum
    from airflow.models.trigger import Trigger
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("rt", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
        sensor = sensor_source()
    stored = json.loads(json.dumps(DagSerialization.to_dict(dag)))
    task = DagSerialization.from_dict(stored).get_task(sensor.task_id)
    args = task.start_trigger_args
    assert task.start_from_trigger is True
    assert args.next_method == "execute_complete"
    row = Trigger(classpath=args.trigger_cls, kwargs=args.trigger_kwargs)
    return row.classpath, row.encrypted_kwargs, sensor


def test_start_from_trigger_kwargs_survive_dag_serialization(emu: Emu, fernet_key: str) -> None:
    from airflow_rds_export.sensors import RdsSnapshotReadySensor

    arn = emu.ready_snapshot("orders-sft")
    classpath, encrypted, sensor = _start_trigger_row(
        lambda: RdsSnapshotReadySensor(
            task_id="wait",
            db_snapshot_identifier="orders-sft",
            deferrable=True,
            start_from_trigger=True,
            end_from_trigger=True,
            poke_interval=POLL,
        )
    )
    rebuilt = _rebuild_like_the_triggerer(classpath, encrypted)
    direct = RdsSnapshotReadyTrigger(**sensor.trigger_kwargs())
    assert rebuilt.serialize() == direct.serialize()
    assert rebuilt.serialize()[0] == sensor.trigger_path
    event = run_trigger(rebuilt)
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms is not None
    assert event.xcoms["return_value"]["SourceArn"] == arn  # type: ignore[index]


@pytest.mark.parametrize(
    ("emit_asset", "ends_as"),
    [(False, TaskSuccessEvent), (True, TriggerEvent)],
    ids=["no-asset-ends-in-triggerer", "asset-resumes-on-a-worker"],
)
def test_export_sensor_start_trigger_keeps_templates_for_the_triggerer(
    emu: Emu, emit_asset: bool, ends_as: type
) -> None:
    """Templated fields reach the triggerer unrendered (it renders them itself). The
    trigger ends the task itself, unless a COMPLETE export has an asset event to emit:
    then it hands the decision back to a worker (``resume_on_success``)."""
    from airflow_rds_export.sensors import RdsExportTaskStateSensor

    classpath, encrypted, _ = _start_trigger_row(
        lambda: RdsExportTaskStateSensor(
            task_id="wait",
            export_task_identifier="orders-{{ ds_nodash }}",
            deferrable=True,
            start_from_trigger=True,
            end_from_trigger=True,
            emit_asset=emit_asset,
            poke_interval=POLL,
        )
    )
    rebuilt = _rebuild_like_the_triggerer(classpath, encrypted)
    assert isinstance(rebuilt, RdsExportTaskStateTrigger)
    assert rebuilt.export_task_identifier == "orders-{{ ds_nodash }}"
    assert rebuilt.end_from_trigger is True
    assert rebuilt.resume_on_success is emit_asset
    # Rendered as the triggerer would (template_fields of the task that exist on the
    # trigger), the trigger then runs to completion.
    rebuilt.export_task_identifier = "orders-20240101"
    emu.start_export("orders-20240101", starting_polls=1, in_progress_polls=1)
    event = run_trigger(rebuilt)
    assert type(event) is ends_as
    if emit_asset:
        assert event.payload["decision"]["action"] == "done"
        assert event.payload["description"]["Status"] == "COMPLETE"


def test_a_trigger_resuming_on_success_still_ends_a_failure_itself(emu: Emu) -> None:
    """``resume_on_success`` is about success only: a FAILED export still fails the task
    from the triggerer, and a wait ending on another status (no data written) too."""
    emu.start_export("orders-dies")
    emu.control.fail_export("orders-dies", cause="S3 access denied")
    failing = RdsExportTaskStateTrigger(
        export_task_identifier="orders-dies",
        poll_interval=POLL,
        end_from_trigger=True,
        resume_on_success=True,
    )
    assert isinstance(run_trigger(failing), TaskFailedEvent)
    emu.start_export("orders-starting", starting_polls=50)
    started = RdsExportTaskStateTrigger(
        export_task_identifier="orders-starting",
        target_statuses=["starting"],
        poll_interval=POLL,
        end_from_trigger=True,
        resume_on_success=True,
    )
    assert isinstance(run_trigger(started), TaskSuccessEvent)


def test_rebuilt_trigger_runs_again_with_the_same_outcome(emu: Emu) -> None:
    """A triggerer restart runs the stored trigger anew: same event, no side effects."""
    from airflow.sdk.serde import serialize

    emu.start_export("orders-twice", starting_polls=1, in_progress_polls=1)
    original = export_trigger("orders-twice")
    classpath, kwargs = original.serialize()
    first = decision_of(run_trigger(_rebuild_like_the_triggerer(classpath, json.dumps(kwargs))))
    second = decision_of(
        run_trigger(_rebuild_like_the_triggerer(classpath, json.dumps(serialize(kwargs))))
    )
    assert first == second
    assert first[0] == "done"
    assert set(emu.control.calls()) == {"DescribeExportTasks"}  # read-only
    assert len(emu.control.export_tasks()) == 1
