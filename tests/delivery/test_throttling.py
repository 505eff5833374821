"""Throttling and slow answers: retried with backoff, and one stream never stalls another.

SPEC §6 (errors retried forever with capped exponential backoff and full jitter; one
throttled stream must not stall the others) and §3.1 (nothing lost).
"""

from __future__ import annotations

from tests.delivery.conftest import Deployment, assert_clean_front, duplicates
from tests.support.process import ShipperProcess, wait_until


class TestThrottling:
    def test_a_throttled_stream_retries_while_another_stream_keeps_delivering(
        self, deployment: Deployment
    ):
        """`app` is throttled for 6 s; `db` is delivered during that window; then `app`
        catches up with every record once."""
        front = deployment.front
        config = deployment.configure(["app", "db"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 50)
            deployment.write("db", 50)
            wait_until(lambda: deployment.has_all("app", 50) and deployment.has_all("db", 50))
            app_puts = front.put_count("app")
            front.inject("throttle", seconds=6, stream="app")
            deployment.write("app", 200, start=50)
            deployment.write("db", 200, start=50)
            # db's records arrive while app is still being throttled.
            wait_until(lambda: deployment.has_all("db", 250), timeout=5)
            assert not deployment.has_all("app", 250), "app was not held back by throttling"
            assert front.put_count("app") == app_puts, "app stored nothing during the window"
            wait_until(lambda: deployment.has_all("app", 250), timeout=30)
            retries = [e for e in shipper.find("put.retry") if e["error"] == "ThrottlingException"]
            assert retries, "throttling was not retried"
            assert {e["log_stream"] for e in retries} == {"app"}
            assert deployment.metric(
                "shipper_put_retries_total", error="ThrottlingException"
            ) == len(retries)
            assert shipper.stop() == 0
        assert front.served["throttle"] >= 2
        for category in ("app", "db"):
            assert sorted(deployment.numbers(category)) == list(range(250))
        assert_clean_front(front)
        # Full jitter under a 1 s cap: no pause longer than the cap.
        assert all(0 <= e["delay"] <= 1.0 for e in retries)


class TestSlowAnswers:
    def test_slow_answers_for_one_stream_do_not_hold_back_another(self, deployment: Deployment):
        """The first answer for `app` takes 5 s (under the request timeout):
        `db` is delivered while `app` still waits for its first answer, and nothing is
        sent twice."""
        front = deployment.front
        config = deployment.configure(["app", "db"])
        with ShipperProcess(config) as shipper:
            front.inject("slow", times=1, stream="app", delay=5.0)
            deployment.write("app", 100)
            wait_until(lambda: front.served["slow"] == 1)
            deployment.write("db", 100)
            wait_until(lambda: deployment.has_all("db", 100), timeout=4)
            app_delivered = [e for e in shipper.find("batch.delivered") if e["log_stream"] == "app"]
            assert app_delivered == [], "db was delivered only after app's answer came"
            wait_until(lambda: deployment.has_all("app", 100), timeout=30)
            assert shipper.stop() == 0
        for category in ("app", "db"):
            numbers = deployment.numbers(category)
            assert sorted(numbers) == list(range(100))
            assert not duplicates(numbers)
        assert_clean_front(front)

    def test_an_answer_slower_than_the_request_timeout_is_retried(self, deployment: Deployment):
        """The service stores a batch but answers after 4 s; the request timeout is 2 s:
        the shipper gives up on the answer and retries.  It cannot know the first try
        was stored: exactly that batch's records are the only ones sent twice."""
        front = deployment.front
        config = deployment.configure(["app"], request_timeout=2)
        with ShipperProcess(config) as shipper:
            deployment.write("app", 10)
            wait_until(lambda: deployment.has_all("app", 10))
            front.inject("slow", times=1, stream="app", delay=4.0)
            deployment.write("app", 100, start=10)
            wait_until(lambda: deployment.has_all("app", 110))
            assert shipper.stop() == 0
            timeouts = shipper.find("put.retry")
        assert [e["error"] for e in timeouts] == ["ReadTimeoutError"]
        (slow_put,) = [p for p in front.puts if p.slow]
        numbers = deployment.numbers("app")
        assert sorted(set(numbers)) == list(range(110))
        assert sum(duplicates(numbers).values()) == slow_put.events
        assert_clean_front(front)
