"""Batching events under CloudWatch's PutLogEvents rules.

A call may carry at most 10,000 events and 1,048,576 bytes (UTF-8 message bytes plus
26 per event), its events in chronological order, spanning at most 24 hours.  The
batcher seals a batch before an event would break any of these, and sorts it by
timestamp when sealing (stable, so events of one time keep their file order).

Events CloudWatch would refuse (older than 14 days or the group's retention, more
than 2 hours ahead) are not sent; they ride along in the batch as ``rejected`` so
they are counted, logged and acknowledged with it.  Everything here is pure: the
caller passes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipper.records import Event, Position

MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
MAX_SPAN_MS = 24 * 3600 * 1000 - 1
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_AHEAD_MS = 2 * 3600 * 1000


@dataclass(slots=True)
class Batch:
    """Events for one PutLogEvents call, and what to acknowledge once it is stored."""

    events: list[Event] = field(default_factory=list)
    nbytes: int = 0
    rejected: list[tuple[str, Event]] = field(default_factory=list)
    acks: dict[Position, int] = field(default_factory=dict)
    first_added: float = 0.0  # monotonic seconds
    min_ts: int = 0
    max_ts: int = 0

    def __len__(self) -> int:
        return len(self.events) + len(self.rejected)

    def message_bytes(self) -> int:
        return self.nbytes - 26 * len(self.events)


def rejection(timestamp: int, now_ms: int, retention_days: int | None) -> str | None:
    """Why CloudWatch would refuse an event of this time, or None."""
    if timestamp > now_ms + MAX_AHEAD_MS:
        return "too_new"
    if timestamp < now_ms - MAX_AGE_MS:
        return "too_old"
    if retention_days is not None and timestamp < now_ms - retention_days * 86_400_000:
        return "expired"
    return None


class Batcher:
    """Gathers one stream's events into batches that obey every PutLogEvents rule."""

    def __init__(
        self,
        max_events: int = MAX_EVENTS,
        max_bytes: int = MAX_BYTES,
        retention_days: int | None = None,
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.retention_days = retention_days
        self.current = Batch()

    def add(self, event: Event, now_ms: int, now: float) -> Batch | None:
        """Add one event; return the batch it sealed to make room, if any."""
        batch = self.current
        reason = rejection(event.timestamp, now_ms, self.retention_days)
        sealed = None
        if reason is None and batch.events and not self._fits(batch, event):
            sealed = self.seal()
            batch = self.current
        if not len(batch):
            batch.first_added = now
        if reason is None:
            if not batch.events:
                batch.min_ts = batch.max_ts = event.timestamp
            elif event.timestamp < batch.min_ts:
                batch.min_ts = event.timestamp
            elif event.timestamp > batch.max_ts:
                batch.max_ts = event.timestamp
            batch.events.append(event)
            batch.nbytes += event.size
        else:
            batch.rejected.append((reason, event))
        batch.acks[event.position] = event.offset
        return sealed

    def _fits(self, batch: Batch, event: Event) -> bool:
        return (
            len(batch.events) < self.max_events
            and batch.nbytes + event.size <= self.max_bytes
            and max(batch.max_ts, event.timestamp) - min(batch.min_ts, event.timestamp)
            <= MAX_SPAN_MS
        )

    def seal(self) -> Batch | None:
        """The current batch, sorted and closed; None when it is empty."""
        batch = self.current
        if not len(batch):
            return None
        self.current = Batch()
        batch.events.sort(key=_timestamp)
        return batch

    def pending_since(self) -> float | None:
        """When the oldest unsealed event was added (monotonic), or None."""
        return self.current.first_added if len(self.current) else None


def _timestamp(event: Event) -> int:
    return event.timestamp
