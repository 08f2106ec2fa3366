"""Server mode: the emulator in a subprocess, for Airflow processes, a scheduler, a demo.

Why a subprocess: entering ``moto.mock_aws()`` anywhere in a process resets the backends
that a ``ThreadedMotoServer`` in the same process serves, so a server sharing a process
with in-process tests would lose its state under them.

The subprocess (``python -m airflow_rds_export.testing serve``) serves moto's whole AWS
API (with the RDS patches of :mod:`.backend`) and, under ``/_rds_emulator/``, the control
methods of :class:`~airflow_rds_export.testing.control.EmulatorControl`:

* ``POST /_rds_emulator/<method>`` with a JSON object of keyword arguments (datetimes as
  ISO-8601 strings) answers ``{"result": ...}``, or HTTP 400 ``{"error": "..."}``;
* ``GET /_rds_emulator/health`` answers ``{"ok": true}`` once the server is ready.

:class:`RemoteControl` is the client side: the same methods, forwarded over HTTP.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EmulatorControlError

if TYPE_CHECKING:
    from .control import EmulatorControl

    _ControlBase = EmulatorControl
else:
    _ControlBase = object

__all__ = ["CONTROL_PREFIX", "EmulatorServer", "RemoteControl", "make_app", "serve"]

CONTROL_PREFIX = "/_rds_emulator/"

_WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------- server side


def make_app(control: EmulatorControl) -> _WsgiApp:
    """A WSGI app: the control endpoints under :data:`CONTROL_PREFIX`, moto for the rest."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .control import CONTROL_METHODS

    moto_app = DomainDispatcherApplication(create_backend_app)

    def reply(start_response: Callable[..., Any], status: str, payload: Any) -> list[bytes]:
        body = json.dumps(payload, default=_json_default).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return moto_app(environ, start_response)
        name = path[len(CONTROL_PREFIX) :]
        if name == "health":
            return reply(start_response, "200 OK", {"ok": True})
        if name not in CONTROL_METHODS or environ.get("REQUEST_METHOD") != "POST":
            return reply(start_response, "404 Not Found", {"error": f"no control {name!r}"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            kwargs = json.loads(environ["wsgi.input"].read(length) or b"{}")
            result = getattr(control, name)(**kwargs)
        except (EmulatorControlError, TypeError, ValueError) as error:
            return reply(start_response, "400 Bad Request", {"error": str(error)})
        return reply(start_response, "200 OK", {"result": result})

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    region_name: str = "us-east-1",
    port_file: str | os.PathLike[str] | None = None,
) -> None:
    """Run the emulator server in this process until SIGTERM/SIGINT.

    ``port=0`` picks a free port. When ready, the port is printed (``PORT <n>``) and, if
    ``port_file`` is given, written to it (atomically), so scripts can wait for the file.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from . import backend
    from .control import EmulatorControl

    backend.install()
    backend.STATE.hang_mode = "sleep"
    control = EmulatorControl(region_name=region_name)
    server = make_server(
        host, port, make_app(control), threaded=True, request_handler=MotoRequestHandler
    )
    actual_port = server.server_address[1]
    _start_clock(backend.tick)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if port_file is not None:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(str(actual_port))
        tmp.replace(port_file)
    print(f"PORT {actual_port}", flush=True)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()


def _start_clock(tick: Callable[[], None], interval: float = 0.1) -> None:
    """Call ``tick`` every ``interval`` seconds in a daemon thread: time-paced snapshots
    and exports change status, and publish their RDS events, when their time is up."""
    import threading

    def run() -> None:
        while True:
            time.sleep(interval)
            with contextlib.suppress(Exception):  # a failed tick must not stop the clock
                tick()

    threading.Thread(target=run, name="rds-emulator-clock", daemon=True).start()


# ---------------------------------------------------------------- client side


class RemoteControl(_ControlBase):
    """The control methods of :class:`EmulatorControl`, forwarded to an emulator server.

    Built from :data:`~airflow_rds_export.testing.control.CONTROL_METHODS`, with each
    method's signature and docstring, so ``srv.control.throttle(...)`` reads and behaves
    as ``emu.throttle(...)``. Errors arrive as :class:`EmulatorControlError`.
    """

    def __init__(self, base_url: str, region_name: str, account_id: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.region_name = region_name
        self.account_id = account_id
        self.timeout = timeout

    def _invoke(self, name: str, kwargs: dict[str, Any]) -> Any:
        body = json.dumps(kwargs, default=_json_default).encode()
        request = urllib.request.Request(
            f"{self.base_url}{CONTROL_PREFIX}{name}",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())["result"]
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", str(error))
            except ValueError:
                message = str(error)
            raise EmulatorControlError(message) from None


def _forwarder(name: str) -> Callable[..., Any]:
    from .control import EmulatorControl

    target = getattr(EmulatorControl, name)
    signature = inspect.signature(target)

    def method(self: RemoteControl, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        arguments = dict(bound.arguments)
        arguments.pop("self")
        return self._invoke(name, arguments)

    method.__name__ = name
    method.__qualname__ = f"RemoteControl.{name}"
    method.__doc__ = target.__doc__
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


def _install_forwarders() -> None:
    from .control import CONTROL_METHODS

    for name in CONTROL_METHODS:
        setattr(RemoteControl, name, _forwarder(name))


_install_forwarders()


class EmulatorServer:
    """Run the emulator server in a subprocess and talk to it.

    ``with EmulatorServer() as srv:`` starts ``python -m airflow_rds_export.testing serve``,
    waits until it answers, and stops it (with its whole process group) on exit.

    :param region_name: the Region the control methods act on.
    :param port: the port to listen on; 0 picks a free one (kept across restarts).
    :param host: the interface to bind.
    :param startup_timeout: seconds to wait for the server to answer.

    :meth:`stop` then :meth:`start` restarts on the same port with **empty state**
    (every resource, pacing and fault is lost), as a crashed-and-restarted endpoint would.
    """

    def __init__(
        self,
        region_name: str = "us-east-1",
        port: int = 0,
        host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
    ) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID

        self.region_name = region_name
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.control = RemoteControl(self.endpoint_url, region_name, DEFAULT_ACCOUNT_ID)

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` (the port is known once started when ``port=0``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmulatorServer:
        """Start the subprocess and wait until it answers."""
        if self.running:
            return self
        # The server's output, kept for the error message if it fails to start.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        port_file = Path(tempfile.mkdtemp(prefix="rds-emulator-")) / "port"
        command = [
            sys.executable,
            "-m",
            "airflow_rds_export.testing",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--region",
            self.region_name,
            "--port-file",
            str(port_file),
        ]
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self.port = self._wait_for_port(port_file)
        finally:
            port_file.unlink(missing_ok=True)
            port_file.parent.rmdir()
        self.control.base_url = self.endpoint_url
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        """Stop the subprocess and its children (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _wait_for_port(self, port_file: Path) -> int:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if port_file.exists():
                return int(port_file.read_text())
            if self._process.poll() is not None:
                raise RuntimeError(f"emulator server exited early:\n{self._log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"emulator server did not start within {self.startup_timeout} s")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.endpoint_url}{CONTROL_PREFIX}health"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"emulator server did not answer within {self.startup_timeout} s")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
