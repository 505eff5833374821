"""shipper.waits: the one wait every loop uses must never lose a cancellation (a
reload that stops a reader relies on it: SPEC §3 promise 1 through issue 18)."""

from __future__ import annotations

import asyncio

import pytest

from shipper.waits import first_set


class TestFirstSet:
    @pytest.mark.parametrize("others", [0, 1], ids=["one event", "two events"])
    def test_a_cancellation_arriving_as_an_event_is_set_is_never_lost(self, others: int) -> None:
        """The event is set and the waiting task cancelled in the same turn of the
        loop, 200 times, at every offset between the two: the task always ends
        cancelled (``asyncio.wait_for`` on Python 3.11 returns normally here).  One
        event is waited for without a task, several with one each: both hold."""

        async def scenario(turns_between: int) -> bool:
            event = asyncio.Event()
            unset = [asyncio.Event() for _ in range(others)]
            task = asyncio.ensure_future(first_set(event, *unset, within=5.0))
            await asyncio.sleep(0)
            event.set()
            for _ in range(turns_between):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return True
            return False

        async def many() -> list[bool]:
            return [await scenario(i % 3) for i in range(200)]

        outcomes = asyncio.run(many())
        # Once the wait has returned (two turns or more), the cancel finds it done:
        # only the runs cancelled before it returned can tell; none of those may pass.
        assert all(outcomes[i] for i in range(0, 200, 3)), "a cancellation was lost"

    def test_returns_when_any_event_is_set_or_the_time_is_up(self) -> None:
        async def scenario() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            first, second = asyncio.Event(), asyncio.Event()
            loop.call_later(0.05, second.set)
            began = loop.time()
            await first_set(first, second, within=5.0)
            woken = loop.time() - began
            began = loop.time()
            await first_set(asyncio.Event(), within=0.05)
            return woken, loop.time() - began

        woken, timed_out = asyncio.run(scenario())
        assert woken < 1.0
        assert 0.04 <= timed_out < 1.0

    @pytest.mark.parametrize("others", [0, 1], ids=["one event", "two events"])
    def test_a_cancelled_wait_leaves_no_waiter_behind(self, others: int) -> None:
        async def scenario() -> int:
            event = asyncio.Event()
            unset = [asyncio.Event() for _ in range(others)]
            task = asyncio.ensure_future(first_set(event, *unset))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            return len(event._waiters)  # type: ignore[attr-defined]

        assert asyncio.run(scenario()) == 0
