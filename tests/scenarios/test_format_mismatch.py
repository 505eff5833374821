"""A format that does not fit the file (issue 20 item 4): the stdlib handler writes
logging's default asctime, with msecs, while the config's ``datefmt`` has none.  No
line matches, and yet nothing is glued: one event per line, a ``format.mismatch`` in
the shipper's log (masked, promise 4), the count on /metrics and a reason on /readyz."""

from __future__ import annotations

import json
import logging

from tests.scenarios.conftest import AppLog, Scenario
from tests.support.probe import get, scrape
from tests.support.process import ShipperProcess, wait_until

ADDRESS = "someone@example.com"


class TestFormatMismatch:
    def test_a_datefmt_without_the_written_msecs_gives_one_event_per_line(
        self, scenario: Scenario
    ) -> None:
        scenario.live.parent.mkdir(parents=True)
        log = AppLog(logging.FileHandler(scenario.live))
        try:
            log.logger.info("rec-a-first signed up as %s", ADDRESS)
            written = ["rec-a-first", *log.write(41)]
            config = scenario.config(
                {"datefmt": "%Y-%m-%d %H:%M:%S"}, health={"listen": "127.0.0.1:0"}
            )
            with ShipperProcess(config) as shipper:
                scenario.wait_delivered(written)
                base = shipper.health_url()
                metrics = scrape(base)
                status, body = get(base + "/readyz")
                reports = wait_until(lambda: shipper.find("format.mismatch"))
                assert shipper.stop() == 0
        finally:
            log.close()
        scenario.assert_exactly_once(written)
        lines = scenario.live.read_text().splitlines()
        events = [json.loads(e["message"]) for e in scenario.moto.events(scenario.group)]
        assert [e["message"] for e in events] == [
            line.replace(ADDRESS, "**meon*@example.com") for line in lines
        ]
        assert not any("exception" in e for e in events)
        assert metrics.value("shipper_format_mismatches_total", category="app") == 42
        assert (status, body) == (
            503,
            "app: lines do not match the source's format (see format.mismatch)\n",
        )
        (report,) = reports  # once a minute at most
        assert report["category"] == "app"
        assert report["path"] == str(scenario.live)
        assert report["example"].endswith("rec-a-first signed up as **meon*@example.com")
        assert ADDRESS not in shipper.output()
