"""The one loop that drives a follower (:mod:`shipper.source_reader`): what ``run``,
``preview`` and the model test all read files through."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shipper.config import SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker
from shipper.records import FileEvents
from shipper.render import Renderer
from shipper.source_reader import SourceReader
from tests.support.eventually import eventually

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class Kept:
    """A stream that keeps each step it is handed."""

    def __init__(self) -> None:
        self.steps: list[FileEvents] = []

    async def put(self, events: FileEvents) -> None:
        self.steps.append(events)

    def messages(self) -> list[str]:
        return [event.message for step in self.steps for event in step.events]


def follower_of(live: Path) -> Follower:
    source = SourceConfig(category="app", path=live, format=FORMAT, output="raw")
    return Follower(source, None, Renderer("app", "raw", Masker("off"), False), time.time() - 60)


def line(text: str) -> str:
    return f"2024-01-02 03:04:05,000 INFO {text}\n"


async def until_idle(reader: SourceReader) -> None:
    async with asyncio.timeout(10):
        await reader.idle.wait()


class TestCancellation:
    def test_a_cancellation_arriving_as_a_wait_ends_is_never_lost(self, tmp_path: Path) -> None:
        """A reader cancelled (a reload removing its source) at the moment its wait for
        news completes ends, every time: Python 3.11's ``asyncio.wait_for`` can swallow
        such a cancellation and leave the reader running (issue 18 item 1)."""
        live = tmp_path / "app.log"
        live.write_text(line("one"))

        async def attempt(turns_between: int, wake_first: bool) -> bool:
            reader = SourceReader(follower_of(live), Kept())
            task = asyncio.create_task(reader.run(asyncio.Event()))
            await until_idle(reader)
            if wake_first:
                reader.wake.set()
            for _ in range(turns_between):
                await asyncio.sleep(0)
            task.cancel()
            if not wake_first:
                reader.wake.set()
            try:
                async with asyncio.timeout(5):
                    await asyncio.wait([task])
            finally:
                reader.follower.close()
            return task.cancelled()

        async def attempts() -> list[bool]:
            return [
                await attempt(turns, wake_first)
                for _ in range(15)
                for turns in range(6)
                for wake_first in (True, False)
            ]

        assert all(asyncio.run(attempts()))


class TestOrder:
    def test_an_older_file_is_handed_over_whole_before_a_newer_one(self, tmp_path: Path) -> None:
        """A rotated file's records (its last one included) all come before any of the
        live file's: per stream, records arrive in file order (SPEC §3 promise 5)."""
        live = tmp_path / "app.log"
        rotated = tmp_path / "app.log.20240101"
        rotated.write_text("".join(line(f"old-{n}") for n in range(3000)))
        live.write_text("".join(line(f"new-{n}") for n in range(10)))
        follower = follower_of(live)
        follower.first_run = False  # covered since before the rotation: nothing is history
        kept = Kept()
        asyncio.run(SourceReader(follower, kept).read_available())
        follower.close()
        words = [m.split()[-1] for m in kept.messages()]
        assert words == [f"old-{n}" for n in range(3000)] + [f"new-{n}" for n in range(10)]
        assert len(kept.steps) > 2  # read in steps, not in one go


class TestCostPerWrite:
    def test_a_write_costs_no_read_after_the_one_that_reached_the_end(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A quiet source's write is read in one step: the read that reaches the file's
        end is not followed by another that would only find the end (on a host of
        many quiet sources that second read was as many again)."""
        live = tmp_path / "app.log"
        live.write_text("".join(line(f"start-{n}") for n in range(20)))  # past its fingerprint
        reads = 0
        starts = 0  # reads of a file's first bytes: its identity checked
        real_pread = os.pread
        me = threading.current_thread()

        def pread(fd: int, count: int, offset: int) -> Any:
            nonlocal reads, starts
            if threading.current_thread() is me:
                reads += 1
                starts += offset == 0
            return real_pread(fd, count, offset)

        monkeypatch.setattr(os, "pread", pread)

        async def scenario() -> list[tuple[int, int]]:
            kept = Kept()
            stop = asyncio.Event()
            reader = SourceReader(
                follower_of(live),
                kept,
                rescan_interval=lambda: 60.0,
                changes=lambda: {live.name},  # what the watcher names after a write
            )
            task = asyncio.create_task(reader.run(stop))
            await until_idle(reader)
            costs = []
            for n in range(5):
                before = reads, starts
                with live.open("a") as file:
                    file.write(line(f"w{n}"))
                reader.wake.set()  # as the watcher does on the write
                handed = 20 + n + 1
                await eventually(lambda handed=handed: len(kept.messages()) == handed)
                await until_idle(reader)
                costs.append((reads - before[0], starts - before[1]))
            stop.set()
            await task
            reader.follower.close()
            return costs

        # Per write, two steps: the one that reads the line, and the one that hands it
        # over once the file was quiet for the continuation-line wait (its read finds
        # the end).  No third step only to find the end; each step's look at the file
        # the watcher named checks its first bytes, and so does the read of the line
        # (what was read is the content first seen there, not another's).
        costs = asyncio.run(scenario())
        assert max(reads - starts for reads, starts in costs) <= 2
        assert max(starts for _, starts in costs) <= 3


class TestBusyFile:
    def test_a_file_growing_while_it_is_read_is_read_on_at_once_not_gathered(
        self, tmp_path: Path
    ) -> None:
        """The read that reaches the live file's end is followed by a wait for news, and
        news gathered until just before the sink sends (one read per batch for a steady
        source).  A file that grew while that read was handed over (the watcher woke the
        reader meanwhile) is busy: it is read on at once, so a backlog keeps pace with
        its writer and logrotate's truncation finds as little as possible unread."""
        live = tmp_path / "app.log"
        live.write_text("".join(line(f"start-{n}") for n in range(20)))
        sends_in = 5.0
        arrived: dict[str, float] = {}

        class GrowsWhileHanded(Kept):
            """The app writes while the reader hands its step over, and the watcher says
            so, as it does on a busy file."""

            async def put(self, events: FileEvents) -> None:
                await super().put(events)
                now = time.monotonic()
                arrived.update((e.message.rsplit(" ", 1)[-1], now) for e in events.events)
                if not any(word.startswith("busy") for word in arrived):
                    with live.open("a") as file:
                        file.write("".join(line(f"busy-{n}") for n in range(3)))
                    wake.set()

        async def scenario() -> float:
            stop = asyncio.Event()
            reader = SourceReader(
                follower_of(live),
                GrowsWhileHanded(),
                wake,
                rescan_interval=lambda: 60.0,
                changes=lambda: {live.name},
                sends_at=lambda: began + sends_in,  # a batch held, sent in 5 s
            )
            began = time.monotonic()
            task = asyncio.create_task(reader.run(stop))
            await eventually(lambda: "busy-1" in arrived, seconds=2 * sends_in)
            stop.set()
            await task
            reader.follower.close()
            return arrived["busy-1"] - began

        wake = asyncio.Event()  # what the watcher sets
        # Gathered, it would come just before the send, 5 s on.
        assert asyncio.run(scenario()) < sends_in / 2


class TestStopping:
    def test_stopping_hands_over_the_record_waiting_for_continuation_lines(
        self, tmp_path: Path
    ) -> None:
        """Asked to stop, the reader hands over the last record (a traceback's, which
        could still have continued) before it returns: nothing read is left behind."""
        live = tmp_path / "app.log"
        live.write_text(line("first") + line("failed") + "Traceback (most recent call last):\n")

        async def scenario() -> Kept:
            kept = Kept()
            stop = asyncio.Event()
            reader = SourceReader(follower_of(live), kept, rescan_interval=lambda: 60.0)
            task = asyncio.create_task(reader.run(stop))
            await until_idle(reader)
            waiting = kept.messages()
            stop.set()
            async with asyncio.timeout(5):
                await task
            reader.follower.close()
            assert waiting == [line("first").rstrip("\n")]
            return kept

        messages = asyncio.run(scenario()).messages()
        assert len(messages) == 2
        assert messages[1].endswith("failed\nTraceback (most recent call last):")
