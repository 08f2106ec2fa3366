"""How an emulated resource moves from one status to the next: by polls or by seconds.

Real RDS resources change status on their own time. A test needs that time to be
*chosen*: "this snapshot is ``creating`` for three describe calls", "this export stays
``STARTING`` for two seconds". A :class:`Progress` walks a resource through a list of
:class:`Stage` objects, each lasting either a number of polls or a number of seconds.

Why not moto's ``ManagedState``? It holds one transition setting per *model name* for
the whole process, gives every step the same length, and is driven by reads of
``.status`` (moto's XML rendering reads it more than once per response). The emulator
needs per-resource, per-stage durations and an exact "one describe call = one poll",
so polls are counted at the API action level (see :mod:`.backend`), and this module only
does the bookkeeping.

A poll is counted *before* the status is reported: ``Stage("creating", polls=3)`` means
"three describe calls report ``creating``; the fourth reports the next stage". A stage of
zero polls or zero seconds is skipped when the resource reaches it, except the first stage,
which is what the create call itself reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Progress", "Stage"]


@dataclass(frozen=True)
class Stage:
    """One status of a resource and how long it lasts.

    :param status: the status reported while the resource is in this stage.
    :param polls: number of describe calls that report this status before moving on.
    :param seconds: wall-clock seconds this status lasts before moving on.
        Give at most one of ``polls`` / ``seconds``; give neither for a final stage.
    """

    status: str
    polls: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.polls is not None and self.seconds is not None:
            raise ValueError(f"stage {self.status!r}: give polls or seconds, not both")
        if (self.polls is not None and self.polls < 0) or (
            self.seconds is not None and self.seconds < 0
        ):
            raise ValueError(f"stage {self.status!r}: durations must not be negative")

    @property
    def is_final(self) -> bool:
        """A final stage never ends by itself."""
        return self.polls is None and self.seconds is None

    @property
    def is_empty(self) -> bool:
        """A zero-length stage: skipped when reached."""
        return self.polls == 0 or self.seconds == 0


class Progress:
    """A resource's walk through its stages.

    Not thread-safe on its own: the emulator calls it under its state lock.

    :param stages: the stages in order; the last one should be final.
    :param clock: a monotonic clock (injectable for unit tests).
    """

    def __init__(
        self, stages: Sequence[Stage], clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not stages:
            raise ValueError("a Progress needs at least one stage")
        self._clock = clock
        self._stages: list[Stage] = list(stages)
        self._index = 0
        self._polls_reported = 0
        self._entered_at = clock()

    @property
    def stage(self) -> Stage:
        """The current stage (time-paced stages are brought up to date first)."""
        self.refresh()
        return self._stages[self._index]

    @property
    def status(self) -> str:
        """The current status (time-paced stages are brought up to date first)."""
        return self.stage.status

    def poll(self) -> str:
        """Count one describe call of this resource and return the status it reports."""
        self.refresh()
        current = self._stages[self._index]
        if current.polls is not None and self._polls_reported >= current.polls:
            self._enter(self._index + 1)
        self._polls_reported += 1
        return self._stages[self._index].status

    def refresh(self) -> None:
        """Move past every time-paced stage whose seconds are up."""
        while True:
            current = self._stages[self._index]
            if current.seconds is None:
                return
            ends_at = self._entered_at + current.seconds
            if self._clock() < ends_at or self._index + 1 >= len(self._stages):
                return
            # Chain from the scheduled end, not from "now", so long sleeps stay exact.
            self._enter(self._index + 1, entered_at=ends_at)

    def fraction(self) -> float:
        """How far through the current stage the resource is, in ``[0, 1)``.

        Poll-paced: after ``k`` of ``n`` polls, ``k / (n + 1)`` (so 3 polls give 1/4, 2/4,
        3/4). Time-paced: elapsed / duration. A final stage reports 0.
        """
        current = self.stage
        if current.polls is not None:
            return min(self._polls_reported / (current.polls + 1), 0.99)
        if current.seconds:
            return min((self._clock() - self._entered_at) / current.seconds, 0.99)
        return 0.0

    def replace(self, stages: Sequence[Stage]) -> None:
        """Leave the current stage now and walk ``stages`` instead (cancel, fail, ...)."""
        if not stages:
            raise ValueError("replace() needs at least one stage")
        self._stages = list(stages)
        self._index = 0
        self._polls_reported = 0
        self._entered_at = self._clock()

    def _enter(self, index: int, entered_at: float | None = None) -> None:
        index = min(index, len(self._stages) - 1)
        # Skip zero-length stages, but never past the last one.
        while self._stages[index].is_empty and index + 1 < len(self._stages):
            index += 1
        self._index = index
        self._polls_reported = 0
        self._entered_at = self._clock() if entered_at is None else entered_at
