"""Turning records into the events CloudWatch stores: JSON objects or raw text, masked.

JSON output (the default) gives CloudWatch Logs Insights fields to filter on:
``level``, ``message`` (the object itself when the message was JSON), the format's
other fields, ``category``, ``exception`` for a traceback (a message's further lines
go on with ``message``), and ``time_unreadable``
when the written time could not be read (the event then carries the previous
record's time, or the read time; it is counted in ``shipper_parse_fallbacks``).
Raw output keeps the written text.  Either way key rules redact values under
sensitive keys first on the structure (JSON output), then the final text is masked
in one pass: the key rules again (keys inside strings: ``password=…`` in a message,
JSON logged as a string, a traceback's locals), then the detectors.

An event may hold at most 1,048,576 bytes with its 26 bytes of overhead.  Lines
longer than the source's ``max_line_bytes`` arrive here already cut into parts,
which say so (``part``, ``continued``); a record that is still too large once
rendered (a huge traceback) is truncated and marked ``truncated``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import msgspec

from shipper import telemetry
from shipper.mask import Masker
from shipper.records import (
    EVENT_OVERHEAD,
    Event,
    Fields,
    FileEvents,
    Line,
    Position,
    Record,
    as_record,
    utf8_len,
)

MAX_EVENT_BYTES = 1_048_576
MAX_MESSAGE_BYTES = MAX_EVENT_BYTES - EVENT_OVERHEAD
TRUNCATED_MARK = "…[truncated]"

_encoder = msgspec.json.Encoder(enc_hook=str)
_encode = _encoder.encode
_encode_lines = _encoder.encode_lines
# An event's JSON object while it is built.
Document = dict[str, Any]
# Keys the renderer itself writes into JSON events.
_OWN_KEYS = (
    "level",
    "message",
    "category",
    "exception",
    "part",
    "continued",
    "truncated",
    "original_bytes",
)


class Renderer:
    """Renders one source's records as masked events."""

    def __init__(
        self,
        category: str,
        output: Literal["json", "raw"],
        masker: Masker,
        json_lines: bool,
    ) -> None:
        self.category = category
        self.output = output
        self.masker = masker
        self.json_lines = json_lines
        # Sees every record rendered (metrics from the logs); None: metrics are off.
        self.observer: Callable[[Sequence[Record | Line]], None] | None = None

    def keys_only_from_text(self, field_names: Iterable[str]) -> bool:
        """Whether every key a key rule could apply to in an event comes from the
        record's text: no name the renderer or the parser (``field_names``) adds is
        sensitive.  Then text that holds no key-rule key needs no key rules."""
        return not any(map(self.masker.sensitive, (*_OWN_KEYS, *field_names)))

    def row_type(self, record_names: Sequence[str]) -> type[msgspec.Struct] | None:
        """The struct a format parser can give a record's fields as, for this renderer:
        laid out as the event's JSON object (``level`` and ``message`` first, the other
        fields in the format's order, ``category`` last, as :meth:`_fields_document`
        orders them), so that a one-line record's event is encoded from it as it is,
        without the two dicts a line otherwise costs.  Its attributes are the parser's
        names (``levelname`` is written as ``level``), so ``msgspec.structs.asdict``
        gives the parser's dict back, plus the category.

        ``record_names``: the fields of a record whose time was read, in the format's
        order.  None when the layout of a dict cannot be kept: raw or JSON-lines
        output, no ``message``, or a field named like a key the renderer writes first
        or last (``level``, ``category``).
        """
        names = list(record_names)
        if (
            self.output != "json"
            or self.json_lines
            or "message" not in names
            or "level" in names
            or "category" in names
        ):
            return None
        first = [name for name in ("levelname", "message") if name in names]
        layout = [*first, *(name for name in names if name not in first)]
        try:
            return msgspec.defstruct(
                "EventFields",
                [*((name, Any) for name in layout), ("category", str, self.category)],
                rename={"levelname": "level"},
                gc=False,  # it holds text, numbers and a message's JSON: never a cycle
            )
        except (TypeError, ValueError):
            return None  # a name a struct cannot have (__weakref__): dicts, as before

    def event(self, record: Record, position: Position, key_rules: bool = True) -> Event | None:
        """The event for ``record``; None when it carries nothing (an empty raw line).

        ``key_rules=False``: the caller found no key-rule key in the record's text
        (and :meth:`keys_only_from_text` holds), so the per-event pre-check is skipped.
        """
        events = self.events([record], position, None if key_rules else 0)
        return events.events[0] if events else None

    def events(
        self,
        records: Sequence[Record | Line],
        position: Position,
        key_rules_until: int | None = None,
    ) -> FileEvents:
        """The events of ``records`` (one file's, in order), masked together.

        Records from index ``key_rules_until`` on skip the key rules (None: all of them
        need them); see :meth:`event`.
        """
        if self.observer is not None:
            self.observer(records)
        if not self.masker.keys:
            key_rules_until = 0  # no key rules to apply
        elif key_rules_until is None:
            key_rules_until = len(records)
        if self.output == "json":
            documents = [
                self._document(record, position, index < key_rules_until)
                for index, record in enumerate(records)
            ]
            # Encoded together, one document a line (JSON text holds no raw newline), and
            # masked as lines: a call per chunk rather than per event.
            masked = self.masker.mask_lines(_encode_lines(documents).decode(), key_rules_until)
        else:
            texts = [
                self._raw(record, position, index < key_rules_until)
                for index, record in enumerate(records)
            ]
            masked = self.masker.mask_all(texts, key_rules_until)
        events = FileEvents(position)
        add_event, add_size, add_end = events.events.append, events.sizes.append, events.ends.append
        for record, message in zip(records, masked, strict=True):
            if not message:
                continue  # an empty raw line carries nothing
            size = len(message) if message.isascii() else utf8_len(message)
            if size > MAX_MESSAGE_BYTES:
                message = self._truncate(as_record(record), size)
                size = utf8_len(message)
            if isinstance(record, Record):
                timestamp, end = record.timestamp, record.end
            else:
                _, _, timestamp, end = record
            add_event(Event(timestamp, message))
            add_size(size + EVENT_OVERHEAD)
            add_end(end)
        return events

    def _document(
        self, record: Record | Line, position: Position, key_rules: bool
    ) -> Document | msgspec.Struct:
        """The JSON event of ``record`` as a document, with key rules applied when
        ``key_rules``; a one-line record's is made from its tuple, and is its row (see
        :meth:`row_type`) itself when it has one and needs no key rules."""
        if isinstance(record, Record):
            fields = _as_dict(record.fields)
            self._check_time(fields, position, record.end, record.text)
            document = self._fields_document(record.text, fields)
            if record.extra:
                _add_lines(document, record)
            if record.part:
                document["part"] = record.part
                document["continued"] = not record.last_part
        else:
            text, parsed, _, end = record
            if isinstance(parsed, msgspec.Struct) and not key_rules:
                return parsed  # the event's object as it is
            fields = _as_dict(parsed)
            self._check_time(fields, position, end, text)
            document = self._fields_document(text, fields)
        if key_rules:
            self._redact_keys(document)
        return document

    def _raw(self, record: Record | Line, position: Position, key_rules: bool) -> str:
        """The raw event text of ``record``, before masking (which applies the key
        rules to it too)."""
        if isinstance(record, Record):
            self._check_time(record.fields, position, record.end, record.text)
            # A one-line record (the usual one) is its own text.
            text = self._raw_text(record) if record.extra or record.part else record.text
        else:
            text, fields, _, end = record
            if fields:  # raw output's parser gives {} for a record whose time it read
                self._check_time(fields, position, end, text)
        return text  # key rules apply to the text as it is masked

    def _check_time(self, fields: Fields, position: Position, end: int, text: str) -> None:
        """Report a record whose written time could not be read (a row never holds one)."""
        if type(fields) is dict and "time_unreadable" in fields:
            telemetry.time_unreadable(self.category, position.path, end, text[:200])

    def _redact_keys(self, document: Document) -> None:
        """Redact, in place, the values under sensitive keys (when the encoded document
        mentions a key-rule key at all)."""
        masker = self.masker
        if masker.mentions_key(_encode(document).decode()):
            # Key rules need the structure: a message carried as written is decoded.
            if type(document.get("message")) is msgspec.Raw:
                document["message"] = msgspec.json.decode(document["message"])
            masker.redact_keys(document)

    def _raw_text(self, record: Record) -> str:
        text = record.text if not record.extra else "\n".join([record.text, *record.extra])
        if record.part:
            text += f" …[part {record.part}{', continued' if not record.last_part else ''}]"
        return text

    def _fields_document(self, text: str, fields: Document | None) -> Document:
        """The JSON event of a record's first line: ``level`` and ``message`` first, then
        the format's other fields in their order, then ``category``."""
        if fields is None:
            document: Document = {"message": text}
        elif self.json_lines:
            document = dict(fields)
        elif "levelname" in fields:
            # One dict display does the ordering in C: a later key keeps its first place.
            document = {"level": fields["levelname"], "message": fields.get("message"), **fields}
            del document["levelname"]
        else:
            document = {"message": fields.get("message"), **fields}
        document.setdefault("category", self.category)
        return document

    def _truncate(self, record: Record, size: int) -> str:
        """A smaller message for a record too large to be one event, saying so."""
        text = self.masker.mask(self._raw_text(record))
        # Leave room for the JSON wrapping and escapes; cut on a character boundary.
        budget = MAX_MESSAGE_BYTES // 2
        cut = text.encode("utf-8", "surrogatepass")[:budget].decode("utf-8", "ignore")
        if self.output == "raw":
            return cut + TRUNCATED_MARK
        document = {
            "message": cut + TRUNCATED_MARK,
            "category": self.category,
            "truncated": True,
            "original_bytes": size,
        }
        return _encode(document).decode()


def _add_lines(document: Document, record: Record) -> None:
    """A record's lines after its first: those before a traceback go on with its
    ``message`` (a JSON document written over several lines becomes that object), the
    traceback is its ``exception``."""
    split = record.message_lines
    if split:
        message = document.get("message")
        if not isinstance(message, str):
            message = _encode(message).decode()
        message = "\n".join([message, *record.extra[:split]])
        if message[:1] == "{":
            # Decoded, not kept as written: an event's encoded JSON holds no line break.
            with contextlib.suppress(msgspec.DecodeError):
                message = msgspec.json.decode(message)
        document["message"] = message
    if split < len(record.extra):
        document["exception"] = "\n".join(record.extra[split:])


def _as_dict(fields: Fields) -> Document | None:
    """A record's fields as the parser's dict (a row struct gives its own back)."""
    if isinstance(fields, msgspec.Struct):
        return msgspec.structs.asdict(fields)
    return fields
