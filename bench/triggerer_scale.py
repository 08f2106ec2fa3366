"""Benchmarks 4 and 5: many export and snapshot waits as triggers in ONE event loop.

For each N (default 100, 1,000, 5,000) the emulator server (``scale_server.py``, a separate
process) is seeded with N export tasks in progress (STARTING 1 poll, IN_PROGRESS 1 poll,
COMPLETE on the 3rd describe) and N DB snapshots ``creating`` for 2 polls (available on the
3rd). A fresh child process then runs N ``RdsExportTaskStateTrigger`` and N
``RdsSnapshotReadyTrigger`` (by identifier) ``run()`` concurrently in one asyncio event loop,
as a triggerer does, until every one has yielded its event (each checks 3 times: 3 poll
cycles). Measured in the child, from the first ``run()`` to the last event:

* CPU seconds of the child process (user + system, ``time.process_time``), and per cycle;
* AWS calls, counted at the emulator, per kind and per cycle (calls / 3);
* peak RSS of the child (``ru_maxrss``; also its RSS before the triggers were made);
* wall time. Trigger logs are written at INFO level to ``/dev/null`` (formatted, not kept).

``shared`` is the package as shipped (shared polling); ``per-trigger`` sets
``airflow_rds_export.triggers.SHARED_POLLING = False`` (every trigger polls on its own, as
before) for comparison, at the sizes given by ``--per-trigger-sizes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import BENCH, PYTHON, REPO, machine, save

POLL_SECONDS = 2.0
CHECKS = 3  # every wait checks 3 times (2 x waiting, then done)


def child(endpoint: str, n: int, shared: bool) -> dict[str, Any]:
    """Run 2N triggers in this process's one event loop; return the figures."""
    import logging

    from airflow_rds_export.testing import airflow_connection_env

    os.environ.update(airflow_connection_env(endpoint))
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(level=logging.INFO, stream=devnull, force=True)
    import airflow_rds_export.triggers as triggers_module
    from airflow_rds_export.triggers import RdsExportTaskStateTrigger, RdsSnapshotReadyTrigger

    triggers_module.SHARED_POLLING = shared
    import aiobotocore.session  # noqa: F401  (imported up front, as in a triggerer)
    import botocore  # noqa: F401

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    triggers: list[Any] = [
        RdsExportTaskStateTrigger(
            export_task_identifier=f"bench-export-{i}", poll_interval=POLL_SECONDS
        )
        for i in range(n)
    ] + [
        RdsSnapshotReadyTrigger(
            db_snapshot_identifier=f"bench-snap-{i}", db_type="instance", poll_interval=POLL_SECONDS
        )
        for i in range(n)
    ]

    async def one(trigger: Any) -> Any:
        return [event async for event in trigger.run()]

    async def everything() -> list[Any]:
        return await asyncio.gather(*(one(t) for t in triggers))

    cpu0, wall0 = time.process_time(), time.monotonic()
    results = asyncio.run(everything())
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    done = sum(
        1
        for events in results
        if len(events) == 1 and events[0].payload["decision"]["action"] == "done"
    )
    return {
        "n": n,
        "mode": "shared" if shared else "per-trigger",
        "waits": len(triggers),
        "done": done,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "rss_before_mb": rss_before / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _post(endpoint: str, path: str, body: dict[str, Any], timeout: float = 600) -> Any:
    request = urllib.request.Request(
        f"{endpoint}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["result"]


def run_one(endpoint: str, n: int, shared: bool) -> dict[str, Any]:
    _post(
        endpoint,
        "/_bench/seed",
        {"exports": n, "snapshots": n, "export_polls": 1, "snapshot_polls": 2},
    )
    proc = subprocess.run(
        [
            PYTHON,
            str(Path(__file__)),
            "--child",
            str(n),
            "--endpoint",
            endpoint,
            *([] if shared else ["--per-trigger"]),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(BENCH),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{proc.stderr[-4000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    calls = _post(endpoint, "/_rds_emulator/calls", {})
    figures["calls"] = calls
    figures["export_calls_per_cycle"] = calls.get("DescribeExportTasks", 0) / CHECKS
    figures["snapshot_calls_per_cycle"] = calls.get("DescribeDBSnapshots", 0) / CHECKS
    figures["cpu_per_cycle"] = figures["cpu_seconds"] / CHECKS
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--per-trigger-sizes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--per-trigger", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.endpoint, args.child, not args.per_trigger)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen(
            [PYTHON, str(BENCH / "scale_server.py"), str(port_file)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("scale server did not start")
                time.sleep(0.1)
            endpoint = f"http://127.0.0.1:{port_file.read_text()}"
            rows = []
            plan = [(n, True) for n in args.sizes] + [(n, False) for n in args.per_trigger_sizes]
            for n, shared in plan:
                row = run_one(endpoint, n, shared)
                rows.append(row)
                print(
                    f"N={n} ({row['mode']}): {row['waits']} waits, {row['done']} done, "
                    f"CPU {row['cpu_seconds']:.2f} s ({row['cpu_per_cycle']:.2f} s/cycle), "
                    f"calls/cycle exports {row['export_calls_per_cycle']:.1f} snapshots "
                    f"{row['snapshot_calls_per_cycle']:.1f}, peak RSS {row['peak_rss_mb']:.0f} MB, "
                    f"wall {row['wall_seconds']:.1f} s",
                    flush=True,
                )
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    save(
        "triggerer_scale",
        {"rows": rows, "poll_seconds": POLL_SECONDS, "checks": CHECKS, "machine": machine()},
    )


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
