"""A 60-second CloudWatch outage with a growing backlog: everything arrives after it.

SPEC §6 (5xx retried forever with capped backoff while the files hold the backlog),
§3.1 (nothing lost, also across a rotation during the outage) and §3.3 (reading
pauses instead of memory growing).  Prints what it measured.
"""

from __future__ import annotations

import time

import pytest

from tests.delivery.conftest import Deployment, assert_clean_front, duplicates
from tests.support.process import ShipperProcess, wait_until

OUTAGE = 60.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
class TestOutage:
    def test_a_60_second_outage_with_a_growing_backlog_loses_nothing(self, deployment: Deployment):
        """Every call is answered 503 for 60 s while the app writes 3,000 more records
        and rotates twice; the shipper retries and its lag grows; after
        the outage every record arrives exactly once."""
        front = deployment.front
        config = deployment.configure(["app"], max_backoff=4.0)
        with ShipperProcess(config) as shipper:
            assert shipper.proc is not None
            deployment.write("app", 50)
            wait_until(lambda: deployment.has_all("app", 50))
            rss_before = rss_kib(shipper.proc.pid)
            front.inject("unavailable", seconds=OUTAGE)
            outage_start = time.monotonic()
            writer = deployment.write_in_background(
                "app", 3000, start=50, interval=0.012, rollovers=2, first_day=3
            )
            lags = []
            while time.monotonic() - outage_start < OUTAGE - 3:
                lags.append(deployment.metric_sum("shipper_checkpoint_lag_bytes"))
                time.sleep(5)
            assert writer.wait(30) == 0
            during = len(deployment.numbers("app"))
            rss_during = rss_kib(shipper.proc.pid)
            wait_until(lambda: time.monotonic() - outage_start > OUTAGE, timeout=OUTAGE)
            wait_until(lambda: deployment.has_all("app", 3050), timeout=60)
            drained = time.monotonic() - outage_start - OUTAGE
            retries = [
                e for e in shipper.find("put.retry") if e["error"] == "ServiceUnavailableException"
            ]
            assert shipper.stop() == 0
        numbers = deployment.numbers("app")
        print(
            f"\noutage {OUTAGE:.0f}s: 503s served {front.served['unavailable']},"
            f" put.retry logged {len(retries)},"
            f" longest pause {max(e['delay'] for e in retries):.2f}s,"
            f" lag bytes sampled {[int(x) for x in lags]},"
            f" RSS before/during {rss_before}/{rss_during} KiB,"
            f" drained {drained:.1f}s after the outage ended"
        )
        assert during == 50, "nothing can be delivered during the outage"
        assert lags[-1] > lags[0], "the backlog grows in the files"
        assert len(retries) >= 10
        assert all(e["delay"] <= 4.0 for e in retries)
        assert sorted(numbers) == list(range(3050))
        assert not duplicates(numbers)
        assert_clean_front(front)
