"""PostgreSQL and Redis servers for a production-shaped Airflow deployment.

Each server is the Debian package's binary (``scripts/services.sh`` installs them), run as
our own process on 127.0.0.1 on a free port, with a throw-away data directory, never the
package's system service. As root, PostgreSQL runs as the ``postgres`` user (it refuses
root). Only the standard library and psycopg2 (a dev dependency) are imported.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from e2e.deployment import free_port

__all__ = ["PostgresServer", "RedisServer", "ServiceError", "services_missing"]


class ServiceError(RuntimeError):
    """A server did not start, or did not answer."""


def _postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    return Path(found[-1]).parent if found else None


def _version_key(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def services_missing() -> str | None:
    """Why the servers cannot run here (None: they can)."""
    if _postgres_bin_dir() is None:
        return "PostgreSQL is not installed (scripts/services.sh installs it)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (scripts/services.sh installs it)"
    return None


class _Server:
    """One server process in its own session, its output in ``log_path``."""

    name = "server"

    def __init__(self, logs_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"airflow-e2e-{self.name}-"))
        self.log_path = logs_dir / f"{self.name}.log"
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.restarts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def run_as(self) -> str | None:
        return None

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(
            f"\n===== start {self.name} at {time.strftime('%H:%M:%S')} =====\n".encode()
        )
        self._log.flush()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self.run_as(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited at start: {self.tail()}")
            with contextlib.suppress(Exception):
                if self.ready():
                    return
            time.sleep(0.2)
        raise ServiceError(f"{self.name} not ready after {timeout:g} s: {self.tail()}")

    def stop(self, sig: int = signal.SIGINT, grace: float = 20) -> None:
        """Stop the server (``SIGINT``: PostgreSQL's fast shutdown); SIGKILL after grace."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def close(self) -> None:
        """Stop it and delete its data directory."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Any:
        self.setup()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setup(self) -> None:
        """Prepare the data directory (before the first start)."""


class PostgresServer(_Server):
    """A PostgreSQL cluster with a database ``airflow`` owned by the superuser ``airflow``
    (trust authentication on 127.0.0.1; fsync off: the data is thrown away)."""

    name = "postgres"
    user = "airflow"
    database = "airflow"

    def __init__(self, logs_dir: Path) -> None:
        super().__init__(logs_dir)
        bin_dir = _postgres_bin_dir()
        if bin_dir is None:
            raise ServiceError(str(services_missing()))
        self.bin_dir = bin_dir

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow uses."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def setup(self) -> None:
        owner = self.run_as()
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=owner,
        )

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def connect(self, database: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname=database or self.database,
            connect_timeout=5,
        )

    def ready(self) -> bool:
        conn = self.connect("postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()
        return True

    def execute(self, sql: str, *params: Any) -> int:
        """Run one statement and commit it; returns the row count."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                count = int(cur.rowcount)
            conn.commit()
            return count
        finally:
            conn.close()

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                names = [col.name for col in cur.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()


class RedisServer(_Server):
    """A Redis server without persistence (the Celery broker)."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            str(shutil.which("redis-server")),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
