"""Events CloudWatch refuses are counted by reason and logged with file and offset;
the rest of the batch is delivered and checkpointed.

SPEC §3.1 (the only records not delivered are those CloudWatch refuses: counted and
logged, never silently dropped) and §6 (rejectedLogEventsInfo is honoured).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from tests.delivery.conftest import Deployment, assert_clean_front, duplicates
from tests.support.process import ShipperProcess, wait_until

DAY = 86_400


def line(at: float, n: int) -> str:
    """One line as logging's default format writes it, at the time ``at`` (UTC)."""
    moment = datetime.fromtimestamp(at, UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S},{moment.microsecond // 1000:03d} INFO rec-app-{n} at {at}\n"


class TestRejectedEvents:
    def test_refused_events_are_counted_by_reason_and_the_rest_delivered(
        self, deployment: Deployment
    ):
        """Lines 20 days old and 3 hours ahead are never sent (too_old, too_new); lines
        older than the group's retention are refused by the service (expired,
        rejectedLogEventsInfo); the fresh lines of the same batch arrive; a restart
        sends nothing again (the refused lines were checkpointed too)."""
        front = deployment.front
        now = time.time()
        front.expire_before(int((now - 3 * DAY) * 1000))
        config = deployment.configure(["app"])
        kinds = ["fresh"] * 10 + ["old"] * 5 + ["expired"] * 4 + ["ahead"] * 2
        ages = {"fresh": 60, "old": 20 * DAY, "expired": 5 * DAY, "ahead": -3 * 3600}
        order = list(kinds)
        random.Random(4).shuffle(order)
        path = deployment.logs / "app" / "app.log"
        ends: dict[str, list[int]] = {k: [] for k in ages}
        with path.open("w") as out:
            for n, kind in enumerate(order):
                out.write(line(now - ages[kind], n))
                ends[kind].append(out.tell())
        fresh = [n for n, kind in enumerate(order) if kind == "fresh"]
        with ShipperProcess(config) as shipper:
            wait_until(lambda: len(deployment.numbers("app")) >= len(fresh))
            wait_until(
                lambda: deployment.metric("shipper_records_rejected_total", reason="expired")
            )
            counted = {
                reason: deployment.metric("shipper_records_rejected_total", reason=reason)
                for reason in ("too_old", "too_new", "expired", "invalid")
            }
            assert shipper.stop() == 0
            logged = shipper.find("events.rejected")
        assert counted == {"too_old": 5, "too_new": 2, "expired": 4, "invalid": 0}
        where: dict[str, list[str]] = {}
        for entry in logged:
            where.setdefault(entry["reason"], []).extend(entry["where"])
        for reason, kind in (("too_old", "old"), ("too_new", "ahead"), ("expired", "expired")):
            assert sorted(where[reason]) == sorted(f"{path}:{end}" for end in ends[kind])
        assert sorted(deployment.numbers("app")) == fresh
        # Too old and too new never reached the service: only the expired were reported.
        assert {key for info in front.rejected_info for key in info} == {"expiredLogEventEndIndex"}
        assert sum(info["expiredLogEventEndIndex"] + 1 for info in front.rejected_info) == 4
        puts = front.put_count()
        with ShipperProcess(config) as again:
            time.sleep(1.5)
            assert again.stop() == 0
            assert again.find("events.rejected") == []
        assert front.put_count() == puts
        assert_clean_front(front)

    def test_a_batch_the_service_refuses_as_invalid_is_counted_not_retried(
        self, deployment: Deployment
    ):
        """An InvalidParameterException cannot be cured by retrying: the batch's events
        are counted as ``invalid`` and logged with the service's words, never retried,
        and later batches are delivered."""
        front = deployment.front
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 10)
            wait_until(lambda: deployment.has_all("app", 10))
            front.inject("invalid", times=1, stream="app")
            deployment.write("app", 25, start=10)
            wait_until(lambda: shipper.find("events.rejected"))
            deployment.write("app", 15, start=35)
            wait_until(lambda: deployment.has_all("app", 10 + 15))
            invalid = deployment.metric("shipper_records_rejected_total", reason="invalid")
            assert shipper.stop() == 0
            (logged,) = shipper.find("events.rejected")
            retries = shipper.find("put.retry")
        assert front.served["invalid"] == 1
        assert logged["reason"] == "invalid"
        assert "refused on purpose" in logged["detail"]
        assert retries == []
        numbers = deployment.numbers("app")
        assert not duplicates(numbers)
        assert invalid == logged["count"] == 50 - len(numbers)
        assert set(range(10)) <= set(numbers)
        assert set(range(35, 50)) <= set(numbers)
        assert_clean_front(front)
