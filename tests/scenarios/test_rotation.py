"""Rotation scenarios (issue cases 1 to 5): real stdlib handlers and real file operations
rotate, delete and replace files while (or before) a real shipper process follows
them; the records are read back from the moto server.  Each holds SPEC §3 promises 1
(nothing lost) and 2 (no duplicates) through one way files move.
"""

from __future__ import annotations

import logging.handlers
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.scenarios.conftest import (
    LINE_END,
    RECORD_ID,
    AppLog,
    Scenario,
    delivered_since,
    rollover,
    timed_handler,
)
from tests.support.process import ShipperProcess, wait_until


def obeying_file_modes() -> list[str]:
    """A command prefix under which the shipper obeys file modes even when run as root
    (as CI runs it): setpriv drops the capabilities that let root read any file."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot be enforced")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


class TestRenameRotation:
    @pytest.mark.parametrize(
        ("suffix", "namer"),
        [
            ("%Y%m%d", False),
            ("%Y-%m-%d", False),
            ("%Y-%m-%d_%H-%M", False),
            ("%Y%m%d", True),
        ],
        ids=["Ymd", "Y-m-d", "Y-m-d_H-M", "namer-app.DATE.log"],
    )
    def test_repeated_midnight_rotation_while_running(
        self, scenario: Scenario, suffix: str, namer: bool
    ) -> None:
        """Case 1: four midnight rollovers while the shipper runs, with the configured
        suffix (or a namer's app.<date>.log): every record once."""
        handler = timed_handler(scenario.live, suffix)
        if namer:
            # app.log.20240101 -> app.20240101.log
            handler.namer = lambda name: name.replace(".log.", ".") + ".log"
        log = AppLog(handler)
        try:
            with ShipperProcess(scenario.config({"rotated": suffix})) as shipper:
                for day in range(4):
                    log.write(60)
                    wait_until(lambda d=day: len(scenario.ids()) >= 30 + d * 60, timeout=20)
                    rollover(handler, day)
                log.write(60)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            rotated = sorted(p.name for p in scenario.live.parent.iterdir())
            assert len(rotated) == 5, rotated
            if namer:
                assert "app.20240101.log" in rotated
            assert shipper.find("file.rotated")
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)


class TestRotationWhileDown:
    def test_files_rotated_while_stopped_are_finished_oldest_first(
        self, scenario: Scenario
    ) -> None:
        """Case 2: rotations while the shipper is down; at start it finds the rotated
        files it had not finished (by identity), ships their rest oldest first, then
        the live file: no duplicates, no gaps, in writing order."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config()
        try:
            with ShipperProcess(config) as shipper:
                log.write(100)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            # Down: the file it was reading gets more lines, then three rollovers.
            for day in range(3):
                log.write(80)
                rollover(handler, day)
            log.write(40)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)
        assert scenario.ids() == log.written  # oldest file first, each in file order


STALE_WORKERS = """
import logging, logging.handlers, multiprocessing, sys, time
sys.path.insert(0, {root!r})
from tests.support.writer import force_rollover, hold_midnight

def worker(k, path, count, rollover_at):
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight")
    handler.suffix = "%Y%m%d"
    hold_midnight(handler)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("w")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    for n in range(count):
        logger.info("rec-w%d-%05d from worker %d", k, n, k)
        if n == rollover_at:
            force_rollover(handler, 0)  # every worker rolls over for the same midnight
        time.sleep(0.004)
    handler.close()

if __name__ == "__main__":
    path, workers, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    procs = [
        multiprocessing.Process(target=worker, args=(k, path, count, count // 4 * (k + 1)))
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
"""


class TestStaleWriters:
    def test_workers_rotating_one_file_each_with_its_own_handler(
        self, scenario: Scenario, tmp_path: Path
    ) -> None:
        """Case 3: three gunicorn-like workers, each with its own handler on one file,
        roll over at different moments: the others keep appending to the renamed file,
        and each later rollover deletes the rotated file and renames the new live file
        over it.  Every line is shipped once: the deleted files are read to their end
        through the descriptors the shipper holds."""
        scenario.live.parent.mkdir(parents=True)
        script = tmp_path / "workers.py"
        root = str(Path(__file__).resolve().parents[2])
        script.write_text(STALE_WORKERS.format(root=root))
        workers, count = 3, 400
        with ShipperProcess(scenario.config()) as shipper:
            subprocess.run(
                [sys.executable, str(script), str(scenario.live), str(workers), str(count)],
                check=True,
                timeout=120,
            )
            expected = [f"rec-w{k}-{n:05d}" for k in range(workers) for n in range(count)]
            scenario.wait_delivered(expected)
            assert shipper.stop() == 0
        # The later rollovers replaced the rotated file: one survives, the rest were deleted.
        assert sorted(p.name for p in scenario.live.parent.iterdir()) == [
            "app.log",
            "app.log.20240101",
        ]
        scenario.assert_exactly_once(expected)


class TestExternalRotation:
    def test_logrotate_create_renames_numbered_files(self, scenario: Scenario) -> None:
        """Case 4 (create): WatchedFileHandler, logrotate renames app.log.1 -> app.log.2
        and app.log -> app.log.1 (rotated: number); the handler reopens app.log."""
        scenario.live.parent.mkdir(parents=True)
        log = AppLog(logging.handlers.WatchedFileHandler(scenario.live))
        try:
            with ShipperProcess(scenario.config({"rotated": "number"})) as shipper:
                for _ in range(3):
                    log.write(70)
                    for n in (2, 1):
                        older = scenario.live.with_name(f"app.log.{n}")
                        if older.exists():
                            older.rename(scenario.live.with_name(f"app.log.{n + 1}"))
                    scenario.live.rename(scenario.live.with_name("app.log.1"))
                log.write(50)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)

    def test_logrotate_copytruncate(self, scenario: Scenario) -> None:
        """Case 4 (copytruncate): the live file is copied to app.log.1 then truncated in
        place, three times, while the handler keeps writing.  The truncation is seen,
        reading restarts at 0, and what was written between the last read and the
        truncation is read from the copy (matched by fingerprint): nothing lost, and
        the copy's already-read part is not shipped again."""
        scenario.live.parent.mkdir(parents=True)
        log = AppLog(logging.handlers.WatchedFileHandler(scenario.live))
        try:
            with ShipperProcess(scenario.config({"rotated": "number"})) as shipper:
                for round_ in range(3):
                    log.write(50)
                    # Let the shipper read some of it, then write more it has not read.
                    wait_until(lambda r=round_: len(scenario.ids()) >= r * 80 + 50, timeout=20)
                    log.write(30)
                    log.handler.flush()
                    for n in (2, 1):
                        older = scenario.live.with_name(f"app.log.{n}")
                        if older.exists():
                            older.rename(scenario.live.with_name(f"app.log.{n + 1}"))
                    shutil.copyfile(scenario.live, scenario.live.with_name("app.log.1"))
                    os.truncate(scenario.live, 0)
                log.write(40)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            assert shipper.find("file.truncated")
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)


# Lines the racing writer writes per millisecond or so: enough that ``cp`` takes a
# while and the shipper can see the copy half written.
LINES_PER_MS = 20
# Events per batch in the racing test, the batches a stream holds, and the seconds
# between checkpoint saves (the defaults).
MAX_EVENTS = 500
QUEUE_BATCHES = 2
CHECKPOINT_INTERVAL = 1.0
# copytruncates in the racing test (each a chance to see a copy half written), and the
# one during which the shipper is killed.
ROUNDS = 5
KILLED_IN_ROUND = 2


class _RacingWriter:
    """An app logging through ``WatchedFileHandler`` from a thread, ``LINES_PER_MS``
    lines a millisecond or so, while the test rotates under it."""

    def __init__(self, path: Path) -> None:
        self.log = AppLog(logging.handlers.WatchedFileHandler(path))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.log.write(LINES_PER_MS)
            time.sleep(0.001)

    def count(self) -> int:
        return len(self.log.written)

    def __enter__(self) -> _RacingWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.log.close()


def _copytruncate(live: Path) -> None:
    """What logrotate's ``copytruncate`` runs, as separate commands: shift the numbered
    copies, ``cp`` the live file, then ``truncate -s 0`` it."""
    numbered = sorted(int(p.name.rpartition(".")[2]) for p in live.parent.glob("app.log.*"))
    for n in reversed(numbered):
        live.with_name(f"app.log.{n}").rename(live.with_name(f"app.log.{n + 1}"))
    subprocess.run(["cp", str(live), str(live.with_name("app.log.1"))], check=True)


def _ids_on_disk(folder: Path) -> set[str]:
    """The ids of the whole lines the files hold."""
    found = set()
    for path in folder.iterdir():
        whole = path.read_text().rpartition("\n")[0]
        found.update(m.group() for m in RECORD_ID.finditer(whole))
    return found


def _torn_on_disk(folder: Path, written: list[str]) -> list[str]:
    """The ids of the lines files end with the start of: ``cp`` read the file while the
    app's write of a line was half done (a write crossing a page boundary), and the
    truncation cut its rest off the live file."""
    torn = []
    for path in folder.iterdir():
        whole, _, rest = path.read_text().rpartition("\n")
        if rest:
            last = RECORD_ID.findall(whole)[-1]  # each line's successor is the next written
            torn.append(written[written.index(last) + 1])
    return torn


def _torn_arrived(scenario: Scenario) -> list[str]:
    """The messages CloudWatch holds of lines shipped without their end."""
    messages = (e["message"] for e in scenario.moto.events(scenario.group))
    return [m for m in messages if LINE_END not in m]


def _torn_missing(scenario: Scenario, torn: list[str]) -> int:
    """How many of the ``torn`` lines did not arrive whole (read whole from the live file)."""
    return len(set(torn) - set(scenario.ids(whole_only=True)))


class TestCopytruncateRacingTheWriter:
    def test_cp_and_truncate_while_writing_with_a_kill(self, scenario: Scenario) -> None:
        """Case 4 (copytruncate) as logrotate does it: ``cp`` then ``truncate -s 0`` while
        a WatchedFileHandler writes many lines a millisecond, five times, and the
        shipper is killed with SIGKILL between one ``cp`` and its truncation.  Every
        line still on disk arrives (promise 1: only the lines logrotate itself cut off
        between ``cp`` and ``truncate`` may be missing; a line ``cp`` caught half written
        arrives as the part its copy holds), and none arrives twice except lines written
        while a copy was made, or stored by the killed process but not yet saved as
        delivered: its batches in flight (promise 2)."""
        scenario.live.parent.mkdir(parents=True)
        config = scenario.config({"rotated": "number"}, batch={"max_events": MAX_EVENTS})
        copying: list[tuple[int, int]] = []  # lines written from .. to while a copy ran
        with _RacingWriter(scenario.live) as writer:
            shipper = ShipperProcess(config).start()
            try:
                for round_ in range(ROUNDS):
                    time.sleep(0.6)
                    begun = writer.count()
                    _copytruncate(scenario.live)
                    if round_ == KILLED_IN_ROUND:
                        killed, killed_at = shipper, time.time()
                        assert shipper.kill() == -signal.SIGKILL
                    subprocess.run(["truncate", "-s", "0", str(scenario.live)], check=True)
                    copying.append((begun, writer.count()))
                    if round_ == KILLED_IN_ROUND:
                        time.sleep(0.3)  # a put the killed process sent is stored by now
                        stored_before_kill = set(scenario.ids())
                        shipper = ShipperProcess(config).start()
                time.sleep(0.6)
            except BaseException:
                shipper.kill()
                raise
        written = writer.log.written
        try:
            on_disk = _ids_on_disk(scenario.live.parent)
            scenario.wait_delivered(on_disk, timeout=60)
            # A torn last line arrives as what its copy holds of it once the copy has not
            # grown for ROTATE_WAIT (30 s), unless it was read whole before the truncation.
            torn = _torn_on_disk(scenario.live.parent, written)
            wait_until(lambda: len(_torn_arrived(scenario)) >= _torn_missing(scenario, torn), 75)
            assert shipper.stop() == 0
        finally:
            if not shipper.exited():
                shipper.kill()
        assert len(_torn_arrived(scenario)) == _torn_missing(scenario, torn)
        ids = scenario.ids(whole_only=True)
        cut_off = set(written) - on_disk  # written between a cp and its truncation (or torn)
        assert len(cut_off) < sum(end - begun for begun, end in copying)
        assert set(ids) <= set(written)
        assert set(written) - set(ids) <= cut_off, "lines still on disk were lost"

        copied_meanwhile = {rid for begun, end in copying for rid in written[begun:end]}
        twice = {rid for rid, n in Counter(ids).items() if n > 1}
        assert all(n <= 2 for n in Counter(ids).values())
        # Beyond those, only what the killed process had stored but not yet saved as
        # delivered: the batches it had in flight (the queue's and the one being filled)
        # and those delivered within its last checkpoint_interval.
        by_the_kill = twice - copied_meanwhile
        assert by_the_kill <= stored_before_kill
        in_flight = (QUEUE_BATCHES + 1) * MAX_EVENTS
        unsaved = delivered_since(killed, killed_at - CHECKPOINT_INTERVAL)
        assert len(by_the_kill) <= in_flight + unsaved, (len(by_the_kill), in_flight, unsaved)


class TestFilesComeAndGo:
    def test_delete_and_recreate(self, scenario: Scenario) -> None:
        """Case 5: the live file is deleted and created again (a new inode, or the
        same inode reused) several times: each file's lines arrive once."""
        scenario.live.parent.mkdir(parents=True)
        written: list[str] = []
        with ShipperProcess(scenario.config()) as shipper:
            for round_ in range(4):
                log = AppLog(logging.FileHandler(scenario.live), tag=f"r{round_}")
                log.write(40)
                written += log.written
                scenario.wait_delivered(written)
                log.close()
                scenario.live.unlink()
            scenario.wait_delivered(written)
            assert shipper.stop() == 0
        scenario.assert_exactly_once(written)

    def test_inode_reused_after_delete_is_a_new_file(self, scenario: Scenario) -> None:
        """Case 5: a rotated file is deleted and a new rotated file takes its inode
        while the shipper is down: it is read from its start, not from the old
        file's offset (the fingerprint differs)."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config()
        try:
            with ShipperProcess(config) as shipper:
                log.write(30)
                rollover(handler, 0)
                log.write(30)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            rotated = scenario.live.with_name("app.log.20240101")
            inode = rotated.stat().st_ino
            rotated.unlink()
            log.write(60)
            rollover(handler, 1)  # the new app.log may take the freed inode
            reused = [p for p in scenario.live.parent.iterdir() if p.stat().st_ino == inode]
            # Longer than the deleted file's saved offset: read from there, 30 would be lost.
            log.write(40)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        if not reused:
            pytest.skip("the filesystem did not reuse the inode")
        scenario.assert_exactly_once(log.written)

    def test_symlink_whose_target_changes(self, scenario: Scenario) -> None:
        """Case 5: the configured path is a symlink; the app switches it to a new
        target (a release, a new day folder): the old target is read to its end and
        the new one from its start."""
        releases = scenario.tmp_path / "releases"
        scenario.live.parent.mkdir(parents=True)
        written: list[str] = []
        with ShipperProcess(scenario.config()) as shipper:
            for n in range(3):
                target = releases / f"v{n}" / "app.log"
                target.parent.mkdir(parents=True)
                log = AppLog(logging.FileHandler(target), tag=f"v{n}")
                log.write(30)
                link = scenario.live.with_name("app.log.new")
                link.symlink_to(target)
                link.replace(scenario.live)  # the switch is atomic, as deploy tools do it
                log.write(30)  # the old target gets lines after the switch
                written += log.written
                log.close()
                scenario.wait_delivered(written)
            assert shipper.stop() == 0
        scenario.assert_exactly_once(written)

    def test_log_folder_created_after_start(self, scenario: Scenario) -> None:
        """Case 5: the log folder does not exist when the shipper starts; the app
        creates it later; its lines arrive promptly (the parent is watched meanwhile,
        the rescan is slow on purpose)."""
        with ShipperProcess(scenario.config(rescan_interval=60)) as shipper:
            log = AppLog(timed_handler(scenario.live))  # creates the folder
            try:
                log.write(50)
                scenario.wait_delivered(log.written, timeout=15)
                assert shipper.stop() == 0
            finally:
                log.close()
        scenario.assert_exactly_once(log.written)

    def test_unreadable_then_readable(self, scenario: Scenario) -> None:
        """Case 5: the live file loses its read permission, then gets it back: the
        shipper reports it, keeps running, and ships everything once it can read."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        try:
            log.write(20)
            scenario.live.chmod(0)
            with ShipperProcess(scenario.config(), prefix=obeying_file_modes()) as shipper:
                wait_until(lambda: shipper.find("file.error"), timeout=15)
                log.write(20)
                scenario.live.chmod(0o644)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)
