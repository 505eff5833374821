"""A quiet source's news is gathered while its stream times a batch: the writes of one
batch are read in one step, not one step each, and still go in that batch.

A real :class:`~shipper.stream.Stream` delivers through a real client to the strict
front (before moto); a real :class:`~shipper.source_reader.SourceReader` follows a
file the standard library's handler writes, woken after each write as the watcher
wakes it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path

from shipper.cloudwatch import LogsClient
from shipper.follow import MULTILINE_WAIT
from shipper.records import FileEvents
from shipper.source_reader import SourceReader
from shipper.stream import Stream
from tests.support.cloudwatch import MotoServer
from tests.support.eventually import eventually
from tests.support.strict_front import StrictFront
from tests.test_source_reader import FORMAT, follower_of
from tests.test_stream_cancellation import new_stream, stored, with_client

FLUSH = 0.5


class Counted:
    """The stream as the reader sees it, noting when each line was handed over."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.steps = 0
        self.puts = 0  # PutLogEvents calls for the quiet writes
        self.handed: dict[str, float] = {}

    async def put(self, events: FileEvents) -> None:
        self.steps += 1
        now = time.monotonic()
        for event in events.events:
            self.handed[event.message.rsplit(" ", 1)[-1]] = now
        await self.stream.put(events)

    def sends_at(self) -> float | None:
        return self.stream.sends_at()


def delivered(front: StrictFront) -> int:
    """Events the front has passed on to moto (counted there, without a blocking call)."""
    return sum(put.events for put in front.puts if put.stream == "gathered")


def _logger(path: Path) -> logging.Logger:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(f"gathering.{path}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def follow_writes(
    path: Path, front: StrictFront, group: str, writes: int, every: float, answers_late: float = 0.0
) -> tuple[Counted, dict[str, float]]:
    """``writes`` lines written ``every`` seconds apart, read and delivered by a real
    reader and stream; the reader's view, and when each line was written.  With
    ``answers_late``, each of those writes' PutLogEvents is stored at once and answered
    that many seconds later."""
    path.touch()
    logger = _logger(path)
    written: dict[str, float] = {}

    async def body(client: LogsClient) -> Counted:
        stream = new_stream(client, group, "gathered", max_events=10_000, flush_interval=FLUSH)
        sink = Counted(stream)
        reader = SourceReader(follower_of(path), sink, sends_at=sink.sends_at)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(stream.run()), asyncio.create_task(reader.run(stop))]
        # A stream's first batch goes at once (nothing to gather for): once it has
        # created the stream, the source's writes begin.
        logger.info("written start")
        reader.wake.set()
        await eventually(lambda: delivered(front) >= 1)
        sink.steps = 0
        if answers_late:
            front.inject("slow", seconds=3600, stream="gathered", delay=answers_late)
        puts_before = front.put_count("gathered")
        for n in range(writes):
            word = f"w{n:03d}"
            logger.info("written %s", word)
            written[word] = time.monotonic()
            reader.wake.set()  # as the watcher does on the write
            await asyncio.sleep(every)
        await eventually(lambda: delivered(front) >= writes + 1)
        sink.puts = front.put_count("gathered") - puts_before
        stop.set()
        stream.close()
        await asyncio.gather(*tasks)
        reader.follower.close()
        return sink

    return with_client(front, body), written


def lateness(sink: Counted, written: dict[str, float]) -> dict[str, float]:
    """Lines handed over more than a flush interval after they were complete: when the
    next line was written, or (the last) when the file was quiet for the
    continuation-line wait."""
    words = sorted(written)
    complete = {w: written[after] for w, after in itertools.pairwise(words)}
    complete[words[-1]] = written[words[-1]] + MULTILINE_WAIT
    return {w: sink.handed[w] - at for w, at in complete.items() if sink.handed[w] - at > FLUSH}


def test_a_steady_sources_writes_are_read_once_per_batch_and_still_go_in_it(
    tmp_path: Path, front: StrictFront, moto: MotoServer, group_prefix: str
) -> None:
    group = group_prefix + "/app"
    sink, written = follow_writes(tmp_path / "app.log", front, group, writes=24, every=0.1)
    words = [m.rsplit(" ", 1)[-1] for m in stored(moto, group, "gathered")]
    assert words == ["start", *sorted(written)]  # all, once, in order
    # One read per batch, and one for the first write after each batch went out: far
    # fewer steps than writes, and so PutLogEvents calls.
    assert sink.steps <= 12, f"{sink.steps} read steps for 24 writes"
    assert sink.puts <= 8
    # Gathering delays reading only up to the batch a record is complete for.
    assert not lateness(sink, written)


def test_a_quiet_sources_line_is_read_at_once_not_held_for_a_batch(
    tmp_path: Path, front: StrictFront, moto: MotoServer, group_prefix: str
) -> None:
    """A line every two flush intervals: nothing is held when it comes, so nothing is
    gathered for; it is handed over once complete (the continuation-line wait)."""
    group = group_prefix + "/app"
    sink, written = follow_writes(tmp_path / "app.log", front, group, writes=3, every=2 * FLUSH)
    words = [m.rsplit(" ", 1)[-1] for m in stored(moto, group, "gathered")]
    assert words == ["start", *sorted(written)]
    assert not lateness(sink, written)
    assert all(sink.handed[w] - at < MULTILINE_WAIT + 0.25 for w, at in written.items())


def test_late_answers_neither_hold_a_gathered_read_nor_reorder_it(
    tmp_path: Path, front: StrictFront, moto: MotoServer, group_prefix: str
) -> None:
    """Each answer comes 1.5 flush intervals after the call: batches queue behind the
    one in flight, the current batch's time passes while it waits, and the reader
    still hands every line over in time, each once, in order."""
    group = group_prefix + "/app"
    sink, written = follow_writes(
        tmp_path / "app.log", front, group, writes=24, every=0.1, answers_late=1.5 * FLUSH
    )
    words = [m.rsplit(" ", 1)[-1] for m in stored(moto, group, "gathered")]
    assert words == ["start", *sorted(written)]
    answered_late = [put.slow for put in front.puts if put.stream == "gathered"]
    assert len(answered_late) > 2
    assert all(answered_late[1:])  # every call for the writes was answered late
    assert not lateness(sink, written)
