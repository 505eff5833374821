"""Gathering lines into records: a line that does not start a record continues one.

A Python traceback (``Traceback (most recent call last):``, indented frames, ``^^^^``
markers, chained ``During handling of the above exception...``) follows the line
that logged it and matches no format, so it joins that record.  A record is complete
when the next record starts, when it reaches ``max_lines``, or when the file has
been quiet for a moment (the caller calls :meth:`Assembler.flush`).
"""

from __future__ import annotations

from collections.abc import Iterable

from shipper.parse import Parser
from shipper.records import Record


class Assembler:
    """Turns a file's lines, in order, into complete records."""

    def __init__(self, parser: Parser, max_lines: int) -> None:
        self.parser = parser
        self.max_lines = max_lines
        self.pending: Record | None = None
        self.last_timestamp: int | None = None
        self.unreadable_times = 0

    def feed(self, lines: Iterable[tuple[str, int]], now_ms: int) -> list[Record]:
        """Add ``(line, end_offset)`` pairs; return the records they completed."""
        done: list[Record] = []
        pending = self.pending
        parse = self.parser.parse
        for line, end in lines:
            parsed = parse(line)
            if parsed is None and pending is not None and len(pending.extra) + 1 < self.max_lines:
                pending.extra.append(line)
                pending.end = end
                continue
            if pending is not None:
                done.append(pending)
            if parsed is None:
                # No record to continue: the line stands alone, with the last known time.
                pending = Record(line, None, self._fallback_time(now_ms), False, end)
            elif parsed.timestamp is None:
                self.unreadable_times += "asctime" in parsed.fields
                pending = Record(line, parsed.fields, self._fallback_time(now_ms), False, end)
            else:
                self.last_timestamp = parsed.timestamp
                pending = Record(line, parsed.fields, parsed.timestamp, True, end)
        self.pending = pending
        return done

    def flush(self) -> Record | None:
        """The pending record, complete now that nothing more is coming for it."""
        record, self.pending = self.pending, None
        return record

    def _fallback_time(self, now_ms: int) -> int:
        return self.last_timestamp if self.last_timestamp is not None else now_ms
