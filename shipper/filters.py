"""Per-source filters: which records become events, and which are dropped.

A record is judged on what was written, before masking, in this order:

1. ``min_level``: a record whose level is below it is dropped (``level``).  The level
   is the record's ``levelname`` (or a JSON line's ``level``/``levelname``/``severity``);
   with ``output: raw`` the first upper-case level name among the line's first 64
   characters.  A record without a level, or with one not known, is kept.
2. ``exclude``: a record whose text (first line and continuation lines) matches any of
   these is dropped (``exclude``).
3. ``include``: when set, a record matching none of these is dropped (``include``).
4. ``sample``: the first rule whose ``match`` finds the record decides; of the records
   it finds, the first of every ``keep_one_in`` is kept and marked ``"sampled": N``,
   the others are dropped (``sample``).  Counting is per source and starts again when
   the shipper starts.
5. ``collapse_repeats``: a kept record identical to the one before it in its file,
   apart from its time, and written within the window of the first of them, is folded
   into that one (``repeat``): the first is shipped once, marked ``"repeated": N`` when
   it stands for N records, and its event acknowledges the last one folded in.  It is
   held only until a different record comes, the window has passed (by the records'
   times or by the clock), or the file is flushed (quiet after rotation, truncated, or
   the shipper stopping): never longer than a window.  A record that repeats nothing
   (the one kept before it is another) goes as soon as its file is quiet.

Dropped records are acknowledged like delivered ones, in file order: a step's dropped
records after its last event are acknowledged with the batch that takes the step
(:attr:`Kept.acknowledge_to`), and none is acknowledged past a record still held.

The filtering is pure: the caller passes ``now`` (monotonic seconds) and counts what
was dropped; :func:`render_kept` hands what was kept to the source's renderer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import msgspec

from shipper.records import EVENT_OVERHEAD, Event, FileEvents, Line, Position, Record, utf8_len

if TYPE_CHECKING:
    from shipper.config import SourceConfig
    from shipper.render import Renderer

# Python's logging levels by name, with the aliases other loggers write.
LEVELS = {
    "NOTSET": 0,
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "NOTICE": 25,
    "WARNING": 30,
    "WARN": 30,
    "ERROR": 40,
    "ERR": 40,
    "EXCEPTION": 40,
    "CRITICAL": 50,
    "CRIT": 50,
    "FATAL": 50,
}
# Keys a record's level is read from, first found wins.
LEVEL_KEYS = ("levelname", "level", "severity")
# Fields that hold a record's time: left out when records are compared as repeats.
TIME_KEYS = frozenset(
    {"asctime", "msecs", "created", "relativeCreated", "timestamp", "time", "@timestamp", "ts"}
)
# Times written in text (raw output, lines the format did not match), for comparing repeats.
_WRITTEN_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_RAW_LEVEL = re.compile(r"\b(" + "|".join(sorted(LEVELS, key=len, reverse=True)) + r")\b")
RAW_LEVEL_WINDOW = 64
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNIT_SECONDS = {
    "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0
}  # fmt: skip

# The reasons a record is dropped (``shipper_records_dropped_total{reason}``).
REASONS = ("level", "exclude", "include", "sample", "repeat")


def level_number(name: str) -> int | None:
    """The number of a level name (any case), or None when it is not one."""
    return LEVELS.get(name.strip().upper())


def parse_duration(text: str) -> float | None:
    """Seconds of ``10s``, ``500ms``, ``1m``, ``1h``, ``14d``, ``2w`` or a bare number of
    seconds; None when the text is not a duration."""
    match = _DURATION.fullmatch(str(text))
    if match is None:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def mark_text(key: str, count: int) -> str:
    """The marker a raw event carries: `` …[sampled 1 in 10]``, `` …[repeated 42 times]``."""
    if key == "sampled":
        return f" …[sampled 1 in {count}]"
    return f" …[repeated {count} times]"


@dataclass
class Kept:
    """What the filters let through of one step's records (in file order), with the
    marks of some (by the end offset of the record they are put on), the dropped
    records by reason, and where the dropped records after the last kept one end
    (0: none to acknowledge on their own).

    ``key_rules_until``: the kept records from this index on need no key rules (as
    :meth:`shipper.render.Renderer.events` takes it): those the reader found no
    key-rule key for, which keeps the renderer's fast path for them."""

    records: list[Record | Line] = field(default_factory=list)
    marks: dict[int, tuple[str, int]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    acknowledge_to: int = 0
    key_rules_until: int = 0

    def keep(self, record: Record | Line, key_rules: bool) -> None:
        self.records.append(record)
        if key_rules:
            self.key_rules_until = len(self.records)


class SourceFilters:
    """The compiled filters of one source, and the counts its sample rules keep."""

    def __init__(
        self,
        min_level: int | None = None,
        exclude: Sequence[str] = (),
        include: Sequence[str] = (),
        sample: Sequence[tuple[str, int]] = (),
        collapse_seconds: float | None = None,
        raw: bool = False,
    ) -> None:
        self.min_level = min_level
        self.exclude = [re.compile(p) for p in exclude]
        self.include = [re.compile(p) for p in include]
        self.sample = [(re.compile(p), n) for p, n in sample]
        self.sample_seen = [0] * len(self.sample)
        self.collapse_ms = None if collapse_seconds is None else int(collapse_seconds * 1000)
        self.raw = raw

    def for_file(self) -> FileFilter:
        """The filter state of one file of this source."""
        return FileFilter(self)

    def judge(self, record: Record | Line) -> tuple[str | None, int]:
        """Why ``record`` is dropped (None: kept), and the sampling it was kept by (0: none)."""
        if isinstance(record, Record):
            text, fields = record.text, record.fields
            if record.extra:
                text = "\n".join([text, *record.extra])
        else:
            text, fields = record[0], record[1]
        if self.min_level is not None:
            level = self._level(text, fields)
            if level is not None and level < self.min_level:
                return "level", 0
        if self.exclude and any(p.search(text) for p in self.exclude):
            return "exclude", 0
        if self.include and not any(p.search(text) for p in self.include):
            return "include", 0
        for index, (pattern, every) in enumerate(self.sample):
            if pattern.search(text):
                seen = self.sample_seen[index]
                self.sample_seen[index] = seen + 1
                return (None, every) if seen % every == 0 else ("sample", 0)
        return None, 0

    def _level(self, text: str, fields: Any) -> int | None:
        if self.raw:
            match = _RAW_LEVEL.search(text, 0, RAW_LEVEL_WINDOW)
            return LEVELS[match.group(1)] if match else None
        if isinstance(fields, msgspec.Struct):
            value = getattr(fields, "levelname", None)
        elif isinstance(fields, dict):
            value = next((fields[k] for k in LEVEL_KEYS if k in fields), None)
        else:
            return None
        if isinstance(value, str):
            return level_number(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # a JSON line's levelno
        return None


def repeat_key(record: Record | Line) -> object:
    """What two records must share to be repeats: everything but their time."""
    if isinstance(record, Record):
        text, fields, extra = record.text, record.fields, tuple(record.extra)
    else:
        text, fields, extra = record[0], record[1], ()
    if isinstance(fields, msgspec.Struct):
        return fields, extra  # a format's row holds no time: compared as it is
    if fields:
        if TIME_KEYS.isdisjoint(fields):
            return fields, extra
        return {k: v for k, v in fields.items() if k not in TIME_KEYS}, extra
    return _WRITTEN_TIME.sub("", text), extra


class FileFilter:
    """The filters applied to one file's records, with the record held as a repeat."""

    def __init__(self, source: SourceFilters) -> None:
        self.source = source
        self.held: Record | Line | None = None
        self.held_key: object = None
        self.held_count = 0
        self.held_end = 0  # where the last record folded into it ends
        self.held_since = 0.0  # monotonic seconds
        self.held_key_rules = True  # whether the held record needs key rules
        self.dropped_after_held = 0  # where dropped records after the held one end
        self.shipped_key: object = None  # the repeat key of the record kept last

    @property
    def holding(self) -> bool:
        return self.held is not None

    def apply(
        self, records: Sequence[Record | Line], now: float, key_rules_until: int | None = None
    ) -> Kept:
        """The records of one read step that become events, in order.

        ``key_rules_until``: the records from this index on need no key rules (None:
        all of them need them), as the reader found; carried over to what is kept.
        """
        source = self.source
        kept = Kept()
        window = source.collapse_ms
        if self.held is not None and now - self.held_since >= (window or 0) / 1000:
            self._release(kept)
        if key_rules_until is None:
            key_rules_until = len(records)
        for index, record in enumerate(records):
            reason, sampled = source.judge(record)
            end = record.end if isinstance(record, Record) else record[3]
            if reason is not None:
                kept.dropped[reason] += 1
                if self.held is None:
                    kept.acknowledge_to = end
                else:
                    self.dropped_after_held = end
                continue
            if sampled:
                kept.marks[end] = ("sampled", sampled)
            key_rules = index < key_rules_until
            if window is None:
                kept.keep(record, key_rules)
                kept.acknowledge_to = 0
                continue
            key = repeat_key(record)
            timestamp = record.timestamp if isinstance(record, Record) else record[2]
            if (
                self.held is not None
                and not sampled
                and key == self.held_key
                and 0 <= timestamp - _timestamp(self.held) < window
            ):
                self.held_count += 1
                self.held_end = end
                self.dropped_after_held = 0
                kept.dropped["repeat"] += 1
                continue
            self._release(kept)
            if sampled:  # a sampled record stands for others already: never folded
                kept.keep(record, key_rules)
                kept.acknowledge_to = 0
                self.shipped_key = None
                continue
            self.held, self.held_key, self.held_count = record, key, 1
            self.held_end, self.held_since, self.held_key_rules = end, now, key_rules
        return kept

    def flush(
        self, now: float, force: bool, pending: Record | None = None, quiet: bool = False
    ) -> Kept:
        """The held record, when its window has passed (or ``force``), as kept; after
        ``pending``, a record the reader completed meanwhile, through the filters.

        ``quiet``: the file has had nothing new for a moment.  A held record that
        repeats nothing (the one shipped before it is another) goes then, so the last
        record of a burst is not kept waiting a window; a run of repeats waits for its
        window to end, so that a retry loop costs one event a window.
        """
        kept = self.apply([pending], now) if pending is not None else Kept()
        window = (self.source.collapse_ms or 0) / 1000
        if self.held is not None and (
            force
            or now - self.held_since >= window
            or (quiet and self.held_count == 1 and self.held_key != self.shipped_key)
        ):
            self._release(kept)
        return kept

    def _release(self, kept: Kept) -> None:
        """Add the held record to ``kept``, standing for the records folded into it."""
        held = self.held
        if held is None:
            return
        end = self.held_end
        if isinstance(held, Record):
            if held.end != end:
                held = replace(held, end=end)
        elif held[3] != end:
            held = (held[0], held[1], held[2], end)
        kept.keep(held, self.held_key_rules)
        if self.held_count > 1:
            kept.marks[end] = ("repeated", self.held_count)
        kept.acknowledge_to = self.dropped_after_held
        self.shipped_key = self.held_key
        self.held = self.held_key = None
        self.held_count = self.dropped_after_held = 0


def _timestamp(record: Record | Line) -> int:
    return record.timestamp if isinstance(record, Record) else record[2]


def mark_events(events: FileEvents, marks: dict[int, tuple[str, int]], raw: bool) -> None:
    """Put ``marks`` on the rendered events of the records they belong to: a JSON
    event gets the key (``"sampled": 10``), a raw one the text of :func:`mark_text`."""
    if not marks:
        return
    for index, end in enumerate(events.ends):
        mark = marks.get(end)
        if mark is None:
            continue
        key, count = mark
        event = events.events[index]
        if raw:
            message = event.message + mark_text(key, count)
        else:  # a JSON object: the key goes in before its closing brace
            message = f'{event.message[:-1]},"{key}":{count}}}'
        events.events[index] = Event(event.timestamp, message)
        events.sizes[index] = utf8_len(message) + EVENT_OVERHEAD


def render_kept(renderer: Renderer, kept: Kept, position: Position) -> FileEvents:
    """The events of what the filters kept, marked, acknowledging the dropped records
    after the last of them."""
    events = renderer.events(kept.records, position, kept.key_rules_until)
    mark_events(events, kept.marks, renderer.output == "raw")
    last = events.ends[-1] if events.ends else 0
    if kept.acknowledge_to > last:
        events.acknowledge_to = kept.acknowledge_to
    return events


def source_filters(source: SourceConfig) -> SourceFilters | None:
    """The filters of ``source``; None when it has none (its records pay nothing)."""
    if not (
        source.min_level
        or source.exclude
        or source.include
        or source.sample
        or source.collapse_repeats
    ):
        return None
    return SourceFilters(
        min_level=level_number(source.min_level) if source.min_level else None,
        exclude=source.exclude,
        include=source.include,
        sample=[(rule.match, rule.keep_one_in) for rule in source.sample],
        collapse_seconds=parse_duration(source.collapse_repeats)
        if source.collapse_repeats
        else None,
        raw=source.output == "raw",
    )
