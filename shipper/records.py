"""The small records the pipeline stages hand each other.

    lines of a file ──multiline──▶ Record | Line ──render──▶ FileEvents ──batcher──▶ Batch

An :class:`Event` is what CloudWatch stores, nothing more.  The events of one read
step of one file travel as :class:`FileEvents`, which says where each of them ends in
the file, so that when CloudWatch accepts them the follower's delivered offset can
move to that end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

# CloudWatch counts each event as its UTF-8 message bytes plus this overhead.
EVENT_OVERHEAD = 26


class Position(Protocol):
    """Where delivered events are acknowledged: one followed file."""

    category: str
    path: str

    def delivered(self, offset: int) -> None: ...


# A record's fields: the parser's dict; a format parser's row, a struct laid out as the
# event's JSON object (see :meth:`shipper.render.Renderer.row_type`); or None when its
# line did not match the format.
Fields = dict[str, Any] | msgspec.Struct | None


@dataclass(slots=True)
class Record:
    """One log record: its first line, continuation lines, time and end offset."""

    text: str
    fields: Fields
    timestamp: int
    end: int
    extra: list[str] = field(default_factory=list)
    message_lines: int = 0  # how many of the extra lines continue the message (before a traceback)
    part: int = 0  # >0: one part of a line longer than the line limit
    last_part: bool = True


# A complete record that is one line, as a plain tuple: its text, fields (None: the line
# did not match the format), time and end offset.  Most records are one line; when the
# assembler knows one is complete (the next line starts a record) it hands it over in
# this form, without the Record object that would cost as much as the rest of its trip.
Line = tuple[str, Fields, int, int]


def as_record(record: Record | Line) -> Record:
    """The :class:`Record` a :data:`Line` stands for (for the paths that need one)."""
    return record if isinstance(record, Record) else Record(*record)


class Event(msgspec.Struct, gc=False):
    """One CloudWatch event, laid out as PutLogEvents takes it: a request body encodes
    a list of them as it is.

    A msgspec Struct: made in C (a third of a dataclass's cost, for every event), and
    left out of the garbage collector's walks (it holds a number and a string).
    """

    timestamp: int
    message: str


@dataclass(slots=True)
class FileEvents:
    """The events of one file read in one step, in file order, and for each its size
    and where its record ends in the file.

    Sizes and ends are lists beside the events rather than fields of each: the batcher
    sums a step's sizes and acknowledges its last end at once, and the events go into
    the request body as they are.
    """

    position: Position
    events: list[Event] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # UTF-8 bytes of message + EVENT_OVERHEAD
    ends: list[int] = field(default_factory=list)  # end offset of each event's record
    # Where records the filters dropped after the last event end (0: none): acknowledged
    # with the batch that takes this step, so they are not read again after a restart.
    acknowledge_to: int = 0

    def __len__(self) -> int:
        return len(self.events)

    def __bool__(self) -> bool:
        return bool(self.events) or self.acknowledge_to > 0

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
