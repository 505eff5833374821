"""The file-following core (Follower and its Cursors, driven in-process) against a
simple model, under random sequences of write / partial write / rotate /
copytruncate / truncate / delete / restart.

The model knows which lines were written and where they are now.  After every
``sync`` (scan and read until nothing is left, acknowledging each event as the
delivery loop would), what was delivered must be exactly the complete lines written:
each once (SPEC §3 promises 1 and 2).  The only lines
allowed to be missing are those of a file created and deleted while the follower
did not look (between two syncs, or while it was stopped): nothing could read them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shipper.config import SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker
from shipper.records import FileEvents
from shipper.render import Renderer

LIVE = "app.log"


class FollowModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="follow-model-"))
        self.source = SourceConfig(
            category="app", path=self.dir / LIVE, format="json", output="raw"
        )
        self.renderer = Renderer("app", "raw", Masker("off"), json_lines=True)
        # The shipper's first run began a moment ago (file times are coarse-grained).
        self.follower = Follower(self.source, None, self.renderer, time.time() - 1)
        self.files: dict[str, list[int]] = {}  # name -> line numbers it holds
        self.partial: tuple[int, str] | None = None  # a started line: number, rest
        self.looked_at: set[str] = set()  # files present at the last sync
        self.next_line = 0
        self.day = 0
        self.written: list[int] = []
        self.excused: set[int] = set()
        self.delivered: list[int] = []
        # The shipper starts before the app writes: its first scan finds the folder empty.
        self.follower.scan()

    def teardown(self) -> None:
        self.follower.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ the app

    def _new_line(self) -> tuple[int, str]:
        n = self.next_line
        self.next_line += 1
        return n, json.dumps({"n": n, "pad": "x" * (n % 13)}) + "\n"

    def _complete(self, n: int) -> None:
        self.written.append(n)
        self.files.setdefault(LIVE, []).append(n)

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
        with open(self.dir / LIVE, "a") as f:
            f.write(text)

    @precondition(lambda self: self.partial is None)
    @rule(cut=st.integers(1, 10))
    def partial_write(self, cut: int) -> None:
        """The start of a line without its newline; the next write finishes it."""
        n, line = self._new_line()
        self.partial = (n, line[cut:])
        with open(self.dir / LIVE, "a") as f:
            f.write(line[:cut])
        self.files.setdefault(LIVE, [])

    @precondition(lambda self: self.partial is None and LIVE in self.files)
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

    @precondition(lambda self: self.partial is None and LIVE in self.files)
    @rule()
    def copytruncate(self) -> None:
        """logrotate's copytruncate: copy the live file to a new name, truncate it."""
        name = self._rotated_name()
        shutil.copyfile(self.dir / LIVE, self.dir / name)
        os.truncate(self.dir / LIVE, 0)
        self.files[name] = self.files[LIVE]
        self.files[LIVE] = []

    @precondition(lambda self: self.partial is None and LIVE in self.files and self._caught_up())
    @rule()
    def truncate(self) -> None:
        """Truncation in place with nothing left unread (``> app.log``)."""
        os.truncate(self.dir / LIVE, 0)
        self.files[LIVE] = []

    @precondition(lambda self: self.partial is None and self.files)
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

    @rule(other_device=st.booleans())
    def restart(self, other_device: bool) -> None:
        """A graceful restart: the checkpoint of acknowledged offsets, a new follower.
        With ``other_device`` the files come back under another device number (a
        container restarted elsewhere): they are found again by fingerprint."""
        saved = self.follower.checkpoint()
        if other_device:
            moved = [msgspec.structs.replace(f, dev=f.dev + 1) for f in saved.files]
            saved = msgspec.structs.replace(saved, files=moved)
        self.follower.close()
        # Lines left only in deleted files were readable only through the closed descriptors.
        on_disk = {n for lines in self.files.values() for n in lines}
        self.excused.update(set(self.written) - set(self.delivered) - on_disk)
        self.follower = Follower(self.source, saved, self.renderer, time.time())
        self.looked_at.clear()

    # ------------------------------------------------------------------ the shipper

    @rule(quiet=st.booleans())
    def sync(self, quiet: bool) -> None:
        """Scan and read until nothing is left, as the reader loop does; when ``quiet``
        (the files were quiet long enough), the last record of each file is complete."""
        follower = self.follower
        for _ in range(1000):
            progressed = False
            cursors = follower.scan()
            self._deliver(follower.take_orphaned())
            for cursor in cursors:
                while (events := follower.read(cursor, 0)) is not None:
                    progressed = True
                    self._deliver([events])
            if not progressed:
                break
        self.looked_at = set(self.files)
        if not quiet:
            return  # each file's last record may still wait for continuation lines
        for cursor in list(follower.cursors.values()):
            self._deliver([follower.flush_quiet(cursor, 0.0)])
        expected = sorted(n for n in self.written if n not in self.excused)
        assert sorted(set(self.delivered) - self.excused) == expected, self._explain(expected)

    def _deliver(self, steps: Iterable[FileEvents]) -> None:
        for step in steps:
            for event, end in zip(step.events, step.ends, strict=True):
                self.delivered.append(json.loads(event.message)["n"])
                step.position.delivered(end)

    # ------------------------------------------------------------------ checks

    @invariant()
    def each_line_at_most_once(self) -> None:
        assert len(self.delivered) == len(set(self.delivered)), "a line was delivered twice"
        assert set(self.delivered) <= set(self.written)

    def _caught_up(self) -> bool:
        return set(self.written) <= set(self.delivered) | self.excused

    def _held_elsewhere(self, name: str) -> set[int]:
        return {n for other, lines in self.files.items() if other != name for n in lines}

    def _rotated_name(self) -> str:
        self.day += 1
        return f"{LIVE}.{date(2024, 1, 1) + timedelta(days=self.day):%Y%m%d}"

    def _explain(self, expected: list[int]) -> str:
        got = set(self.delivered)
        return f"missing {sorted(set(expected) - got)}, unexpected {sorted(got - set(expected))}"


FollowModel.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestFollowModel = FollowModel.TestCase
