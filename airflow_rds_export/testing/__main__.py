"""Command line: ``python -m airflow_rds_export.testing serve [--host H] [--port P] ...``.

Runs the emulator server in the foreground until SIGTERM / Ctrl-C. For shell scripts::

    python -m airflow_rds_export.testing serve --port 0 --port-file /tmp/rds.port &
    while [ ! -s /tmp/rds.port ]; do sleep 0.1; done
    export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat /tmp/rds.port)"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_rds_export.testing",
        description="Emulated Amazon RDS snapshot exports (moto-based), for tests and demos.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the emulator server")
    serve_parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    serve_parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    serve_parser.add_argument("--region", default="us-east-1", help="Region for control calls")
    serve_parser.add_argument(
        "--port-file", default=None, help="write the port to this file once ready"
    )
    args = parser.parse_args(argv)

    from .server import serve

    serve(host=args.host, port=args.port, region_name=args.region, port_file=args.port_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
