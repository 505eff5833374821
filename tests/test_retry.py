"""Retry pauses: capped exponential backoff with full jitter (SPEC §6), never giving up."""

from __future__ import annotations

import random

from shipper.retry import Backoff


class TestBackoff:
    def test_the_ceiling_doubles_from_the_base_until_the_cap(self):
        backoff = Backoff(base=0.2, cap=20.0)
        assert [backoff.ceiling(n) for n in range(9)] == [
            0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 20.0, 20.0,
        ]  # fmt: skip

    def test_retries_never_stop_and_huge_attempt_numbers_stay_at_the_cap(self):
        """An outage of days means attempt numbers in the tens of thousands."""
        backoff = Backoff(base=0.2, cap=20.0)
        assert backoff.ceiling(50_000) == 20.0
        assert 0 <= backoff.delay(50_000) <= 20.0

    def test_full_jitter_spreads_pauses_over_the_whole_range(self):
        """Every pause lies in [0, ceiling], and they spread over it: many shippers
        recovering from one outage do not retry in step."""
        backoff = Backoff(base=0.2, cap=20.0)
        rand = random.Random(7)
        for attempt in (0, 3, 10):
            ceiling = backoff.ceiling(attempt)
            pauses = [backoff.delay(attempt, rand) for _ in range(2000)]
            assert all(0 <= p <= ceiling for p in pauses)
            assert min(pauses) < 0.05 * ceiling
            assert max(pauses) > 0.95 * ceiling
            below_half = sum(p < ceiling / 2 for p in pauses) / len(pauses)
            assert 0.45 < below_half < 0.55

    def test_a_seeded_generator_gives_repeatable_pauses(self):
        backoff = Backoff()
        first = [backoff.delay(n, random.Random(1)) for n in range(5)]
        again = [backoff.delay(n, random.Random(1)) for n in range(5)]
        assert first == again
