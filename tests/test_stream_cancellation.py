"""A stream under cancellation: what a reader handed over is never dropped, and a
cancelled sender always stops.

Real :class:`shipper.stream.Stream` objects deliver through a real client to the
strict front (before moto), which holds each answer back so acknowledgements come
late and out of step with the reads.  SPEC §3 promise 1 (nothing lost): a reload or
a shutdown cancels readers and senders at whatever await they are in.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shipper.batcher import Batcher
from shipper.cloudwatch import LogsClient
from shipper.config import CloudWatchConfig
from shipper.records import EVENT_OVERHEAD, Event, FileEvents
from shipper.retry import Backoff
from shipper.stream import Stream
from tests.support.cloudwatch import MotoServer
from tests.support.strict_front import StrictFront

LINE_BYTES = 10  # each test line "ends" this many bytes after the one before


class Acknowledged:
    """A followed file as the stream sees it: it records how far it was acknowledged."""

    category = "app"

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0

    def delivered(self, offset: int) -> None:
        assert offset >= self.offset, "acknowledgements went backwards"
        self.offset = offset


def step(position: Acknowledged, first: int, count: int) -> FileEvents:
    """One read step: lines ``first`` .. ``first + count - 1`` of ``position``'s file."""
    now = int(time.time() * 1000)
    events = [Event(now, f"line-{n:05d}") for n in range(first, first + count)]
    return FileEvents(
        position,
        events,
        [len(e.message) + EVENT_OVERHEAD for e in events],
        [(n + 1) * LINE_BYTES for n in range(first, first + count)],
    )


def new_stream(
    client: LogsClient,
    group: str,
    name: str,
    *,
    max_events: int,
    flush_interval: float,
    on_delivered: Callable[[], None] = lambda: None,
) -> Stream:
    return Stream(
        group,
        name,
        client,
        Batcher(max_events, 1_048_576),
        flush_interval,
        queue_batches=2,
        create_group=True,
        retention_days=None,
        backoff=Backoff(base=0.05, cap=0.2),
        on_delivered=on_delivered,
    )


def with_client(front: StrictFront, body: Callable[[LogsClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        client = LogsClient(CloudWatchConfig(endpoint_url=front.url, request_timeout=10))
        await client.open()
        try:
            return await body(client)
        finally:
            await client.close()

    return asyncio.run(run())


def stored(moto: MotoServer, group: str, name: str) -> list[str]:
    return [e["message"] for e in moto.events(group, name)]


class TestReaderCancelledWhileWaitingForSpace:
    def test_every_step_handed_over_is_delivered_and_acknowledged_in_order(
        self, front: StrictFront, moto: MotoServer, group_prefix: str
    ) -> None:
        """Promise 1: a reader cancelled at any moment (most often while the full stream
        makes it wait for space) loses nothing it handed over: every line of every step
        it called ``put`` with reaches CloudWatch once, in order, and the acknowledged
        offset is exactly the end of its last step, never past a line not stored.
        Answers are held back 30 ms and steps (37 lines) do not align with batches (10)."""
        front.inject("slow", seconds=120, delay=0.03)
        group = group_prefix + "/app"
        rng = random.Random(18)
        step_lines = 37

        async def body(client: LogsClient) -> list[tuple[str, int, int]]:
            rounds = []
            for round_no in range(6):
                name = f"round-{round_no}"
                position = Acknowledged(f"/logs/app/{name}.log")
                stream = new_stream(client, group, name, max_events=10, flush_interval=0.05)
                sender = asyncio.create_task(stream.run())
                handed: list[int] = []  # lines handed to put, step by step

                async def read(
                    position: Acknowledged = position,
                    stream: Stream = stream,
                    handed: list[int] = handed,
                ) -> None:
                    for first in range(0, 100 * step_lines, step_lines):
                        handed.append(first + step_lines)
                        await stream.put(step(position, first, step_lines))
                        await asyncio.sleep(0)  # as the reader yields after each step

                reader = asyncio.create_task(read())
                await asyncio.sleep(rng.uniform(0.01, 0.3))
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                assert reader.cancelled()
                stream.close()
                await asyncio.wait_for(sender, 30)
                rounds.append((name, handed[-1] if handed else 0, position.offset))
            return rounds

        for name, lines, offset in with_client(front, body):
            messages = stored(moto, group, name)
            assert messages == [f"line-{n:05d}" for n in range(lines)], (
                f"{name}: {lines} lines handed over, {len(messages)} stored"
            )
            assert offset == lines * LINE_BYTES, f"{name}: acknowledged {offset // LINE_BYTES}"


class TestSenderCancellation:
    def test_a_cancellation_arriving_as_the_wait_completes_is_never_lost(
        self, front: StrictFront, moto: MotoServer, group_prefix: str
    ) -> None:
        """A sender waiting for its flush time is woken (a batch sealed) and cancelled
        within the same few turns of the event loop, 25 times at each of four
        distances: every time it stops.  (``asyncio.wait_for`` on Python 3.11 returns
        the wait's result instead, and a shutdown waiting for the sender hangs.)"""
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> list[int]:
            position = Acknowledged("/logs/app/app.log")
            delivered = asyncio.Event()
            stream = new_stream(
                client, group, "s", max_events=5, flush_interval=60.0, on_delivered=delivered.set
            )
            # A first batch goes at once and creates the stream; later ones wait.
            sender = asyncio.create_task(stream.run())
            await stream.put(step(position, 0, 1))
            await delivered.wait()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            lines = 1
            lost = []
            for distance in range(4):
                for _ in range(25):
                    sender = asyncio.create_task(stream.run())
                    # One pending line: the sender waits up to flush_interval for company.
                    await stream.put(step(position, lines, 1))
                    lines += 1
                    while stream.sealed:  # the batch a cancelled sender left
                        delivered.clear()
                        await delivered.wait()
                    for _ in range(3):
                        await asyncio.sleep(0)  # into its timed wait
                    await stream.put(step(position, lines, 5))  # seals: wakes the sender
                    lines += 5
                    for _ in range(distance):
                        await asyncio.sleep(0)
                    sender.cancel()
                    done, _ = await asyncio.wait({sender}, timeout=0.5)
                    if not (done and sender.cancelled()):
                        lost.append(distance)
                        sender.cancel()
                        await asyncio.gather(sender, return_exceptions=True)
            return lost

        lost = with_client(front, body)
        assert lost == [], f"{len(lost)} of 100 cancellations lost, at distances {set(lost)}"
