"""Lines: the bytes read at a file's offset become its complete lines, then records.

A :class:`LineReader` serves one source; it is handed each chunk of bytes read at a
file's read offset, with that file's :class:`LineCursor` (where the chunk starts, the
part of an overlong line under way, the file's :class:`~shipper.multiline.Assembler`),
and gives back the records the chunk completed.  Finding files, their identity and
where to read them is :mod:`shipper.follow`'s concern; this module reads no file but
for its byte-order mark.

- Only whole lines are taken: a last line without its newline waits, and the read
  offset moves past the last newline taken (None: nothing taken).
- A line ends at its encoding's newline, at a character boundary
  (:mod:`shipper.encoding`); a CRLF line's ``\\r`` is dropped from its text, never
  from its offsets.
- A line longer than ``max_line_bytes`` is shipped in parts, each a record of its own
  (``part`` 1, 2, …; ``last_part`` on the one its newline ends), logged once per line
  (``line.split``).  A part ends after the last space in the 1 KiB before the limit
  when there is one, so that no address, token or number the masking rules find is cut
  in two; else at the limit, in whole code units.  A partial line at the limit already
  ships its parts: the rest of it waits for more bytes.
- The usual chunk, ASCII lines under the limit in an ASCII-compatible encoding, is
  decoded and split once (a character is a byte there, so offsets are counted on the
  text) and gives the same records as the line-by-line path.  It also tells from which
  record on the key rules can be skipped: when the chunk holds no key-rule key, nor a
  JSON ``\\u`` escape that could spell one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

from shipper import telemetry
from shipper.compressed import GzipReader
from shipper.encoding import TextEncoding
from shipper.multiline import Assembler, whole_lines
from shipper.records import Line, Record

# How far back from the limit a part may end at a space instead.
_CUT_WINDOW = 1024

# A word: what follows a space, quote or punctuation that no address, token or number
# the masking rules find holds.  Matched on a line reversed, from its end: a search for
# a word at the end (``…+\Z``) tries every start in a long word, in time squared.
_WORD = re.compile(r"[^\s\"',;:=&?/()\[\]{}<>|]*")
CUT_MARK = "…[cut]"  # what stands for a withheld word

# What a chunk gave: its records and the index from which they need no key rules (None:
# every one of them does).
Read = tuple[Sequence[Record | Line], int | None]


class LineCursor(Protocol):
    """A followed file as its lines see it."""

    read_offset: int  # where the next chunk starts; moved past the lines taken
    part: int  # parts already emitted of a line longer than the limit
    assembler: Assembler | None  # set for every file that is read

    @property
    def path(self) -> str: ...


class LineReader:
    """The lines of one source's files, chunk by chunk."""

    def __init__(
        self,
        category: str,
        encoding: TextEncoding,
        max_line_bytes: int,
        mentions_key: Callable[[str], bool] | None,
    ) -> None:
        """``mentions_key``: whether a text may hold a key-rule key (the masker's
        pre-check), given when records' keys come from their text alone; None when the
        key rules are checked per record anyway."""
        self.category = category
        self.encoding = encoding
        self.max_line_bytes = max_line_bytes
        self.mentions_key = mentions_key

    def holds_a_line_end(self, data: bytes, content: int | GzipReader) -> bool:
        """Whether ``data`` (read from a line's start) holds the end of a line: a
        newline byte alone is not one in UTF-16 (``U+0A41`` holds byte ``0x0A``)."""
        return self.encoding.for_file(content).end_of_lines(data) > 0

    def read(
        self, cursor: LineCursor, data: bytes, content: int | GzipReader | None, now_ms: int
    ) -> Read | None:
        """The records completed by ``data``, the bytes at ``cursor.read_offset`` of the
        file ``content`` (read only for its byte-order mark); None when it holds no
        whole line and no part of an overlong one (it waits for more)."""
        if (
            cursor.part == 0
            and len(data) < self.max_line_bytes
            and data.isascii()
            and self.encoding.ascii_compatible
        ):
            return self.ascii_records(cursor, data, now_ms)
        records = self.records(cursor, data, content, now_ms)
        return None if records is None else (records, None)

    def ascii_records(self, cursor: LineCursor, data: bytes, now_ms: int) -> Read | None:
        """The records of a chunk of ASCII lines, none of them over the line limit: the
        usual case, decoded and split once per chunk rather than line by line (in ASCII
        a character is a byte, so offsets are counted on the text).

        With them, the index from which the records need no key rules, or None: when
        the chunk holds no key-rule key (nor a JSON ``\\u`` escape, which could spell
        one), neither do the records that began in it.  A record carried over from the
        previous chunk (the first one, if one was pending) is checked as usual.
        """
        cut = data.rfind(b"\n") + 1
        if not cut:
            return None
        assert cursor.assembler is not None
        text = data[:cut].decode("ascii")
        key_free_from = None
        mentions_key = self.mentions_key
        # A backslash is looked for before "\\u": one character is found at memchr's
        # speed, while "\\u" costs as much as a key's search; most chunks hold no backslash.
        if (
            mentions_key is not None
            and not ("\\" in text and "\\u" in text)
            and not mentions_key(text)
        ):
            key_free_from = 0 if cursor.assembler.pending is None else 1
        start = cursor.read_offset
        cursor.read_offset = start + cut
        telemetry.lines_read(self.category, text.count("\n"), cut)
        if b"\r" in data:  # CRLF lines: each line's "\r" dropped, its offsets kept
            lines = [(line.removesuffix("\r"), end) for line, end in whole_lines(text, start)]
            return cursor.assembler.feed(lines, now_ms), key_free_from
        return cursor.assembler.feed_text(text, start, now_ms), key_free_from

    def read_last(
        self, cursor: LineCursor, data: bytes, content: int | GzipReader | None, now_ms: int
    ) -> list[Record]:
        """The records completed by ``data``, the end of a file that no longer grows: a
        last line without its newline (shorter than the limit), taken as a whole line.

        Where it was cut is chance: its last word may be the start of an address or a
        token that the masking rules, seeing only its start, would not know (``ann@exa``).
        That word is withheld, ``…[cut]`` in its place (logged as ``line.unterminated``).
        """
        assert cursor.assembler is not None
        start = cursor.read_offset
        end = cursor.read_offset = start + len(data)
        telemetry.lines_read(self.category, 1, len(data))
        text = self.encoding.for_file(content).decode(data)
        word = _WORD.match(text[::-1])  # the last word, reversed
        withheld = word.end() if word else 0
        if withheld:
            text = text[:-withheld] + CUT_MARK
        telemetry.line_unterminated(self.category, cursor.path, start, len(data), withheld)
        if cursor.part:  # the last part of an overlong line
            cursor.part += 1
            part = Record(text, None, now_ms, end, part=cursor.part, last_part=True)
            cursor.part = 0
            return [part]
        return cursor.assembler.feed([(text, end)], now_ms)

    def records(
        self, cursor: LineCursor, data: bytes, content: int | GzipReader | None, now_ms: int
    ) -> list[Record] | None:
        """The records of any chunk, line by line: lines over the limit become parts."""
        encoding = self.encoding.for_file(content)
        start = cursor.read_offset
        lines = self._split(cursor, data, encoding)
        if not lines:
            return None
        telemetry.lines_read(self.category, len(lines), cursor.read_offset - start)
        return self._events(cursor, lines, encoding, now_ms)

    def _split(
        self, cursor: LineCursor, data: bytes, encoding: TextEncoding
    ) -> list[tuple[bytes, bool, int]]:
        """Complete lines of ``data`` as (bytes, ends_with_newline, start offset)."""
        limit = encoding.whole_units(self.max_line_bytes)
        start = cursor.read_offset
        cut = encoding.end_of_lines(data)
        body = data[:cut]
        tail = data[cut:]
        lines: list[tuple[bytes, bool, int]] = []
        position = start
        if body:
            for raw in encoding.lines(body):
                while len(raw) > limit:
                    cut = _part_end(raw, limit, encoding)
                    lines.append((raw[:cut], False, position))
                    position += cut
                    raw = raw[cut:]
                lines.append((raw, True, position))
                position += len(raw) + encoding.unit
        if len(tail) >= limit:  # a line longer than the limit: ship a part of it now
            while len(tail) >= limit:
                cut = _part_end(tail, limit, encoding)
                lines.append((tail[:cut], False, position))
                position += cut
                tail = tail[cut:]
        cursor.read_offset = position
        return lines

    def _events(
        self,
        cursor: LineCursor,
        lines: list[tuple[bytes, bool, int]],
        encoding: TextEncoding,
        now_ms: int,
    ) -> list[Record]:
        assert cursor.assembler is not None
        records: list[Record] = []
        whole: list[tuple[str, int]] = []
        limit = self.max_line_bytes
        for raw, complete, begin in lines:
            end = begin + len(raw) + (encoding.unit if complete else 0)
            text = encoding.decode(raw)
            if complete and not cursor.part:
                whole.append((text, end))
                continue
            # Part of an overlong line: flush what came before, then ship the part alone.
            records.extend(cursor.assembler.feed(whole, now_ms))
            whole = []
            pending = cursor.assembler.flush()
            if pending is not None:
                records.append(pending)
            cursor.part += 1
            if cursor.part == 1:
                telemetry.line_split(self.category, cursor.path, begin, limit)
            part = Record(text, None, now_ms, end, part=cursor.part, last_part=complete)
            records.append(part)
            if complete:
                cursor.part = 0
        records.extend(cursor.assembler.feed(whole, now_ms))
        return records


def _part_end(line: bytes, limit: int, encoding: TextEncoding) -> int:
    """Where the first part of an overlong line ends: after the last space in the
    bytes before the limit (no address, token or number the masking rules find spans
    a space, so none is cut in two and leaks from both parts), else at the limit.  A
    space is one on a character boundary (in UTF-16 the bytes of a space also occur
    inside other characters)."""
    space, unit = encoding.space, encoding.unit
    start = max(1, limit - _CUT_WINDOW)
    at = line.rfind(space, start, limit)
    while at > 0 and at % unit:
        at = line.rfind(space, start, at + len(space) - 1)
    return at + len(space) if at > 0 else limit
