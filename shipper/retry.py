"""How long to wait before trying a call again.

Capped exponential backoff with full jitter: a uniformly random time between zero
and ``min(cap, base * 2**attempt)``, so that many shippers recovering from one
outage do not retry in step.  Retries never give up: while CloudWatch is away the
files hold the backlog.  What to do about each kind of error is decided by its type
(see the tree in :mod:`shipper.cloudwatch_errors`), in :meth:`shipper.stream.Stream.deliver`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 0.2
    cap: float = 20.0

    def ceiling(self, attempt: int) -> float:
        """The longest pause before retry number ``attempt`` (0 for the first retry)."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 30))

    def delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt``: anywhere up to its ceiling."""
        return (rand or random).uniform(0, self.ceiling(attempt))
