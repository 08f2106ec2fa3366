"""End to end: RDS events start exports on a real deployment (scheduler, triggerer, ...).

``example_dags/event_driven_rds_export.py`` runs as it is, in a deployment of the four
Airflow components (see :mod:`e2e.event_driven`), against the emulator server, whose RDS
event subscription publishes to an SQS queue through SNS. The triggerer watches the queue
with :class:`~airflow_rds_export.event_triggers.RdsEventTrigger`:

* a snapshot of ``orders`` becoming available starts its export, which is waited for
  (deferred) and verified, and the run succeeds;
* the same event delivered again runs the DAG again, which adopts the export: still one;
* ``nightly_rds_export``, the fallback, runs beside it for the same night: one export in
  all (whichever starts it, the other adopts it);
* an unrelated instance's snapshot, an unrelated event ID, a body that is not JSON and
  SNS's subscription confirmation start no run; each is deleted and counted in the log.

Latency over 10 snapshots is measured by ``bench/event_driven.py``; here one run checks
that it is seconds, not a poke interval. Timing: ~40 s to start, ~60 s of runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from e2e.event_driven import DAG_ID, EventEnv, event_driven_deployment

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventEnv]:
    with event_driven_deployment(tmp_path_factory.mktemp("events"), with_nightly=True) as running:
        yield running


def wait_for_runs(env: EventEnv, count: int) -> list[dict[str, Any]]:
    """Wait until ``count`` runs exist and all finished; return them (oldest first)."""

    def finished() -> list[dict[str, Any]] | None:
        runs = env.dag_runs()
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        return None

    runs = env.deployment.wait_until(f"{count} finished runs", finished, RUN_TIMEOUT, interval=2)
    return sorted(runs, key=lambda r: r["run_after"])


def task_states(env: EventEnv, run_id: str) -> dict[str, str]:
    answer = env.deployment.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100"
    )
    return {
        f"{ti['task_id']}[{ti['map_index']}]": str(ti["state"]) for ti in answer["task_instances"]
    }


@pytest.fixture(scope="module")
def first(env: EventEnv) -> dict[str, Any]:
    """One automated snapshot of orders becomes available; its export starts."""
    snapshot = env.new_automated_snapshot("orders", ready_after=3)
    arn = snapshot["DBSnapshotArn"]
    export = env.wait_for_export(arn, timeout=90)
    (run,) = wait_for_runs(env, 1)
    return {"snapshot": snapshot, "arn": arn, "export": export, "run": run}


def test_snapshot_available_starts_its_export_and_the_run_verifies_it(
    env: EventEnv, first: dict[str, Any], report: Callable[[str], None]
) -> None:
    assert first["run"]["run_type"] == "asset_triggered"
    assert first["run"]["state"] == "success", task_states(env, first["run"]["dag_run_id"])
    states = task_states(env, first["run"]["dag_run_id"])
    assert states == {
        "announced[-1]": "success",
        "start_export[0]": "success",
        "wait_for_export[0]": "success",
        "cancel_if_unfinished[0]": "skipped",  # COMPLETE: nothing to cancel
    }
    export = first["export"]
    # rds:orders-<yyyy-mm-dd>-03-10 -> orders-<yyyymmdd>, nightly_rds_export's identifier
    day = first["snapshot"]["DBSnapshotIdentifier"].split("-", 1)[1][:10].replace("-", "")
    assert export["ExportTaskIdentifier"] == f"orders-{day}"
    assert env.export_of(first["arn"])[0]["Status"] == "COMPLETE"
    latency = env.latency(first["arn"], export)
    report(f"event published -> StartExportTask: {latency:.1f} s")
    assert 0 < latency < 60  # seconds after the event, not a nightly poke interval


def test_the_nightly_fallback_of_the_same_night_makes_no_second_export(
    env: EventEnv, first: dict[str, Any]
) -> None:
    """nightly_rds_export's run of this night (scheduled when the deployment started,
    catchup=False) waited for the same snapshot; it exports under the same identifier to
    the same bucket and prefix, so it adopted the export (or started it, and the event's
    run adopted): one export either way."""
    nightly = "nightly_rds_export"
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    runs = [r for r in env.dag_runs(nightly) if str(r["logical_date"]).startswith(today)]
    if not runs:  # the scheduler made no run for today: make it
        env.deployment.request(
            "POST",
            f"/api/v2/dags/{nightly}/dagRuns",
            {"dag_run_id": "tonight", "logical_date": f"{today}T00:00:00Z"},
        )
    run = env.deployment.wait_until(
        "tonight's nightly run to finish",
        lambda: next(
            (
                r
                for r in env.dag_runs(nightly)
                if str(r["logical_date"]).startswith(today) and r["state"] in ("success", "failed")
            ),
            None,
        ),
        RUN_TIMEOUT,
        interval=2,
    )
    assert run["state"] == "success", run
    assert len(env.export_of(first["arn"])) == 1
    assert (
        env.export_of(first["arn"])[0]["ExportTaskIdentifier"]
        == (first["export"]["ExportTaskIdentifier"])
    )


def test_duplicate_event_adopts_the_export(env: EventEnv, first: dict[str, Any]) -> None:
    env.control.publish_rds_event(
        "RDS-EVENT-0091", first["snapshot"]["DBSnapshotIdentifier"], source_arn=first["arn"]
    )
    runs = wait_for_runs(env, 2)
    assert runs[-1]["state"] == "success", task_states(env, runs[-1]["dag_run_id"])
    assert len(env.export_of(first["arn"])) == 1
    log_dir = (
        env.home
        / "logs"
        / f"dag_id={DAG_ID}"
        / f"run_id={runs[-1]['dag_run_id']}"
        / "task_id=start_export"
    )
    text = "\n".join(p.read_text(errors="replace") for p in log_dir.rglob("attempt=*"))
    assert "adopting it as this run's export instead of starting a second one" in text


def test_irrelevant_messages_start_no_run_and_are_deleted_and_counted(
    env: EventEnv, first: dict[str, Any]
) -> None:
    runs_before = len(env.dag_runs())
    log_before = env.triggerer_log().count("without firing")
    sqs = env.sqs()
    # Another instance's snapshot: RDS publishes 0090 and 0091 for rds:billing-...
    billing = env.new_automated_snapshot("billing", ready_after=0)
    # An event ID the trigger does not watch (0041: manual snapshot deleted), for orders.
    env.control.publish_rds_event("RDS-EVENT-0041", "orders-old", message="Deleted manual snapshot")
    sqs.send_message(QueueUrl=env.queue_url, MessageBody="this is not JSON")
    sqs.send_message(
        QueueUrl=env.queue_url,
        MessageBody=json.dumps(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                "Token": "2336412f37",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:rds-events-topic",
                "Message": "You have chosen to subscribe to the topic ...",
                "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
                "Timestamp": "2026-11-29T03:00:00.000Z",
            }
        ),
    )
    # 2 (billing's 0090, 0091) + 1 (0041) + 1 (not JSON) + 1 (confirmation) = 5.
    env.deployment.wait_until(
        "the triggerer to drop 5 more messages",
        lambda: env.triggerer_log().count("without firing") >= log_before + 5,
        timeout=60,
    )
    assert env.queue_depth() == 0
    time.sleep(10)  # give a wrongly fired event time to become a run
    assert len(env.dag_runs()) == runs_before
    assert env.export_of(billing["DBSnapshotArn"]) == []
    log = env.triggerer_log()
    assert "malformed: the SQS body is not JSON: 'this is not JSON'" in log
    assert "malformed: an SNS SubscriptionConfirmation message" in log
    assert "RDS-EVENT-0041 for orders-old (an event this trigger ignores)" in log
    assert f"RDS-EVENT-0091 for {billing['DBSnapshotIdentifier']}: the source matches none" in log
    # The counts are in the log line of each message dropped.
    assert "dropped so far: " in log and " malformed" in log and " irrelevant" in log
