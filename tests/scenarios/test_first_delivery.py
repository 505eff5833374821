"""Start-up: what waits in the file when the shipper starts reaches CloudWatch at once.

A stream's first batch is sent as soon as it holds events; later batches wait up to
``flush_interval`` for company, as configured.
"""

from __future__ import annotations

import logging
import time

from tests.scenarios.conftest import AppLog, Scenario
from tests.support.process import ShipperProcess


class TestFirstDelivery:
    def test_first_batch_does_not_wait_for_flush_interval(self, scenario: Scenario) -> None:
        """With ``flush_interval: 30`` the records written before the start arrive
        within seconds — all but the last, which may still grow a traceback until the
        file has been quiet for a moment, and then waits for company with the records
        written after it, until the graceful stop delivers them."""
        scenario.live.parent.mkdir(parents=True)
        log = AppLog(logging.FileHandler(scenario.live))
        try:
            first = log.write(10)
            config = scenario.config(batch={"flush_interval": 30})
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(first[:-1], timeout=10)
                later = log.write(10)
                time.sleep(3)
                held = {first[-1], *later}
                assert not held & set(scenario.ids()), "a later batch did not wait"
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(first + later)
