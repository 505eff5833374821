"""Watching scenarios (issue case 8): watchdog's inotify observer wakes the reader
promptly; a periodic rescan is the safety net for what inotify cannot see; a folder
deleted and created again is watched again.  Idle CPU is shown by
``python -m bench.run --only idle``, not asserted here.
"""

from __future__ import annotations

import logging
import shutil

from tests.scenarios.conftest import AppLog, Scenario
from tests.support.process import ShipperProcess


def _rounds_arrive(scenario: Scenario, log: AppLog, rescan_interval: float) -> None:
    """Three rounds of 10 lines, each delivered within 10 s before the next is written;
    then a clean stop, and every line shipped exactly once."""
    try:
        with ShipperProcess(scenario.config(rescan_interval=rescan_interval)) as shipper:
            for _ in range(3):
                log.write(10)
                scenario.wait_delivered(log.written, timeout=10)
            assert shipper.stop() == 0
    finally:
        log.close()
    scenario.assert_exactly_once(log.written)


class TestWatching:
    def test_inotify_wakes_the_reader_long_before_a_rescan(self, scenario: Scenario) -> None:
        """Lines written to a quiet file arrive within seconds although the safety-net
        rescan runs only once a minute: the folder's inotify watch woke the reader."""
        scenario.live.parent.mkdir(parents=True)
        _rounds_arrive(scenario, AppLog(logging.FileHandler(scenario.live)), rescan_interval=60)

    def test_rescan_finds_what_inotify_does_not_report(self, scenario: Scenario) -> None:
        """The configured path is a link to a file in another folder: writes there
        produce no event in the watched folder; the periodic rescan ships them."""
        elsewhere = scenario.tmp_path / "elsewhere" / "app.log"
        elsewhere.parent.mkdir(parents=True)
        scenario.live.parent.mkdir(parents=True)
        scenario.live.symlink_to(elsewhere)
        _rounds_arrive(scenario, AppLog(logging.FileHandler(elsewhere)), rescan_interval=1)

    def test_folder_deleted_and_created_again_is_watched_again(self, scenario: Scenario) -> None:
        """The log folder is removed and created again (a new inode) while the shipper
        runs with a slow rescan: the new folder's files still arrive promptly."""
        scenario.live.parent.mkdir(parents=True)
        written: list[str] = []
        with ShipperProcess(scenario.config(rescan_interval=60)) as shipper:
            for round_ in range(3):
                log = AppLog(logging.FileHandler(scenario.live), tag=f"r{round_}")
                log.write(20)
                written += log.written
                scenario.wait_delivered(written, timeout=10)
                log.close()
                shutil.rmtree(scenario.live.parent)
                scenario.live.parent.mkdir()
            assert shipper.stop() == 0
        scenario.assert_exactly_once(written)
