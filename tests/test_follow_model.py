"""The file-following core against a simple model, driven by the production reader.

The :class:`SourceReader` that ``run`` and ``preview`` use follows one source inside an
event loop the test turns by hand, and hands its steps to a harsh fake stream: it
takes a step whole or, cancelled before it took it, not at all; it then holds the
reader while it has too many steps; its acknowledgements come late, in delivery
order, at moments unrelated to the reads.  Between turns the app writes (whole and
partial lines), rotates, deletes, truncates, and runs logrotate's copytruncate as a
copy made chunk by chunk while the app keeps writing, then a truncation.  The reader
is cancelled at whatever await it is at (a reload), crashes (everything not saved is
gone; CloudWatch may have stored what was in flight without answering), or stops
gracefully.

What must hold (SPEC §3 promises 1 and 2):

- after a graceful stop, every complete line written has been delivered exactly once;
- after crashes, at least once: more than once only lines in flight at a crash
  (stored, answer lost) and lines written while a copy of their file was being made;
- the only lines allowed to be missing are those of a file created and deleted while
  the follower did not look (between two scans, or while it was stopped).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from shipper import follow
from shipper.checkpoints import SourceCheckpoint
from shipper.config import SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker
from shipper.records import FileEvents
from shipper.render import Renderer
from shipper.source_reader import SourceReader

LIVE = "app.log"
SMALL_READ_STEP = 256  # bytes a read step takes: a few lines


class HarshStream:
    """A stream that takes a step all or nothing, holds the reader while it has
    ``capacity`` steps, and acknowledges only when told to, oldest step first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_flight: deque[FileEvents] = deque()
        self.space = asyncio.Event()
        self.space.set()

    async def put(self, events: FileEvents) -> None:
        await asyncio.sleep(0)  # cancelled here, the stream has none of the step
        self.in_flight.append(events)
        while len(self.in_flight) >= self.capacity:
            self.space.clear()
            await self.space.wait()  # cancelled here, the stream keeps the whole step

    def deliver(self, count: int) -> list[int]:
        """Store the ``count`` oldest steps and acknowledge them; their line numbers."""
        lines = []
        for _ in range(min(count, len(self.in_flight))):
            step = self.in_flight.popleft()
            lines += _numbers(step)
            step.position.delivered(step.ends[-1])  # as a batch acknowledges a run
        self.space.set()
        return lines


def _numbers(step: FileEvents) -> list[int]:
    return [json.loads(event.message)["n"] for event in step.events]


@dataclass
class Copy:
    """logrotate's copy under way: its name, the bytes copied, the lines written since."""

    name: str
    copied: int = 0
    written_meanwhile: tuple[int, ...] = ()


class FollowModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="follow-model-"))
        self.source = SourceConfig(
            category="app", path=self.dir / LIVE, format="json", output="raw"
        )
        self.renderer = Renderer("app", "raw", Masker("off"), json_lines=True)
        self.loop = asyncio.new_event_loop()
        self.files: dict[str, list[int]] = {}  # name -> line numbers it holds
        self.partial: tuple[int, str] | None = None  # a started line: number, rest
        self.copying: Copy | None = None
        self.looked_at: set[str] = set()  # files present at the follower's last scan
        self.next_line = 0
        self.day = 0
        self.written: list[int] = []
        self.excused: set[int] = set()
        self.delivered: list[int] = []
        self.repeats_allowed: Counter[int] = Counter()
        self.task: asyncio.Task[None] | None = None
        self._read_chunk = follow.READ_CHUNK

    @initialize(capacity=st.integers(1, 4))
    def start(self, capacity: int) -> None:
        """The shipper's first run begins (file times are coarse-grained: a moment ago),
        before the app writes; its first look finds the folder empty."""
        self.stream = HarshStream(capacity)
        # Read steps of a few lines: a reader behind reads step after step, as on a
        # backlog, with writes, rotations and truncations coming between its steps.
        self._read_chunk, follow.READ_CHUNK = follow.READ_CHUNK, SMALL_READ_STEP
        self._start(Follower(self.source, None, self.renderer, time.time() - 1))
        self._turns(3)
        self.saved = self.follower.checkpoint()

    def teardown(self) -> None:
        if self.task is not None:
            self._end_task()
            self.follower.close()
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        follow.READ_CHUNK = self._read_chunk

    # ------------------------------------------------------------------ the app

    def _new_line(self) -> tuple[int, str]:
        n = self.next_line
        self.next_line += 1
        return n, json.dumps({"n": n, "pad": "x" * (n % 13)}) + "\n"

    def _complete(self, n: int) -> None:
        self.written.append(n)
        self.files.setdefault(LIVE, []).append(n)
        if self.copying is not None:
            self.copying.written_meanwhile += (n,)

    def _append(self, name: str, text: str) -> None:
        with open(self.dir / name, "a") as f:
            f.write(text)
        self._changed()

    def _changed(self) -> None:
        self.reader.wake.set()  # as the folder watcher does

    @rule(count=st.integers(1, 40))
    def write(self, count: int) -> None:
        text = ""
        if self.partial is not None:  # first the rest of the line partial_write began
            n, rest = self.partial
            self.partial = None
            text += rest
            self._complete(n)
        for _ in range(count):
            n, line = self._new_line()
            text += line
            self._complete(n)
        self._append(LIVE, text)

    @precondition(lambda self: self.partial is None)
    @rule(cut=st.integers(1, 10))
    def partial_write(self, cut: int) -> None:
        """The start of a line without its newline; the next write finishes it."""
        n, line = self._new_line()
        self.partial = (n, line[cut:])
        self.files.setdefault(LIVE, [])
        self._append(LIVE, line[:cut])

    @precondition(lambda self: self.partial is None and LIVE in self.files and not self.copying)
    @rule()
    def rotate(self) -> None:
        """TimedRotatingFileHandler at midnight: rename, then a new empty live file."""
        name = self._rotated_name()
        os.rename(self.dir / LIVE, self.dir / name)
        self.files[name] = self.files.pop(LIVE)
        if LIVE in self.looked_at:
            self.looked_at.add(name)
            self.looked_at.discard(LIVE)  # the new live file is another one
        (self.dir / LIVE).touch()
        self.files[LIVE] = []
        self._changed()

    @precondition(lambda self: LIVE in self.files and self.copying is None)
    @rule()
    def copy_begins(self) -> None:
        """logrotate's copytruncate starts: ``cp`` creates the copy, still empty."""
        self.copying = Copy(self._rotated_name())
        (self.dir / self.copying.name).touch()
        self._changed()

    @precondition(lambda self: self.copying is not None)
    @rule(size=st.integers(1, 700))
    def copy_goes_on(self, size: int) -> None:
        """``cp`` copies the next chunk (cut anywhere, mid-line too), racing the app."""
        self._copy_next(size)
        self._changed()

    def _copy_next(self, size: int) -> None:
        assert self.copying is not None
        with open(self.dir / LIVE, "rb") as original:
            original.seek(self.copying.copied)
            chunk = original.read(size)
        with open(self.dir / self.copying.name, "ab") as copy:
            copy.write(chunk)
        self.copying.copied += len(chunk)

    @precondition(lambda self: self.copying is not None and self.partial is None)
    @rule()
    def copy_ends_and_truncates(self) -> None:
        """``cp`` copies the rest, then ``truncate -s 0`` empties the live file."""
        self._copy_ends_and_truncate()
        self._changed()

    @precondition(lambda self: self.copying is not None and self.partial is None)
    @rule(count=st.integers(1, 60), late_by=st.integers(1, 12))
    def copytruncate_and_writes_the_reader_hears_of_late(self, count: int, late_by: int) -> None:
        """``cp`` copies the rest, ``truncate -s 0`` empties the live file and the app at
        once writes past where the reader had read; the watcher's news of it all comes
        ``late_by`` turns later, so a reader behind reads on meanwhile (what it hands over
        delivered as it goes) without a look."""
        self._copy_ends_and_truncate()
        text = ""
        for _ in range(count):
            n, line = self._new_line()
            text += line
            self._complete(n)
        with open(self.dir / LIVE, "a") as f:
            f.write(text)
        for _ in range(late_by):
            self._turns(1)
            self._deliver(len(self.stream.in_flight))
        self._changed()

    def _copy_ends_and_truncate(self) -> None:
        assert self.copying is not None
        self._copy_next(1 << 30)
        os.truncate(self.dir / LIVE, 0)
        self.files[self.copying.name] = self.files[LIVE]
        self.files[LIVE] = []
        self.repeats_allowed.update(self.copying.written_meanwhile)
        self.copying = None

    @precondition(
        lambda self: (
            self.partial is None and LIVE in self.files and not self.copying and self._caught_up()
        )
    )
    @rule()
    def truncate(self) -> None:
        """Truncation in place with nothing left undelivered (``> app.log``)."""
        os.truncate(self.dir / LIVE, 0)
        self.files[LIVE] = []
        self._changed()

    @precondition(lambda self: self.partial is None and self.files and not self.copying)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """The app removes a file (backupCount, or the live file: delete and recreate)."""
        name = data.draw(st.sampled_from(sorted(self.files)))
        os.unlink(self.dir / name)
        lines = self.files.pop(name)
        if name not in self.looked_at:
            # Never seen by the follower: whatever it alone held could not be read.
            self.excused.update(set(lines) - set(self.delivered) - self._held_elsewhere(name))
        self.looked_at.discard(name)
        self._changed()

    # ------------------------------------------------------------------ the shipper

    @rule(turns=st.integers(1, 30))
    def read_a_while(self, turns: int) -> None:
        """The event loop turns: the reader goes on to its next awaits."""
        self._turns(turns)

    @rule(count=st.integers(1, 5))
    def deliver(self, count: int) -> None:
        """CloudWatch stores the oldest steps; each delivery saves checkpoints, as the
        app's ``on_delivered`` does."""
        self._deliver(count)

    @rule()
    def save(self) -> None:
        """A checkpoint save at any moment (the interval's, a reload's)."""
        self.saved = self.follower.checkpoint()

    @rule()
    def catch_up(self) -> None:
        """Read and deliver until the reader waits for news."""
        self._catch_up()

    @rule(turns=st.integers(0, 12))
    def reload(self, turns: int) -> None:
        """A reload that changed the source: its reader is cancelled at whatever await
        it has reached, what the stream took is delivered, and a new follower starts
        from the old one's checkpoint."""
        self._turns(turns)
        self._end_task()
        self._deliver(len(self.stream.in_flight))
        self.saved = self.follower.checkpoint()
        self._restart_from(self.saved)

    @rule(caught_up=st.booleans(), other_device=st.booleans())
    def graceful_restart(self, caught_up: bool, other_device: bool) -> None:
        """SIGTERM: the reader stops, hands over its pending records, everything is
        delivered and saved; a new process starts from the checkpoint.  With
        ``other_device`` the files come back under another device number (a container
        restarted elsewhere): they are found again by fingerprint."""
        if caught_up:
            self._catch_up()
        self.stop.set()
        for _ in range(10_000):
            assert self.task is not None
            if self.task.done():
                break
            self._turns(1)
            self._deliver(len(self.stream.in_flight))
        assert self.task is not None
        assert self.task.done(), "the reader did not stop"
        self.task.result()
        self._deliver(len(self.stream.in_flight))
        saved = self.follower.checkpoint()
        if caught_up:
            self._check_complete()
        if other_device:
            moved = [msgspec.structs.replace(f, dev=f.dev + 1) for f in saved.files]
            saved = msgspec.structs.replace(saved, files=moved)
        self.saved = saved
        self._restart_from(saved)

    @rule(answer_lost=st.booleans(), turns=st.integers(0, 12))
    def crash(self, answer_lost: bool, turns: int) -> None:
        """SIGKILL at whatever await the reader has reached: what was in flight is gone
        (or stored with CloudWatch's answer lost); the next process starts from the
        last saved checkpoint."""
        self._turns(turns)
        self._end_task()
        if answer_lost:
            stored = [n for step in self.stream.in_flight for n in _numbers(step)]
            self.delivered += stored
            self.repeats_allowed.update(stored)
        self.stream = HarshStream(self.stream.capacity)
        self._restart_from(self.saved)

    # ------------------------------------------------------------------ driving

    def _start(self, follower: Follower) -> None:
        self.follower = follower
        self.stop = asyncio.Event()
        self.reader = SourceReader(follower, self.stream, on_scan=self._looked)
        self.task = self.loop.create_task(self.reader.run(self.stop))

    def _looked(self, follower: Follower, whole_folder: bool) -> None:
        self.looked_at = set(self.files)
        if self.copying is not None:
            self.looked_at.add(self.copying.name)

    def _turns(self, count: int) -> None:
        for _ in range(count):
            self.loop.run_until_complete(asyncio.sleep(0))

    def _end_task(self) -> None:
        """Cancel the reader where it is; nothing of it runs after this."""
        assert self.task is not None
        self.task.cancel()
        while not self.task.done():
            self._turns(1)
        if not self.task.cancelled():
            self.task.result()  # a reader that failed fails the test
        self.task = None

    def _restart_from(self, saved: SourceCheckpoint) -> None:
        self.follower.close()
        # Lines left only in deleted files were readable only through the closed descriptors.
        on_disk = {n for lines in self.files.values() for n in lines}
        self.excused.update(set(self.written) - set(self.delivered) - on_disk)
        self.looked_at.clear()
        self._start(Follower(self.source, saved, self.renderer, time.time()))

    def _deliver(self, count: int) -> None:
        if self.stream.in_flight:
            self.delivered += self.stream.deliver(count)
            self.saved = self.follower.checkpoint()

    def _catch_up(self) -> None:
        for _ in range(10_000):
            self._turns(1)
            self._deliver(len(self.stream.in_flight))
            waiting = self.reader.idle.is_set() and not self.reader.wake.is_set()
            if waiting and not self.stream.in_flight:
                return
        raise AssertionError("the reader never caught up")

    # ------------------------------------------------------------------ checks

    def _check_complete(self) -> None:
        """Every complete line written (and not excused) delivered: none missing."""
        expected = sorted(n for n in self.written if n not in self.excused)
        got = sorted(set(self.delivered) - self.excused)
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        assert got == expected, f"missing {missing}, unexpected {unexpected}"

    @invariant()
    def no_line_more_often_than_allowed(self) -> None:
        counts = Counter(self.delivered)
        repeated = {n: c for n, c in counts.items() if c > 1 + self.repeats_allowed[n]}
        assert not repeated, f"delivered more often than allowed: {repeated}"
        assert set(counts) <= set(self.written)

    def _caught_up(self) -> bool:
        return set(self.written) <= set(self.delivered) | self.excused

    def _held_elsewhere(self, name: str) -> set[int]:
        return {n for other, lines in self.files.items() if other != name for n in lines}

    def _rotated_name(self) -> str:
        self.day += 1
        return f"{LIVE}.{date(2024, 1, 1) + timedelta(days=self.day):%Y%m%d}"


FollowModel.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestFollowModel = FollowModel.TestCase


class QuietLooksFollowModel(FollowModel):
    """The same sequences, with quiet whiles between, and file times trusted once 30 ms
    old (a few clock ticks) rather than 2 s: a look that finds the folder and its files
    as the last look at all of them left them stops at their stats (the quiet-folder
    rescan).  Nothing may be lost or repeated for it."""

    def __init__(self) -> None:
        super().__init__()
        self._doubt = follow.TIMESTAMP_DOUBT_NS
        follow.TIMESTAMP_DOUBT_NS = 30_000_000

    def teardown(self) -> None:
        follow.TIMESTAMP_DOUBT_NS = self._doubt
        super().teardown()

    @rule(turns=st.integers(1, 10))
    def rescan_after_a_quiet_while(self, turns: int) -> None:
        """Nothing changes for longer than file times are doubted; then the periodic
        rescan looks at the folder."""
        time.sleep(0.04)
        self.reader.wake.set()  # as the rescan period's start does
        self._turns(turns)


QuietLooksFollowModel.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None
)
TestQuietLooksFollowModel = QuietLooksFollowModel.TestCase
