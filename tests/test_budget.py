"""Streams share one memory budget: together they hold no more than it (and a read
step each), every line still arrives once and in order, and a stream that cannot
deliver does not stop the others.

Real :class:`shipper.stream.Stream` objects deliver through a real client to the
strict front (before moto), whose answers come late.
"""

from __future__ import annotations

import asyncio

from shipper.budget import Budget
from shipper.cloudwatch import LogsClient
from shipper.records import EVENT_OVERHEAD
from shipper.stream import Stream
from tests.support.cloudwatch import MotoServer
from tests.support.eventually import eventually
from tests.support.strict_front import StrictFront
from tests.test_stream_cancellation import (
    LINE_BYTES,
    Acknowledged,
    new_stream,
    step,
    stored,
    with_client,
)

STEP_LINES = 37
STEP_BYTES = STEP_LINES * (len("line-00000") + EVENT_OVERHEAD)


async def _read(stream: Stream, position: Acknowledged, steps: int, held: list[int]) -> None:
    """A reader: ``steps`` read steps handed over one after another, noting after each
    how much all streams held."""
    for first in range(0, steps * STEP_LINES, STEP_LINES):
        await stream.put(step(position, first, STEP_LINES))
        held.append(stream.budget.held)
        await asyncio.sleep(0)


def _streams(client: LogsClient, group: str, names: list[str], budget: Budget) -> list[Stream]:
    streams = []
    for name in names:
        stream = new_stream(client, group, name, max_events=10_000, flush_interval=0.2)
        stream.budget = budget
        streams.append(stream)
    return streams


def test_streams_together_hold_no_more_than_the_budget_and_lose_nothing(
    front: StrictFront, moto: MotoServer, group_prefix: str
) -> None:
    front.inject("slow", seconds=120, delay=0.02)
    group = group_prefix + "/app"
    names = [f"s{n}" for n in range(8)]
    budget = Budget(4 * STEP_BYTES)
    held: list[int] = []

    async def body(client: LogsClient) -> list[int]:
        streams = _streams(client, group, names, budget)
        positions = [Acknowledged(f"/logs/app/{name}.log") for name in names]
        senders = [asyncio.create_task(stream.run()) for stream in streams]
        readers = [
            _read(stream, position, 40, held)
            for stream, position in zip(streams, positions, strict=True)
        ]
        async with asyncio.timeout(60):
            await asyncio.gather(*readers)
        for stream in streams:
            stream.close()
        async with asyncio.timeout(60):
            await asyncio.gather(*senders)
        return [position.offset for position in positions]

    offsets = with_client(front, body)
    lines = 40 * STEP_LINES
    for name, offset in zip(names, offsets, strict=True):
        assert stored(moto, group, name) == [f"line-{n:05d}" for n in range(lines)], name
        assert offset == lines * LINE_BYTES
    # Past the budget, a stream adds at most the step it hands over (one holding
    # nothing, or one whose reader was already waiting) before its reader waits.
    assert max(held) <= budget.limit + len(names) * STEP_BYTES, max(held)
    assert budget.held == 0


def test_a_stream_that_cannot_deliver_does_not_stop_the_others(
    front: StrictFront, moto: MotoServer, group_prefix: str
) -> None:
    """Stream ``down`` is refused for 3 s and holds the whole budget meanwhile; stream
    ``up`` still delivers all its lines in that time, a batch at a time."""
    group = group_prefix + "/app"
    budget = Budget(2 * STEP_BYTES)

    async def body(client: LogsClient) -> float:
        down, up = _streams(client, group, ["down", "up"], budget)
        senders = [asyncio.create_task(stream.run()) for stream in (down, up)]
        # Both streams exist before the fault: a stream's first batch creates it.
        await down.put(step(Acknowledged("/logs/app/down.log"), 0, 1))
        await up.put(step(Acknowledged("/logs/app/up.log"), 0, 1))
        await eventually(lambda: front.put_count("down") >= 1 and front.put_count("up") >= 1)
        front.inject("unavailable", seconds=3.0, stream="down")
        loop = asyncio.get_running_loop()
        began = loop.time()
        down_position = Acknowledged("/logs/app/down.log")
        down_reading = asyncio.create_task(_read_from(down, down_position, 1, 20))
        up_position = Acknowledged("/logs/app/up.log")
        async with asyncio.timeout(30):
            await _read_from(up, up_position, 1, 20)
        await eventually(lambda: up_position.offset == (1 + 20 * STEP_LINES) * LINE_BYTES)
        up_done = loop.time() - began
        async with asyncio.timeout(30):
            await down_reading
        down.close()
        up.close()
        async with asyncio.timeout(30):
            await asyncio.gather(*senders)
        return up_done

    up_done = with_client(front, body)
    assert up_done < 3.0, f"the up stream took {up_done:.1f} s while the other was down"
    lines = 1 + 20 * STEP_LINES
    for name in ("down", "up"):
        assert stored(moto, group, name) == [f"line-{n:05d}" for n in range(lines)], name


async def _read_from(stream: Stream, position: Acknowledged, first: int, steps: int) -> None:
    for start in range(first, first + steps * STEP_LINES, STEP_LINES):
        await stream.put(step(position, start, STEP_LINES))
        await asyncio.sleep(0)
