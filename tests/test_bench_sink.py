"""The benchmark's CloudWatch Logs sink (bench/sink.py) checks what it counts.

The benchmark's figures are only worth something if the sink refuses what the real
service refuses: these tests send real PutLogEvents calls through botocore (its
parameter validation off, as the shipper has it) to the sink running as its own
process, and hold it to the API rules of SPEC §6 — at most 10,000 events and
1,048,576 bytes (UTF-8 message bytes + 26 per event), chronological order, at most
24 hours per call — and to reporting once the expected number of events arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

from bench.run import SinkProcess

GROUP, STREAM = "/bench/test", "s"
DAY_MS = 24 * 3600 * 1000
NOW_MS = 1_700_000_000_000


@pytest.fixture
def sink() -> Iterator[SinkProcess]:
    process = SinkProcess(expect=3)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def logs(sink: SinkProcess) -> Any:
    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=sink.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=botocore.config.Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    return client


def put(logs: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    reply: dict[str, Any] = logs.put_log_events(
        logGroupName=GROUP, logStreamName=STREAM, logEvents=events
    )
    return reply


def refused(logs: Any, events: list[dict[str, Any]]) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put(logs, events)
    return str(caught.value.response["Error"]["Code"])


class TestAccepted:
    def test_counts_events_and_bytes_as_cloudwatch_does(self, sink, logs):
        """Bytes are UTF-8 message bytes plus 26 per event (non-ASCII counted in bytes)."""
        put(logs, [{"timestamp": NOW_MS, "message": "abc"}, {"timestamp": NOW_MS, "message": "é"}])
        stats = sink.stats()
        assert (stats["events"], stats["bytes"], stats["violations"]) == (2, 3 + 2 + 2 * 26, 0)

    def test_exactly_the_byte_limit_is_accepted(self, sink, logs):
        """1,048,576 bytes including the overhead is still one valid call."""
        message = "x" * (1_048_576 - 26)
        put(logs, [{"timestamp": NOW_MS, "message": message}])
        assert sink.stats()["events"] == 1

    def test_reports_when_the_expected_events_have_arrived(self, sink, logs):
        """The parent learns on stdout that N events arrived, and when."""
        put(logs, [{"timestamp": NOW_MS + i, "message": str(i)} for i in range(3)])
        line = sink.next_line(timeout=10)
        assert line["reached"] == 3
        assert line["at"] is not None


class TestRefused:
    def test_more_than_10000_events(self, sink, logs):
        events = [{"timestamp": NOW_MS, "message": "m"} for _ in range(10_001)]
        assert refused(logs, events) == "InvalidParameterException"
        assert (sink.stats()["events"], sink.stats()["violations"]) == (0, 1)

    def test_one_byte_over_the_limit(self, sink, logs):
        """26 bytes per event count: 1,048,577 bytes in all is refused."""
        events = [
            {"timestamp": NOW_MS, "message": "x" * (1_048_576 - 2 * 26 - 1)},
            {"timestamp": NOW_MS, "message": "yy"},
        ]
        assert refused(logs, events) == "InvalidParameterException"
        assert sink.stats()["violations"] == 1

    def test_events_out_of_chronological_order(self, sink, logs):
        events = [{"timestamp": NOW_MS + 1, "message": "b"}, {"timestamp": NOW_MS, "message": "a"}]
        assert refused(logs, events) == "InvalidParameterException"
        assert sink.stats()["violation_examples"][0].endswith("(not chronological)")

    def test_a_call_spanning_more_than_24_hours(self, sink, logs):
        events = [
            {"timestamp": NOW_MS, "message": "a"},
            {"timestamp": NOW_MS + DAY_MS + 1, "message": "b"},
        ]
        assert refused(logs, events) == "InvalidParameterException"
        assert sink.stats()["events"] == 0

    def test_a_stream_that_was_never_created(self, sink, logs):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            logs.put_log_events(
                logGroupName=GROUP,
                logStreamName="missing",
                logEvents=[{"timestamp": NOW_MS, "message": "a"}],
            )
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert sink.stats()["events"] == 0
