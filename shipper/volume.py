"""``shipper volume``: what the files on disk would cost to ship.

For each source it reads the live and rotated files last modified within ``--since``,
from their first byte, and renders their records exactly as ``run`` would ship them
(same parser, masking and renderer), without calling CloudWatch or touching any
checkpoint.  It reports, per category:

- events and bytes per UTC day of the events' own times (events older than ``--since``
  are left out); bytes are what CloudWatch bills as ingested: the UTF-8 message plus
  26 bytes per event;
- the bytes per day and a month's (30 days) ingestion cost at ``cloudwatch.price_per_gb``
  (null: the list price of the group class, STANDARD 0.50, INFREQUENT_ACCESS 0.25 USD
  per GB of 2^30 bytes).  The day rate is measured over the time the events cover: from
  the earliest to now, at most ``--since``;
- the top message templates by bytes: each event's message with numbers, ids, UUIDs,
  hex and quoted values folded into placeholders (from the masked text: no personal
  data the masking rules cover is printed), with their share;
- with filters configured, the same files read again through them: the events and bytes
  they keep, what they save, and the records dropped by reason (counted over every
  record of the files read, older than ``--since`` or not).

Progress goes to stderr every few seconds while a large folder is read.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from shipper import metrics
from shipper.app import build_follower
from shipper.checkpoints import SourceCheckpoint, State
from shipper.config import Config, SourceConfig
from shipper.discovery import RotatedNames
from shipper.filters import REASONS, source_filters
from shipper.follow import source_key
from shipper.mask import Masker, masker_for
from shipper.records import FileEvents

# CloudWatch Logs' list price of ingestion, USD per GB, by log group class.
LIST_PRICE_PER_GB = {"STANDARD": 0.50, "INFREQUENT_ACCESS": 0.25}
GB = 1 << 30
DAY_SECONDS = 86_400
DAY_MS = DAY_SECONDS * 1000
MONTH_DAYS = 30
# The shortest time a day rate is measured over: files written in the last minutes
# would otherwise be extrapolated from a moment.
MIN_SPAN_SECONDS = 3600.0
TOP_TEMPLATES = 10
PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr

# What a template folds, in order: the first to match a stretch of text names it.
_FOLD = re.compile(
    r"(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r'|(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))'
    r'|(?P<str>"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*')"
    r"|(?P<hex>\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b)"
    r"|(?P<id>\b(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[\w-]{6,}\b)"
    r"|(?P<n>(?<![A-Za-z_])\d+(?:\.\d+)?)"
)


def template(text: str) -> str:
    """``text`` with its variable parts folded: ``<uuid>``, ``<str>`` (a quoted value;
    a JSON key stays), ``<hex>``, ``<id>`` (a word of six or more letters and digits),
    ``<n>`` (a number not part of a word: ``/v1/`` stays)."""
    return _FOLD.sub(_placeholder, text)


def _placeholder(match: re.Match[str]) -> str:
    kind = match.lastgroup
    return match.group() if kind == "key" else f"<{kind}>"


def message_template(message: str, output: str) -> str:
    """The template of one shipped event: for JSON events, its level and message (a
    JSON message's keys kept, its values folded), ``+ traceback`` when it has one."""
    if output == "raw":
        return template(message.split("\n", 1)[0])
    try:
        document = msgspec.json.decode(message)
    except msgspec.DecodeError:
        return template(message)
    if not isinstance(document, dict):
        return template(message)
    level = document.get("level") or document.get("levelname")
    body = next((document[k] for k in ("message", "msg", "event") if k in document), None)
    if body is None:
        body = {k: v for k, v in document.items() if k not in ("category", "level")}
    text = body if isinstance(body, str) else msgspec.json.encode(body).decode()
    folded = template(text)
    if isinstance(level, str):
        folded = f"{level} {folded}"
    if "exception" in document:
        folded += " + traceback"
    return folded


@dataclass
class Tally:
    """Events and bytes: in all, by UTC day, by template."""

    events: int = 0
    nbytes: int = 0
    earliest_ms: int | None = None
    days: Counter[str] = field(default_factory=Counter)
    day_bytes: Counter[str] = field(default_factory=Counter)
    templates: Counter[str] = field(default_factory=Counter)
    template_events: Counter[str] = field(default_factory=Counter)

    def add(self, step: FileEvents, output: str, cutoff_ms: int, with_templates: bool) -> None:
        for event, size in zip(step.events, step.sizes, strict=True):
            if event.timestamp < cutoff_ms:
                continue
            self.events += 1
            self.nbytes += size
            if self.earliest_ms is None or event.timestamp < self.earliest_ms:
                self.earliest_ms = event.timestamp
            day = _day(event.timestamp // DAY_MS)
            self.days[day] += 1
            self.day_bytes[day] += size
            if with_templates:
                shape = message_template(event.message, output)
                self.templates[shape] += size
                self.template_events[shape] += 1


@dataclass
class SourceVolume:
    """What one source's files would cost to ship."""

    category: str
    files: int
    span_days: float  # the time the figures cover, in days
    price_per_gb: float
    shipped: Tally
    filtered: Tally | None = None  # through the filters, when the source has any
    dropped: dict[str, int] = field(default_factory=dict)

    def per_day(self, tally: Tally) -> float:
        return tally.nbytes / self.span_days if self.span_days > 0 else 0.0

    def monthly_cost(self, tally: Tally) -> float:
        return self.per_day(tally) * MONTH_DAYS / GB * self.price_per_gb


# The reader volume uses: every event the files of a source hold, as ``run`` would ship
# them.  A function of its own so that another reader can take its place.
Reader = Callable[[SourceConfig, Masker, float, Callable[[int], None]], Iterator[FileEvents]]


def read_from_disk(
    source: SourceConfig, masker: Masker, since: float, progress: Callable[[int], None]
) -> Iterator[FileEvents]:
    """The events of ``source``'s files last modified at or after ``since`` (epoch
    seconds), each file from its first byte, oldest first.  No checkpoint is read or
    saved: the source counts as covered since ever, so no file is history."""
    covered = State(sources={source_key(source): SourceCheckpoint(since=0.0)})
    follower = build_follower(source, covered, masker, time.time())
    now_ms = int(time.time() * 1000)
    try:
        for cursor in follower.scan():
            if cursor.order[1] < since:
                continue
            while (step := follower.read(cursor, now_ms)) is not None:
                progress(cursor.read_offset)
                yield step
            yield follower.flush_quiet(cursor, 0.0)
            progress(cursor.read_offset)
    finally:
        follower.close()


def files_within(source: SourceConfig, since: float) -> int:
    """How many of the source's files (live and rotated) were modified since ``since``."""
    names = RotatedNames(source.path.name, source.rotated)
    folder = source.path.parent
    if not folder.is_dir():
        return 0
    count = 0
    for path in folder.iterdir():
        if path.name == source.path.name or names.match(path.name) is not None:
            try:
                if path.is_file() and path.stat().st_mtime >= since:
                    count += 1
            except OSError:
                continue
    return count


def measure(
    config: Config,
    source: SourceConfig,
    since_seconds: float,
    err: TextIO,
    reader: Reader = read_from_disk,
    now: float | None = None,
) -> SourceVolume:
    """Read ``source``'s files as they would be shipped, with and without its filters."""
    now = time.time() if now is None else now
    since = now - since_seconds
    cutoff_ms = int(since * 1000)
    masker = masker_for(config.masking)
    unfiltered = dataclasses.replace(
        source, min_level=None, exclude=[], include=[], sample=[], collapse_repeats=None
    )
    progress = _Progress(source.category, err)
    shipped = Tally()
    for step in reader(unfiltered, masker, since, progress.update):
        shipped.add(step, source.output, cutoff_ms, with_templates=True)
    progress.done()
    volume = SourceVolume(
        category=source.category,
        files=files_within(source, since),
        span_days=_span_days(shipped.earliest_ms, now, since_seconds),
        price_per_gb=price_per_gb(config),
        shipped=shipped,
    )
    if source_filters(source) is not None:
        before = _dropped_counts(source.category)
        filtered = Tally()
        progress = _Progress(f"{source.category} (filtered)", err)
        for step in reader(source, masker, since, progress.update):
            filtered.add(step, source.output, cutoff_ms, with_templates=False)
        progress.done()
        after = _dropped_counts(source.category)
        volume.filtered = filtered
        volume.dropped = {r: int(after[r] - before[r]) for r in REASONS if after[r] > before[r]}
    return volume


@functools.lru_cache(maxsize=64)
def _day(number: int) -> str:
    """The UTC date of a day number (days since the epoch), as 2024-01-01."""
    return datetime.fromtimestamp(number * DAY_SECONDS, UTC).date().isoformat()


def price_per_gb(config: Config) -> float:
    """``cloudwatch.price_per_gb``, or the list price of the group class."""
    if config.cloudwatch.price_per_gb is not None:
        return config.cloudwatch.price_per_gb
    group_class = getattr(config.cloudwatch, "log_group_class", "STANDARD")
    return LIST_PRICE_PER_GB.get(str(group_class), LIST_PRICE_PER_GB["STANDARD"])


def _span_days(earliest_ms: int | None, now: float, since_seconds: float) -> float:
    if earliest_ms is None:
        return since_seconds / DAY_SECONDS
    covered = min(max(now - earliest_ms / 1000, MIN_SPAN_SECONDS), since_seconds)
    return covered / DAY_SECONDS


def _dropped_counts(category: str) -> dict[str, float]:
    """The filters' dropped-record counters of ``category``, by reason."""
    found = {}
    for reason in REASONS:
        labels = {"category": category, "reason": reason}
        value = metrics.REGISTRY.get_sample_value("shipper_records_dropped_total", labels)
        found[reason] = value or 0.0
    return found


class _Progress:
    """Bytes read so far, on stderr every few seconds (only a large folder takes that long)."""

    def __init__(self, label: str, err: TextIO) -> None:
        self.label = label
        self.err = err
        self.started = self.last = time.monotonic()
        self.files_done = 0
        self.offset = 0

    def update(self, offset: int) -> None:
        if offset < self.offset:  # a new file
            self.files_done += self.offset
        self.offset = offset
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            read = _size(self.files_done + offset)
            self.err.write(f"volume: {self.label}: {read} read ({now - self.started:.0f}s)\n")
            self.err.flush()

    def done(self) -> None:
        if self.last != self.started:
            self.err.write(f"volume: {self.label}: done\n")


# --------------------------------------------------------------------------- report


def report(volume: SourceVolume, since_text: str, out: TextIO) -> None:
    """Print one source's figures."""
    shipped = volume.shipped
    price = volume.price_per_gb
    hours = volume.span_days * 24
    out.write(
        f"{volume.category}: {volume.files} file(s) modified within {since_text}; "
        f"rates over the {hours:.1f} h the events cover\n"
    )
    out.write(f"  {'day (UTC)':<12} {'events':>12} {'bytes':>10}\n")
    for day in sorted(shipped.days):
        out.write(f"  {day:<12} {shipped.days[day]:>12,} {_size(shipped.day_bytes[day]):>10}\n")
    out.write(
        f"  per day: {shipped.events / volume.span_days:,.0f} events, "
        f"{_size(volume.per_day(shipped))}; a month ({MONTH_DAYS} days): "
        f"{_size(volume.per_day(shipped) * MONTH_DAYS)}, "
        f"{volume.monthly_cost(shipped):,.2f} USD at {price:.2f} USD/GB\n"
    )
    if shipped.templates:
        out.write(f"  top templates by bytes:\n  {'share':>6} {'bytes':>10} {'events':>10}\n")
        for shape, nbytes in shipped.templates.most_common(TOP_TEMPLATES):
            share = 100 * nbytes / shipped.nbytes
            events = shipped.template_events[shape]
            out.write(f"  {share:5.1f}% {_size(nbytes):>10} {events:>10,}  {_clip(shape)}\n")
    filtered = volume.filtered
    if filtered is not None:
        saved = shipped.nbytes - filtered.nbytes
        share = 100 * saved / shipped.nbytes if shipped.nbytes else 0.0
        reasons = ", ".join(f"{r} {n:,}" for r, n in volume.dropped.items()) or "none"
        out.write(
            f"  filters: keep {filtered.events:,} of {shipped.events:,} events; "
            f"save {_size(saved)} ({share:.1f}%), "
            f"{volume.monthly_cost(shipped) - volume.monthly_cost(filtered):,.2f} USD a month; "
            f"dropped: {reasons}\n"
        )


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(nbytes) < 1024 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"  # not reached


def _clip(text: str, width: int = 100) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def volume(
    config: Config,
    category: str | None,
    since_seconds: float,
    since_text: str,
    out: TextIO,
    err: TextIO,
) -> list[SourceVolume]:
    """Measure and print every source (or ``category``'s); the figures."""
    found = []
    for source in config.sources:
        if category is not None and source.category != category:
            continue
        measured = measure(config, source, since_seconds, err)
        report(measured, since_text, out)
        found.append(measured)
    return found
