"""logrotate's ``copytruncate`` seen by the follower, driven by the production reader:
the copy is a prefix of the live file, made while the app writes, then the live file
is emptied in place (SPEC §3 promises 1 and 2; issue 18 item 3)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from shipper import follow
from shipper.checkpoints import SourceCheckpoint
from shipper.config import SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker
from shipper.records import FileEvents
from shipper.render import Renderer
from shipper.source_reader import SourceReader


class InFlight:
    """A stream that keeps what it is handed, unacknowledged until told."""

    def __init__(self) -> None:
        self.steps: list[FileEvents] = []

    async def put(self, events: FileEvents) -> None:
        self.steps.append(events)

    def numbers(self) -> list[int]:
        return [json.loads(e.message)["n"] for step in self.steps for e in step.events]

    def acknowledge(self) -> None:
        for step in self.steps:
            step.position.delivered(step.ends[-1])
        self.steps.clear()


def lines(numbers: range) -> bytes:
    return "".join(json.dumps({"n": n, "pad": "x" * 20}) + "\n" for n in numbers).encode()


def follower_of(live: Path, saved: SourceCheckpoint | None = None) -> Follower:
    source = SourceConfig(category="app", path=live, format="json", output="raw", rotated="number")
    renderer = Renderer("app", "raw", Masker("off"), json_lines=True)
    return Follower(source, saved, renderer, time.time() - 1)


def read_pass(follower: Follower, stream: InFlight) -> list[int]:
    """What one pass of the reader hands over (records left pending are handed too)."""
    before = len(stream.numbers())
    asyncio.run(SourceReader(follower, stream).read_available())
    return stream.numbers()[before:]


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


class TestCopyBeingWritten:
    def test_a_half_written_copy_is_not_read_and_later_goes_on_where_the_original_stopped(
        self, tmp_path: Path
    ) -> None:
        """``cp`` is seen half way, its last line cut: nothing of the copy is read while
        the live file is intact; after the truncation the copy is read from where the
        live file was read, so the lines written while the copy ran arrive once, whole."""
        live, copy = tmp_path / "app.log", tmp_path / "app.log.1"
        live.write_bytes(lines(range(100)))
        stream = InFlight()
        follower = follower_of(live)
        assert read_pass(follower, stream) == list(range(100))
        stream.acknowledge()

        append(live, lines(range(100, 110)))
        content = live.read_bytes()
        copy.write_bytes(content[:700])  # cp has copied a part, mid-line
        assert read_pass(follower, stream) == list(range(100, 110))

        append(live, lines(range(110, 115)))  # the app writes while cp goes on
        copy.write_bytes(live.read_bytes())  # cp done
        os.truncate(live, 0)
        append(live, lines(range(115, 118)))
        got = read_pass(follower, stream)
        assert sorted(got) == list(range(110, 118))
        assert len(got) == len(set(got))
        follower.close()


class TestCopyTornByTheWriter:
    def test_a_line_cp_caught_half_written_arrives_as_the_part_the_copy_holds(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``cp`` reads the live file while the app's write of a line is half done (a
        write crossing a page boundary shows in two steps); the truncation cuts the
        line's rest off the live file.  The copy ends in the line's start, with no
        newline ever to come: once the copy has not grown for ROTATE_WAIT that start
        is shipped, once, and the copy is closed rather than held open for ever."""
        monkeypatch.setattr(follow, "ROTATE_WAIT", 0.3)
        live, copy = tmp_path / "app.log", tmp_path / "app.log.1"
        live.write_bytes(lines(range(10)))
        stream = InFlight()
        follower = follower_of(live)
        assert read_pass(follower, stream) == list(range(10))
        stream.acknowledge()
        half = lines(range(10, 11))[:15]
        copy.write_bytes(live.read_bytes() + lines(range(20, 22)) + half)
        append(live, lines(range(20, 22)) + half)
        assert read_pass(follower, stream) == [20, 21]  # from the live file: the copy waits
        os.truncate(live, 0)
        append(live, lines(range(30, 32)))
        assert read_pass(follower, stream) == [30, 31]
        time.sleep(0.4)
        stream.steps.clear()
        asyncio.run(SourceReader(follower, stream).read_available())
        shipped = [e.message for step in stream.steps for e in step.events]
        assert shipped == [half.decode()]
        stream.acknowledge()
        time.sleep(0.4)
        follower.scan()
        assert all(c.fd is None for c in follower.cursors.values() if c.path == str(copy))
        saved = {Path(f.path).name: f.offset for f in follower.checkpoint().files}
        assert saved["app.log.1"] == copy.stat().st_size
        follower.close()


class TestTruncatedWhileTheReaderIsBehind:
    def test_a_copytruncate_during_a_backlog_s_hand_over_loses_nothing(
        self, tmp_path: Path
    ) -> None:
        """The reader is behind (a backlog of several chunks) and hands its first chunk
        over; meanwhile logrotate copies and truncates the live file and the app writes
        past the offset the reader reached, before any look.  The next read step must
        not take the new content's bytes at the old offset (torn lines, and the copy's
        rest taken as read): the copy's rest and the new content arrive, each line once,
        none torn."""
        live, copy = tmp_path / "app.log", tmp_path / "app.log.1"
        old = range(5000)  # ~200 KB: several read steps
        live.write_bytes(lines(old))
        new = range(10_000, 15_000)

        class RotatedDuringTheHandOver(InFlight):
            async def put(self, events: FileEvents) -> None:
                await super().put(events)
                if not copy.exists():
                    copy.write_bytes(live.read_bytes())
                    os.truncate(live, 0)
                    append(live, lines(new))  # past the offset the reader reached

        stream = RotatedDuringTheHandOver()
        follower = follower_of(live)
        asyncio.run(SourceReader(follower, stream).read_available())
        got = read_pass(follower, stream)  # a later look, as the watcher's would bring
        everything = stream.numbers()
        assert sorted(everything) == [*old, *new], "lines lost, torn or repeated"
        assert got == [] or set(got) <= set(everything)
        follower.close()


class TestDeliveredOffsetsTravelWithTheContent:
    def test_a_checkpoint_after_copytruncate_does_not_claim_lines_in_flight(
        self, tmp_path: Path
    ) -> None:
        """Lines read from the live file and still in flight when it is copied and
        truncated are not claimed by the copy's checkpoint: after a crash they are read
        again from the copy (at least once), and their late acknowledgements, when
        they come, count for the copy."""
        live, copy = tmp_path / "app.log", tmp_path / "app.log.1"
        live.write_bytes(lines(range(50)))
        stream = InFlight()
        follower = follower_of(live)
        assert read_pass(follower, stream) == list(range(50))  # in flight, unacknowledged

        copy.write_bytes(live.read_bytes())
        os.truncate(live, 0)
        assert read_pass(follower, stream) == []
        saved = follower.checkpoint()
        (entry,) = [f for f in saved.files if f.ino == copy.stat().st_ino]
        assert entry.offset == 0, "the copy claims lines that were never delivered"

        crashed = follower_of(live, saved)
        assert read_pass(crashed, InFlight()) == list(range(50))
        crashed.close()

        stream.acknowledge()  # the late acknowledgements reach the copy
        (entry,) = [f for f in follower.checkpoint().files if f.ino == copy.stat().st_ino]
        assert entry.offset == copy.stat().st_size
        follower.close()
