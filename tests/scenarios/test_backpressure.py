"""Backpressure scenario (issue case 9): while CloudWatch is unreachable the shipper
stops reading ahead (SPEC §3 promise 3, the files are the buffer), and once it is
back everything arrives once.  Flat memory is shown in figures by
``bench/outage_backlog.py``; here the reading itself is watched, through /metrics.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from datetime import datetime
from urllib.parse import urlsplit

from tests.scenarios.conftest import Scenario
from tests.support.process import ShipperProcess, wait_until
from tests.support.proxy import Relay

LINE_BYTES = 1000
BACKLOG_LINES = 20_000  # 20 MB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bytes_read(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    match = re.search(r'^shipper_bytes_read_total\{category="app"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


class TestBackpressure:
    def test_unreachable_cloudwatch_stops_reading_then_everything_arrives(
        self, scenario: Scenario
    ) -> None:
        """With CloudWatch unreachable (connections reset) and a 20 MB backlog, the
        shipper reads a few batches' worth and then nothing more while it retries;
        when CloudWatch is back, every record arrives once."""
        scenario.live.parent.mkdir(parents=True)
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,000")
        expected = [f"rec-a-{n:06d}" for n in range(BACKLOG_LINES)]
        with scenario.live.open("w") as f:
            for rid in expected:
                head = f"{stamp} INFO {rid} "
                f.write(head + "x" * (LINE_BYTES - len(head) - 1) + "\n")
        target = urlsplit(scenario.moto.url)
        assert target.hostname
        assert target.port
        port = free_port()
        with Relay(target.hostname, target.port) as relay:
            config = scenario.config(
                cloudwatch={"endpoint_url": relay.url, "max_backoff": 1.0},
                health={"listen": f"127.0.0.1:{port}"},
            )
            with ShipperProcess(config) as shipper:
                wait_until(lambda: len(shipper.find("put.retry")) >= 3, timeout=30)
                first = bytes_read(port)
                time.sleep(3)
                paused = bytes_read(port)
                relay.up = True
                scenario.wait_delivered(expected, timeout=120)
                assert shipper.stop() == 0
        backlog = BACKLOG_LINES * LINE_BYTES
        assert 0 < paused == first, "reading went on while nothing could be delivered"
        assert paused <= backlog / 4, f"read {paused} of {backlog} bytes ahead"
        scenario.assert_exactly_once(expected)
