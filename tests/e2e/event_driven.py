"""A real deployment running ``example_dags/event_driven_rds_export.py`` against the emulator.

The emulator server has an RDS event subscription delivering to the SQS queue
``rds-events`` through SNS (the envelope form), instances ``orders`` (watched) and
``billing`` (not watched), and short exports (2 s STARTING, 3 s IN_PROGRESS). The four
Airflow components run the example DAG as it is, configured by its environment
variables. Used by ``tests/test_e2e_events.py`` and ``bench/event_driven.py``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_rds_export.testing.airflow_runs import prepare_airflow_home
from e2e.deployment import Deployment

__all__ = ["DAG_ID", "EventEnv", "event_driven_deployment"]

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "example_dags" / "event_driven_rds_export.py"
NIGHTLY_FILE = REPO / "example_dags" / "nightly_rds_export.py"
DAG_ID = "event_driven_rds_export"
QUEUE = "rds-events"


@dataclass
class EventEnv:
    """The running deployment, the emulator behind it, and what the DAG watches."""

    deployment: Deployment
    control: Any
    server: Any
    queue_url: str
    home: Path

    def sqs(self) -> Any:
        """A boto3 SQS client on the emulator (for sending odd messages, reading counts)."""
        import boto3

        return boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=self.server.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def queue_depth(self) -> int:
        """Messages in the queue, visible or received and not yet deleted."""
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dag_runs(self, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        answer = self.deployment.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")
        return list(answer["dag_runs"])

    def triggerer_log(self) -> str:
        return self.deployment.log_path("triggerer").read_text(errors="replace")

    def new_automated_snapshot(
        self, instance: str, ready_after: float, days_ago: int = 0
    ) -> dict[str, Any]:
        """``instance``'s automated snapshot of ``days_ago`` days ago at 03:10 (the
        night's), ``creating`` for ``ready_after`` seconds, then the emulator publishes
        RDS-EVENT-0091."""
        taken = datetime.now(timezone.utc).replace(hour=3, minute=10, second=0, microsecond=0)
        return dict(
            self.control.create_automated_snapshot(
                instance, taken - timedelta(days=days_ago), ready_after_seconds=ready_after
            )
        )

    def export_of(self, source_arn: str) -> list[dict[str, Any]]:
        """The export tasks of ``source_arn``."""
        return [t for t in self.control.export_tasks() if t["SourceArn"] == source_arn]

    def published(self, event_id: str, source_arn: str) -> list[dict[str, Any]]:
        """The RDS events ``event_id`` the emulator published for ``source_arn``."""
        return [
            e
            for e in self.control.rds_events()
            if e["EventId"] == event_id and e["SourceArn"] == source_arn
        ]

    def wait_for_export(self, source_arn: str, timeout: float) -> dict[str, Any]:
        """The first export of ``source_arn``, once it exists."""
        return dict(
            self.deployment.wait_until(
                f"an export of {source_arn}",
                lambda: (self.export_of(source_arn) or [None])[0],
                timeout,
                interval=0.2,
            )
        )

    def latency(self, source_arn: str, export: dict[str, Any]) -> float:
        """Seconds from the "snapshot created" event's publication to StartExportTask."""
        (event,) = self.published("RDS-EVENT-0091", source_arn)
        started = datetime.fromisoformat(export["TaskStartTime"]).timestamp()
        return started - float(event["PublishedAt"])


@contextlib.contextmanager
def event_driven_deployment(
    tmp: Path, poll_seconds: float = 5, with_nightly: bool = False
) -> Iterator[EventEnv]:
    """Start the emulator server and the four components running the example DAG (and,
    ``with_nightly``, ``nightly_rds_export`` beside it, as its fallback)."""
    from airflow_rds_export.testing import EmulatorServer, airflow_connection_env

    home = prepare_airflow_home(tmp / "home")
    for dag_file in (DAG_FILE, NIGHTLY_FILE) if with_nightly else (DAG_FILE,):
        shutil.copy(dag_file, home.dags_folder / dag_file.name)
    with EmulatorServer(region_name="us-east-1") as server:
        control = server.control
        control.seed_export_prerequisites(
            bucket="rds-exports", role_name="rds-s3-export", kms_alias="alias/rds-exports"
        )
        control.create_db_instance("orders")
        control.create_db_instance("billing")
        control.set_export_pacing(starting_seconds=2, in_progress_seconds=3)
        queue = control.subscribe_to_rds_events(QUEUE)
        extra_env = {
            **airflow_connection_env(server.endpoint_url),
            "RDS_EVENTS_QUEUE_URL": queue["QueueUrl"],
            "RDS_EVENT_SOURCES": "rds:orders-*,orders-*",
            "RDS_EXPORT_POLL_SECONDS": str(poll_seconds),
        }
        deployment = Deployment(home.path, home.env(), extra_env)
        started = time.monotonic()
        env = EventEnv(deployment, control, server, queue["QueueUrl"], home.path)
        try:
            deployment.start_and_wait_for(DAG_ID, *(["nightly_rds_export"] if with_nightly else []))
            deployment.wait_until(
                "the triggerer to watch the queue",
                lambda: f"Watching {queue['QueueUrl']}" in env.triggerer_log(),
                timeout=120,
            )
            print(f"event-driven deployment ready in {time.monotonic() - started:.1f} s")
            yield env
        except BaseException:
            print(deployment.diagnostics())
            raise
        finally:
            deployment.stop_all()
