"""Durability scenarios (issue cases 6 and 7): a real shipper process is killed with
SIGKILL or stopped with SIGTERM at random moments while a real writer process writes
and rotates; its checkpoint file is damaged; its state folder fills up.  SPEC §3
promises 1 (nothing lost) and 2 (no duplicates after a graceful stop; after a crash
at most the batches in flight and those delivered within the last
``checkpoint_interval``).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.scenarios.conftest import (
    FORMAT,
    AppLog,
    Scenario,
    delivered_since,
    rollover,
    timed_handler,
)
from tests.support.probe import get, scrape
from tests.support.process import ShipperProcess, wait_until
from tests.support.tmpfs import fill, tmpfs

ROOT = Path(__file__).resolve().parents[2]
BATCH_EVENTS = 40  # small batches: a kill can duplicate at most one of them per stream
CHECKPOINT_INTERVAL = 0.5


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


def saved_offset(scenario: Scenario) -> int:
    """The delivered offset the checkpoint file holds for the live file (0: none)."""
    path = scenario.tmp_path / "state" / "checkpoints.json"
    if not path.exists():
        return 0
    source = json.loads(path.read_text())["sources"].get(str(scenario.live), {})
    return max(
        (f["offset"] for f in source.get("files", []) if f["ino"] == live_inode(scenario)),
        default=0,
    )


def live_inode(scenario: Scenario) -> int:
    return scenario.live.stat().st_ino


class TestCrashSafety:
    def test_twenty_sigkills_while_writing_and_rotating(self, scenario: Scenario) -> None:
        """Case 6: SIGKILL at a random moment, 20 times in a row, while a writer writes
        and rotates.  After the last restart every record is there; the duplicates are
        no more than, per kill, the batch in flight and the events the killed process
        delivered within its last checkpoint_interval."""
        config = scenario.config(
            batch={"flush_interval": 0.2, "max_events": BATCH_EVENTS},
            checkpoint_interval=CHECKPOINT_INTERVAL,
        )
        writer, manifest = start_writer(scenario, count=3000, rollovers=6, interval=0.01)
        rng = random.Random(3)
        kills = 20
        excused = 0  # duplicates the contract allows
        try:
            for _ in range(kills):
                shipper = ShipperProcess(config).start()
                wait_until(lambda s=shipper: s.find("file.opened"), timeout=30)
                time.sleep(rng.uniform(0.1, 0.9))
                killed_at = time.time()
                assert shipper.kill() == -9
                excused += BATCH_EVENTS + delivered_since(shipper, killed_at - CHECKPOINT_INTERVAL)
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
        assert extra <= excused, f"{extra} duplicates after {kills} kills (allowed {excused})"

    def test_corrupt_checkpoint_recovers_from_previous_copy(self, scenario: Scenario) -> None:
        """Case 6: a checkpoint file cut short (a disk that lied about fsync) is
        reported, set aside, and the previous copy used: nothing lost, no crash, at
        most what the last save added sent again."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config(checkpoint_interval=0.2)
        state = scenario.tmp_path / "state" / "checkpoints.json"
        try:
            with ShipperProcess(config) as shipper:
                log.write(100)
                scenario.wait_delivered(log.written)
                size = scenario.live.stat().st_size
                wait_until(lambda: saved_offset(scenario) == size)  # the previous copy
                log.write(1)  # delivered and saved last: its save is the one cut short
                scenario.wait_delivered(log.written)
                size = scenario.live.stat().st_size
                wait_until(lambda: saved_offset(scenario) == size)
                assert shipper.stop() == 0
            last_saved = set(log.written[100:])
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
        ids = Counter(scenario.ids())
        assert set(ids) == set(log.written), "lost records"
        assert {rid for rid, n in ids.items() if n > 1} <= last_saved

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


class TestCheckpointInterval:
    def test_a_crash_within_an_interval_resends_at_most_its_deliveries(
        self, scenario: Scenario
    ) -> None:
        """Issue 22; promise 2: checkpoints are saved once per checkpoint_interval, not
        after every batch.  Records delivered after the last save and before a
        SIGKILL are sent again on restart (the file still says where the save left
        off); none before it is, and nothing is lost."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config(checkpoint_interval=15.0)
        try:
            with ShipperProcess(config) as shipper:
                first = log.write(100)
                scenario.wait_delivered(first)
                size = scenario.live.stat().st_size
                wait_until(lambda: saved_offset(scenario) == size, timeout=20)
                saved_at = time.monotonic()
                later = log.write(50)
                scenario.wait_delivered(later)
                assert time.monotonic() - saved_at < 10, "the next save may have begun"
                assert saved_offset(scenario) == size, "saved before the interval ended"
                assert shipper.kill() == -9
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        ids = scenario.ids()
        assert set(ids) == set(log.written), "lost records"
        twice = {i for i, n in Counter(ids).items() if n > 1}
        assert twice <= set(later), f"sent again though saved: {sorted(twice - set(later))[:10]}"

    def test_a_graceful_stop_saves_every_delivery(self, scenario: Scenario) -> None:
        """Promise 2: however long the interval, SIGTERM saves what was delivered: the
        file holds the live file's whole size, and a restart sends nothing twice."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config(checkpoint_interval=3600.0)
        try:
            with ShipperProcess(config) as shipper:
                log.write(100)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            assert saved_offset(scenario) == scenario.live.stat().st_size
            log.write(20)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)


class TestStateFolderFull:
    def test_failed_saves_show_on_readyz_metrics_and_lag_until_there_is_room(
        self, scenario: Scenario
    ) -> None:
        """Issue 18 item 5: the state folder is a tmpfs filled up while records are
        delivered.  /readyz answers 503 naming the checkpoints, the failures are
        counted (shipper_checkpoint_save_failures_total) and the lag gauge does not
        fall to 0 (the position is not saved).  Once there is room again the next save
        succeeds, /readyz is 200, the lag 0, and after a restart nothing is sent twice."""
        handler = timed_handler(scenario.live)
        log = AppLog(handler)
        state = scenario.tmp_path / "state"
        config = scenario.config(checkpoint_interval=0.2, health={"listen": "127.0.0.1:0"})
        try:
            with tmpfs(state, "64k"), ShipperProcess(config) as shipper:
                url = shipper.health_url()
                log.write(50)
                scenario.wait_delivered(log.written)
                wait_until(lambda: saved_offset(scenario) == scenario.live.stat().st_size)
                filler = fill(state)
                log.write(50)
                scenario.wait_delivered(log.written)
                body = wait_until(lambda: _not_ready(url), timeout=20)
                assert "checkpoints cannot be saved: No space left on device" in body
                metrics = scrape(url)
                assert metrics.value("shipper_checkpoint_save_failures_total") >= 1
                path = str(scenario.live)
                lag = wait_until(
                    lambda: scrape(url).value("shipper_checkpoint_lag_bytes", path=path), timeout=20
                )
                assert lag == scenario.live.stat().st_size - saved_offset(scenario) > 0
                filler.unlink()
                wait_until(lambda: get(f"{url}/readyz")[0] == 200, timeout=20)
                assert saved_offset(scenario) == scenario.live.stat().st_size
                wait_until(
                    lambda: scrape(url).value("shipper_checkpoint_lag_bytes", path=path) == 0,
                    timeout=20,
                )
                assert shipper.stop() == 0
                log.write(10)
                with ShipperProcess(config) as again:
                    scenario.wait_delivered(log.written)
                    assert again.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)


def _not_ready(url: str) -> str | None:
    """/readyz's reasons while it answers 503."""
    status, body = get(f"{url}/readyz")
    return body if status == 503 else None
