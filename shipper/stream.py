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
from shipper.budget import Budget, for_streams
from shipper.cloudwatch import LogsClient, PutResult
from shipper.cloudwatch_errors import (
    CloudWatchError,
    DataAlreadyAccepted,
    ExpiredCredentials,
    InvalidSequenceToken,
    MissingCredentials,
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
        budget: Budget | None = None,
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
        self._sealed_bytes = 0
        # Shared with the shipper's other streams (see shipper.budget); alone, never met.
        self.budget = budget or for_streams(queue_batches, batcher.max_bytes)
        self.token: str | None = None
        self.created = False
        self.closing = False
        self.failing_since: float | None = None  # monotonic time of the first failed try
        # Why deliveries cannot succeed until someone acts (no credentials, a group the
        # service refuses to create): shown on /readyz at once, not after a grace time.
        self.blocked: str | None = None
        self._retention: asyncio.Task[None] | None = None  # setting a new group's retention
        self._wake_sender = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    # ------------------------------------------------------------------ producers

    async def put(self, events: FileEvents, now_ms: int | None = None) -> None:
        """Batch one file's ``events``; then wait while the stream's backlog is full,
        or while the streams together hold more than their shared budget and this one
        holds anything (see :mod:`shipper.budget`).

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
        held = self.held()
        sealed = self.batcher.add_all(events, now_ms, now)
        self._seal(sealed)
        self.budget.change(self.held() - held)
        if self.budget.spent():
            # The streams together hold too much: what this one holds goes now, not at
            # its flush time, so the budget is freed as fast as CloudWatch takes it.
            batch = self.batcher.seal()
            if batch is not None:
                self._seal([batch])  # held all the same: no change
                sealed.append(batch)
        if sealed or first:
            self._wake_sender.set()
        while True:
            if len(self.sealed) >= self.queue_batches:
                self._space.clear()
                await self._space.wait()
            elif self.budget.spent() and self.held():
                await self.budget.freed()
            else:
                return

    def held(self) -> int:
        """Bytes of the batches this stream holds, sealed or not (as PutLogEvents
        counts them)."""
        return self._sealed_bytes + self.batcher.current.nbytes

    def _seal(self, batches: list[Batch]) -> None:
        self.sealed.extend(batches)
        self._sealed_bytes += sum(batch.nbytes for batch in batches)

    def sends_at(self) -> float | None:
        """When the events not yet sealed go out (monotonic): None when there are none,
        or when they go at once (a stream's first batch, closing)."""
        since = self.batcher.pending_since()
        if since is None or not self.created or self.closing:
            return None
        return since + self.flush_interval

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
                self._sealed_bytes -= batch.nbytes
                self.budget.change(-batch.nbytes)
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
                        self._seal([batch_or_none])  # held all the same: no change
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
        has not just been tried.  A group or stream the service refuses to create is
        such a failure too (reported on /readyz at once), never a reason to drop.

        When the service refuses a request as invalid, retrying it cannot help, but
        most of its events may be fine: it is split in halves, and halves of those,
        until the events at fault stand alone; only they are counted and skipped.
        """
        started = time.monotonic()
        rejected = list(batch.rejected)
        invalid: list[Event] = []
        refusals: dict[str, None] = {}  # the service's words, once each (the first 3 told)
        pending = [batch.events] if batch.events else []  # a stack: the next part last
        while pending:
            events = pending.pop()
            outcome = await self._store(events)
            if isinstance(outcome, Rejected):
                refusals[f"{outcome.code}: {outcome.detail}"] = None
                if len(events) == 1:
                    invalid += events
                else:
                    half = len(events) // 2
                    pending += (events[half:], events[:half])
                continue
            if outcome is None:  # stored by an earlier try whose answer was lost
                telemetry.batch_delivered(
                    self.group,
                    self.name,
                    len(events),
                    sum(utf8_len(e.message) for e in events),
                    time.monotonic() - started,
                    already_accepted=True,
                )
                continue
            refused = _rejected_by_service(events, outcome.rejected)
            places = batch.where([event for _, event in refused])
            rejected += [(why, place) for (why, _), place in zip(refused, places, strict=True)]
            stored = len(events) - len(refused)
            whole = events is batch.events  # its byte count is kept; a part's is summed
            nbytes = batch.message_bytes() if whole else sum(utf8_len(e.message) for e in events)
            telemetry.batch_delivered(
                self.group,
                self.name,
                stored,
                nbytes - sum(utf8_len(e.message) for _, e in refused),
                time.monotonic() - started,
            )
        self.failing_since = None
        self._report_rejected(rejected)
        if invalid:
            where = [("invalid", place) for place in batch.where(invalid)]
            self._report_rejected(where, "; ".join(list(refusals)[:3]))
        self._acknowledge(batch)

    async def _store(self, events: list[Event]) -> PutResult | Rejected | None:
        """Put ``events`` until they are stored; the service's answer, or its refusal of
        the request as invalid, or None when an earlier try had stored them already."""
        pauses = 0  # failed tries that ended in a backoff pause
        remedied: type[Exception] | None = None  # the immediate remedy tried last
        while True:
            generation = self.client.generation
            sent_token = self.token
            try:
                if not self.created:
                    await self._create()
                result = await self.client.put_events(self.group, self.name, events, sent_token)
            except DataAlreadyAccepted as exc:
                # An earlier try was stored though its answer was lost.
                self.token = exc.expected
                self.blocked = None
                return None
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
            except MissingCredentials as exc:
                # None found (yet): at boot a role may come later.  Ask the chain again
                # after each pause; never give up.
                self.blocked = exc.detail
                pauses = await self._pause(exc, pauses)
                await self._refresh_credentials(generation, exc)
                continue
            except ExpiredCredentials as exc:
                if remedied is not ExpiredCredentials:
                    remedied = ExpiredCredentials
                    telemetry.put_retry(self.group, self.name, exc.code, exc.detail, pauses, 0.0)
                else:
                    pauses = await self._pause(exc, pauses)
                await self._refresh_credentials(generation, exc)
                continue
            except Retriable as exc:
                pauses = await self._pause(exc, pauses)
                continue
            except Rejected as exc:
                if self.created:
                    return exc
                # The group or stream cannot be created as configured (a name, a tag,
                # a key the service refuses): only the operator can fix it, and until
                # then the files hold the backlog.
                self.blocked = f"CloudWatch refuses to create the group or stream: {exc}"
                pauses = await self._pause(exc, pauses)
                continue
            self.token = result.next_token or self.token
            self.blocked = None
            return result

    async def _create(self) -> None:
        """Create the stream (and its group); start setting the retention of a new group."""
        created_group = await self.client.create_stream(self.group, self.name, self.create_group)
        self.created = True
        self.token = None
        telemetry.stream_created(self.group, self.name, created_group)
        if created_group and self.retention_days is not None:
            if self._retention is not None:
                self._retention.cancel()
            self._retention = asyncio.create_task(
                self._set_retention(self.retention_days), name=f"retention {self.group}"
            )

    async def _set_retention(self, days: int) -> None:
        """Put the retention policy of a group this stream created, until it is set.

        Runs beside deliveries (which never wait for it): the group exists already, so
        a failed try would never be made again by creating it.
        """
        attempt = 0
        while True:
            try:
                await self.client.put_retention(self.group, days)
            except CloudWatchError as exc:
                delay = self.backoff.delay(attempt)
                attempt += 1
                telemetry.retention_retry(self.group, exc.code, exc.detail, attempt, delay)
                await asyncio.sleep(delay)
                continue
            telemetry.retention_set(self.group, days)
            return

    async def _refresh_credentials(self, generation: int, error: CloudWatchError) -> None:
        problem = await self.client.refresh(generation)
        if problem is None:
            telemetry.credentials_refreshed(self.group, self.name, error.code)
        else:
            telemetry.credentials_refresh_failed(self.group, self.name, error.code, problem)

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


def _rejected_by_service(events: list[Event], info: dict[str, int]) -> list[tuple[str, Event]]:
    """The events of a stored request that rejectedLogEventsInfo says were not stored."""
    if not info:
        return []
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
