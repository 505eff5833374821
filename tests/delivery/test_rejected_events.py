"""Events CloudWatch refuses are counted by reason and logged with file and offset;
the rest of the batch is delivered and checkpointed.

SPEC §3.1 (the only records not delivered are those CloudWatch refuses: counted and
logged, never silently dropped) and §6 (rejectedLogEventsInfo is honoured).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from tests.delivery.conftest import Deployment, assert_clean_front
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

    def test_a_batch_refused_as_invalid_is_split_to_find_the_events_at_fault(
        self, deployment: Deployment
    ):
        """Issue 18: the service refuses every request holding one event it will not take
        (InvalidParameterException). That event alone is counted as ``invalid`` and
        logged with its file, offset and the service's words; the other 49 records of
        its batches are delivered, once each, and nothing is retried."""
        front = deployment.front
        config = deployment.configure(["app"])
        front.refuse_messages_with("rec-app-17 ")
        with ShipperProcess(config) as shipper:
            deployment.write("app", 50)
            wait_until(lambda: len(deployment.numbers("app")) >= 49)
            wait_until(lambda: shipper.find("events.rejected"))
            invalid = deployment.metric("shipper_records_rejected_total", reason="invalid")
            assert shipper.stop() == 0
            (logged,) = shipper.find("events.rejected")
            retries = shipper.find("put.retry")
        assert front.served["refused_text"] >= 1
        assert invalid == logged["count"] == 1
        assert logged["reason"] == "invalid"
        assert "rec-app-17 " in logged["detail"]
        (place,) = logged["where"]
        path = deployment.logs / "app" / "app.log"
        lines = path.read_bytes().splitlines(keepends=True)
        end = sum(len(line) for line in lines[:18])  # record 17 ends after the 18th line
        assert place == f"{path}:{end}"
        assert retries == []
        numbers = deployment.numbers("app")
        assert sorted(numbers) == [n for n in range(50) if n != 17]
        assert_clean_front(front)

    def test_a_batch_refused_once_as_invalid_is_delivered_whole(self, deployment: Deployment):
        """A refusal no event is at fault for (the service refused the request once) costs
        nothing: the batch's parts are delivered, none is counted as invalid."""
        front = deployment.front
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 10)
            wait_until(lambda: deployment.has_all("app", 10))
            front.inject("invalid", times=1, stream="app")
            deployment.write("app", 40, start=10)
            wait_until(lambda: deployment.has_all("app", 50))
            invalid = deployment.metric("shipper_records_rejected_total", reason="invalid")
            assert shipper.stop() == 0
            assert shipper.find("events.rejected") == []
        assert front.served["invalid"] == 1
        assert invalid == 0
        numbers = deployment.numbers("app")
        assert sorted(numbers) == list(range(50))
        assert_clean_front(front)
