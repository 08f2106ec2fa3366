"""What verifying a COMPLETE export table by table costs: S3 requests, bytes, time.

A 1,000-table export (and, for scale, 10 and 100 tables) is run to COMPLETE on the
emulator server; then :func:`airflow_rds_export.verification.verify` reads its metadata
exactly as a worker does after COMPLETE, with every S3 request counted at the botocore
client (``before-call`` events) and the wall time measured (median of ``--runs``). The
official provider verifies nothing: its cost is zero requests, and the partial copy goes
unnoticed; the table says what ours adds next to it.

    .venv/bin/python bench/verification_cost.py [--runs 7]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from _common import machine, median, save

from airflow_rds_export.hooks import RdsExportHook
from airflow_rds_export.testing import EmulatorServer
from airflow_rds_export.testing.export_output import TABLES_PER_INFO_FILE
from airflow_rds_export.verification import verify

REGION = "us-east-1"
SIZES = (10, 100, 1000)


def export_of(server: EmulatorServer, tables: int) -> dict[str, Any]:
    """Run one export of a ``tables``-table snapshot to COMPLETE; its description."""
    control = server.control
    control.reset()
    prereq = control.seed_export_prerequisites(bucket="rds-exports", role_name="rds-s3-export")
    source = f"db{tables}"
    control.create_db_instance(source)
    control.set_source_tables(source, [f"{source}.public.t{n:04d}" for n in range(tables)])
    snapshot = control.create_db_snapshot(f"{source}-snap", db_instance_identifier=source)
    identifier = f"verify-{tables}"
    control.pace_export(identifier, starting_polls=0, in_progress_polls=0)
    hook = _hook(server)
    hook.start_export_task(
        export_task_identifier=identifier,
        source_arn=snapshot["DBSnapshotArn"],
        s3_bucket_name=prereq["bucket"],
        s3_prefix="nightly",
        iam_role_arn=prereq["iam_role_arn"],
        kms_key_id=prereq["kms_key_id"],
        export_only=[],
    )
    for _ in range(10):
        description = hook.describe_export_task(identifier)
        if description and str(description.get("Status")).upper() == "COMPLETE":
            return description
    raise RuntimeError(f"export {identifier} did not complete")


def _hook(server: EmulatorServer) -> RdsExportHook:
    import os

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": server.endpoint_url,
        }
    )
    return RdsExportHook(aws_conn_id=None, region_name=REGION)


class CountingHook(RdsExportHook):
    """The package's hook, counting every S3 request and the bytes read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: Counter[str] = Counter()
        self.bytes_read = 0

    def s3_client(self) -> Any:
        client = super().s3_client()
        client.meta.events.register("before-call.s3.*", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        self.requests[model.name] += 1

    def read_object(self, client: Any, bucket: str, key: str) -> bytes:
        body = super().read_object(client, bucket, key)
        self.bytes_read += len(body)
        return body


def measure(server: EmulatorServer, tables: int, runs: int) -> dict[str, Any]:
    description = export_of(server, tables)
    _hook(server)  # the environment the counting hook reads
    seconds = []
    counted: CountingHook | None = None
    verdict: dict[str, Any] = {}
    for _ in range(runs):
        counted = CountingHook(aws_conn_id=None, region_name=REGION)
        started = time.perf_counter()
        verified = verify(counted, description)
        seconds.append(time.perf_counter() - started)
        verdict = verified.description["Tables"]
    assert counted is not None
    return {
        "tables": tables,
        "tables_files": -(-tables // TABLES_PER_INFO_FILE),
        "requests": dict(counted.requests),
        "total_requests": sum(counted.requests.values()),
        "bytes_read": counted.bytes_read,
        "seconds_median": median(seconds),
        "verified_complete": verdict["Complete"],
        "verdict_clean": verdict["Clean"],
        "decision": verified.decision.reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with EmulatorServer() as server:
        results = [measure(server, tables, args.runs) for tables in SIZES]
    for row in results:
        print(
            f"{row['tables']:>5} tables: {row['total_requests']} S3 requests "
            f"({row['requests']}), {row['bytes_read'] / 1024:.0f} KiB read, "
            f"{row['seconds_median'] * 1000:.0f} ms; {row['decision']}"
        )
    save(
        "verification_cost",
        {"machine": machine(), "runs": args.runs, "sizes": results},
    )


if __name__ == "__main__":
    main()
