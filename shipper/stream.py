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
import contextlib
import time
from collections import deque
from collections.abc import Callable

from shipper import telemetry
from shipper.batcher import Batch, Batcher, Refused
from shipper.cloudwatch import LogsClient
from shipper.cloudwatch_errors import (
    CloudWatchError,
    DataAlreadyAccepted,
    ExpiredCredentials,
    InvalidSequenceToken,
    Rejected,
    ResourceNotFound,
    Retriable,
)
from shipper.records import Event, FileEvents, utf8_len
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

    async def put(self, events: FileEvents, now_ms: int | None = None) -> None:
        """Batch one file's ``events``; then wait while the stream's backlog is full.

        All of a step's events are in the stream before the first wait, so a reader
        cancelled while it waits (a reload removing its source, a shutdown) loses none
        of them: what it handed over is delivered and acknowledged in order.  The
        backlog may thus pass ``queue_batches`` by the batches one step fills (a read
        step is at most a chunk of the file), never more.
        """
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        now = time.monotonic()
        # The sender is woken for news only: a sealed batch, or a first event to time the
        # flush from (it is already timing one that is pending).
        first = self.batcher.pending_since() is None
        sealed = self.batcher.add_all(events, now_ms, now)
        self.sealed.extend(sealed)
        if sealed or first:
            self._wake_sender.set()
        while len(self.sealed) >= self.queue_batches:
            self._space.clear()
            await self._space.wait()

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
                # A stream's first batch goes at once: what was waiting when the shipper
                # started reaches CloudWatch without a flush_interval's delay.
                wait = since + self.flush_interval - time.monotonic() if self.created else 0.0
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
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
            # that arrives as the wait completes, and a shutdown would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake_sender.wait()

    async def deliver(self, batch: Batch) -> None:
        """Put one batch until CloudWatch has it, then acknowledge it.

        Every failure is retried, forever: after a pause that grows with each failed
        try, except where the error itself says how to succeed at once (a corrected
        sequence token, a stream to recreate, credentials to refresh) and that remedy
        has not just been tried.
        """
        started = time.monotonic()
        rejected = list(batch.rejected)
        pauses = 0  # failed tries that ended in a backoff pause
        remedied: type[Exception] | None = None  # the immediate remedy tried last
        refusal = ""  # why the service refused the whole batch, if it did
        while batch.events:
            generation = self.client.generation
            sent_token = self.token
            try:
                if not self.created:
                    created_group = await self.client.create_stream(
                        self.group, self.name, self.create_group, self.retention_days
                    )
                    self.created = True
                    self.token = sent_token = None
                    telemetry.stream_created(self.group, self.name, created_group)
                result = await self.client.put_events(
                    self.group, self.name, batch.events, sent_token
                )
            except DataAlreadyAccepted as exc:
                # An earlier try was stored though its answer was lost.
                self.token = exc.expected
                telemetry.batch_delivered(
                    self.group,
                    self.name,
                    len(batch.events),
                    batch.message_bytes(),
                    time.monotonic() - started,
                    already_accepted=True,
                )
                break
            except InvalidSequenceToken as exc:
                self.token = exc.expected
                telemetry.sequence_token_corrected(self.group, self.name)
                if remedied is not InvalidSequenceToken and exc.expected != sent_token:
                    remedied = InvalidSequenceToken
                    continue  # the error named the token to send: send it at once
                pauses = await self._pause(exc, pauses)
                continue
            except ResourceNotFound as exc:
                self.created = False
                if remedied is not ResourceNotFound:
                    remedied = ResourceNotFound
                    telemetry.put_retry(self.group, self.name, exc.code, exc.detail, pauses, 0.0)
                    continue  # recreate the group/stream at once
                pauses = await self._pause(exc, pauses)
                continue
            except ExpiredCredentials as exc:
                if remedied is not ExpiredCredentials:
                    remedied = ExpiredCredentials
                    telemetry.put_retry(self.group, self.name, exc.code, exc.detail, pauses, 0.0)
                else:
                    pauses = await self._pause(exc, pauses)
                await self.client.refresh(generation)
                telemetry.credentials_refreshed(self.group, self.name, exc.code)
                continue
            except Retriable as exc:
                pauses = await self._pause(exc, pauses)
                continue
            except Rejected as exc:
                # The service refuses the request itself: retrying cannot help.  The
                # batcher obeys every rule, so this is a bug or an unexpected service
                # rule; the events are counted and logged, with the service's words.
                refusal = f"{exc.code}: {exc.detail}"
                break
            self.token = result.next_token or self.token
            refused = _rejected_by_service(batch, result.rejected)
            places = batch.where([event for _, event in refused])
            rejected += [(why, place) for (why, _), place in zip(refused, places, strict=True)]
            telemetry.batch_delivered(
                self.group,
                self.name,
                len(batch.events) - len(refused),
                batch.message_bytes() - sum(utf8_len(e.message) for _, e in refused),
                time.monotonic() - started,
            )
            break
        self.failing_since = None
        self._report_rejected(rejected)
        if refusal:
            invalid = [("invalid", where) for where in batch.where(batch.events)]
            self._report_rejected(invalid, refusal)
        self._acknowledge(batch)

    def _acknowledge(self, batch: Batch) -> None:
        for position, offset in batch.acks.items():
            position.delivered(offset)
        self.on_delivered()

    async def _pause(self, error: CloudWatchError, pauses: int) -> int:
        """Log the failed try, wait the backoff delay; return the pauses taken so far."""
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        delay = self.backoff.delay(pauses)
        telemetry.put_retry(self.group, self.name, error.code, error.detail, pauses + 1, delay)
        await asyncio.sleep(delay)
        return pauses + 1

    def _report_rejected(self, rejected: list[Refused], detail: str = "") -> None:
        by_reason: dict[str, list[str]] = {}
        for reason, place in rejected:
            by_reason.setdefault(reason, []).append(place)
        for reason, places in by_reason.items():
            telemetry.events_rejected(reason, len(places), self.group, self.name, places, detail)


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
