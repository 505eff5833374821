"""What all streams together may hold in memory: as much as one busy stream holds.

Each stream holds at most ``queue_batches`` sealed batches and the one it is filling,
each up to ``max_bytes`` of messages; held as Python objects that is about 2.5 times
as much again.  Forty sources with a backlog each held forty times that (208 MiB of
resident memory where one source took 62).  The budget is shared: while the streams
together hold more than one busy stream does (:func:`for_streams`), a reader whose
stream holds anything waits, and its stream sends what it holds at once rather than
at its flush time.  Every stream still makes progress: what it holds is sent and
frees the budget; a stream holding nothing always takes one more read step.  The
files are the buffer, as when CloudWatch is slow.
"""

from __future__ import annotations

import asyncio


class Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0  # message bytes (with the API's 26 per event) all streams hold
        self._freed = asyncio.Event()

    def spent(self) -> bool:
        return self.held > self.limit

    def change(self, delta: int) -> None:
        """A stream holds ``delta`` bytes more (less, when negative)."""
        self.held += delta
        if delta < 0:
            self._freed.set()  # waiters look again: their own stream may hold nothing now

    async def freed(self) -> None:
        """Wait until some stream holds less than before."""
        self._freed.clear()
        await self._freed.wait()


def for_streams(queue_batches: int, max_bytes: int) -> Budget:
    """The budget of the streams of one shipper: what one busy stream holds while it
    keeps pace, ``queue_batches`` full batches (by default two: the one in flight and
    the one filled meanwhile).

    Twice that, one stream alone was never held back, but forty sources with a backlog
    peaked at 94 MiB of resident memory against 74 with this budget, shipping as fast;
    one busy stream ships as fast with it too (``bench.many_backlogs``, ``bench.run``).
    Half of it, one stream alone is held back: a quarter slower.
    """
    return Budget(queue_batches * max_bytes)
