"""Times: datefmt forms, written offsets, DST folds and gaps, unreadable times
(issue 5 §2; SPEC §3.6: an unparsable timestamp never stops or drops a record).

The fold/gap rules tested here are documented in ``shipper/parse.py``.
"""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shipper import metrics
from shipper.mask import Masker
from shipper.multiline import Assembler
from shipper.parse import TimeReader, build_parser
from shipper.render import Renderer
from tests.support.logging_output import local_zone, write_logs

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def epoch(zone: str, *args: int, fold: int = 0) -> float:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).timestamp()  # type: ignore[misc]


def log_each(count: int, messages: list[str] | None = None) -> Callable[[logging.Logger], None]:
    """Log ``count`` records (with the given messages, or numbered ones)."""

    def calls(logger: logging.Logger) -> None:
        for n in range(count):
            logger.info(messages[n] if messages else f"message {n}")

    return calls


def read_all(
    lines: list[str], zone: str, datefmt: str | None, fmt: str = FORMAT
) -> list[int | None]:
    parser = build_parser(fmt, datefmt, zone)
    out = []
    for line in lines:
        parsed = parser.parse(line)
        assert parsed is not None, line
        out.append(parsed[1])
    return out


class TestDatefmtForms:
    @pytest.mark.parametrize(
        "datefmt",
        [
            "%Y-%m-%d %H:%M:%S",
            "%d/%b/%Y:%H:%M:%S",
            "%Y%m%d %H%M%S",
            "%I:%M:%S %p %m/%d/%y",
            "%a %b %d %H:%M:%S %Y",
            "%A, %d %B %Y %H:%M",
            "%Y.%j %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S%z",
            "%Y-%m-%d %H:%M:%S %Z",
        ],
    )
    def test_what_strftime_wrote_reads_back(self, datefmt: str) -> None:
        """Any datefmt strptime can read gives the record's time (to the precision written)."""
        created = [1_700_000_000.25 + n * 3_333.3 for n in range(20)]
        with local_zone("Europe/Berlin"):
            written = write_logs(logging.Formatter(FORMAT, datefmt), log_each(20), created)
        step = 60_000 if "%S" not in datefmt else 1000
        expected = [int(c * 1000) // step * step for c in created]
        assert read_all(written.lines, "Europe/Berlin", datefmt) == expected

    def test_default_asctime_keeps_milliseconds(self) -> None:
        """logging's default asctime (",msecs") is read to the millisecond."""
        created = [1_700_000_000.987, 1_700_000_001.001]
        with local_zone("Asia/Seoul"):
            written = write_logs(logging.Formatter(FORMAT), log_each(2), created)
        expected = [int(r.created) * 1000 + int(r.msecs) for r in written.records]
        assert expected[0] % 1000 > 900
        assert read_all(written.lines, "Asia/Seoul", None) == expected

    def test_a_written_offset_wins_over_the_source_timezone(self) -> None:
        """%z written by the app: the source's timezone (here UTC) does not matter."""
        created = [1_700_000_000.0]
        with local_zone("Asia/Seoul"):
            written = write_logs(
                logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S%z"),
                lambda log: log.info("x"),
                created,
            )
        assert "+0900" in written.text
        assert read_all(written.lines, "UTC", "%Y-%m-%dT%H:%M:%S%z") == [1_700_000_000_000]


class TestDaylightSavingTime:
    def test_the_repeated_hour_reads_in_file_order(self) -> None:
        """New York, 2024-11-03: 01:00-01:59 is written twice (EDT then EST); a time that
        would go back more than a minute is the second pass, so every time is right."""
        start = epoch("America/New_York", 2024, 11, 3, 0, 30)
        created = [start + n * 600 for n in range(13)]  # 00:30 EDT .. 01:30 EST, 10 min apart
        with local_zone("America/New_York"):
            written = write_logs(logging.Formatter(FORMAT), log_each(len(created)), created)
        repeated = [line[11:16] for line in written.lines]
        assert repeated.count("01:10") == 2  # the hour really was written twice
        assert read_all(written.lines, "America/New_York", None) == [int(c * 1000) for c in created]

    def test_a_lone_time_in_the_repeated_hour_is_its_first_occurrence(self) -> None:
        """Without an earlier record to go by, 01:30 on the fold night is 01:30 EDT."""
        second_pass = epoch("America/New_York", 2024, 11, 3, 1, 30, fold=1)
        with local_zone("America/New_York"):
            written = write_logs(
                logging.Formatter(FORMAT), lambda log: log.info("x"), [second_pass]
            )
        first_pass = epoch("America/New_York", 2024, 11, 3, 1, 30, fold=0)
        assert read_all(written.lines, "America/New_York", None) == [int(first_pass * 1000)]

    def test_a_written_zone_name_settles_the_fold(self) -> None:
        """Berlin, 2024-10-27: with %Z (CEST/CET) each time is read right on its own."""
        start = epoch("Europe/Berlin", 2024, 10, 27, 2, 15)  # CEST
        created = [start, start + 3600]  # 02:15 CEST, then 02:15 CET
        datefmt = "%Y-%m-%d %H:%M:%S %Z"
        with local_zone("Europe/Berlin"):
            written = write_logs(logging.Formatter(FORMAT, datefmt), log_each(2), created)
        assert "CEST" in written.lines[0]
        assert "CET" in written.lines[1]
        # Read in reverse order: no help from the previous time, the names decide.
        times = read_all(list(reversed(written.lines)), "Europe/Berlin", datefmt)
        assert times == [int(created[1] * 1000), int(created[0] * 1000)]

    def test_a_time_in_the_skipped_hour_takes_the_offset_before_the_gap(self) -> None:
        """New York, 2024-03-10 02:30 never happened; it is read as 02:30 EST = 03:30 EDT
        (a host whose zone is wrong wrote it: here a writer in UTC)."""
        at_0230_utc = epoch("UTC", 2024, 3, 10, 2, 30)
        with local_zone("UTC"):
            written = write_logs(
                logging.Formatter(FORMAT), lambda log: log.info("x"), [at_0230_utc]
            )
        assert " 02:30:00," in written.lines[0]
        expected = epoch("America/New_York", 2024, 3, 10, 3, 30)
        assert read_all(written.lines, "America/New_York", None) == [int(expected * 1000)]


class _BadDay(logging.Formatter):
    """An app formatter that writes a day that does not exist (2023 is no leap year)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if record.getMessage() == "broken":
            return "2023-02-29 12:00:00"
        return super().formatTime(record, datefmt)


class _Where:
    category = "app"
    path = "/logs/app/app.log"

    def delivered(self, offset: int) -> None:
        pass


class TestUnreadableTimes:
    def test_kept_with_the_previous_time_marked_and_counted(self) -> None:
        """A record whose time cannot be read is shipped with the previous record's time,
        marked ``time_unreadable`` and counted in shipper_parse_fallbacks."""
        created = [1_700_000_000.5, 1_700_000_100.0, 1_700_000_200.0]
        datefmt = "%Y-%m-%d %H:%M:%S"
        with local_zone("UTC"):
            written = write_logs(
                _BadDay(FORMAT, datefmt), log_each(3, ["good", "broken", "late"]), created
            )
        assembler = Assembler(build_parser(FORMAT, datefmt, "UTC"), 100)
        records = assembler.feed([(line, n) for n, line in enumerate(written.lines)], 42)
        records.append(assembler.flush())  # type: ignore[arg-type]
        assert [r.text for r in records] == written.lines  # nothing dropped
        assert [r.timestamp for r in records] == [
            1_700_000_000_000,
            1_700_000_000_000,
            1_700_000_200_000,
        ]
        assert [bool(r.fields and r.fields.get("time_unreadable")) for r in records] == [
            False,
            True,
            False,
        ]

        counter = metrics.PARSE_FALLBACKS.labels("app")
        before = counter._value.get()
        event = Renderer("app", "json", Masker(), json_lines=False).event(records[1], _Where())
        assert event is not None
        assert '"time_unreadable":true' in event.message
        assert '"asctime":"2023-02-29 12:00:00"' in event.message
        assert counter._value.get() == before + 1

    def test_first_record_unreadable_takes_the_read_time(self) -> None:
        """With no previous record the read time stands in."""
        with local_zone("UTC"):
            written = write_logs(
                _BadDay(FORMAT, "%Y-%m-%d %H:%M:%S"), lambda log: log.info("broken")
            )
        assembler = Assembler(build_parser(FORMAT, "%Y-%m-%d %H:%M:%S", "UTC"), 100)
        assembler.feed([(written.lines[0], 1)], now_ms=123_456)
        record = assembler.flush()
        assert record is not None
        assert record.timestamp == 123_456
        assert record.fields is not None
        assert record.fields["time_unreadable"]

    def test_json_line_with_an_unreadable_time_key(self) -> None:
        """A JSON line whose time key holds no time is kept, marked, with a fallback time."""
        assembler = Assembler(build_parser("json", None, "UTC"), 100)
        assembler.feed([('{"time": "yesterday-ish", "msg": "x"}', 1)], now_ms=7)
        record = assembler.flush()
        assert record is not None
        assert record.fields is not None
        assert record.timestamp == 7
        assert record.fields["time_unreadable"] is True
        assert record.fields["time"] == "yesterday-ish"


def test_a_backlog_of_many_seconds_does_not_grow_the_reader() -> None:
    """SPEC §3.3 (memory does not grow with the backlog): reading a long backlog, a
    reader remembers a few recent seconds, not every second it has read."""
    zone = "Asia/Seoul"
    reader = TimeReader("%Y-%m-%d %H:%M:%S", zone)
    start = epoch(zone, 2024, 1, 1)

    def read_seconds(first: int, count: int) -> None:
        for n in range(first, first + count):
            written = datetime.fromtimestamp(start + n, ZoneInfo(zone))
            assert reader.read(written.strftime("%Y-%m-%d %H:%M:%S")) == (start + n) * 1000

    tracemalloc.start()
    try:
        read_seconds(0, 1_000)
        settled = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        read_seconds(1_000, 10_000)  # close to 3 hours of a busy app's log
        grew = tracemalloc.get_traced_memory()[1] - settled
    finally:
        tracemalloc.stop()
    assert grew < 100_000, f"{grew:,} bytes held for 10,000 seconds read"


def test_a_file_read_to_its_end_leaves_its_reader_small() -> None:
    """SPEC §3.3 (memory does not grow with time): every followed file has a reader,
    rotated files read to their end included, one more each midnight; what a reader
    keeps of four minutes of a file is a few recent seconds, a couple of KiB, not the
    whole four minutes (some 30 KiB a rotated file)."""
    zone = "Asia/Seoul"
    start = epoch(zone, 2024, 1, 1)

    def written(n: int) -> str:  # a new string each time, as a line's match gives it
        return datetime.fromtimestamp(start + n, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")

    TimeReader("%Y-%m-%d %H:%M:%S", zone).read(written(0))  # strptime's own first use
    tracemalloc.start()
    try:
        reader = TimeReader("%Y-%m-%d %H:%M:%S", zone)
        for n in range(255):
            assert reader.read(written(n)) == (start + n) * 1000
        with_reader = tracemalloc.get_traced_memory()[0]
        del reader
        held = with_reader - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 4_000, f"{held:,} bytes held by a reader of 255 seconds"
