"""A format that does not fit its files is reported (shipper.mismatch; issue 20 item
4): counted, logged at most once a minute a source with a redacted example, and a
reason on /readyz until lines match again for a while."""

from __future__ import annotations

from structlog.testing import capture_logs

from shipper import metrics
from shipper.mask import Masker
from shipper.mismatch import CLEAR_AFTER, LOG_EVERY, MismatchWatch

LINE = '[INFO] 2024-01-01 10:00:00,123 app.py:3 {"password": "hunter2", "n": 1}'


def counted(category: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "shipper_format_mismatches_total", {"category": category}
    )
    return value or 0.0


class TestMismatchWatch:
    def test_every_unmatched_line_is_counted_and_logged_once_a_minute(self) -> None:
        watch = MismatchWatch("mismatch-log", Masker(keys=["password"]))
        with capture_logs() as logged:
            watch.seen("app.log", (3, (LINE, 70)), 3, now=100.0)
            watch.seen("app.log", (2, (LINE, 140)), 2, now=100.0 + LOG_EVERY / 2)
            watch.seen("app.log", (4, (LINE, 210)), 4, now=100.0 + LOG_EVERY)
        assert counted("mismatch-log") == 9
        assert [(e["event"], e["lines"], e["offset"]) for e in logged] == [
            ("format.mismatch", 3, 70),
            ("format.mismatch", 6, 210),  # the 2 not logged, and these 4
        ]
        assert "hunter2" not in logged[0]["example"]  # key rules apply to the example
        assert logged[0]["example"].startswith("[INFO] 2024-01-01 10:00:00,123")

    def test_readiness_says_so_until_lines_match_again_for_a_while(self) -> None:
        watch = MismatchWatch("mismatch-ready", Masker())
        assert watch.reason(0.0) is None
        watch.seen("app.log", (0, None), 5, now=10.0)
        assert watch.reason(10.0) is None  # matched lines are no reason
        watch.seen("app.log", (1, (LINE, 70)), 1, now=20.0)
        assert watch.reason(20.0) == (
            "mismatch-ready: lines do not match the source's format (see format.mismatch)"
        )
        assert watch.reason(20.0 + CLEAR_AFTER * 10) is not None  # nothing matched since
        watch.seen("app.log", (0, None), 5, now=30.0)
        assert watch.reason(19.0 + CLEAR_AFTER) is not None  # not for long enough yet
        assert watch.reason(20.0 + CLEAR_AFTER) is None
        assert watch.reason(20.0 + CLEAR_AFTER * 2) is None
