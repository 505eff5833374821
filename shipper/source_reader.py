"""Driving one source's :class:`~shipper.follow.Follower`: the only loop that does.

``run``, ``preview`` and the tests all read files through :class:`SourceReader`:

    scan ──▶ read one step of the oldest file with news ──▶ (assemble, render) ──▶ put

What it holds to:

- A read step's events go to the stream in one ``await stream.put(events)``: the
  stream takes all of them or none, and the reader reads nothing more until it has.
  A stream that is full pauses reading (the files are the buffer).
- Older files are finished first: one step of a newer file is never read while an
  older one has more, and an older file's last record is handed over when that file
  is read to its end, before anything newer.
- A record waiting for continuation lines (a traceback) is complete once its file has
  been quiet for ``MULTILINE_WAIT``.
- Asked to stop (its stop event), it hands over the records still waiting for
  continuation lines and returns.  Cancelled (a reload removing the source, a
  shutdown past its deadline), it hands over nothing more: whatever it read but did
  not put is read again from the delivered offsets by whoever follows the source next.
- Its waits end on a wake, the stop event or a deadline with
  :func:`shipper.waits.first_set`, which cannot swallow a cancellation (Python 3.11's
  ``asyncio.wait_for`` can, when the cancellation arrives as the inner wait completes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from shipper.follow import MULTILINE_WAIT, Cursor, Follower
from shipper.records import FileEvents
from shipper.waits import first_set, next_tick, tick_of

# While a reader makes progress through a backlog and nothing in the folder changed,
# it looks at the folder (a listdir and a stat per file) at most this often rather
# than after every chunk; a change the watcher reports is looked at at once.
SCAN_WHILE_READING = 0.25
# How long an idle reader waits for news before it looks at the folder anyway, when
# the caller does not say (the app passes ``rescan_interval``).
IDLE_RESCAN = 10.0
# A reader gathering news reads this long before its stream sends the batch it times,
# so that what it reads still goes with that batch.
GATHER_MARGIN = 0.05


class Sink(Protocol):
    """Where a reader hands its events: a :class:`~shipper.stream.Stream`, or a fake."""

    async def put(self, events: FileEvents) -> None: ...


class SourceReader:
    """Reads one source's files through its follower and hands the events to ``sink``."""

    def __init__(
        self,
        follower: Follower,
        sink: Sink,
        wake: asyncio.Event | None = None,
        *,
        rescan_interval: Callable[[], float] = lambda: IDLE_RESCAN,
        on_scan: Callable[[Follower, bool], None] | None = None,
        watch: Callable[[], bool] | None = None,
        changes: Callable[[], set[str] | None] | None = None,
        sends_at: Callable[[], float | None] | None = None,
    ) -> None:
        """``wake`` is set when the folder changed (the watcher sets it).
        ``rescan_interval`` is read before each idle wait, so a reload applies at
        once.  ``on_scan`` is called after each look (gauges), with whether the whole
        folder was looked at.  ``watch`` makes sure the folder is watched; True when it
        placed a new watch (changes made before it went unseen: the folder is looked at
        again at once).  ``changes`` names the files the watcher saw change since the
        last call (None: look at everything); without it, or once per
        ``rescan_interval``, every look takes in the whole folder.  ``sends_at``
        tells when the sink sends the events it holds (monotonic; None: it holds none,
        or sends them at once): news arriving before then is gathered and read just
        before, in one step rather than one per write."""
        self.follower = follower
        self.sink = sink
        self.wake = wake if wake is not None else asyncio.Event()
        self.rescan_interval = rescan_interval
        self.on_scan = on_scan
        self.watch = watch
        self.changes = changes
        self.sends_at = sends_at
        self._rescanned: int | None = None  # the rescan period of the last whole look
        # Set while the reader waits for news: everything readable has been handed over.
        self.idle = asyncio.Event()
        self._cursors: list[Cursor] = []
        self._scanned = -SCAN_WHILE_READING
        # The last step read something, and the next may read more without a look.
        self._reading_on = False
        self._caught_up = False  # the last step read the newest file to its end
        self._pending = False  # a record waits for continuation lines

    async def run(self, stop: asyncio.Event) -> None:
        """Read until ``stop`` is set; then hand over the records still pending."""
        # One task for the whole run wakes the reader when it is asked to stop, so each
        # wait for news waits for one event: no task per wait (several a second).
        waking = asyncio.ensure_future(self._wake_on(stop))
        try:
            while not stop.is_set():
                # After a step that read the newest file to its end, the next waits for
                # news (and gathers it) unless the file already grew meanwhile: a busy
                # file is read on at once, as its writes come.
                if await self.step() and (not self._caught_up or self.wake.is_set()):
                    await asyncio.sleep(0)  # deliveries and other readers run between steps
                    continue
                if self.watch is not None and self.watch():
                    continue
                if await self._wait_for_news() and not stop.is_set():
                    await self._gather(stop)
        finally:
            waking.cancel()
        await self.finish()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.wake.set()

    async def read_available(self, stop: asyncio.Event | None = None) -> None:
        """Read what the files hold now, then hand over the pending records (``preview``:
        one pass, no waiting).  Ends early once ``stop`` is set."""
        while not (stop is not None and stop.is_set()) and await self.step():
            pass
        await self.finish()

    async def step(self) -> bool:
        """One turn: a look at the folder when due, one read step of the oldest file
        with something to read, and the records of quiet files.  Whether a step was read."""
        follower = self.follower
        now = time.monotonic()
        due = now - self._scanned >= SCAN_WHILE_READING
        if self.wake.is_set() or not self._reading_on or due or follower.look_needed:
            self.wake.clear()
            self._scanned = now
            # The files the watcher named; the whole folder once per rescan_interval.
            changed = self.changes() if self.changes is not None else None
            period = tick_of(self.rescan_interval(), now)
            if period != self._rescanned:
                changed, self._rescanned = None, period
            self._cursors = follower.scan(changed)
            for orphaned in follower.take_orphaned():
                await self._put(orphaned)
            if self.on_scan is not None:
                self.on_scan(follower, follower.looked_at_folder)  # sizes change in a scan
        progressed = self._reading_on = self._caught_up = False
        for cursor in self._cursors:
            events = follower.read(cursor, int(time.time() * 1000))
            if events is None:
                if follower.look_needed:
                    break  # it changed under the read: a look first
                if not cursor.live:
                    # Its last record is complete: ship it before any newer file's.
                    await self._put(follower.flush_pending(cursor))
                continue  # at the end of this file: on to the next (newer) one
            progressed = True
            await self._put(events)
            if cursor.live and cursor.at_end and cursor is self._cursors[-1]:
                # Read to the end the newest file had: another step now would only find
                # that out.  The file is quiet from here until the watcher says it grew.
                follower.reached_end(cursor)
                self._caught_up = True
            else:
                self._reading_on = True
            break  # finish the older file before reading a newer one
        self._pending = False
        for cursor in list(follower.active):
            await self._put(follower.flush_quiet(cursor, MULTILINE_WAIT))
            self._pending = self._pending or cursor.pending_record()
        # A file that changed under a read is looked at in the next step, at once.
        return progressed or follower.look_needed

    async def finish(self) -> None:
        """Hand over the records still waiting for continuation lines: complete now."""
        for cursor in list(self.follower.cursors.values()):
            await self._put(self.follower.flush_pending(cursor))

    async def _put(self, events: FileEvents) -> None:
        if events:
            await self.sink.put(events)

    async def _gather(self, stop: asyncio.Event) -> None:
        """While the sink holds events it sends later, let news gather until just before
        then: a busy or steady source's writes cost one read per batch, not one per
        write, and still go in the batch they would have gone in.  A record waiting for
        continuation lines that becomes complete meanwhile is handed over at the end of
        the wait, in time for that batch.  With nothing held (a quiet source's first
        write), news is read at once, as the batch's clock starts with its first event."""
        if self.sends_at is None:
            return
        sends_at = self.sends_at()
        if sends_at is None:
            return
        wait = sends_at - GATHER_MARGIN - time.monotonic()
        if wait > 0:
            await first_set(stop, within=wait)

    async def _wait_for_news(self) -> bool:
        """Wait for a wake (news, or the stop :meth:`run` was given); at most until a
        pending record is complete, or until the folder is due for a look anyway (the
        next rescan period: every reader's begins at the same instant).  Whether woken."""
        if self._pending:
            until = time.monotonic() + MULTILINE_WAIT
        else:
            until = next_tick(self.rescan_interval())
        self.idle.set()
        try:
            await first_set(self.wake, until=until)
        finally:
            self.idle.clear()
        return self.wake.is_set()
