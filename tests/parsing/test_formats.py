"""Format strings: every style, LogRecord attribute and width/precision form is read
back from real ``logging`` output, exactly (issue 5 §1, §4, §5).

Each case writes records through ``logging.Formatter``, parses every line, and checks
that formatting the parsed fields again gives the very same line (so every field was
captured whole), that numbers came back as numbers, and that the time is the record's.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import msgspec
import pytest

from shipper.config import ConfigError
from shipper.config import parse as parse_config
from shipper.parse import FormatError, FormatParser, Parsed, build_parser
from tests.support.logging_output import local_zone, write_logs

ZONE = "Asia/Seoul"
CREATED = [1_700_000_000.123456 + n * 61.5 for n in range(10)]

# (id, format, style, datefmt, time precision in ms: 1 = to the millisecond)
FORMATS = [
    (
        "spec-app",
        "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s",
        "%",
        "%Y-%m-%d %H:%M:%S",
        1000,
    ),
    (
        "spec-db-default-asctime",
        "%(asctime)s [pid:%(process)d] %(filename)s(line:%(lineno)d) %(levelname)s "
        "[%(request_id)s] %(message)s",
        "%",
        None,
        1,
    ),
    (
        "widths-and-precisions",
        "%(asctime)s.%(msecs)03d %(levelname)-8s %(name)s %(lineno)4d %(relativeCreated).3f "
        "%(levelno)05d %(process)x %(levelname).1s %% %(message)s",
        "%",
        "%Y-%m-%dT%H:%M:%S",
        1,
    ),
    (
        "every-attribute",
        "%(created)f %(levelno)s %(levelname)s %(name)s %(module)s %(funcName)s "
        "%(pathname)s %(filename)s %(lineno)d %(process)s %(processName)s %(thread)d "
        "[%(threadName)s] %(relativeCreated)d %(msecs)d | %(message)s",
        "%",
        None,
        1,
    ),
    (
        "brace-style",
        "{asctime} {levelname:<8} {name} {lineno:>5d} {relativeCreated:.3f} {msecs:03.0f} "
        "{process} [{request_id}] {message}",
        "{",
        None,
        1,
    ),
    (
        "brace-fill-and-centre",
        "{asctime} [{levelname:*^11}] {lineno:05d} {funcName}(): {message}",
        "{",
        "%d/%m/%Y %H:%M:%S",
        1000,
    ),
    (
        "dollar-style",
        "$asctime $levelname ${name}: [$request_id] $$ $message",
        "$",
        None,
        1,
    ),
]
if sys.version_info >= (3, 12):
    FORMATS.append(("task-name", "%(asctime)s %(taskName)s %(message)s", "%", None, 1))


def _log_some(logger: logging.Logger) -> None:
    logger.info("plain message", extra={"request_id": "req-1"})
    logger.warning("with %s args and a %d", "two", 2, extra={"request_id": "req-2"})
    logger.error("tabs\tand  double spaces ", extra={"request_id": "req-3"})
    logger.debug(json.dumps({"url": "/a", "statusCode": 200}), extra={"request_id": "req-4"})
    logger.critical("ünïcödé ✓", extra={"request_id": "req-5"})


def _written_and_read(
    formatter: logging.Formatter, fmt: str, style: str, datefmt: str | None
) -> list[tuple[str, logging.LogRecord, Parsed | None]]:
    """Each line ``formatter`` wrote for :func:`_log_some`, its record, and what the
    parser built from ``fmt`` read from it."""
    with local_zone(ZONE):
        written = write_logs(formatter, _log_some, CREATED)
    parser = build_parser(fmt, datefmt, ZONE, style)
    return [
        (line, record, parser.parse(line))
        for line, record in zip(written.lines, written.records, strict=True)
    ]


@pytest.mark.parametrize(
    ("fmt", "style", "datefmt", "precision"),
    [case[1:] for case in FORMATS],
    ids=[case[0] for case in FORMATS],
)
class TestFormatsRoundTrip:
    def test_every_field_reads_back_exactly(
        self, fmt: str, style: str, datefmt: str | None, precision: int
    ) -> None:
        """Formatting the parsed fields again rebuilds each line the app wrote."""
        formatter = logging.Formatter(fmt, datefmt, style=style)  # type: ignore[arg-type]
        for line, record, parsed in _written_and_read(formatter, fmt, style, datefmt):
            assert parsed is not None, line
            fields, _ = parsed
            values = dict(fields)
            if isinstance(values.get("message"), msgspec.Raw):  # a JSON object as written
                values["message"] = bytes(values["message"]).decode()
            elif isinstance(values.get("message"), dict):
                values["message"] = json.dumps(values["message"])
            values.setdefault("asctime", getattr(record, "asctime", ""))
            again = logging.makeLogRecord(values)
            assert formatter.formatMessage(again) == line

    def test_time_is_the_records_own(
        self, fmt: str, style: str, datefmt: str | None, precision: int
    ) -> None:
        """The event time is the record's creation time, to the precision written."""
        formatter = logging.Formatter(fmt, datefmt, style=style)  # type: ignore[arg-type]
        for line, record, parsed in _written_and_read(formatter, fmt, style, datefmt):
            assert parsed is not None
            expected = int(record.created * 1000) // precision * precision
            assert parsed[1] == expected, line

    def test_raw_output_reads_the_same_times_without_fields(
        self, fmt: str, style: str, datefmt: str | None, precision: int
    ) -> None:
        """For raw output (fields=False) the parser still tells where records start
        and reads the same time, without building the fields raw events never show."""
        formatter = logging.Formatter(fmt, datefmt, style=style)  # type: ignore[arg-type]
        with local_zone(ZONE):
            written = write_logs(formatter, _log_some, CREATED)
        full = build_parser(fmt, datefmt, ZONE, style)
        raw = build_parser(fmt, datefmt, ZONE, style, fields=False)
        for line in [*written.lines, "  a continuation line"]:
            parsed, timed = full.parse(line), raw.parse(line)
            assert (parsed is None) == (timed is None), line
            if parsed is not None and timed is not None:
                assert timed[1] == parsed[1], line
                assert "message" not in timed[0], line

    def test_numbers_come_back_as_numbers(
        self, fmt: str, style: str, datefmt: str | None, precision: int
    ) -> None:
        """lineno, process, levelno, created, relativeCreated, msecs are typed."""
        formatter = logging.Formatter(fmt, datefmt, style=style)  # type: ignore[arg-type]
        written = write_logs(formatter, _log_some, CREATED)
        parser = build_parser(fmt, datefmt, ZONE, style)
        numeric = {"lineno", "process", "levelno", "thread", "created", "relativeCreated"}
        for line, record in zip(written.lines, written.records, strict=True):
            parsed = parser.parse(line)
            assert parsed is not None
            for name in numeric & parsed[0].keys():
                value = parsed[0][name]
                assert isinstance(value, (int, float)), (name, value)
                assert value == pytest.approx(getattr(record, name), abs=1), name


class TestJsonMessages:
    def test_a_json_message_becomes_fields(self) -> None:
        """SPEC §6: the message is the JSON object itself when it was JSON."""
        fmt = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
        payload = {"url": "/v1/users", "method": "GET", "statusCode": 500, "client": {"x": 1}}
        written = write_logs(logging.Formatter(fmt), lambda log: log.info(json.dumps(payload)))
        parsed = build_parser(fmt, None, ZONE).parse(written.lines[0])
        assert parsed is not None
        assert msgspec.json.decode(parsed[0]["message"]) == payload

    def test_a_message_that_only_looks_like_json_stays_text(self) -> None:
        """Text starting with { that is not JSON is kept as written."""
        fmt = "%(levelname)s %(message)s"
        written = write_logs(logging.Formatter(fmt), lambda log: log.info("{not json"))
        parsed = build_parser(fmt, None, ZONE).parse(written.lines[0])
        assert parsed is not None
        assert parsed[0]["message"] == "{not json"


class TestJsonLines:
    def test_python_json_logger_lines_with_their_time(self) -> None:
        """python-json-logger: fields kept, asctime (default form) is the event time."""
        from pythonjsonlogger.json import JsonFormatter

        formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        with local_zone(ZONE):
            written = write_logs(
                formatter,
                lambda log: log.info("paid", extra={"order": 7, "tags": ["a"]}),
                CREATED,
            )
        parsed = build_parser("json", None, ZONE).parse(written.lines[0])
        assert parsed is not None
        fields, timestamp = parsed
        assert fields["message"] == "paid"
        assert fields["order"] == 7
        assert fields["tags"] == ["a"]
        assert timestamp == int(CREATED[0] * 1000)

    def test_python_json_logger_with_a_configured_time_key(self) -> None:
        """time_key picks the key (here renamed by the app) and datefmt reads it."""
        from pythonjsonlogger.json import JsonFormatter

        formatter = JsonFormatter(
            "%(asctime)s %(message)s",
            datefmt="%d/%m/%Y %H:%M:%S",
            rename_fields={"asctime": "when"},
        )
        with local_zone(ZONE):
            written = write_logs(formatter, lambda log: log.info("hi"), CREATED)
        parser = build_parser("json", "%d/%m/%Y %H:%M:%S", ZONE, time_key="when")
        parsed = parser.parse(written.lines[0])
        assert parsed is not None
        assert parsed[1] == int(CREATED[0]) * 1000

    def test_structlog_json_renderer_lines(self) -> None:
        """structlog's JSONRenderer with an ISO TimeStamper (UTC, microseconds)."""
        import io

        import structlog

        out = io.StringIO()
        logger = structlog.wrap_logger(
            structlog.PrintLogger(out),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
        )
        before = time.time()
        logger.info("user.login", user_id=42)
        parsed = build_parser("json", None, ZONE).parse(out.getvalue().strip())
        assert parsed is not None
        fields, timestamp = parsed
        assert fields["event"] == "user.login"
        assert fields["user_id"] == 42
        assert timestamp is not None
        assert before * 1000 - 1 <= timestamp <= time.time() * 1000 + 1

    def test_epoch_times_in_seconds_or_milliseconds(self) -> None:
        """A numeric time key is epoch seconds, or milliseconds when too large."""
        parser = build_parser("json", None, ZONE, time_key="ts")
        for value in (1_700_000_000.5, 1_700_000_000_500):
            parsed = parser.parse(json.dumps({"ts": value, "msg": "x"}))
            assert parsed is not None
            assert parsed[1] == 1_700_000_000_500


class TestAmbiguousFormatsRejected:
    @pytest.mark.parametrize(
        ("fmt", "style", "datefmt", "says"),
        [
            ("%(levelname)s%(message)s", "%", None, "touch"),
            ("{name}{lineno:d} {message}", "{", None, "touch"),
            ("$levelname$message", "$", None, "touch"),
            ("%(asctime)s %(levelname)s", "%", None, "no %(message)s"),
            ("%(asctime)s %(message)s", "%", "%c", "cannot be read back"),
            ("%(asctime)s %(message)s", "%", "%H:%M:%S", "has no date"),
            ("%(asctime)s %(message)s", "%", "%d %H:%M", "has no date"),
            ("price $ $message", "$", None, "lone $"),
            ("{message!x}", "{", None, "not a valid"),
        ],
    )
    def test_config_names_the_key_and_the_problem(
        self, tmp_path, fmt: str, style: str, datefmt: str | None, says: str
    ) -> None:
        """SPEC §3.7: a format that cannot be read back is a config error at load time."""
        source = {"category": "app", "path": "app.log", "format": fmt, "style": style}
        if datefmt is not None:
            source["datefmt"] = datefmt
        text = json.dumps({"sources": [source]})
        with pytest.raises(ConfigError) as caught:
            parse_config(text, tmp_path)
        message = str(caught.value)
        assert "sources[0]." in message
        assert says in message

    def test_format_error_is_raised_by_the_compiler_too(self) -> None:
        with pytest.raises(FormatError, match="touch"):
            FormatParser("%(name)s%(lineno)d %(message)s", None, "UTC")

    def test_a_sound_format_passes_the_config_check(self, tmp_path) -> None:
        source = {
            "category": "app",
            "path": "app.log",
            "format": "{asctime} {levelname:<8} {message}",
            "style": "{",
        }
        config = parse_config(json.dumps({"sources": [source]}), tmp_path)
        assert config.sources[0].style == "{"
