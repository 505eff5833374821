"""Multi-line records: every traceback shape Python writes joins the record that
logged it (issue 5 §3; SPEC §6 "a traceback belongs to its record").

The tracebacks are raised here and written by ``logger.exception``; the expected
records are what ``logging`` formatted for each call.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipper.config import SourceConfig
from shipper.follow import MULTILINE_WAIT, Follower
from shipper.mask import Masker
from shipper.multiline import Assembler
from shipper.parse import build_parser
from shipper.records import Record
from shipper.render import Renderer
from tests.support.logging_output import write_logs

APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
# The worst case: every line matches the format, only shape tells tracebacks apart.
MESSAGE_ONLY = "%(message)s"


def _lookup(table: dict[str, int], key: str) -> int:
    return table[key] + 0  # the + 0 makes 3.11 underline the subscript with ^^^^


def _divide(a: int, b: int) -> float:
    return a / b


def plain(log: logging.Logger) -> None:
    try:
        _divide(1, 0)
    except ZeroDivisionError:
        log.exception("division failed for user 7")


def carets(log: logging.Logger) -> None:
    try:
        _lookup({"a": 1}, "b")
    except KeyError:
        log.exception("lookup failed")


def chained_cause(log: logging.Logger) -> None:
    try:
        try:
            _lookup({}, "x")
        except KeyError as exc:
            raise ValueError("bad config") from exc
    except ValueError:
        log.exception("config")


def chained_context(log: logging.Logger) -> None:
    try:
        try:
            _divide(1, 0)
        except ZeroDivisionError:
            _lookup({}, "while handling")
    except KeyError:
        log.exception("cleanup failed")


def exception_group(log: logging.Logger) -> None:
    try:
        raise ExceptionGroup(
            "batch", [ValueError("a"), ExceptionGroup("inner", [TypeError("b"), KeyError("c")])]
        )
    except ExceptionGroup:
        log.exception("batch failed")


def syntax_error(log: logging.Logger) -> None:
    try:
        compile("x = (1 +\n", "<config>", "exec")
    except SyntaxError:
        log.exception("bad expression")


def stack_info(log: logging.Logger) -> None:
    log.warning("slow path taken", stack_info=True)


def multiline_message(log: logging.Logger) -> None:
    try:
        raise RuntimeError("first line\nsecond line of the message")
    except RuntimeError:
        log.exception("odd error")


def with_note(log: logging.Logger) -> None:
    try:
        try:
            _divide(1, 0)
        except ZeroDivisionError as exc:
            exc.add_note("while computing the ratio")
            raise
    except ZeroDivisionError:
        log.exception("ratio")


SHAPES: dict[str, Callable[[logging.Logger], None]] = {
    "plain": plain,
    "caret-markers": carets,
    "chained-cause": chained_cause,
    "chained-context": chained_context,
    "exception-group": exception_group,
    "syntax-error": syntax_error,
    "stack-info": stack_info,
    "multiline-exception-message": multiline_message,
    "exception-note": with_note,
}
# Shapes whose extra lines are unindented text: only a format tells them apart.
NEED_FORMAT = {"multiline-exception-message", "exception-note"}


def around(shape: Callable[[logging.Logger], None]) -> Callable[[logging.Logger], None]:
    def calls(log: logging.Logger) -> None:
        log.info("before")
        shape(log)
        shape(log)
        log.info("after")

    return calls


def assemble(lines: list[str], fmt: str, **options: object) -> list[Record]:
    assembler = Assembler(build_parser(fmt, None, "UTC"), **options)  # type: ignore[arg-type]
    records = assembler.feed([(line, n) for n, line in enumerate(lines)], 0)
    last = assembler.flush()
    return records + ([last] if last else [])


def as_texts(records: list[Record]) -> list[str]:
    return ["\n".join([r.text, *r.extra]) for r in records]


class TestTracebackShapes:
    @pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
    def test_each_traceback_joins_its_record(self, shape: Callable[[logging.Logger], None]) -> None:
        """One record per logging call; the traceback is the record's extra lines."""
        written = write_logs(logging.Formatter(APP_FORMAT), around(shape))
        assert len(written.parts) == 4
        assert as_texts(assemble(written.lines, APP_FORMAT, max_lines=1000)) == written.parts

    @pytest.mark.parametrize(
        "shape",
        [s for n, s in SHAPES.items() if n not in NEED_FORMAT],
        ids=[n for n in SHAPES if n not in NEED_FORMAT],
    )
    def test_shapes_are_recognised_when_every_line_matches_the_format(
        self, shape: Callable[[logging.Logger], None]
    ) -> None:
        """With ``%(message)s`` every line parses; the traceback's shape still keeps it whole."""
        written = write_logs(logging.Formatter(MESSAGE_ONLY), around(shape))
        assert as_texts(assemble(written.lines, MESSAGE_ONLY, max_lines=1000)) == written.parts

    def test_the_shapes_really_are_there(self) -> None:
        """The generated output has the markers the cases are named for (Python 3.11+)."""
        text = {n: write_logs(logging.Formatter(APP_FORMAT), s).text for n, s in SHAPES.items()}
        assert re.search(r"^\s+~*\^+\s*$", text["caret-markers"], re.MULTILINE)
        assert "The above exception was the direct cause" in text["chained-cause"]
        assert "During handling of the above exception" in text["chained-context"]
        assert "+-+----" in text["exception-group"]
        assert re.search(r"^\s+\^$", text["syntax-error"], re.MULTILINE)
        assert "Stack (most recent call last):" in text["stack-info"]


class TestLimits:
    def test_max_lines_splits_but_loses_nothing(self) -> None:
        """A record reaching max_lines is complete; the following lines go on as records."""
        written = write_logs(logging.Formatter(APP_FORMAT), around(chained_context))
        records = assemble(written.lines, APP_FORMAT, max_lines=5)
        assert all(len(r.extra) + 1 <= 5 for r in records)
        assert "\n".join(as_texts(records)) == "\n".join(written.lines)

    def test_max_bytes_splits_but_loses_nothing(self) -> None:
        written = write_logs(logging.Formatter(APP_FORMAT), around(exception_group))
        records = assemble(written.lines, APP_FORMAT, max_lines=1000, max_bytes=200)
        assert len(records) > 4
        assert all(len(t.encode()) <= 200 + 200 for t in as_texts(records))
        assert "\n".join(as_texts(records)) == "\n".join(written.lines)


class TestStartPattern:
    def test_a_start_pattern_decides_where_records_begin(self) -> None:
        """multiline_start: indented SQL continuation lines join their record even though
        ``%(message)s`` matches them."""

        def calls(log: logging.Logger) -> None:
            log.info("query:\n  SELECT *\n  FROM users\n  WHERE id = 1")
            log.info("next")

        written = write_logs(logging.Formatter(MESSAGE_ONLY), calls)
        parser = build_parser(MESSAGE_ONLY, None, "UTC")
        assembler = Assembler(parser, 100, start=re.compile(r"\S"))
        records = assembler.feed([(line, n) for n, line in enumerate(written.lines)], 0)
        records.append(assembler.flush())  # type: ignore[arg-type]
        assert as_texts(records) == written.parts
        assert records[0].fields == {"message": "query:"}


class TestQuietFile:
    def test_the_last_record_is_complete_once_the_file_is_quiet(self, tmp_path: Path) -> None:
        """A traceback at the end of a file waits for more lines, then ships on its own
        after MULTILINE_WAIT without a next record."""
        log_path = tmp_path / "app.log"
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter(APP_FORMAT))
        logger = logging.getLogger("shipper.tests.quiet")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning("first")
            chained_cause(logger)
        finally:
            logger.removeHandler(handler)
            handler.close()
        source = SourceConfig(category="app", path=log_path, format=APP_FORMAT)
        follower = Follower(source, None, Renderer("app", "json", Masker(), False), time.time())
        (cursor,) = follower.scan()
        events = follower.read(cursor, 0) or []
        assert len(events) == 1  # "first"; the traceback's record may still grow
        assert follower.read(cursor, 0) is None  # at the end of the file
        assert len(follower.flush_quiet(cursor, MULTILINE_WAIT)) == 0
        time.sleep(MULTILINE_WAIT + 0.1)
        quiet = follower.flush_quiet(cursor, MULTILINE_WAIT)
        follower.close()
        (last,) = quiet.events
        assert "The above exception was the direct cause" in last.message
        assert quiet.ends == [log_path.stat().st_size]

    def test_a_record_across_read_steps_is_not_cut_while_the_reader_waits(self, tmp_path):
        """Time the reader spends waiting for a full stream (CloudWatch slow) is not quiet
        time: a traceback that continues past the chunk just read stays one event."""
        log_path = tmp_path / "app.log"
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter(APP_FORMAT))
        logger = logging.getLogger("shipper.tests.steps")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            for _ in range(200):
                chained_cause(logger)
        finally:
            logger.removeHandler(handler)
            handler.close()
        source = SourceConfig(category="app", path=log_path, format=APP_FORMAT)
        follower = Follower(source, None, Renderer("app", "json", Masker(), False), time.time())
        (cursor,) = follower.scan()
        events = list(follower.read(cursor, 0) or [])
        with log_path.open("rb") as f:
            f.seek(cursor.read_offset)
            rest = f.read(64)
        assert cursor.pending_record()
        assert not rest.startswith(b"[")  # the pending record continues past this chunk
        time.sleep(MULTILINE_WAIT + 0.1)  # as if put() had waited for room this long
        assert len(follower.flush_quiet(cursor, MULTILINE_WAIT)) == 0
        while (more := follower.read(cursor, 0)) is not None:
            events += more
        events += follower.flush_quiet(cursor, 0.0)
        follower.close()
        assert len(events) == 200
        assert all(e.message.count("Traceback (most recent call last)") == 2 for e in events)


class _File:
    """Where rendered test records come from (the renderer reports by file)."""

    category = "app"
    path = "app.log"

    def delivered(self, offset: int) -> None:
        pass


def rendered(records: list[Record]) -> list[dict[str, object]]:
    """The JSON events of ``records`` as CloudWatch would get them."""
    events = Renderer("app", "json", Masker(), json_lines=False).events(records, _File())
    return [json.loads(event.message) for event in events]


def unmatched(lines: list[str], fmt: str, datefmt: str | None = None) -> tuple[list[Record], int]:
    """The records of ``lines`` and how many lines stood alone unmatched."""
    assembler = Assembler(build_parser(fmt, datefmt, "UTC"), 1000)
    records = assembler.feed([(line, n) for n, line in enumerate(lines)], 0)
    last = assembler.flush()
    return records + ([last] if last else []), assembler.take_unmatched()[0]


class TestMessageLines:
    """Lines the format does not match: a message's further lines continue its
    ``message``; a traceback is its ``exception``; any other line stands alone and
    counts as a format mismatch (issue 20 item 4)."""

    def test_a_multi_line_message_continues_the_message_not_the_exception(self) -> None:
        def calls(log: logging.Logger) -> None:
            log.info("order 7 shipped:\n  item: lamp\n\n  item: desk")
            log.info("next")

        written = write_logs(logging.Formatter(APP_FORMAT), calls)
        records, alone = unmatched(written.lines, APP_FORMAT)
        assert alone == 0
        first, second = rendered(records)
        assert first["message"] == "order 7 shipped:\n  item: lamp\n\n  item: desk"
        assert "exception" not in first
        assert second["message"] == "next"

    def test_a_message_then_its_traceback_split_between_message_and_exception(self) -> None:
        def calls(log: logging.Logger) -> None:
            try:
                _divide(1, 0)
            except ZeroDivisionError:
                log.exception("division failed\nfor user 7")

        written = write_logs(logging.Formatter(APP_FORMAT), calls)
        records, alone = unmatched(written.lines, APP_FORMAT)
        (event,) = rendered(records)
        assert alone == 0
        assert event["message"] == "division failed\nfor user 7"
        assert isinstance(event["exception"], str)
        assert event["exception"].startswith("Traceback (most recent call last):")
        assert event["exception"].endswith("ZeroDivisionError: division by zero")

    def test_an_exception_note_after_the_traceback_stays_in_the_exception(self) -> None:
        written = write_logs(logging.Formatter(APP_FORMAT), with_note)
        (event,) = rendered(unmatched(written.lines, APP_FORMAT)[0])
        assert event["message"] == "ratio"
        assert str(event["exception"]).endswith("while computing the ratio")

    def test_a_pretty_printed_json_message_becomes_its_object(self) -> None:
        document = {"url": "/pay", "statusCode": 502, "errorDetail": "upstream"}

        def calls(log: logging.Logger) -> None:
            log.error(json.dumps(document, indent=2))

        written = write_logs(logging.Formatter(APP_FORMAT), calls)
        (event,) = rendered(unmatched(written.lines, APP_FORMAT)[0])
        assert event["message"] == document

    def test_a_datefmt_without_the_written_msecs_gives_one_event_per_line(self) -> None:
        """The file has ``2024-01-01 10:00:00,123``, the config's datefmt no msecs: no
        line matches; each stands alone, counted, none glued to another; a traceback
        still joins the line that logged it."""

        def calls(log: logging.Logger) -> None:
            for n in range(5):
                log.info("request %d done", n)
            plain(log)
            log.info("after")

        written = write_logs(logging.Formatter(APP_FORMAT), calls)
        records, alone = unmatched(written.lines, APP_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
        assert as_texts(records) == written.parts
        assert alone == 7
        events = rendered(records)
        first_lines = [part.split("\n")[0] for part in written.parts]
        assert [e["message"] for e in events] == first_lines
        assert "exception" in events[5]
        assert all("level" not in e for e in events)

    def test_a_record_start_the_format_does_not_fit_stands_alone_after_a_matched_one(
        self,
    ) -> None:
        """A second handler writing msecs into the same file: its lines look like record
        starts, so they are not taken for the message of the matched line before."""
        matched = write_logs(logging.Formatter(APP_FORMAT, "%Y-%m-%d %H:%M:%S"), plain)
        other = write_logs(logging.Formatter(APP_FORMAT), lambda log: log.info("other"))
        lines = matched.lines + other.lines
        records, alone = unmatched(lines, APP_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
        assert as_texts(records) == [matched.parts[0], other.parts[0]]
        assert alone == 1
        assert rendered(records)[1] == {"message": other.parts[0], "category": "app"}

    def test_lines_after_an_unmatched_line_stand_alone(self) -> None:
        lines = ["garbage one", "garbage two", "", "garbage three"]
        records, alone = unmatched(lines, APP_FORMAT)
        assert as_texts(records) == ["garbage one", "garbage two\n", "garbage three"]
        assert alone == 3  # the blank line continues, and is never a mismatch

    def test_json_lines_take_no_continuation(self) -> None:
        """A JSON record is one line: a text line after it stands alone, counted."""
        lines = ['{"message": "a", "level": "info"}', "uvicorn started", '{"message": "b"}']
        records, alone = unmatched(lines, "json")
        assert as_texts(records) == lines
        assert alone == 1

    def test_lines_past_max_lines_go_on_in_a_new_record_and_are_no_mismatch(self) -> None:
        """A record full at ``max_lines`` is complete; its further lines (a traceback's,
        a message's) go on in the next record, not one event each, and count as nothing."""

        def calls(log: logging.Logger) -> None:
            log.info("listing:\n" + "\n".join(f"  row {n}" for n in range(12)))
            chained_context(log)
            log.info("after")

        written = write_logs(logging.Formatter(APP_FORMAT), calls)
        assembler = Assembler(build_parser(APP_FORMAT, None, "UTC"), 5)
        records = assembler.feed([(line, n) for n, line in enumerate(written.lines)], 0)
        records.append(assembler.flush())  # type: ignore[arg-type]
        assert assembler.take_unmatched() == (0, None)
        assert "\n".join(as_texts(records)) == "\n".join(written.lines)
        assert all(len(record.extra) == 4 for record in records[:2])
        assert len(records) < len(written.lines) / 3
