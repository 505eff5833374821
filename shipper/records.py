"""The small records the pipeline stages hand each other.

    lines of a file ──multiline──▶ Record | Line ──render──▶ Event ──batcher──▶ Batch

An :class:`Event` keeps a reference to the :class:`Position` it came from, so that
when CloudWatch accepts it the follower's delivered offset can move to its end.
"""

from __future__ import annotations

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
    """One CloudWatch event, with what to acknowledge when it is stored.

    A msgspec Struct: made in C (a third of a dataclass's cost, for every event), and
    left out of the garbage collector's walks (an event refers to no container that
    could lead back to it).
    """

    timestamp: int
    message: str
    size: int  # UTF-8 bytes of message + EVENT_OVERHEAD
    position: Position
    offset: int  # end of the record in its file

    def where(self) -> str:
        return f"{self.position.path}:{self.offset}"
