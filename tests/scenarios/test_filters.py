"""Filters in a real shipper process (issue 21): an app writes through the stdlib's
logging, the shipper drops, samples and folds as configured, and moto's server holds
exactly the events kept; ``shipper_records_dropped_total`` counts each dropped record
once, and dropped positions are not read again after a restart (SPEC §3.1, §3.2).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path
from typing import Any

from tests.scenarios.conftest import FORMAT, Scenario, rollover, timed_handler
from tests.support.probe import scrape
from tests.support.process import ShipperProcess, wait_until
from tests.support.strict_front import StrictFront

FILTERS: dict[str, Any] = {
    "min_level": "info",
    "exclude": ["GET /healthz"],
    "sample": [{"match": "GET /status", "keep_one_in": 5}],
    "collapse_repeats": "2s",
}


def app_logger(path: Path, name: str) -> tuple[logging.Logger, logging.Handler]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(f"scenario.filters.{name}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, handler


def shipped(scenario: Scenario) -> list[dict[str, Any]]:
    return [json.loads(event["message"]) for event in scenario.moto.events(scenario.group)]


def dropped(url: str, reason: str) -> float:
    return scrape(url).value("shipper_records_dropped_total", category="app", reason=reason)


class TestFiltersInAProcess:
    def test_exactly_the_kept_events_and_the_counters(self, scenario: Scenario) -> None:
        """Levels, exclusions, sampling and a retry loop's repeats: CloudWatch holds the
        kept records (sampled ones marked), the retry loop as one event marked with its
        count, shipped when its window ended while the shipper ran; each dropped record
        is counted once under its reason.  After a graceful restart nothing is read
        again: no duplicate, no second count."""
        logger, handler = app_logger(scenario.live, "exact")
        config = scenario.config(FILTERS, health={"listen": "127.0.0.1:0"})
        try:
            for n in range(5):
                logger.info("order %d placed", n)
                logger.debug("cache probe %d", n)
                logger.info("GET /healthz 200")
            for n in range(12):
                logger.info("GET /status %d", n)
            for _ in range(1000):
                logger.error("retry failed: connection refused")
            logger.warning("gave up")
            for n in range(3):
                logger.debug("trailing detail %d", n)
            with ShipperProcess(config) as shipper:
                url = shipper.health_url()
                wait_until(lambda: len(shipped(scenario)) >= 10, timeout=30, interval=0.3)
                events = shipped(scenario)
                assert [e["message"] for e in events] == [
                    *(f"order {n} placed" for n in range(5)),
                    "GET /status 0",
                    "GET /status 5",
                    "GET /status 10",
                    "retry failed: connection refused",
                    "gave up",
                ]
                assert [e.get("sampled") for e in events[5:8]] == [5, 5, 5]
                assert events[8]["repeated"] == 1000
                assert events[8]["level"] == "ERROR"
                assert "repeated" not in events[9]
                assert "sampled" not in events[0]
                wait_until(lambda: dropped(url, "level") == 8, timeout=10)
                assert dropped(url, "exclude") == 5
                assert dropped(url, "sample") == 9
                assert dropped(url, "repeat") == 999
                assert scrape(url).value("shipper_records_shipped_total") == 10
                assert shipper.stop() == 0
            saved = json.loads((scenario.tmp_path / "state" / "checkpoints.json").read_text())
            assert str(scenario.live.stat().st_size) in json.dumps(saved)

            logger.info("after restart")
            logger.debug("dropped after restart")
            with ShipperProcess(config) as shipper:
                url = shipper.health_url()
                wait_until(lambda: len(shipped(scenario)) >= 11, timeout=30, interval=0.3)
                wait_until(lambda: dropped(url, "level") == 1, timeout=10)
                metrics = scrape(url)
                assert shipper.stop() == 0
            assert [e["message"] for e in shipped(scenario)][10:] == ["after restart"]
            for reason in ("exclude", "sample", "repeat"):
                assert metrics.value("shipper_records_dropped_total", reason=reason) == 0
        finally:
            logger.removeHandler(handler)
            handler.close()

    def test_a_held_repeat_is_shipped_when_the_shipper_stops(self, scenario: Scenario) -> None:
        """A repeat held for a long window is not held forever: SIGTERM ships it, and
        its positions are acknowledged (a restart reads nothing again)."""
        logger, handler = app_logger(scenario.live, "stop")
        config = scenario.config({"collapse_repeats": "1h"})
        try:
            logger.info("first")
            for _ in range(50):
                logger.error("disk full")
            with ShipperProcess(config) as shipper:
                wait_until(lambda: len(shipped(scenario)) >= 1, timeout=30, interval=0.3)
                wait_until(lambda: shipper.find("batch.delivered"), timeout=10)
                assert shipper.stop() == 0
            events = shipped(scenario)
            assert [(e["message"], e.get("repeated")) for e in events] == [
                ("first", None),
                ("disk full", 50),
            ]
            with ShipperProcess(config) as shipper:
                wait_until(lambda: shipper.find("file.opened"), timeout=10)
                assert shipper.find("file.opened")[0]["offset"] == scenario.live.stat().st_size
                assert shipper.stop() == 0
            assert len(shipped(scenario)) == 2
        finally:
            logger.removeHandler(handler)
            handler.close()

    def test_a_repeat_held_in_a_rotated_file_is_shipped_when_it_is_done(
        self, scenario: Scenario
    ) -> None:
        """Raw output, a midnight rollover in the middle of a retry loop: the rotated
        file's repeat is shipped once that file is read to its end (not held until the
        window or the stop), marked in the text; the live file's follows it, and the
        last record goes once the file is quiet, though the window is an hour."""
        handler = timed_handler(scenario.live)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger = logging.getLogger("scenario.filters.rotated")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        config = scenario.config({"output": "raw", "collapse_repeats": "1h"})
        try:
            with ShipperProcess(config) as shipper:
                for _ in range(30):
                    logger.error("upstream timeout")
                rollover(handler, 0)
                for _ in range(20):
                    logger.error("upstream timeout")
                logger.info("recovered")
                wait_until(lambda: len(scenario.moto.events(scenario.group)) >= 2, timeout=30)
                # The live file's run is shipped once "recovered" ends it; "recovered"
                # repeats nothing, so it goes as soon as the file is quiet.
                wait_until(lambda: len(scenario.moto.events(scenario.group)) >= 3, timeout=10)
                assert shipper.stop() == 0
            messages = [e["message"] for e in scenario.moto.events(scenario.group)]
            assert [m.split(" ", 2)[2] for m in messages] == [
                "ERROR upstream timeout …[repeated 30 times]",
                "ERROR upstream timeout …[repeated 20 times]",
                "INFO recovered",
            ]
        finally:
            logger.removeHandler(handler)
            handler.close()

    def test_dropped_positions_wait_behind_records_in_flight(
        self, scenario: Scenario, front: StrictFront
    ) -> None:
        """CloudWatch unavailable: kept records are in flight (retried), then records
        the filters drop are read.  Their acknowledgement waits behind the kept ones:
        the file's delivered offset does not move until CloudWatch has them, then it
        reaches the end of the file (SPEC §3.1, §3.2)."""
        logger, handler = app_logger(scenario.live, "in-flight")
        config = scenario.config(
            {"min_level": "INFO"},
            cloudwatch={"endpoint_url": front.url},
            health={"listen": "127.0.0.1:0"},
        )
        path = str(scenario.live)
        try:
            with ShipperProcess(config) as shipper:
                url = shipper.health_url()
                front.inject("unavailable", seconds=8)
                for n in range(5):
                    logger.info("kept %d", n)
                wait_until(
                    lambda: scrape(url).value("shipper_lines_read_total", category="app") == 5
                )
                wait_until(lambda: shipper.find("put.retry"), timeout=10)
                for n in range(50):
                    logger.debug("dropped %d", n)
                wait_until(lambda: dropped(url, "level") == 50, timeout=10)
                size = scenario.live.stat().st_size
                time.sleep(2.5)  # rescans update the lag gauge meanwhile
                lag = scrape(url).value("shipper_checkpoint_lag_bytes", path=path)
                assert lag == size  # nothing acknowledged while the kept records are out
                assert shipped(scenario) == []
                wait_until(lambda: len(shipped(scenario)) == 5, timeout=40, interval=0.3)
                wait_until(
                    lambda: scrape(url).value("shipper_checkpoint_lag_bytes", path=path) == 0,
                    timeout=10,
                )
                assert shipper.stop() == 0
            assert [e["message"] for e in shipped(scenario)] == [f"kept {n}" for n in range(5)]
        finally:
            logger.removeHandler(handler)
            handler.close()
