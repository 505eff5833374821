"""Waiting for one of several events without losing a cancellation.

On Python 3.11 ``asyncio.wait_for`` drops a cancellation that arrives as its inner
wait completes, so a task asked to stop can go on running.  ``asyncio.wait`` with a
timeout has no such window: the one helper here is what every loop of the shipper
waits with (the readers, the reload loop, category discovery).
"""

from __future__ import annotations

import asyncio
import contextlib


async def first_set(*events: asyncio.Event, within: float | None = None) -> None:
    """Return when any of ``events`` is set, or after ``within`` seconds (None: no
    limit).  A cancellation while waiting is raised, never lost.

    A reader waits here a few times a second per source, so the common cases cost no
    task: an event already set, and a single event (``asyncio.timeout`` has no
    window in which a cancellation is dropped).
    """
    if any(event.is_set() for event in events):
        return
    if len(events) == 1:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await events[0].wait()
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
