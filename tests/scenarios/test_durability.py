"""Durability scenarios (issue cases 6 and 7): a real shipper process is killed with
SIGKILL or stopped with SIGTERM at random moments while a real writer process writes
and rotates; its checkpoint file is damaged.  SPEC §3 promises 1 (nothing lost) and 2
(no duplicates after a graceful stop; after a crash at most the batches in flight).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.scenarios.conftest import FORMAT, AppLog, Scenario, rollover, timed_handler
from tests.support.process import ShipperProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
BATCH_EVENTS = 40  # small batches: a kill can duplicate at most one of them per stream


def start_writer(scenario: Scenario, count: int, rollovers: int, interval: float):  # type: ignore[no-untyped-def]
    """The writer app as a process of its own, rotating as it goes."""
    manifest = scenario.tmp_path / "written.jsonl"
    args = [
        sys.executable, "-m", "tests.support.writer",
        "--path", str(scenario.live), "--format", FORMAT, "--manifest", str(manifest),
        "--count", str(count), "--rollovers", str(rollovers), "--interval", str(interval),
    ]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT), manifest


def manifest_ids(manifest: Path) -> list[str]:
    return [json.loads(line)["id"] for line in manifest.read_text().splitlines()]


class TestCrashSafety:
    def test_twenty_sigkills_while_writing_and_rotating(self, scenario: Scenario) -> None:
        """Case 6: SIGKILL at a random moment, 20 times in a row, while a writer writes
        and rotates.  After the last restart every record is there; the duplicates are
        no more than one batch per kill (the batch in flight)."""
        config = scenario.config(batch={"flush_interval": 0.2, "max_events": BATCH_EVENTS})
        writer, manifest = start_writer(scenario, count=3000, rollovers=6, interval=0.01)
        rng = random.Random(3)
        kills = 20
        try:
            for _ in range(kills):
                shipper = ShipperProcess(config).start()
                wait_until(lambda s=shipper: s.find("file.opened"), timeout=30)
                time.sleep(rng.uniform(0.1, 0.9))
                assert shipper.kill() == -9
            assert writer.wait(timeout=120) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
        written = manifest_ids(manifest)
        assert len(written) == 3000
        with ShipperProcess(config) as shipper:
            scenario.wait_delivered(written, timeout=60)
            assert shipper.stop() == 0
        ids = scenario.ids()
        assert set(ids) == set(written), "lost records"
        extra = sum(n - 1 for n in Counter(ids).values())
        assert extra <= kills * BATCH_EVENTS, f"{extra} duplicates after {kills} kills"

    def test_corrupt_checkpoint_recovers_from_previous_copy(self, scenario: Scenario) -> None:
        """Case 6: a checkpoint file cut short (a disk that lied about fsync) is
        reported, set aside, and the previous copy used: nothing lost, no crash, at
        most the last batch again."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config()
        state = scenario.tmp_path / "state" / "checkpoints.json"
        try:
            with ShipperProcess(config) as shipper:
                log.write(100)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2])
            log.write(50)
            rollover(handler, 0)
            log.write(50)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.find("checkpoint.corrupt")
                (recovered,) = shipper.find("checkpoint.recovered")
                assert recovered["recovered_from"] == "previous copy"
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)

    def test_checkpoint_and_copy_both_lost_ships_files_again(self, scenario: Scenario) -> None:
        """Case 6: when neither the checkpoint nor its copy can be read, the source
        counts as covered since ever: the files on disk, rotated ones included, are
        shipped again (duplicates, reported) rather than skipped: nothing lost."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config()
        state = scenario.tmp_path / "state"
        try:
            with ShipperProcess(config) as shipper:
                log.write(60)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            for name in ("checkpoints.json", "checkpoints.json.prev"):
                (state / name).write_text('{"version": 1, "sources": {"')
            log.write(30)
            rollover(handler, 0)  # the rotated file must not be taken for history
            log.write(30)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                (recovered,) = shipper.find("checkpoint.recovered")
                assert recovered["recovered_from"] == "files on disk"
                assert shipper.stop() == 0
        finally:
            log.close()
        assert set(scenario.ids()) == set(log.written)


class TestGracefulRestart:
    def test_repeated_sigterm_and_restart_send_no_duplicates(self, scenario: Scenario) -> None:
        """Case 7: SIGTERM at random moments, six times, while a writer writes and
        rotates: every record exactly once."""
        config = scenario.config()
        writer, manifest = start_writer(scenario, count=1500, rollovers=4, interval=0.008)
        rng = random.Random(7)
        try:
            for _ in range(6):
                with ShipperProcess(config) as shipper:
                    wait_until(lambda s=shipper: s.find("file.opened"), timeout=30)
                    time.sleep(rng.uniform(0.2, 1.0))
                    assert shipper.stop() == 0
            assert writer.wait(timeout=120) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
        written = manifest_ids(manifest)
        with ShipperProcess(config) as shipper:
            scenario.wait_delivered(written, timeout=60)
            assert shipper.stop() == 0
        scenario.assert_exactly_once(written)
