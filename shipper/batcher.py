"""Batching events under CloudWatch's PutLogEvents rules.

A call may carry at most 10,000 events and 1,048,576 bytes (UTF-8 message bytes plus
26 per event), its events in chronological order, spanning at most 24 hours.  The
batcher seals a batch before an event would break any of these, and sorts it by
timestamp when sealing (stable, so events of one time keep their file order).

Events CloudWatch would refuse are not sent: older than 14 days or more than 2 hours
ahead at the time they are read (``too_old``, ``too_new``), and, as a defence since
botocore's parameter validation is off, an empty message (``empty``) or one larger
than an event may be (``too_large``; the renderer already truncates those).  They
ride along in the batch as ``rejected`` so they are counted, logged and acknowledged
with it; a batch holds at most ``max_events`` of them too, so a file of refused events
is reported in bounded chunks rather than held whole.  A group's retention is left to
the service: the retention of a group the shipper did not create is unknown here, and
``rejectedLogEventsInfo`` reports expired events.  Everything here is pure: the caller
passes ``now``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from operator import attrgetter

from shipper.records import EVENT_OVERHEAD, Event, FileEvents, Position

MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
MAX_EVENT_BYTES = 1_048_576  # one event, with its 26 bytes of overhead
MAX_SPAN_MS = 24 * 3600 * 1000 - 1
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_AHEAD_MS = 2 * 3600 * 1000

# An event the batcher will not send: why, and where its record ends (``path:offset``).
Refused = tuple[str, str]


@dataclass(slots=True)
class Batch:
    """Events for one PutLogEvents call, and what to acknowledge once it is stored."""

    events: list[Event] = field(default_factory=list)
    nbytes: int = 0
    rejected: list[Refused] = field(default_factory=list)
    acks: dict[Position, int] = field(default_factory=dict)
    first_added: float = 0.0  # monotonic seconds
    min_ts: int = 0
    max_ts: int = 0
    # Where each event came from, for reports: the events in the order they were added
    # (``events`` is sorted when the batch is sealed), the end offset of each, and the
    # index in that order at which each run of one file's events begins.
    arrived: list[Event] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    runs: list[tuple[int, Position]] = field(default_factory=list)
    # Whether the batch was begun by dropped records' acknowledgement alone (a batch
    # without events that must still be delivered, in order, to acknowledge them).
    dropped_only: bool = False

    def __len__(self) -> int:
        return len(self.events) + len(self.rejected) + self.dropped_only

    def message_bytes(self) -> int:
        return self.nbytes - EVENT_OVERHEAD * len(self.events)

    def begin_run(self, position: Position) -> None:
        """Note that the events added next come from ``position``."""
        if not self.runs or self.runs[-1][1] is not position:
            self.runs.append((len(self.events), position))

    def where(self, events: list[Event]) -> list[str]:
        """``path:offset`` of each of ``events`` (some of this batch's), for reports."""
        if not events:
            return []  # the usual case: nothing to report
        arrived = self.arrived or self.events
        index_of = {id(event): index for index, event in enumerate(arrived)}
        starts = [start for start, _ in self.runs]
        places = []
        for event in events:
            index = index_of[id(event)]
            position = self.runs[bisect_right(starts, index) - 1][1]
            places.append(f"{position.path}:{self.ends[index]}")
        return places


def rejection(timestamp: int, message: str, size: int, now_ms: int) -> str | None:
    """Why CloudWatch would refuse this event (``size``: with its overhead), or None."""
    if timestamp > now_ms + MAX_AHEAD_MS:
        return "too_new"
    if timestamp < now_ms - MAX_AGE_MS:
        return "too_old"
    if size > MAX_EVENT_BYTES:
        return "too_large"
    if not message:
        return "empty"
    return None


class Batcher:
    """Gathers one stream's events into batches that obey every PutLogEvents rule."""

    def __init__(self, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.current = Batch()

    def add_all(self, step: FileEvents, now_ms: int, now: float) -> list[Batch]:
        """Add one file's events in order; return the batches sealed to make room."""
        if not step.events:
            self._acknowledge_dropped(step, now)
            return []
        if self._add_whole(step, now_ms, now):
            self._acknowledge_dropped(step, now)
            return []
        # Called for every event: the rules are written out here rather than in helpers,
        # and the current batch's running figures are kept in locals, written back when
        # it is sealed and at the end.
        sealed = []
        oldest, newest = now_ms - MAX_AGE_MS, now_ms + MAX_AHEAD_MS
        max_events, max_bytes = self.max_events, self.max_bytes
        position = step.position
        batch = self.current
        batch.begin_run(position)
        kept = batch.events
        nbytes, low, high = batch.nbytes, batch.min_ts, batch.max_ts
        for event, size, end in zip(step.events, step.sizes, step.ends, strict=True):
            timestamp = event.timestamp
            if not (oldest <= timestamp <= newest and size <= MAX_EVENT_BYTES and event.message):
                reason = rejection(timestamp, event.message, size, now_ms)
                if reason is not None:
                    if not kept and not batch.rejected:
                        batch.first_added = now
                    batch.rejected.append((reason, f"{position.path}:{end}"))
                    batch.acks[position] = end
                    if len(batch.rejected) >= max_events:
                        # Refused events count against the batch too, so a file of
                        # them is reported (and acknowledged) in bounded chunks.
                        batch.nbytes, batch.min_ts, batch.max_ts = nbytes, low, high
                        sealed.append(self._seal(batch))
                        batch = self.current
                        batch.begin_run(position)
                        kept = batch.events
                        nbytes, low, high = 0, 0, 0
                    continue
            if kept:
                earliest = low if low < timestamp else timestamp
                latest = high if high > timestamp else timestamp
                if (
                    len(kept) >= max_events
                    or nbytes + size > max_bytes
                    or latest - earliest > MAX_SPAN_MS
                ):
                    batch.nbytes, batch.min_ts, batch.max_ts = nbytes, low, high
                    sealed.append(self._seal(batch))
                    batch = self.current
                    batch.begin_run(position)
                    batch.first_added = now
                    kept = batch.events
                    nbytes, low, high = 0, timestamp, timestamp
                else:
                    low, high = earliest, latest
            else:
                low = high = timestamp
                if not batch.rejected:
                    batch.first_added = now
            kept.append(event)
            batch.ends.append(end)
            nbytes += size
            batch.acks[position] = end
        batch.nbytes, batch.min_ts, batch.max_ts = nbytes, low, high
        self._acknowledge_dropped(step, now)
        return sealed

    def _acknowledge_dropped(self, step: FileEvents, now: float) -> None:
        """Acknowledge the step's dropped records after its last event with the current
        batch: after every earlier batch, so never past a record still in flight."""
        if not step.acknowledge_to:
            return
        batch = self.current
        if not len(batch):
            batch.first_added = now
            batch.dropped_only = True
        batch.acks[step.position] = step.acknowledge_to

    def _add_whole(self, step: FileEvents, now_ms: int, now: float) -> bool:
        """Add ``step`` to the current batch at once when all its events fit in it and
        none is refused (the usual case: a read step's events, a few hundred of them,
        and a batch that takes thousands); False, having added nothing, otherwise.

        Each rule is checked over the whole step with C-level passes (``sum``, ``min``,
        ``max``), rather than event by event as :meth:`add_all` goes on to do.
        """
        batch = self.current
        kept, sizes = batch.events, step.sizes
        if len(kept) + len(sizes) > self.max_events:
            return False
        size = sum(sizes)
        # Within the batch's byte limit (at most MAX_EVENT_BYTES), so is every event; one
        # of EVENT_OVERHEAD bytes has an empty message.
        if batch.nbytes + size > self.max_bytes or min(sizes) <= EVENT_OVERHEAD:
            return False
        timestamps = list(map(_timestamp, step.events))
        low, high = min(timestamps), max(timestamps)
        if low < now_ms - MAX_AGE_MS or high > now_ms + MAX_AHEAD_MS:
            return False
        if kept:
            low, high = min(low, batch.min_ts), max(high, batch.max_ts)
        if high - low > MAX_SPAN_MS:
            return False
        if not kept and not batch.rejected:
            batch.first_added = now
        batch.begin_run(step.position)
        kept += step.events
        batch.ends += step.ends
        batch.nbytes += size
        batch.min_ts, batch.max_ts = low, high
        batch.acks[step.position] = step.ends[-1]
        return True

    def seal(self) -> Batch | None:
        """The current batch, sorted and closed; None when it is empty."""
        batch = self.current
        return self._seal(batch) if len(batch) else None

    def _seal(self, batch: Batch) -> Batch:
        self.current = Batch()
        batch.arrived = batch.events
        batch.events = sorted(batch.arrived, key=_timestamp)
        return batch

    def pending_since(self) -> float | None:
        """When the oldest unsealed event was added (monotonic), or None."""
        return self.current.first_added if len(self.current) else None


_timestamp = attrgetter("timestamp")
