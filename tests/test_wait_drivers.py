"""One wait, every driver: the same AWS answer gets the same decision everywhere.

Each wait spec (:mod:`airflow_rds_export.waits`) is driven four ways, against the emulator
server (through a :class:`~airflow_rds_export.testing.FlakyProxy`, so connections can be
reset):

* ``poke``: the sensor's ``poke()`` on a worker;
* ``operator``: the operators' completion wait on a worker (export waits only; the start
  operator's wait for its source snapshot is the snapshot trigger);
* ``shared``: the trigger's ``run()`` polling through the shared poller (batched calls);
* ``alone``: the trigger's ``run()`` polling on its own (``SHARED_POLLING = False``).

For every AWS answer in the table each driver must reach the same action with the very same
reason. How a driver shows its decision differs, and is read off as it is:

* ``done`` / ``skip`` / ``fail``: the XCom-bearing return or the log line (``done``), the
  exception (worker) or the event (trigger);
* ``wait``: the poke logs it; the others are given one check (``max_attempts=1``) and
  report "<reason>; still waiting / still not ..." when it runs out;
* transient errors (throttling, HTTP 500, a reset connection: one check's worth, botocore
  retries off): the poke reports "wait"; the others log the reason as a warning, back off,
  and go on to the resource's real state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from structlog.testing import capture_logs

import airflow_rds_export.triggers as triggers_module
from airflow_rds_export.operators import RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsExportTaskStateSensor, RdsSnapshotReadySensor
from airflow_rds_export.testing import FlakyProxy, airflow_connection_env
from airflow_rds_export.triggers import RdsExportTaskStateTrigger, RdsSnapshotReadyTrigger

REGION = "us-east-1"
SNAPSHOT = "orders-snap"
EXPORT = "orders-export"
FOREVER = 100_000  # polls: a state that does not change while the drivers look at it
#: One attempt per call: a single injected fault fails a whole check.
ONE_ATTEMPT = {"retries": {"mode": "standard", "total_max_attempts": 1}, "connect_timeout": 2}
DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/airflow/worker is not authorized to "
    "perform: rds:{action} on resource: arn:aws:rds:us-east-1:123456789012:x because no "
    "identity-based policy allows the rds:{action} action"
)
KMS = "The specified KMS key does not exist, is not enabled or you do not have access to it."


@dataclass
class Scene:
    """The emulator behind a proxy, a boto3 client for set-up, and export prerequisites."""

    control: Any
    proxy: FlakyProxy
    rds: Any
    prereq: dict[str, str]

    def snapshot(self, **pacing: Any) -> str:
        made = self.control.create_db_snapshot(SNAPSHOT, db_instance_identifier="orders", **pacing)
        return str(made["DBSnapshotArn"])

    def export(self, **pacing: Any) -> None:
        self.control.pace_export(EXPORT, **pacing)
        arn = self.control.create_db_snapshot("export-source", db_instance_identifier="orders")
        self.rds.start_export_task(
            ExportTaskIdentifier=EXPORT,
            SourceArn=arn["DBSnapshotArn"],
            S3BucketName=self.prereq["bucket"],
            S3Prefix="nightly",
            IamRoleArn=self.prereq["iam_role_arn"],
            KmsKeyId=self.prereq["kms_key_id"],
        )


@dataclass(frozen=True)
class Case:
    """One AWS answer: how to set it up, the fault before each driver, what is decided."""

    wait: str  # "snapshot" or "export"
    setup: Callable[[Scene], Any]
    action: str
    reason_has: str
    fault: Callable[[Scene, str], Any] | None = None  # (scene, operation) -> None

    @property
    def operation(self) -> str:
        return "DescribeDBSnapshots" if self.wait == "snapshot" else "DescribeExportTasks"


def _throttle(scene: Scene, operation: str) -> None:
    scene.control.throttle(operation=operation, count=1)


def _server_error(scene: Scene, operation: str) -> None:
    scene.control.server_error(operation=operation, count=1, status=500)


def _reset(scene: Scene, operation: str) -> None:
    scene.proxy.reset_next(1)


def _denied(scene: Scene, operation: str) -> None:
    message = DENIED.format(action=operation)
    scene.control.refuse(operation, code="AccessDenied", message=message, status=403, count=50)


def _kms(scene: Scene, operation: str) -> None:
    scene.control.refuse(operation, code="KMSKeyNotAccessibleFault", message=KMS, count=50)


def _canceled(scene: Scene) -> None:
    scene.export(starting_polls=FOREVER, canceling_polls=0)
    scene.rds.cancel_export_task(ExportTaskIdentifier=EXPORT)


def _failed(scene: Scene) -> None:
    scene.export(starting_polls=FOREVER)
    scene.control.fail_export(EXPORT, cause="The IAM role cannot write to the bucket.")


def _failed_snapshot(scene: Scene) -> None:
    scene.snapshot()
    scene.control.set_snapshot_status(SNAPSHOT, "failed")


def _completed_export(scene: Scene) -> None:
    scene.export(starting_polls=0, in_progress_polls=0)


def _export_with_a_failed_table(scene: Scene) -> None:
    scene.control.set_source_tables("orders", ["orders.public.orders", "orders.public.items"])
    scene.control.fail_source_tables("orders", ["orders.public.items"], reason="Row too large")
    _completed_export(scene)


def _nothing(scene: Scene) -> None:
    return None


BUSY = "AWS is busy or unreachable"
CASES: dict[str, Case] = {
    "snapshot-available": Case("snapshot", Scene.snapshot, "done", f"{SNAPSHOT} is available"),
    "snapshot-creating": Case(
        "snapshot",
        lambda s: s.snapshot(ready_after_polls=FOREVER),
        "wait",
        "'creating', not available yet",
    ),
    "snapshot-failed": Case("snapshot", _failed_snapshot, "fail", "status 'failed'"),
    "snapshot-missing": Case("snapshot", _nothing, "wait", "does not exist"),
    "snapshot-throttled": Case("snapshot", Scene.snapshot, "wait", "Throttling", _throttle),
    "snapshot-http-500": Case("snapshot", Scene.snapshot, "wait", "InternalFailure", _server_error),
    "snapshot-reset": Case("snapshot", Scene.snapshot, "wait", "connection to AWS failed", _reset),
    "snapshot-access-denied": Case(
        "snapshot", Scene.snapshot, "fail", "permission for rds:DescribeDBSnapshots", _denied
    ),
    "snapshot-kms": Case("snapshot", Scene.snapshot, "fail", "KMS key", _kms),
    "export-starting": Case(
        "export", lambda s: s.export(starting_polls=FOREVER), "wait", "is STARTING; waiting"
    ),
    "export-in-progress": Case(
        "export",
        lambda s: s.export(starting_polls=0, in_progress_polls=FOREVER),
        "wait",
        "is IN_PROGRESS; waiting",
    ),
    "export-complete": Case("export", _completed_export, "done", "GB verified"),
    "export-table-failed": Case(
        "export",
        _export_with_a_failed_table,
        "fail",
        "orders.public.items failed (status 'FAILED': Row too large)",
    ),
    "export-failed": Case("export", _failed, "fail", "FAILED (The IAM role cannot write"),
    "export-canceled": Case("export", _canceled, "fail", "status CANCELED"),
    "export-missing": Case("export", _nothing, "wait", "does not exist"),
    "export-throttled": Case("export", _completed_export, "wait", BUSY, _throttle),
    "export-http-500": Case(
        "export",
        _completed_export,
        "wait",
        "InternalFailure",
        _server_error,
    ),
    "export-reset": Case("export", _completed_export, "wait", BUSY, _reset),
    "export-access-denied": Case(
        "export",
        _completed_export,
        "fail",
        "permission for rds:DescribeExportTasks",
        _denied,
    ),
    "export-kms": Case("export", _completed_export, "fail", "KMS", _kms),
}


# --- the drivers ------------------------------------------------------------------------

Outcome = tuple[str, str]


def _wait_reason(message: str, *markers: str) -> str:
    for marker in markers:
        if marker in message:
            return message.split(marker, 1)[0]
    raise AssertionError(f"no wait reason in {message!r}")


def _first_warning(logs: list[dict[str, Any]]) -> str | None:
    warnings = [e["event"] for e in logs if e.get("log_level") == "warning"]
    return warnings[0] if warnings else None


def _sensor(case: Case) -> Any:
    if case.wait == "snapshot":
        return RdsSnapshotReadySensor(
            task_id="poke", db_snapshot_identifier=SNAPSHOT, botocore_config=ONE_ATTEMPT
        )
    # The decision, not what the task outputs: the last log line must be the decision's.
    return RdsExportTaskStateSensor(
        task_id="poke",
        export_task_identifier=EXPORT,
        botocore_config=ONE_ATTEMPT,
        emit_asset=False,
    )


def poke(case: Case) -> Outcome:
    with capture_logs() as logs:
        try:
            result = _sensor(case).poke({})  # type: ignore[arg-type]
        except (AirflowSkipException, AirflowFailException) as exc:
            return ("skip" if isinstance(exc, AirflowSkipException) else "fail", str(exc))
    return ("done" if result.is_done else "wait", logs[-1]["event"])


def operator_wait(case: Case) -> Outcome:
    operator = RdsStartExportTaskOperator(
        task_id="start",
        export_task_identifier=EXPORT,
        source_arn="arn:aws:rds:us-east-1:123456789012:snapshot:export-source",
        s3_bucket_name="rds-exports",
        iam_role_arn="arn:aws:iam::123456789012:role/rds-s3-export",
        kms_key_id="alias/rds-exports",
        botocore_config=ONE_ATTEMPT,
        deferrable=False,
    )
    with capture_logs() as logs:
        try:
            operator._wait_for_export(interval=0.05, max_attempts=1)
        except (AirflowSkipException, AirflowFailException) as exc:
            outcome = ("skip" if isinstance(exc, AirflowSkipException) else "fail", str(exc))
        else:
            outcome = ("done", logs[-1]["event"])
    warning = _first_warning(logs)
    if warning is not None:
        return "wait", warning
    if "; still not " in outcome[1]:
        return "wait", _wait_reason(outcome[1], "; still not ")
    return outcome


def _trigger(case: Case) -> Any:
    common: dict[str, Any] = {
        "poll_interval": 0.05,
        "max_attempts": 1,
        "botocore_config": ONE_ATTEMPT,
    }
    if case.wait == "snapshot":
        return RdsSnapshotReadyTrigger(db_snapshot_identifier=SNAPSHOT, **common)
    return RdsExportTaskStateTrigger(export_task_identifier=EXPORT, **common)


def _run_trigger(case: Case) -> Outcome:
    async def events() -> list[Any]:
        return [event async for event in _trigger(case).run()]

    with capture_logs() as logs:
        (event,) = asyncio.run(asyncio.wait_for(events(), 30))
    warning = _first_warning(logs)
    if warning is not None:
        return "wait", _wait_reason(warning, "; next poll in ")
    decision = event.payload["decision"]
    if "; still waiting after " in decision["reason"]:
        return "wait", _wait_reason(decision["reason"], "; still waiting after ")
    return decision["action"], decision["reason"]


def trigger_shared(case: Case, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    monkeypatch.setattr(triggers_module, "SHARED_POLLING", True)
    return _run_trigger(case)


def trigger_alone(case: Case, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    monkeypatch.setattr(triggers_module, "SHARED_POLLING", False)
    return _run_trigger(case)


# --- the test -----------------------------------------------------------------------------


@pytest.fixture
def scene(rds_emulator_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    control = rds_emulator_server.control
    prereq = control.seed_export_prerequisites(bucket="rds-exports", role_name="rds-s3-export")
    control.create_db_instance("orders")
    port = int(rds_emulator_server.endpoint_url.rsplit(":", 1)[1])
    with FlakyProxy(port) as proxy:
        for name, value in airflow_connection_env(proxy.endpoint_url, region_name=REGION).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(triggers_module, "BACKOFF_BASE_SECONDS", 0.01)
        rds = boto3.client(
            "rds",
            endpoint_url=rds_emulator_server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield Scene(control, proxy, rds, prereq)
        control.clear_faults()


@pytest.mark.parametrize("name", list(CASES))
def test_every_driver_decides_the_same(
    name: str, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    case.setup(scene)
    drivers: dict[str, Callable[[], Outcome]] = {
        "poke": lambda: poke(case),
        "shared": lambda: trigger_shared(case, monkeypatch),
        "alone": lambda: trigger_alone(case, monkeypatch),
    }
    if case.wait == "export":
        drivers["operator"] = lambda: operator_wait(case)
    outcomes: dict[str, Outcome] = {}
    for driver, run in drivers.items():
        scene.control.clear_faults()
        if case.fault is not None:
            case.fault(scene, case.operation)
        outcomes[driver] = run()
    assert len(set(outcomes.values())) == 1, outcomes
    action, reason = outcomes["poke"]
    assert action == case.action, outcomes
    assert case.reason_has in reason, reason
    resource = SNAPSHOT if case.wait == "snapshot" else EXPORT
    assert resource in reason, reason
    if action == "fail" and case.fault is not None:
        assert "To do:" in reason, reason  # permission and configuration errors: the remedy
