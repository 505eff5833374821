"""One CloudWatch stream: its batcher, its bounded backlog and its delivery loop.

Readers hand events to :meth:`Stream.put`, which batches them and waits while the
stream already holds ``queue_batches`` sealed batches: a slow or unreachable
CloudWatch pauses reading instead of growing memory (the files are the buffer).

:meth:`Stream.run` delivers the sealed batches one at a time, in order (the order
the sequence token needs, and the order checkpoints must advance in), retrying
forever with backoff.  Each stream has its own loop, so one throttled stream does
not stall the others.  Only when CloudWatch has accepted a batch are its
positions acknowledged and ``on_delivered`` called (which saves checkpoints).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from shipper import telemetry
from shipper.batcher import Batch, Batcher
from shipper.cloudwatch import LogsClient
from shipper.cloudwatch_errors import (
    DataAlreadyAccepted,
    ExpiredCredentials,
    InvalidSequenceToken,
    Rejected,
    ResourceNotFound,
    Retriable,
)
from shipper.records import Event
from shipper.retry import Backoff

# rejectedLogEventsInfo keys, and the reason each event they cover is counted under.
_REJECTED_BELOW = (("tooOldLogEventEndIndex", "too_old"), ("expiredLogEventEndIndex", "expired"))


class Stream:
    """Batches and delivers the events of one (log group, log stream)."""

    def __init__(
        self,
        group: str,
        name: str,
        client: LogsClient,
        batcher: Batcher,
        flush_interval: float,
        queue_batches: int,
        create_group: bool,
        retention_days: int | None,
        backoff: Backoff,
        on_delivered: Callable[[], None],
    ) -> None:
        self.group = group
        self.name = name
        self.client = client
        self.batcher = batcher
        self.flush_interval = flush_interval
        self.queue_batches = queue_batches
        self.create_group = create_group
        self.retention_days = retention_days
        self.backoff = backoff
        self.on_delivered = on_delivered
        self.sealed: deque[Batch] = deque()
        self.token: str | None = None
        self.created = False
        self.closing = False
        self.failing_since: float | None = None  # monotonic time of the first failed try
        self._wake_sender = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    # ------------------------------------------------------------------ producers

    async def put(self, events: list[Event], now_ms: int | None = None) -> None:
        """Batch ``events``; wait while the stream's backlog is full."""
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        now = time.monotonic()
        for event in events:
            sealed = self.batcher.add(event, now_ms, now)
            if sealed is not None:
                self.sealed.append(sealed)
                self._wake_sender.set()
                while len(self.sealed) >= self.queue_batches:
                    self._space.clear()
                    await self._space.wait()
        self._wake_sender.set()

    def undelivered(self) -> int:
        return len(self.batcher.current) + sum(len(b) for b in self.sealed)

    def close(self) -> None:
        """Deliver what is held, then let :meth:`run` return."""
        self.closing = True
        self._wake_sender.set()

    # ------------------------------------------------------------------ delivery

    async def run(self) -> None:
        """Deliver sealed batches in order, sealing the current one after flush_interval."""
        while True:
            if self.sealed:
                batch = self.sealed[0]
                await self.deliver(batch)
                self.sealed.popleft()
                self._space.set()
                continue
            since = self.batcher.pending_since()
            if since is not None:
                wait = since + self.flush_interval - time.monotonic()
                if wait <= 0 or self.closing:
                    batch_or_none = self.batcher.seal()
                    if batch_or_none is not None:
                        self.sealed.append(batch_or_none)
                    continue
            elif self.closing:
                return
            else:
                wait = None
            self._wake_sender.clear()
            try:
                await asyncio.wait_for(self._wake_sender.wait(), wait)
            except TimeoutError:
                pass

    async def deliver(self, batch: Batch) -> None:
        """Put one batch until CloudWatch has it, then acknowledge it."""
        attempt = 0
        started = time.monotonic()
        rejected = list(batch.rejected)
        while batch.events:
            try:
                if not self.created:
                    created_group = await self.client.create_stream(
                        self.group, self.name, self.create_group, self.retention_days
                    )
                    self.created = True
                    self.token = None
                    telemetry.stream_created(self.group, self.name, created_group)
                result = await self.client.put_events(
                    self.group, self.name, batch.events, self.token
                )
            except DataAlreadyAccepted as exc:
                self.token = exc.expected
                break
            except InvalidSequenceToken as exc:
                self.token = exc.expected
                telemetry.sequence_token_corrected(self.group, self.name)
                if attempt < 3:
                    attempt += 1
                    continue
                await self._pause(exc, attempt)
                attempt += 1
                continue
            except ResourceNotFound as exc:
                self.created = False
                await self._pause(exc, attempt)
                attempt += 1
                continue
            except ExpiredCredentials as exc:
                await self._pause(exc, attempt)
                await self.client.refresh()
                attempt += 1
                continue
            except Retriable as exc:
                await self._pause(exc, attempt)
                attempt += 1
                continue
            except Rejected as exc:
                # The service refuses the request itself: retrying cannot help.
                rejected.extend(("invalid", e) for e in batch.events)
                telemetry.put_retry(self.group, self.name, exc.code, exc.detail, attempt, 0.0)
                break
            self.token = result.next_token or self.token
            refused = _rejected_by_service(batch, result.rejected)
            rejected.extend(refused)
            telemetry.batch_delivered(
                self.group,
                self.name,
                len(batch.events) - len(refused),
                batch.message_bytes(),
                time.monotonic() - started,
            )
            break
        self.failing_since = None
        self._report_rejected(rejected)
        for position, offset in batch.acks.items():
            position.delivered(offset)
        self.on_delivered()

    async def _pause(self, error: Exception, attempt: int) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        delay = self.backoff.delay(attempt)
        code = getattr(error, "code", type(error).__name__)
        detail = getattr(error, "detail", str(error))
        telemetry.put_retry(self.group, self.name, code, detail, attempt + 1, delay)
        await asyncio.sleep(delay)

    def _report_rejected(self, rejected: list[tuple[str, Event]]) -> None:
        by_reason: dict[str, list[str]] = {}
        for reason, event in rejected:
            by_reason.setdefault(reason, []).append(event.where())
        for reason, where in by_reason.items():
            telemetry.events_rejected(reason, len(where), self.group, self.name, where)


def _rejected_by_service(batch: Batch, info: dict[str, int]) -> list[tuple[str, Event]]:
    """The events of a delivered batch that rejectedLogEventsInfo says were not stored."""
    if not info:
        return []
    events = batch.events
    reasons: dict[int, str] = {}
    for key, reason in _REJECTED_BELOW:
        end = info.get(key)
        if end is not None:
            for index in range(min(end + 1, len(events))):
                reasons.setdefault(index, reason)
    start = info.get("tooNewLogEventStartIndex")
    if start is not None:
        for index in range(max(start, 0), len(events)):
            reasons.setdefault(index, "too_new")
    return [(reason, events[index]) for index, reason in sorted(reasons.items())]
