"""The CloudWatch and batch keys of the configuration (SPEC §5, §3.7).

``retention_days`` takes only the values PutRetentionPolicy accepts; the batch
limits cannot be set beyond what PutLogEvents allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.config import ConfigError, parse

SOURCES = "sources:\n  - {category: app, path: logs/app.log}\n"


def load(text: str):  # type: ignore[no-untyped-def]
    return parse(SOURCES + text, base_dir=Path("/srv"), env={})


class TestRetention:
    @pytest.mark.parametrize("days", [1, 14, 30, 400, 3653])
    def test_values_the_api_accepts_are_taken(self, days):
        assert load(f"cloudwatch: {{retention_days: {days}}}\n").cloudwatch.retention_days == days

    @pytest.mark.parametrize("days", [0, 2, 10, 31, 366, 3654])
    def test_other_values_are_refused_naming_the_key_and_the_choices(self, days):
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch: {{retention_days: {days}}}\n")
        (problem,) = error.value.problems
        assert problem.startswith(f"cloudwatch.retention_days: {days}; expected one of 1, 3, 5")
        assert problem.endswith("3288, 3653")


class TestBatchLimits:
    @pytest.mark.parametrize(
        ("key", "value", "expected"),
        [
            ("max_events", 10_001, "expected 1 to 10000"),
            ("max_events", 0, "expected 1 to 10000"),
            ("max_bytes", 1_048_577, "expected 1024 to 1048576"),
            ("flush_interval", 0, "expected a number greater than 0"),
        ],
    )
    def test_limits_beyond_the_api_are_refused(self, key, value, expected):
        with pytest.raises(ConfigError) as error:
            load(f"batch: {{{key}: {value}}}\n")
        assert error.value.problems == [f"batch.{key}: {value}; {expected}"]

    def test_defaults_are_the_api_limits(self):
        batch = load("").batch
        assert (batch.max_events, batch.max_bytes) == (10_000, 1_048_576)
