"""Fault injection and call counting for the emulated RDS API.

Every RDS request the emulator receives passes through :func:`before_action` (installed
around moto's ``RDSResponse.call_action`` by :mod:`.backend`), so the same rules work for
in-process moto and for the server subprocess:

* each request is counted under its action name (``DescribeExportTasks``, ...);
* the first matching :class:`FaultRule` may answer instead of moto: a ``Throttling``
  error ("Rate exceeded", HTTP 400, as AWS throttles), a 5xx, any 4xx AWS error a test
  names (a refusal: ``AccessDenied`` 403, ``KMSKeyNotAccessibleFault`` 400, ...), or
  silence (a hang); or let moto act and then lose its answer (a 500 after the work is
  done, as when a connection drops or a worker dies right after AWS accepted a request).

Rules match one action name or ``"*"`` and end after ``count`` calls, after ``seconds``,
or when cleared. A ``fraction`` rule is deterministic: with ``fraction=0.5`` exactly every
second matching call is throttled (an accumulator, not a random draw), so tests that
count retries do not flake.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal
from xml.sax.saxutils import escape

__all__ = [
    "RDS_XML_NAMESPACE",
    "CallLog",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "HangRequested",
    "ResponseLost",
    "query_error_response",
]

RDS_XML_NAMESPACE = "http://rds.amazonaws.com/doc/2014-10-31/"

FaultKind = Literal["throttle", "server_error", "refuse", "hang", "lose_response"]

_SERVER_ERROR_CODES = {500: "InternalFailure", 502: "BadGateway", 503: "ServiceUnavailable"}


def query_error_response(
    code: str, message: str, status: int = 400
) -> tuple[int, dict[str, str], str]:
    """Render an error as the RDS Query protocol does: ``(status, headers, XML body)``.

    botocore reads ``Code`` and ``Message`` from the body; ``Type`` is ``Sender`` for 4xx
    and ``Receiver`` for 5xx, as AWS sends them.
    """
    fault_type = "Receiver" if status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{RDS_XML_NAMESPACE}">'
        f"<Error><Type>{fault_type}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    headers = {"Content-Type": "text/xml"}
    return status, headers, body


@dataclass
class FaultRule:
    """One injected fault. See :class:`FaultInjector` for how rules are matched."""

    kind: FaultKind
    operation: str = "*"
    remaining: int | None = None
    fraction: float | None = None
    until: float | None = None
    status: int = 400
    hang_seconds: float = 0.0
    #: ``refuse`` only: the error code and message to answer with.
    code: str = ""
    message: str = ""
    _accumulated: float = field(default=0.0, repr=False)

    def matches(self, action: str) -> bool:
        return self.operation in ("*", action)

    def expired(self, now: float) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return True
        return self.until is not None and now >= self.until

    def fires(self) -> bool:
        """Decide for one matching call, and use up one of ``remaining`` if it fires."""
        if self.fraction is not None:
            self._accumulated += self.fraction
            if self._accumulated < 1.0 - 1e-9:
                return False
            self._accumulated -= 1.0
        if self.remaining is not None:
            self.remaining -= 1
        return True


class HangRequested(Exception):
    """Raised by :func:`FaultInjector.before_action` to ask the transport for a hang."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"hang for {seconds} s")
        self.seconds = seconds


class ResponseLost(Exception):
    """Raised by :func:`FaultInjector.before_action`: process the call, then answer 500."""


class FaultInjector:
    """The process-wide list of fault rules. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def decide(self, action: str) -> FaultRule | None:
        """Return the rule that answers this call, if any (first matching rule wins)."""
        now = time.monotonic()
        with self._lock:
            self._rules = [rule for rule in self._rules if not rule.expired(now)]
            for rule in self._rules:
                if rule.matches(action) and rule.fires():
                    return rule
        return None

    def before_action(self, action: str) -> tuple[int, dict[str, str], str] | None:
        """Return an error response to send instead of moto's, or ``None`` to proceed.

        Raises :class:`HangRequested` for a hang; the caller decides what a hang means
        for its transport (a silent socket in server mode, a read timeout in-process).
        """
        rule = self.decide(action)
        if rule is None:
            return None
        if rule.kind == "throttle":
            return query_error_response("Throttling", "Rate exceeded", 400)
        if rule.kind == "server_error":
            code = _SERVER_ERROR_CODES.get(rule.status, "InternalFailure")
            return query_error_response(code, f"Injected HTTP {rule.status}", rule.status)
        if rule.kind == "refuse":
            return query_error_response(rule.code, rule.message, rule.status)
        if rule.kind == "lose_response":
            raise ResponseLost()
        raise HangRequested(rule.hang_seconds)


class CallLog:
    """Counts RDS actions received, by action name. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, action: str) -> None:
        with self._lock:
            self._counts[action] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
