"""A TCP proxy in front of the emulator server that can refuse and reset connections.

Stopping the emulator server itself would lose its state (moto keeps it in memory), so
network outages are played here instead: :meth:`FlakyProxy.go_down` closes the listening
socket (new connections are refused) and resets every open one; :meth:`FlakyProxy.come_back`
listens again on the same port; :meth:`FlakyProxy.reset_next` answers the next requests with
a TCP reset (a connection dropped mid-call). Point the Airflow connection at
:attr:`FlakyProxy.endpoint_url`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["FlakyProxy"]


class FlakyProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``, with outages on demand."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._resets = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def come_back(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        deadline = time.monotonic() + 10
        while True:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                listener.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def go_down(self) -> None:
        """Refuse new connections and reset the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            _close_with_reset(connection)

    def reset_next(self, count: int = 1) -> None:
        """Reset the next ``count`` connections once their request arrives, unanswered."""
        with self._lock:
            self._resets += count

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed: down
            with self._lock:
                reset, self._resets = self._resets > 0, max(self._resets - 1, 0)
            if reset:
                threading.Thread(target=_reset_after_request, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(sink)

    def __enter__(self) -> FlakyProxy:
        self.come_back()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.go_down()


def _reset_after_request(connection: socket.socket) -> None:
    """Read what the client sends, then close with a TCP reset instead of an answer."""
    with contextlib.suppress(OSError):
        connection.settimeout(5)
        connection.recv(65536)
    _close_with_reset(connection)


def _close_with_reset(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # Linger 0: close with a TCP reset, as a dropped connection looks.
        connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        connection.close()
