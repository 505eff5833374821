"""Reading a chunk in one pass (``Assembler.feed_text``) gives the records that reading
it line by line (``Assembler.feed``) gives: same texts, tracebacks, fields, times and
end offsets, wherever the chunks are cut.

The reader uses the one-pass form for ASCII chunks; these tests hold it to the
line-by-line form on every traceback shape Python writes and on generated mixes of
record lines, tracebacks, blank and continuation lines.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.multiline import Assembler
from shipper.parse import build_parser
from shipper.records import Record, as_record
from tests.parsing.test_multiline import APP_FORMAT, MESSAGE_ONLY, SHAPES, around
from tests.support.logging_output import write_logs


def by_lines(text: str, fmt: str, **options: int) -> list[Record]:
    assembler = Assembler(build_parser(fmt, None, "UTC"), **options)  # type: ignore[arg-type]
    lines = text.split("\n")[:-1]
    offsets = []
    end = 0
    for line in lines:
        end += len(line) + 1
        offsets.append(end)
    records = assembler.feed(list(zip(lines, offsets, strict=True)), 1)
    last = assembler.flush()
    return records + ([last] if last else [])


def by_chunks(text: str, fmt: str, cuts: list[int], **options: int) -> list[Record]:
    """``text`` fed in chunks of whole lines, cut after the lines numbered in ``cuts``."""
    assembler = Assembler(build_parser(fmt, None, "UTC"), **options)  # type: ignore[arg-type]
    lines = text.split("\n")[:-1]
    records: list[Record] = []
    start = 0
    first = 0
    for cut in [*sorted(set(cuts)), len(lines)]:
        chunk = "".join(line + "\n" for line in lines[first:cut])
        if chunk:
            records.extend(map(as_record, assembler.feed_text(chunk, start, 1)))
        start += len(chunk)
        first = max(first, cut)
    last = assembler.flush()
    return records + ([last] if last else [])


def same_records(text: str, fmt: str, cuts: list[int], **options: int) -> None:
    expected = by_lines(text, fmt, **options)
    assert by_chunks(text, fmt, cuts, **options) == expected
    assert by_chunks(text, fmt, [], **options) == expected


@pytest.mark.parametrize("fmt", [APP_FORMAT, MESSAGE_ONLY])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_every_traceback_shape(fmt: str, shape: Callable[[logging.Logger], None]) -> None:
    text = write_logs(logging.Formatter(fmt), around(shape)).text
    lines = text.count("\n")
    for seed in range(5):
        cuts = random.Random(seed).sample(range(lines), k=min(3, lines))
        same_records(text, fmt, cuts, max_lines=1000)


def test_record_limits_split_the_same_way() -> None:
    text = write_logs(logging.Formatter(APP_FORMAT), around(SHAPES["exception-group"])).text
    same_records(text, APP_FORMAT, [3, 9], max_lines=5)
    same_records(text, APP_FORMAT, [2, 7], max_lines=1000, max_bytes=200)


_RECORD = st.builds(
    "[{}] 2024-01-02 03:04:05,{:03d} app.py:{} {}".format,
    st.sampled_from(["INFO", "ERROR", "WARNING"]),
    st.integers(0, 999),
    st.integers(1, 999),
    st.sampled_from(
        [
            "ok",
            "",
            '{"user": "a@b.com", "n": 1}',
            "{not json",
            "Traceback (most recent call last):",
            "failed: Traceback (most recent call last):",
        ]
    ),
)
_OTHER = st.sampled_from(
    [
        "",
        "Traceback (most recent call last):",
        '  File "/srv/app.py", line 3, in f',
        "    return a / b",
        "           ~~^~~",
        "ZeroDivisionError: division by zero",
        "During handling of the above exception, another exception occurred:",
        "  + Exception Group Traceback (most recent call last):",
        "  | ValueError: x",
        "  +------------------------------------",
        "Stack (most recent call last):",
        "plain continuation text",
        "[INFO] not a time app.py:1 looks like a record",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_RECORD, _OTHER), min_size=1, max_size=40),
    st.lists(st.integers(0, 40), max_size=4),
    st.sampled_from([APP_FORMAT, MESSAGE_ONLY]),
)
def test_generated_mixes(lines: list[str], cuts: list[int], fmt: str) -> None:
    text = "".join(line + "\n" for line in lines)
    same_records(text, fmt, cuts, max_lines=6)


_PRESET_LINES = {
    "uvicorn": [
        'INFO:     10.0.0.1:5100 - "GET /health HTTP/1.1" 200',
        "INFO:",  # the level prefix's \s* could run on into the next line
        '    10.0.0.2:5101 - "POST /pay HTTP/1.1" 500 Internal Server Error',
        "Traceback (most recent call last):",
        '  File "/srv/app.py", line 3, in pay',
        "ZeroDivisionError: division by zero",
        'WARNING:  10.0.0.3:5102 - "GET / HTTP/1.1" 404',
        "",
    ],
    "gunicorn_access": [
        '10.0.0.1 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8"',
        "not an access line",
        '10.0.0.2 - bob [02/Jan/2024:03:04:06 +0000] "POST /x HTTP/1.1" 201 - "-" "a b"',
    ],
    "uvicorn_access": [
        '[2024-01-02 03:04:05,123] req-1 200 0.012s 10.0.0.1:5100 - "GET / HTTP/1.1"',
        '[2024-01-02 03:04:05,124] req-2 500 1.5s 10.0.0.2:5101 - "POST /pay HTTP/1.1"',
        "  continuation",
    ],
}


@pytest.mark.parametrize("preset", _PRESET_LINES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_presets(preset: str, data: st.DataObject) -> None:
    """The presets' patterns too, one of which (``\\s*`` after uvicorn's level) could
    match across a line end: such a match is read line by line."""
    lines = data.draw(st.lists(st.sampled_from(_PRESET_LINES[preset]), min_size=1, max_size=30))
    cuts = data.draw(st.lists(st.integers(0, 30), max_size=4))
    same_records("".join(line + "\n" for line in lines), preset, cuts, max_lines=6)


# A format whose text holds a newline: a match of its pattern over a chunk runs across
# a line end, and the line-by-line reading (which never matches it) must win.
_TWO_LINE_FORMAT = "[%(levelname)s] %(asctime)s\n%(message)s"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "[INFO] 2024-01-02 03:04:05,123",
                "[ERROR] 2024-01-02 03:04:06,000",
                "payment failed",
                "Traceback (most recent call last):",
                "ZeroDivisionError: division by zero",
            ]
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.integers(0, 30), max_size=4),
)
def test_a_format_written_over_two_lines(lines: list[str], cuts: list[int]) -> None:
    assert build_parser(_TWO_LINE_FORMAT, None, "UTC").spans_lines  # type: ignore[union-attr]
    same_records("".join(line + "\n" for line in lines), _TWO_LINE_FORMAT, cuts, max_lines=6)


def test_the_usual_formats_are_one_line_a_match() -> None:
    """The formats apps write are read without looking for line ends inside a match."""
    for fmt in (APP_FORMAT, MESSAGE_ONLY, "gunicorn_access", "uvicorn_access"):
        assert not build_parser(fmt, None, "UTC").spans_lines  # type: ignore[union-attr]
