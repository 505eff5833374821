"""When and how long to wait before trying a call again.

The decision is one pure function of the error (:func:`is_retriable`); the pause is
capped exponential backoff with full jitter: a uniformly random time between zero
and ``min(cap, base * 2**attempt)``, so that many shippers recovering from one
outage do not retry in step.  Retries never give up: while CloudWatch is away the
files hold the backlog.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shipper.cloudwatch_errors import CloudWatchError, Retriable


def is_retriable(error: CloudWatchError) -> bool:
    """True for errors that go away by themselves: throttling, 5xx, network, credentials."""
    return isinstance(error, Retriable)


@dataclass(frozen=True)
class Backoff:
    base: float = 0.2
    cap: float = 20.0

    def delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 30)))
        return (rand or random).uniform(0, ceiling)
