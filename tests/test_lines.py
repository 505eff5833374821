"""Lines (shipper/lines.py): the bytes read at a file's offset become its complete
lines and records, with byte offsets (SPEC §3 promise 1: a line is shipped once, whole,
and the checkpoint moves past exactly what was taken), CRLF and UTF-16 lines read as
their text, and a line over the limit shipped in parts rather than held or dropped.
The ASCII fast path is one way of reading, not another behaviour: it gives the
records the line-by-line path gives for the same bytes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from shipper import metrics
from shipper.config import SourceConfig
from shipper.encoding import text_encoding
from shipper.follow import Follower
from shipper.lines import LineReader, Read
from shipper.mask import Masker
from shipper.multiline import Assembler, assembler_for
from shipper.records import Record, as_record
from shipper.render import Renderer

NOW_MS = 1_700_000_000_000
MESSAGE_ONLY = "%(message)s"  # every line starts a record (tracebacks excepted)
KEYS = Masker("off", keys=("password", "api_key"))


@dataclass
class _File:
    """A followed file's line state, as :class:`shipper.follow.Cursor` holds it."""

    assembler: Assembler | None
    read_offset: int = 0
    part: int = 0
    path: str = "/logs/app/app.log"


def _file(fmt: str = MESSAGE_ONLY, start: int = 0) -> _File:
    source = SourceConfig(category="lines", path=Path("/logs/app/app.log"), format=fmt)
    return _File(assembler_for(source), read_offset=start)


def _reader(
    encoding: str = "utf-8", limit: int = 1 << 20, mentions_key: Callable[[str], bool] | None = None
) -> LineReader:
    return LineReader("lines", text_encoding(encoding), limit, mentions_key)


@dataclass
class _Reading:
    records: list[Record] = field(default_factory=list)
    # Per chunk that gave records: the records and the index the key rules may skip from.
    chunks: list[tuple[list[Record], int | None]] = field(default_factory=list)


def _read_through(
    read: Callable[[_File, bytes], Read | None], file: _File, data: bytes, step: int
) -> _Reading:
    """Read ``data`` (the file's bytes) ``step`` bytes at a time from the read offset,
    more at once while a chunk holds no line (as the file grows, it is read again);
    then the record still pending, as a quiet file's."""
    reading = _Reading()
    size = step
    while chunk := data[file.read_offset : file.read_offset + size]:
        at = file.read_offset
        got = read(file, chunk)
        if got is None:
            if file.read_offset + len(chunk) >= len(data):
                break  # a partial last line: it waits
            size *= 2
            continue
        assert file.read_offset > at  # records taken: the offset moved past them
        size = step
        records = [as_record(r) for r in got[0]]
        reading.records.extend(records)
        reading.chunks.append((records, got[1]))
    assert file.assembler is not None
    pending = file.assembler.flush()
    if pending is not None:
        reading.records.append(pending)
    return reading


def _read_all(
    reader: LineReader, data: bytes, step: int = 64 << 10, file: _File | None = None
) -> tuple[list[Record], _File]:
    file = file or _file()
    reading = _read_through(lambda f, chunk: reader.read(f, chunk, None, NOW_MS), file, data, step)
    return reading.records, file


def _texts_and_ends(records: list[Record]) -> list[tuple[str, int]]:
    return [(r.text, r.end) for r in records]


class TestWholeLines:
    def test_a_partial_last_line_waits_for_its_newline(self) -> None:
        """Only whole lines are taken: the offset stops after the last newline, and the
        rest is read again, whole, once its newline is written."""
        reader, file = _reader(), _file()
        got = reader.read(file, b"one\ntwo\nthr", None, NOW_MS)
        assert got is not None
        assert file.read_offset == 8
        assert file.assembler is not None
        assert file.assembler.pending is not None
        assert reader.read(file, b"thr", None, NOW_MS) is None
        assert file.read_offset == 8
        got = reader.read(file, b"three\n", None, NOW_MS)
        assert got is not None
        assert file.read_offset == 14
        records = [as_record(r) for r in got[0]]
        pending = file.assembler.flush()
        assert pending is not None
        assert _texts_and_ends([*records, pending]) == [("two", 8), ("three", 14)]

    def test_a_partial_non_ascii_line_waits_too(self) -> None:
        reader, file = _reader(), _file()
        assert reader.read(file, "사용자 로그인".encode(), None, NOW_MS) is None
        assert file.read_offset == 0

    def test_lines_read_and_their_bytes_are_counted_when_taken(self) -> None:
        """shipper_lines_read_total / shipper_bytes_read_total move by what a chunk's
        whole lines hold, not by a partial line's bytes."""

        def counted() -> tuple[float, float]:
            labels = {"category": "lines"}
            lines = metrics.REGISTRY.get_sample_value("shipper_lines_read_total", labels)
            nbytes = metrics.REGISTRY.get_sample_value("shipper_bytes_read_total", labels)
            return lines or 0.0, nbytes or 0.0

        reader = _reader()
        before = counted()
        reader.read(_file(), b"a\nbb\ncc", None, NOW_MS)
        reader.read(_file(), "é\r\nx".encode(), None, NOW_MS)
        after = counted()
        assert (after[0] - before[0], after[1] - before[1]) == (3, 5 + 4)


class TestCarriageReturns:
    @pytest.mark.parametrize(
        ("encoding", "lines"),
        [
            ("utf-8", ["one", "two"]),  # the ASCII fast path
            ("utf-8", ["café", "crème"]),  # line by line
            ("cp949", ["가", "나"]),
            ("utf-16-le", ["one", "가"]),
        ],
    )
    def test_crlf_lines_lose_their_carriage_return_not_its_byte(
        self, encoding: str, lines: list[str]
    ) -> None:
        data = "".join(f"{line}\r\n" for line in lines).encode(encoding)
        records, file = _read_all(_reader(encoding), data)
        ends = [len("".join(f"{x}\r\n" for x in lines[: n + 1]).encode(encoding)) for n in range(2)]
        assert _texts_and_ends(records) == list(zip(lines, ends, strict=True))
        assert file.read_offset == len(data)

    def test_a_carriage_return_inside_a_line_is_kept(self) -> None:
        records, _ = _read_all(_reader(), b"a\rb\r\n")
        assert [r.text for r in records] == ["a\rb"]


class TestOverlongLines:
    """A line over ``max_line_bytes`` is shipped in parts, never held whole."""

    def test_parts_are_numbered_marked_and_cut_after_a_space(self) -> None:
        line = b"aaaa bbbb cccc dddd eeee ffff"
        with capture_logs() as logged:
            records, file = _read_all(_reader(limit=20), b"first\n" + line + b"\nafter\n")
        assert [(r.text, r.part, r.last_part, r.end) for r in records] == [
            ("first", 0, True, 6),
            ("aaaa bbbb cccc dddd ", 1, False, 26),
            ("eeee ffff", 2, True, 36),
            ("after", 0, True, 42),
        ]
        assert file.part == 0
        splits = [e for e in logged if e["event"] == "line.split"]
        assert [(e["offset"], e["limit_bytes"], e["path"]) for e in splits] == [(6, 20, file.path)]

    def test_a_word_longer_than_the_limit_is_cut_at_the_limit(self) -> None:
        records, _ = _read_all(_reader(limit=8), b"x" * 20 + b"\n")
        assert [(r.text, r.part, r.last_part) for r in records] == [
            ("x" * 8, 1, False),
            ("x" * 8, 2, False),
            ("x" * 4, 3, True),
        ]

    def test_a_partial_overlong_line_ships_its_parts_now_and_the_rest_waits(self) -> None:
        """The writer has not finished the line: what is over the limit goes now; the
        numbering goes on when the rest arrives (past the fast path: it is ASCII)."""
        reader, file = _reader(limit=20), _file()
        got = reader.read(file, b"x" * 50, None, NOW_MS)
        assert got is not None
        assert [(r.part, r.last_part) for r in map(as_record, got[0])] == [(1, False), (2, False)]
        assert (file.read_offset, file.part) == (40, 2)
        got = reader.read(file, b"x" * 10 + b"yy\n", None, NOW_MS)
        assert got is not None
        (last,) = map(as_record, got[0])
        assert (last.text, last.part, last.last_part, last.end) == ("x" * 10 + "yy", 3, True, 53)
        assert (file.read_offset, file.part) == (53, 0)

    def test_the_record_before_a_part_is_complete(self) -> None:
        """A traceback pending before an overlong line is shipped first, whole."""
        data = (
            b"boom\nTraceback (most recent call last):\n"
            b'  File "a.py", line 1, in f\nValueError: x\n' + b"y" * 60 + b"\n"
        )
        records, _ = _read_all(_reader(limit=40), data)
        assert [(r.text, len(r.extra), r.part) for r in records] == [
            ("boom", 3, 0),
            ("y" * 40, 0, 1),
            ("y" * 20, 0, 2),
        ]


class TestUtf16:
    def test_a_newline_unit_across_two_characters_does_not_end_a_line(self) -> None:
        """U+0A41 U+0100 is ``41 0A 00 01`` in UTF-16-LE: ``0A 00`` there is no newline."""
        text = "ਁ\u0a41\u0100ਁ"
        data = f"{text}\nnext\n".encode("utf-16-le")
        records, file = _read_all(_reader("utf-16-le"), data)
        assert _texts_and_ends(records) == [(text, len(text) * 2 + 2), ("next", len(data))]
        assert file.read_offset == len(data)

    @pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 12])
    def test_lines_end_at_character_boundaries_however_the_reads_fall(
        self, tmp_path: Path, step: int
    ) -> None:
        """A big-endian file with its byte-order mark, read a few bytes at a time: the
        same lines, the mark in no text but in the first line's offsets."""
        lines = ["사용자 로그인", "plain", "𝄞 beyond the BMP", "ਁ\u0a41\u0100"]
        data = "\ufeff".encode("utf-16-be") + "".join(f"{x}\n" for x in lines).encode("utf-16-be")
        path = tmp_path / "app.log"
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            reader = _reader("utf-16", limit=1024)
            reading = _read_through(
                lambda f, chunk: reader.read(f, chunk, fd, NOW_MS), _file(), data, step
            )
        finally:
            os.close(fd)
        ends = [2 + len("".join(f"{x}\n" for x in lines[: n + 1]).encode("utf-16-be"))
                for n in range(len(lines))]  # fmt: skip
        assert _texts_and_ends(reading.records) == list(zip(lines, ends, strict=True))


# Lines that exercise what the fast path does per chunk: record starts, traceback
# shapes and continuations, blank lines, CRLF, key-rule keys and JSON escapes.
_LINE = st.one_of(
    st.sampled_from(
        [
            "Traceback (most recent call last):",
            '  File "a.py", line 1, in f',
            "    raise ValueError(x)",
            "ValueError: boom",
            "",
            "login password=hunter2 ok",
            '{"api_key": "1"}',
            '{"\\u0070assword": "x"}',
            "plain text",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
)


@st.composite
def _ascii_files(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_LINE, min_size=1, max_size=25))
    ends = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines), max_size=len(lines)))
    tail = draw(st.sampled_from(["", "unfinished"]))
    return ("".join(a + b for a, b in zip(lines, ends, strict=True)) + tail).encode("ascii")


class TestAsciiFastPath:
    @given(
        data=_ascii_files(),
        step=st.integers(1, 200),
        fmt=st.sampled_from([MESSAGE_ONLY, "%(levelname)s %(message)s"]),
        start=st.integers(0, 1000),
    )
    @example(data=b"a\r\nTraceback (most recent call last):\n  x\nE: y\nb\n", step=9,
             fmt=MESSAGE_ONLY, start=0)  # fmt: skip
    def test_gives_the_records_the_line_by_line_path_gives(
        self, data: bytes, step: int, fmt: str, start: int
    ) -> None:
        """Same bytes, same reads: the same records (text, continuation lines, offsets,
        parts) and the same read offset, whichever path read them.  Where the fast path
        says the key rules may be skipped, no record from there on mentions a key."""
        limit = 1 << 20  # every chunk is under it: ``read`` takes the fast path
        reader = _reader(limit=limit, mentions_key=KEYS.mentions_key)
        padded = b"-" * start + data  # offsets that do not start at 0
        fast_file, slow_file = _file(fmt, start), _file(fmt, start)
        fast = _read_through(
            lambda f, chunk: reader.read(f, chunk, None, NOW_MS), fast_file, padded, step
        )

        def line_by_line(f: _File, chunk: bytes) -> Read | None:
            records = reader.records(f, chunk, None, NOW_MS)
            return None if records is None else (records, None)

        slow = _read_through(line_by_line, slow_file, padded, step)
        assert fast.records == slow.records
        assert fast_file.read_offset == slow_file.read_offset
        for records, key_free_from in fast.chunks:
            if key_free_from is not None:
                for record in records[key_free_from:]:
                    assert not KEYS.mentions_key("\n".join([record.text, *record.extra]))

    def test_the_key_rules_are_skipped_only_where_no_key_is_mentioned(self) -> None:
        reader = _reader(mentions_key=KEYS.mentions_key)
        got = reader.read(_file(), b"a\nb\n", None, NOW_MS)
        assert got is not None
        assert got[1] == 0
        for chunk in (b"a\npassword=x\n", b'{"\\u0070assword": "x"}\n'):
            got = reader.read(_file(), chunk, None, NOW_MS)
            assert got is not None
            assert got[1] is None
        file = _file()
        reader.read(file, b"a\n", None, NOW_MS)  # "a" is pending, checked when complete
        got = reader.read(file, b"b\n", None, NOW_MS)
        assert got is not None
        assert got[1] == 1
        assert _reader().read(_file(), b"a\n", None, NOW_MS) == ([], None)


class TestLongUtf16Lines:
    def test_a_line_longer_than_a_step_with_newline_bytes_inside_is_read(
        self, tmp_path: Path
    ) -> None:
        """Promise 1 and 6: a UTF-16 line over a read step whose characters hold the
        byte 0x0A (U+0A41) is no line end; the line is read (in parts past the limit)
        and the reading goes on past it, instead of stopping there for good."""
        path = tmp_path / "app.log"
        text = "\u0a41" * 40_000 + "\nnext line\n"
        path.write_bytes(text.encode("utf-16-le"))
        source = SourceConfig(
            category="app", path=path, format="json", output="raw", encoding="utf-16-le"
        )
        renderer = Renderer("app", "raw", Masker("off"), json_lines=False)
        follower = Follower(source, None, renderer, 0.0)
        try:
            texts: list[str] = []
            for _ in range(100):
                cursors = follower.scan()
                steps = [follower.read(c, 0) for c in cursors]
                steps += [follower.flush_pending(c) for c in cursors]
                texts += [e.message for step in steps if step for e in step.events]
                if all(c.read_offset >= c.size for c in cursors):
                    break
            assert texts[-1] == "next line"
            assert sum(message.count("\u0a41") for message in texts) == 40_000
        finally:
            follower.close()

    def test_overlong_utf16_lines_are_cut_after_a_whole_space(self, tmp_path: Path) -> None:
        """An overlong UTF-16 line's parts end after a space that is a character of
        its own, never after a 0x20 byte inside another character: every part decodes
        to the text written."""
        path = tmp_path / "app.log"
        line = "aaaa bbbb cccc dddd eeee"
        path.write_bytes((line + "\n").encode("utf-16-le"))
        source = SourceConfig(
            category="app",
            path=path,
            format="json",
            output="raw",
            encoding="utf-16-le",
            max_line_bytes=20,
        )
        renderer = Renderer("app", "raw", Masker("off"), json_lines=False)
        follower = Follower(source, None, renderer, 0.0)
        try:
            (cursor,) = follower.scan()
            parts = [follower.read(cursor, 0) for _ in range(3)]
            texts = [e.message.split(" …[part")[0] for step in parts if step for e in step.events]
        finally:
            follower.close()
        assert "".join(texts) == line
        assert all(text.endswith(" ") for text in texts[:-1])


ADDRESSED = (
    '2024-01-02 03:04:05,000 INFO login {"user": "ann.lee@example.com", "ok": true} ann.o+1@x.io'
)


@given(cut=st.integers(min_value=1, max_value=len(ADDRESSED)))
@example(cut=ADDRESSED.index("@example") + 4)
def test_an_unterminated_last_line_cut_anywhere_leaks_no_address(cut: int) -> None:
    """A file's last line without its newline, cut anywhere (its writer is gone): what
    is shipped of it, masked as every event is, shows no local part beyond the partial
    form's (the word cut by chance is withheld, ``…[cut]`` in its place), and the
    whole fragment is taken: the read offset is at its end."""
    data = ADDRESSED[:cut].encode()
    file = _file()
    records = _reader().read_last(file, data, None, NOW_MS)
    assert file.read_offset == len(data)
    assert file.assembler is not None
    texts = [r.text for r in records] + [r.text for r in [file.assembler.flush()] if r]
    (text,) = texts
    masked = Masker("partial").mask(text)
    for local in ("ann.lee", "nn.le", "ann.o+1", "nn.o+"):
        assert local not in masked, (data, masked)
    assert masked.endswith("…[cut]") or data.endswith((b" ", b'"', b",", b":", b"{", b"}"))


def test_an_unterminated_last_line_of_one_long_word_is_withheld_in_linear_time() -> None:
    """A last line that is one long word (a base64 blob cut mid-way): withheld whole,
    without trying every start in it (a search for a word at the end took 1.1 s for
    16,000 characters, and grows with their square: minutes at the line limit)."""
    data = b"A" * 250_000
    file = _file()
    assert _reader().read_last(file, data, None, NOW_MS) == []
    assert file.assembler is not None
    record = file.assembler.flush()
    assert record is not None
    assert record.text == "…[cut]"
    assert file.read_offset == len(data)
