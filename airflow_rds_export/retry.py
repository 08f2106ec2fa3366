"""The one retry policy: capped exponential backoff with jitter after transient errors.

botocore's ``standard`` retry mode retries a throttled or failed call a few times within
one check. When a check still fails, the wait that made it backs off with
:func:`backoff_delay` before checking again, on a worker and in the triggerer alike.
Permanent errors are never retried: :mod:`airflow_rds_export.decisions` fails them at once.
"""

from __future__ import annotations

import random

__all__ = ["BACKOFF_BASE_SECONDS", "BACKOFF_CAP_SECONDS", "backoff_delay"]

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0


def backoff_delay(
    failures: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Seconds to wait after ``failures`` transient errors in a row (capped, jittered).

    The ceiling doubles with each failure from ``base`` up to ``cap``; the delay is drawn
    from its upper half, so many waits failing together do not retry together.
    """
    ceiling = min(cap, base * 2 ** min(failures, 16))
    return random.uniform(ceiling / 2, ceiling)
