"""History on disk (issue 20 items 1 and 2): the standard library's
``TimedRotatingFileHandler`` exactly as Python ships it (no suffix set) rotates while
the shipper is stopped or not yet installed; a real shipper process then ships what
is on disk, rotated and gzipped files included, oldest first (SPEC §3 promises 1, 2
and 5).  ``start_at: end`` and ``ignore_older`` hold back what they say they do.
"""

from __future__ import annotations

import gzip
import logging.handlers
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.scenarios.conftest import AppLog, Scenario
from tests.support.process import ShipperProcess, wait_until
from tests.support.writer import force_rollover, hold_midnight

DAY = 86_400


def python_handler(path: Path, when: str = "midnight") -> logging.handlers.TimedRotatingFileHandler:
    """The handler as an app configures it without touching its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.TimedRotatingFileHandler(path, when=when)
    hold_midnight(handler)
    return handler


def compress(path: Path) -> Path:
    """logrotate's ``compress``: the rotated file becomes ``<name>.gz`` (gzip gives it
    the plain file's times)."""
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copystat(path, target)
    path.unlink()
    return target


def rotated_files(scenario: Scenario) -> list[str]:
    return sorted(p.name for p in scenario.live.parent.iterdir() if p.name != "app.log")


class TestPythonsOwnNames:
    @pytest.mark.parametrize("when", ["midnight", "H", "M"])
    def test_rotations_while_stopped_all_arrive(self, scenario: Scenario, when: str) -> None:
        """Three forced rollovers while the shipper is stopped, with the names Python
        gives them for ``when`` (app.log.2024-01-01, ..._13, ..._13-00): after a restart
        with the default `rotated` everything arrives once, in writing order."""
        handler = python_handler(scenario.live, when)
        log = AppLog(handler)
        config = scenario.config()
        try:
            with ShipperProcess(config) as shipper:
                log.write(50)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            for day in range(3):
                log.write(40)
                force_rollover(handler, day)
            log.write(20)
            assert len(rotated_files(scenario)) == 3, rotated_files(scenario)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)
        assert scenario.ids() == log.written

    def test_rotated_and_gzipped_while_stopped_goes_on_where_it_stopped(
        self, scenario: Scenario
    ) -> None:
        """The file half shipped when the shipper stopped gets more lines, is rotated
        and gzipped (logrotate's compress) while it is down: after a restart the rest
        is read from the .gz at the checkpoint's offset; nothing twice, nothing lost."""
        handler = python_handler(scenario.live)
        log = AppLog(handler)
        config = scenario.config()
        try:
            with ShipperProcess(config) as shipper:
                log.write(50)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            log.write(40)
            force_rollover(handler, 0)
            (rotated,) = rotated_files(scenario)
            compress(scenario.live.parent / rotated)
            log.write(20)
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            opened = [e for e in shipper.find("file.opened") if e["path"].endswith(".gz")]
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)
        assert scenario.ids() == log.written
        assert [e["reason"] for e in opened] == ["fingerprint"]


class TestFirstInstall:
    def test_days_of_rotated_and_gzipped_files_all_arrive_oldest_first(
        self, scenario: Scenario
    ) -> None:
        """An app logged for five days before the shipper was installed; logrotate
        gzipped the three oldest days.  The first start ships every record, day by day,
        then the live file's, and goes on with what is written next."""
        handler = python_handler(scenario.live)
        log = AppLog(handler)
        try:
            for day in range(5):
                log.write(30)
                force_rollover(handler, day)
            for name in rotated_files(scenario)[:3]:
                compress(scenario.live.parent / name)
            log.write(10)
            assert sum(n.endswith(".gz") for n in rotated_files(scenario)) == 3
            with ShipperProcess(scenario.config()) as shipper:
                scenario.wait_delivered(log.written)
                log.write(10)
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)
        assert scenario.ids() == log.written

    def test_ignore_older_skips_files_last_written_long_ago(self, scenario: Scenario) -> None:
        """Two rotated files last written 20 and 16 days ago are skipped (and each
        logged as file.skipped with the reason); the recent one and the live file are
        shipped."""
        handler = python_handler(scenario.live)
        old = AppLog(handler, tag="old")
        try:
            for day in range(2):
                old.write(10)
                force_rollover(handler, day)
            for age, name in zip((20, 16), rotated_files(scenario), strict=True):
                at = time.time() - age * DAY
                os.utime(scenario.live.parent / name, (at, at))
        finally:
            old.close()
        handler = python_handler(scenario.live)
        log = AppLog(handler, tag="new")
        try:
            log.write(10)
            force_rollover(handler, 2)
            log.write(10)
            with ShipperProcess(scenario.config({"ignore_older": "14d"})) as shipper:
                scenario.wait_delivered(log.written)
                assert shipper.stop() == 0
            skipped = {Path(e["path"]).name: e["reason"] for e in shipper.find("file.skipped")}
        finally:
            log.close()
        scenario.assert_exactly_once(log.written)
        assert sorted(skipped) == ["app.log.2024-01-01", "app.log.2024-01-02"]
        assert all("ignore_older" in reason for reason in skipped.values())

    def test_start_at_end_ships_only_new_lines(self, scenario: Scenario) -> None:
        """start_at end: the rotated days and the live file's lines from before the
        first start stay unshipped; lines written after it, and after the next
        rollover, arrive."""
        handler = python_handler(scenario.live)
        log = AppLog(handler)
        try:
            for day in range(2):
                log.write(20)
                force_rollover(handler, day)
            log.write(20)
            before = len(log.written)
            with ShipperProcess(scenario.config({"start_at": "end"})) as shipper:
                wait_until(  # it has looked at the folder: what is there now is history
                    lambda: [
                        e for e in shipper.find("file.opened") if e["reason"] == "start_at end"
                    ]
                )
                log.write(15)
                force_rollover(handler, 2)
                log.write(15)
                scenario.wait_delivered(log.written[before:])
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(log.written[before:])
