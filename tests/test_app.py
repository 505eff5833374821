"""The lifecycle's task handling (shipper/app.py): a reload stops the readers of
removed and changed sources, and a lost cancellation cannot hang it (issue 18 item 1;
SPEC §3 promise 1: later reloads still apply and added sources start)."""

from __future__ import annotations

import asyncio
import time

from shipper.app import _stop_tasks


async def loses_one_cancellation() -> None:
    """A reader whose wait returned its result instead of raising the cancellation
    (asyncio.wait_for on Python 3.11): it goes on to its next await."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass
    await asyncio.sleep(3600)


async def ignores_cancellation(release: asyncio.Event) -> None:
    """A reader that does not stop, however often it is cancelled, until released."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


class TestStoppingReaders:
    def test_a_reader_that_lost_a_cancellation_is_stopped_by_the_next(self) -> None:
        """The cancellation is repeated until the reader ends: a lost one costs a
        tenth of a second, not a reload that waits forever."""

        async def run() -> tuple[set[str], float, bool]:
            task = asyncio.create_task(loses_one_cancellation())
            await asyncio.sleep(0)
            started = time.monotonic()
            stuck = await _stop_tasks({"app": task}, seconds=5.0)
            return stuck, time.monotonic() - started, task.cancelled()

        stuck, took, cancelled = asyncio.run(run())
        assert stuck == set()
        assert cancelled
        assert took < 1.0

    def test_a_reader_that_never_stops_is_named_after_the_bound(self) -> None:
        """A reader that does not stop holds a reload up for the bound only; it is
        returned (to be reported and left with its source) while the others stop."""

        async def run() -> tuple[set[str], float, bool]:
            release = asyncio.Event()
            stubborn = asyncio.create_task(ignores_cancellation(release))
            ordinary = asyncio.create_task(asyncio.sleep(3600))
            await asyncio.sleep(0)
            started = time.monotonic()
            stuck = await _stop_tasks({"app": stubborn, "db": ordinary}, seconds=0.5)
            took = time.monotonic() - started
            stubborn_done = stubborn.done()
            release.set()
            await stubborn
            return stuck, took, ordinary.cancelled() and not stubborn_done

        stuck, took, ordinary_stopped = asyncio.run(run())
        assert stuck == {"app"}
        assert ordinary_stopped
        assert 0.5 <= took < 1.5
