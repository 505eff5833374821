"""Waiting for one of several events without losing a cancellation.

On Python 3.11 ``asyncio.wait_for`` drops a cancellation that arrives as its inner
wait completes, so a task asked to stop can go on running.  ``asyncio.timeout`` has
no such window: :func:`first_set` is what every loop of the shipper waits with (the
readers, the reload loop, category discovery, the checkpoint saves).  Periodic loops
wait for the same instants (:func:`next_tick`), so a quiet shipper wakes seldom.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time


async def first_set(
    *events: asyncio.Event, within: float | None = None, until: float | None = None
) -> None:
    """Return when any of ``events`` is set, after ``within`` seconds, or at ``until``
    (the loop's clock, :func:`time.monotonic`); with neither, no limit.  A
    cancellation while waiting is raised, never lost.

    A reader waits here a few times a second per source, so the common cases cost no
    task: an event already set, and a single event.  ``asyncio.timeout`` has no
    window in which a cancellation is dropped.
    """
    if any(event.is_set() for event in events):
        return
    if within is not None:
        until = asyncio.get_running_loop().time() + within
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(until):
            if len(events) == 1:
                await events[0].wait()
                return
            waiters = [asyncio.ensure_future(event.wait()) for event in events]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()


def tick_of(every: float, now: float | None = None) -> int:
    """Which period of ``every`` seconds of the monotonic clock ``now`` falls in."""
    return math.floor((time.monotonic() if now is None else now) / every)


def next_tick(every: float, now: float | None = None) -> float:
    """When the next period of ``every`` seconds begins (monotonic).  Loops with the
    same period that wait for it wake in one turn of the event loop: on a quiet host
    40 readers' safety-net looks cost one wake-up of the process, not 40."""
    return (tick_of(every, now) + 1) * every
