"""The emulator server, plus one bulk-seeding endpoint for the triggerer-scale benchmark.

The emulator caps running exports at 5 per account and Region, as AWS does, and its control
API creates resources one HTTP call at a time. To have 5,000 export tasks *in progress* at
once, this process (started by ``triggerer_scale.py``, never part of the package) serves the
emulator's usual app (``airflow_rds_export.testing.server.make_app``) and adds
``POST /_bench/seed``, which creates, inside this process's moto backend:

* ``exports`` export tasks ``bench-export-<i>`` of one available snapshot, as the
  emulator's own :class:`EmulatedExportTask` objects (same lifecycle and polling), placed
  in the backend directly: the 5-exports limit is bypassed, nothing else is;
* ``snapshots`` manual DB snapshots ``bench-snap-<i>``, ``creating`` for ``snapshot_polls``
  describe calls (through the emulator's control, as a test would).

Usage: ``python bench/scale_server.py PORT_FILE``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("MOTO_RDS_SNAPSHOT_LIMIT", "100000")


def main(port_file: str) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from airflow_rds_export.testing import backend
    from airflow_rds_export.testing.control import EmulatorControl
    from airflow_rds_export.testing.pacing import Stage
    from airflow_rds_export.testing.server import make_app

    backend.install()
    backend.STATE.hang_mode = "sleep"
    control = EmulatorControl()
    inner = make_app(control)

    def seed(
        exports: int, snapshots: int, export_polls: int, snapshot_polls: int
    ) -> dict[str, Any]:
        control.reset()
        prereq = control.seed_export_prerequisites(bucket="rds-exports")
        control.create_db_instance("orders")
        source = control.create_db_snapshot("bench-source", db_instance_identifier="orders")
        rds = control._rds
        snapshot = rds.database_snapshots["bench-source"]
        pacing = backend.ExportPacing(
            starting=Stage("STARTING", polls=export_polls),
            in_progress=Stage("IN_PROGRESS", polls=export_polls),
        )
        with backend.STATE.lock:
            for i in range(exports):
                name = f"bench-export-{i}"
                kwargs = {
                    "export_task_identifier": name,
                    "source_arn": source["DBSnapshotArn"],
                    "s3_bucket_name": prereq["bucket"],
                    "iam_role_arn": prereq["iam_role_arn"],
                    "kms_key_id": prereq["kms_key_id"],
                    "s3_prefix": "nightly",
                }
                rds.export_tasks[name] = backend.EmulatedExportTask(rds, snapshot, kwargs, pacing)
        for i in range(snapshots):
            control.create_db_snapshot(
                f"bench-snap-{i}", db_instance_identifier="orders", ready_after_polls=snapshot_polls
            )
        control.reset_calls()
        return {"exports": exports, "snapshots": snapshots}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/_bench/seed":
            return inner(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        result = seed(**json.loads(environ["wsgi.input"].read(length)))
        body = json.dumps({"result": result}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    tmp = Path(f"{port_file}.tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(port_file)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1])
