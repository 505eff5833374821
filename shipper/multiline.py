"""Gathering lines into records: a record's first line, its message's further lines,
its traceback.

A record starts at a line its source's format matches (or, when the source sets a
``multiline_start`` pattern, at a line that pattern matches).  Python tracebacks are
recognised by shape, so they join the record that logged them even when one of their
lines happens to match the format:

- ``Traceback (most recent call last):`` and everything indented after it (frames,
  source lines, 3.11 ``^^^^``/``~~~^^^`` markers, ``SyntaxError`` carets), up to and
  including the first unindented line, the exception itself;
- chained exceptions: blank lines and ``During handling of the above exception…`` /
  ``The above exception was the direct cause…`` before the next ``Traceback``;
- ``ExceptionGroup`` trees (``+ Exception Group Traceback``, ``|``, ``+-+---``) and
  ``stack_info`` stacks (``Stack (most recent call last):``), which are indented
  throughout.

Any other line the format does not match is one of two things, told apart by the
line alone (the reader cannot see where one write of the application ended: a read may
stop inside one, and a backlog holds many):

- the next line of a multi-line message (``logger.info("a\\nb")``, a pretty-printed
  JSON document): it follows a record whose first line the format matched, and it does
  not itself look like a record's first line (see ``looks_like_start`` of the
  parsers: the format read with any time-like text for its time; for JSON lines, any
  line).  It continues the ``message``; once a traceback has begun, such lines (an
  exception's notes) continue the ``exception`` instead;
- an unmatched line: it follows an unmatched line, or it looks like a record's first
  line that the format does not fit (a ``datefmt`` without the msecs the file has).
  It is a record of its own, with no fields, and it counts as a format mismatch
  (``fields`` None; see :mod:`shipper.render`), so a format that does not fit the file
  gives one event per line rather than one event of everything.

A blank line continues the pending record (a message's blank line, a traceback's)
and never counts as a mismatch.  With ``multiline_start`` every line it does not match
continues the pending record, as the source asked; a line it matches that the format
does not is an unmatched line.

A record is complete when the next record starts, when it reaches ``max_lines`` or
``max_bytes`` (the next line then starts a record of its own, which the full one's
further lines go on joining: they are no mismatch), or when the file has
been quiet for a moment (the caller calls :meth:`Assembler.flush`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from operator import add

import msgspec

from shipper.config import SourceConfig
from shipper.parse import FormatParser, Parser, build_parser
from shipper.records import Fields, Line, Record

_TRACEBACK_HEAD = "(most recent call last):"
_CHAIN_MARKERS = (
    "During handling of the above exception",
    "The above exception was the direct cause",
)

# Where the record being gathered is within a traceback.
_OUTSIDE = 0
_FRAMES = 1  # after "Traceback (most recent call last):", before the exception line
_AFTER_EXCEPTION = 2  # blank lines and chain markers may follow
_INDENTED = 3  # an exception group tree or a stack: only indented lines belong


def _indented(line: str) -> bool:
    return line[:1] in (" ", "\t")


def whole_lines(text: str, start: int) -> Iterator[tuple[str, int]]:
    """``(line, end offset)`` of each line of a text of whole lines at offset ``start``."""
    lines = text.split("\n")
    lines.pop()  # the empty text after the last newline
    # Each line's end: its start plus the lengths so far plus one per newline.
    ends = map(add, accumulate(map(len, lines)), range(start + 1, start + 1 + len(lines)))
    return zip(lines, ends, strict=True)


class Assembler:
    """Turns a file's lines, in order, into complete records."""

    def __init__(
        self,
        parser: Parser,
        max_lines: int,
        max_bytes: int = 1_000_000,
        start: re.Pattern[str] | None = None,
    ) -> None:
        self.parser = parser
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.start = start
        self.pending: Record | None = None
        self.last_timestamp: int | None = None
        self._state = _OUTSIDE
        # Whether the pending record goes on from one that reached max_lines/max_bytes.
        self._overflow = False
        self._size = 0  # UTF-8 bytes of the pending record
        # Lines the format did not match that stood alone (see take_unmatched).
        self.unmatched = 0
        self.unmatched_example: tuple[str, int] | None = None

    def feed(self, lines: Iterable[tuple[str, int]], now_ms: int) -> list[Record]:
        """Add ``(line, end_offset)`` pairs; return the records they completed."""
        done: list[Record] = []
        pending = self.pending
        parse = self.parser.parse
        start = self.start
        for line, end in lines:
            if (
                pending is not None
                and (self._state or line.endswith(_TRACEBACK_HEAD))
                and self._in_traceback(line)
                and self._room_for(pending, line)
            ):
                pending.extra.append(line)
                pending.end = end
                continue
            if start is not None and start.match(line) is None:
                parsed = None
                continues = True
            else:
                parsed = parse(line)
                continues = parsed is None and start is None and self._continues(pending, line)
            if continues and pending is not None and self._room_for(pending, line):
                if len(pending.extra) == pending.message_lines:
                    pending.message_lines += 1  # no traceback yet: the message goes on
                pending.extra.append(line)
                pending.end = end
                continue
            if pending is not None:
                done.append(pending)
            fields, timestamp = parsed if parsed is not None else (None, None)
            state = self._state
            pending = self._new_record(line, fields, timestamp, end, now_ms)
            if continues:  # the record before is full: this one goes on in its place
                self._state, self._overflow = state, True
            elif parsed is None:
                self._unmatched(line, end)
        self.pending = pending
        return done

    def take_unmatched(self) -> tuple[int, tuple[str, int] | None]:
        """How many unmatched lines started records since the last call, and the first
        of them with its end offset (None when there was none)."""
        taken = (self.unmatched, self.unmatched_example)
        self.unmatched, self.unmatched_example = 0, None
        return taken

    def _unmatched(self, line: str, end: int) -> None:
        """Note a line that starts a record of its own though the format does not match
        it: a traceback with no record before it (its lines join it), a blank line, or a
        format mismatch (counted)."""
        if line.endswith(_TRACEBACK_HEAD):
            self._in_traceback(line)
        elif line:
            self.unmatched += 1
            if self.unmatched_example is None:
                self.unmatched_example = (line, end)

    def feed_text(self, text: str, start: int, now_ms: int) -> Sequence[Record | Line]:
        """Like :meth:`feed`, for a text of whole lines (each ending in a newline, with
        no carriage returns) that starts at file offset ``start``; return the records it
        completed, those of one line as :data:`Line` tuples.

        A format-string source finds the lines that start records in one pass of its
        ``line_regex`` over the text.  While one such line follows another and no
        traceback is open, each simply completes the record before it; the lines between
        (continuations, tracebacks) and the line after them go through :meth:`feed`.
        """
        parser = self.parser
        if self.start is not None or not isinstance(parser, FormatParser):
            return self.feed(whole_lines(text, start), now_ms)
        done: list[Record | Line] = []
        regex = parser.line_regex
        parse_match = parser.parse_match
        spans_lines = parser.spans_lines
        position = 0  # where the text not yet fed starts
        size = len(text)
        line: Line | None = None  # the last record started, while it is one line
        for match in regex.finditer(text):
            begin, end = match.span()
            if begin == size:
                break  # an empty match after the last newline: no line there
            if (
                begin != position
                or self._state
                or (spans_lines and text.find("\n", begin, end) != -1)  # crossed a line end
                or text.endswith(_TRACEBACK_HEAD, begin, end)
            ):
                if line is not None:
                    self._hold(line)  # the lines fed next may continue it
                    line = None
                lines = whole_lines(text[position : end + 1], start + position)
                done.extend(self.feed(lines, now_ms))
            else:
                # This line starts a record: the one before it is complete.
                if line is not None:
                    done.append(line)
                elif self.pending is not None:
                    done.append(self.pending)
                    self.pending = None
                fields, timestamp = parse_match(match)
                line = (match.group(), fields, self._time(timestamp, now_ms), start + end + 1)
            position = end + 1
        if line is not None:
            self._hold(line)
        if position < size:
            done.extend(self.feed(whole_lines(text[position:], start + position), now_ms))
        return done

    def _hold(self, line: Line) -> None:
        """Make a one-line record the pending one: lines fed later may continue it."""
        self.pending = Record(*line)
        self._state = _OUTSIDE
        self._overflow = False
        self._size = len(line[0])

    def _new_record(
        self,
        line: str,
        fields: Fields,
        timestamp: int | None,
        end: int,
        now_ms: int,
    ) -> Record:
        """The record ``line`` starts: its fields (None when it did not match, and then
        stands alone) and its time (None when it has none: the last known time)."""
        self._state = _OUTSIDE
        self._overflow = False
        self._size = len(line)
        return Record(line, fields, self._time(timestamp, now_ms), end)

    def _time(self, timestamp: int | None, now_ms: int) -> int:
        """A record's time: its own (remembered), else the last known, else the read time."""
        if timestamp is None:
            return self.last_timestamp if self.last_timestamp is not None else now_ms
        self.last_timestamp = timestamp
        return timestamp

    def _in_traceback(self, line: str) -> bool:
        """Whether ``line`` belongs to the traceback being gathered (updates the state)."""
        state = self._state
        if line.endswith(_TRACEBACK_HEAD):
            stripped = line.lstrip(" |+")
            group_or_stack = line.lstrip().startswith("+") or stripped.startswith("Stack ")
            self._state = _INDENTED if group_or_stack else _FRAMES
            return True
        if not line or line.startswith(_CHAIN_MARKERS):
            return state != _OUTSIDE
        if _indented(line):
            return state in (_FRAMES, _INDENTED)
        if state == _FRAMES:
            self._state = _AFTER_EXCEPTION  # the exception line ends the frames
            return True
        return False  # the ordinary rule decides: a record starts, or the line continues

    def _continues(self, pending: Record | None, line: str) -> bool:
        """Whether a line the format does not match (and no traceback takes) continues
        the pending record rather than standing alone (see the module's docstring)."""
        if pending is None:
            return False
        if not line:
            return True
        matched = pending.fields is not None or self._overflow
        return matched and not self.parser.looks_like_start(line)

    def _room_for(self, pending: Record, line: str) -> bool:
        size = len(line) + 1 if line.isascii() else len(line.encode("utf-8", "replace")) + 1
        if len(pending.extra) + 1 >= self.max_lines or self._size + size > self.max_bytes:
            return False
        self._size += size
        return True

    def flush(self) -> Record | None:
        """The pending record, complete now that nothing more is coming for it."""
        record, self.pending = self.pending, None
        self._state = _OUTSIDE
        self._overflow = False
        return record


def assembler_for(source: SourceConfig, rows: type[msgspec.Struct] | None = None) -> Assembler:
    """A fresh assembler (with its own parser and time memory) for one file of a source;
    ``rows``: the struct its format parser gives fields as."""
    parser = build_parser(
        source.format,
        source.datefmt,
        source.timezone,
        source.style,
        source.time_key,
        fields=source.output != "raw",
        rows=rows,
    )
    start = re.compile(source.multiline_start) if source.multiline_start else None
    return Assembler(parser, source.max_record_lines, source.max_record_bytes, start)
