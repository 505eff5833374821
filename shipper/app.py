"""The shipper's life: :meth:`Shipper.startup`, :meth:`Shipper.main_loop`, :meth:`Shipper.shutdown`.

One reader task per source follows its files and hands events to the stream its
templates name; one delivery task per stream puts them to CloudWatch.  A signal
handler only sets a flag.  On SIGTERM or SIGINT the readers stop, what was read is
delivered, checkpoints are saved, and the process exits within ``shutdown_timeout``.

Checkpoints are saved at most once per ``checkpoint_interval``, only when something
was delivered since the last save, and once more at shutdown; the document is built
on the event loop and written (with its fsyncs) in a thread, one save at a time.  A
crash re-sends at most the last interval's deliveries and the batches in flight.

SIGHUP re-reads the config file (:meth:`Shipper.reload`).  Sources added start
reading, sources removed stop, and a source whose settings changed restarts from
where it was delivered.  A removed source's checkpoint is kept, so putting it back
later resumes at its position instead of starting over.  A config that does not load
is reported and the running one kept.  A reader that does not stop when a reload asks
it to is reported (and shown on /readyz) after ``READER_STOP_WAIT`` and keeps its
source with the old settings, so no two readers ever read one file.  ``log_level``,
``shutdown_timeout``, ``checkpoint_interval`` and ``rescan_interval`` apply at once;
the sections in ``RESTART_ONLY`` (the sink, the state folder, masking, the health
listener) keep their running values until a restart, and ``config.restart_required``
names those that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from shipper import __version__, emf, heap, identity, logs, metrics, telemetry
from shipper.batcher import Batcher
from shipper.budget import for_streams
from shipper.categories import Discovery
from shipper.checkpoints import CheckpointStore, SourceCheckpoint, State
from shipper.cloudwatch import LogsClient
from shipper.config import STREAM_PLACEHOLDERS, Config, ConfigError, SourceConfig, name_problems
from shipper.config import load as load_config
from shipper.follow import Cursor, Follower, source_key
from shipper.health import READY_FAILURE_GRACE, HealthServer
from shipper.mask import Masker, masker_for
from shipper.render import Renderer
from shipper.retry import Backoff
from shipper.source_reader import SourceReader
from shipper.stream import Stream
from shipper.waits import first_set
from shipper.watcher import Watcher

# Config sections a reload cannot apply to a running process: they keep their values.
RESTART_ONLY = ("state_dir", "cloudwatch", "batch", "masking", "health", "metrics")
# How long a reload waits for a restarted source's events to be delivered before
# reading it again (so they are neither sent twice nor overtaken).
RELOAD_DRAIN_WAIT = 5.0
# How long a reload waits for the readers of removed or changed sources to stop, and how
# often it cancels them again meanwhile: a reader stops at its next await, but a
# cancellation can be lost on the way (asyncio.wait_for on Python 3.11 drops one that
# arrives as its wait completes), so it is repeated rather than trusted.
READER_STOP_WAIT = 10.0
RECANCEL_EVERY = 0.1
# How often complete metric intervals are looked for and emitted (seconds).
METRICS_EVERY = 5.0


async def placeholder_values(config: Config) -> dict[str, str]:
    """Values of the template placeholders other than ``{category}``."""
    used = {
        name
        for name in STREAM_PLACEHOLDERS
        if f"{{{name}" in config.cloudwatch.log_group + config.cloudwatch.log_stream
    }
    return await identity.resolve(used)


def stream_names(config: Config, source: SourceConfig, values: dict[str, str]) -> tuple[str, str]:
    cw = config.cloudwatch
    return (
        cw.log_group.format(category=source.category, **values),
        cw.log_stream.format(category=source.category, **values),
    )


def build_follower(source: SourceConfig, state: State, masker: Masker, now: float) -> Follower:
    renderer = Renderer(source.category, source.output, masker, json_lines=source.format == "json")
    return Follower(source, state.source(source_key(source)), renderer, now)


@dataclass
class Reader:
    follower: Follower
    stream: Stream
    wake: asyncio.Event


@dataclass
class MetricsOutput:
    """One category's metrics and the stream its EMF events go to."""

    aggregator: emf.Aggregator
    stream: Stream
    position: emf.MetricsPosition


class Shipper:
    """Runs the pipeline for one configuration until asked to stop."""

    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.stopping = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.store = CheckpointStore(config.state_dir)
        self.client = LogsClient(config.cloudwatch)
        self.backoff = Backoff(cap=config.cloudwatch.max_backoff)
        # What all streams together may hold in memory (see shipper.budget).
        self.budget = for_streams(config.batch.queue_batches, config.batch.max_bytes)
        self.masker = masker_for(config.masking)
        self.values: dict[str, str] = {}
        self.streams: dict[tuple[str, str], Stream] = {}
        self.readers: list[Reader] = []
        self.reader_tasks: dict[str, asyncio.Task[None]] = {}
        self.sender_tasks: list[asyncio.Task[None]] = []
        # Sources not followed now: removed by a reload (their followers, whose offsets
        # still advance as their last events are delivered) or only in the saved state.
        self.retired: dict[str, Follower] = {}
        self.resting: dict[str, SourceCheckpoint] = {}
        self.watcher: Watcher | None = None
        self.health: HealthServer | None = None
        self.started = False
        self.running = False
        self.delivered = asyncio.Event()  # set after each delivery; reloads wait on it
        # Checkpoints: set while a save is due (something delivered since the last one;
        # at start, what start-up placed), what the last successful save holds (the lag
        # gauges count from it), why the last save failed, and one save at a time.
        self.save_due = asyncio.Event()
        self.save_due.set()
        self.saved: dict[str, SourceCheckpoint] = {}
        # Per source: the saved checkpoint and its offsets by file (see _saved_offsets).
        self._offsets: dict[str, tuple[SourceCheckpoint | None, dict[tuple[int, int], int]]] = {}
        self.checkpoint_failure: str | None = None
        self._save_lock = asyncio.Lock()
        # Reloads: since when one is under way, the readers that did not stop when one
        # asked them to, and the stream each removed source's last events went to.
        self.reloading_since: float | None = None
        self.stuck: dict[str, asyncio.Task[None]] = {}
        self.retired_streams: dict[str, Stream] = {}
        self.crashed: BaseException | None = None  # a task's unexpected error ends the run
        # Per source: the lag gauges as last set, by path (a quiet look sets none).
        self._lags_shown: dict[str, dict[str, int]] = {}
        self.metrics_outputs: dict[str, MetricsOutput] = {}  # per category
        self.categories = Discovery()  # the glob entries' categories, found while running

    # ------------------------------------------------------------------ startup

    async def startup(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        # Early, so a SIGHUP during startup waits for the main loop instead of killing us.
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        logs.set_masker(self.masker)
        self.values = await placeholder_values(config)
        refused = name_problems(config, self.values)
        if refused:
            raise ConfigError(refused, "(names CloudWatch would refuse, as resolved here)")
        state = self.store.load()
        self.saved = dict(state.sources)
        await self.client.open()
        self.watcher = Watcher(loop)
        now = time.time()
        sources = self.categories.sources(config, self.values, state.sources)
        followed = {source_key(s) for s in sources}
        self.resting = {k: v for k, v in state.sources.items() if k not in followed}
        for source in sources:
            self.add_source(source, state.source(source_key(source)), now)
        self.watcher.start()
        if config.health.listen:
            self.health = HealthServer(config.health.listen, self.readiness)
            await self.health.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        self.started = True
        heap.settle_heap()
        telemetry.shipper_started(len(self.readers), __version__)

    def add_source(self, source: SourceConfig, saved: SourceCheckpoint | None, now: float) -> None:
        """Follow ``source`` from ``saved`` (None: a source never covered before)."""
        group, name = stream_names(self.config, source, self.values)
        stream = self.streams.get((group, name))
        if stream is None:
            stream = self._new_stream(group, name)
        state = State(sources={source_key(source): saved}) if saved else State()
        reader = Reader(build_follower(source, state, self.masker, now), stream, asyncio.Event())
        self._observe(source, name, reader.follower.renderer)
        assert self.watcher is not None
        self.watcher.add(reader.follower.directory, reader.wake)
        self.readers.append(reader)
        if self.running:
            self._start_reader(reader)

    def followed(self) -> set[str]:
        return {r.follower.key for r in self.readers}

    def add_found(self, source: SourceConfig) -> None:
        """Follow a category found while running, from its checkpoint if it has one."""
        self.add_source(source, self._saved(source_key(source)), time.time())

    def _new_stream(self, group: str, name: str) -> Stream:
        config = self.config
        stream = Stream(
            group,
            name,
            self.client,
            Batcher(config.batch.max_events, config.batch.max_bytes),
            config.batch.flush_interval,
            config.batch.queue_batches,
            config.cloudwatch.create_log_group,
            config.cloudwatch.retention_days,
            self.backoff,
            self._on_delivered,
            self.budget,
        )
        self.streams[(group, name)] = stream
        if self.running:
            self._start_sender(stream)
        return stream

    def _observe(self, source: SourceConfig, stream_name: str, renderer: Renderer) -> None:
        """Feed the records of ``source`` to its category's metrics, when they are on."""
        settings = self.config.metrics
        if settings.namespace is None:
            return
        output = self.metrics_outputs.get(source.category)
        if output is None:
            key = (settings.log_group, stream_name)
            stream = self.streams.get(key) or self._new_stream(*key)
            aggregator = emf.Aggregator(
                settings.namespace,
                source.category,
                settings.interval,
                settings.max_routes,
                self.masker.mask,
            )
            output = MetricsOutput(aggregator, stream, emf.MetricsPosition(source.category))
            self.metrics_outputs[source.category] = output
        renderer.observer = partial(output.aggregator.observe, requests=source.requests)

    async def emit_metrics(self, closing: bool = False) -> None:
        """Hand the complete intervals' EMF events (all of them when ``closing``) to
        their streams."""
        now_ms = int(time.time() * 1000)
        for output in self.metrics_outputs.values():
            aggregator = output.aggregator
            events = aggregator.drain() if closing else aggregator.take_closed(now_ms)
            if events:
                telemetry.metrics_emitted(aggregator.category, len(events))
                await output.stream.put(emf.file_events(output.position, events))

    async def metrics_loop(self) -> None:
        """Emit complete intervals every METRICS_EVERY seconds until stopping."""
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(METRICS_EVERY):
                    await self.stopping.wait()
            if not self.stopping.is_set():
                await self.emit_metrics()

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        if not self.stopping.is_set():
            telemetry.shipper_stopping(signal.Signals(signum).name)
            self.stopping.set()

    # ------------------------------------------------------------------ running

    async def main_loop(self) -> None:
        """Read and deliver until asked to stop, then shut down gracefully."""
        self.running = True
        for stream in self.streams.values():
            self._start_sender(stream)
        for reader in self.readers:
            self._start_reader(reader)
        reloads = asyncio.create_task(self.reload_loop(), name="reload")
        emitting = asyncio.create_task(self.metrics_loop(), name="metrics")
        emitting.add_done_callback(self._supervise)
        saves = asyncio.create_task(self.checkpoint_loop(), name="checkpoints")
        saves.add_done_callback(self._supervise)
        discovering = asyncio.create_task(
            self.categories.run(self, lambda: self.config.rescan_interval), name="categories"
        )
        discovering.add_done_callback(self._supervise)
        collecting = asyncio.create_task(heap.collect_fully(self.stopping), name="collector")
        collecting.add_done_callback(self._supervise)
        await self.stopping.wait()
        await reloads  # a reload under way completes first
        # A supervised task that failed is already in ``crashed``: shut down all the same.
        await asyncio.gather(emitting, discovering, collecting, return_exceptions=True)
        await self.shutdown(list(self.reader_tasks.values()), self.sender_tasks)
        await asyncio.gather(saves, return_exceptions=True)
        if self.crashed is not None:
            raise RuntimeError(f"stopped after an internal error: {self.crashed!r}") from (
                self.crashed
            )

    def _start_sender(self, stream: Stream) -> None:
        task = asyncio.create_task(stream.run(), name=f"deliver {stream.group} {stream.name}")
        task.add_done_callback(self._supervise)
        self.sender_tasks.append(task)

    def _start_reader(self, reader: Reader) -> None:
        task = asyncio.create_task(self.read(reader), name=f"read {reader.follower.category}")
        task.add_done_callback(self._supervise)
        self.reader_tasks[reader.follower.key] = task

    def _supervise(self, task: asyncio.Task[None]) -> None:
        """A reader or sender that fails stops the shipper gracefully (exit 1) rather
        than leaving its source or stream silently stalled; the service manager then
        restarts it from the saved checkpoints."""
        if task.cancelled() or task.exception() is None or self.crashed is not None:
            return
        self.crashed = task.exception()
        telemetry.task_crashed(task.get_name(), repr(self.crashed))
        self.stopping.set()

    async def read(self, reader: Reader) -> None:
        """Follow one source's files until stopping; then hand over its pending records."""
        watcher = self.watcher
        assert watcher is not None
        directory = reader.follower.directory
        source_reader = SourceReader(
            reader.follower,
            reader.stream,
            reader.wake,
            rescan_interval=lambda: self.config.rescan_interval,
            on_scan=self._update_gauges,
            watch=lambda: watcher.ensure(directory),
            changes=lambda: watcher.take_changes(directory, reader.wake),
            sends_at=reader.stream.sends_at,
        )
        await source_reader.run(self.stopping)

    def _update_gauges(self, follower: Follower, everything: bool = True) -> None:
        """Set the source's gauges; after a look at some files only (not
        ``everything``), only the lags of the files still being read can have moved."""
        if not everything:
            self._update_lags(follower, follower.active)
            return
        metrics.FILES_WATCHED.labels(follower.category).set(len(follower.cursors))
        shown = self._update_lags(follower, follower.cursors.values())
        # Files no longer followed (rotated away and deleted) leave the metrics too.
        for path in shown.keys() - {cursor.path for cursor in follower.cursors.values()}:
            metrics.LAG_BYTES.remove(follower.category, path)
            del shown[path]

    def _update_lags(self, follower: Follower, cursors: Collection[Cursor]) -> dict[str, int]:
        """Set the lag gauges of ``cursors``' files whose lag changed; the gauges shown."""
        shown = self._lags_shown.setdefault(follower.key, {})
        # A file closed and read to its end whose gauge shows 0 stays at 0 until it
        # grows (delivered and saved offsets only move on): a folder's year of rotated
        # files is not worked out again at every look at the whole folder.
        cursors = [
            c
            for c in cursors
            if not (c.fd is None and c.read_offset >= c.size and shown.get(c.path) == 0)
        ]
        unsaved = self._unsaved_bytes(follower, cursors)
        for path, lag in follower.lag_bytes(cursors).items():
            lag += unsaved.get(path, 0)
            if shown.get(path) != lag:
                metrics.LAG_BYTES.labels(follower.category, path).set(lag)
                shown[path] = lag
        return shown

    def _unsaved_bytes(self, follower: Follower, cursors: Iterable[Cursor]) -> dict[str, int]:
        """Per path of ``cursors``: bytes delivered but not yet in the last saved checkpoint.

        The lag gauge counts from the saved position, not the delivered one: what a
        restart would resume from.  While saves fail it does not fall to 0.
        """
        at = self._saved_offsets(follower.key)
        unsaved = {}
        for cursor in cursors:
            if cursor.gone or cursor.copy_of is not None:
                continue  # not in the checkpoint: nothing to resume from there
            f = cursor.checkpoint()
            unsaved[f.path] = max(f.offset - at.get((f.dev, f.ino), 0), 0)
        return unsaved

    def _saved_offsets(self, key: str) -> dict[tuple[int, int], int]:
        """The source's saved offsets by (device, inode), made once per save: asked
        after every read step, and a folder can hold a year of rotated files."""
        saved = self.saved.get(key)
        offsets = self._offsets.get(key)
        if offsets is None or offsets[0] is not saved:
            files = saved.files if saved is not None else []
            offsets = (saved, {(f.dev, f.ino): f.offset for f in files})
            self._offsets[key] = offsets
        return offsets[1]

    def _forget_gauges(self, follower: Follower) -> None:
        self._offsets.pop(follower.key, None)
        for path in self._lags_shown.pop(follower.key, {}):
            metrics.LAG_BYTES.remove(follower.category, path)
        if not any(r.follower.category == follower.category for r in self.readers):
            metrics.FILES_WATCHED.remove(follower.category)

    # ------------------------------------------------------------------ reloading

    async def reload_loop(self) -> None:
        """Apply a reload each time SIGHUP asks for one, until stopping."""
        while True:
            await first_set(self.reload_requested, self.stopping)
            if self.stopping.is_set():
                return
            self.reload_requested.clear()
            async with self.categories.lock:  # no category is added halfway through
                await self.reload()
            self.categories.wake.set()  # a look with the new config's glob entries

    async def reload(self) -> None:
        """Re-read the config file and apply what changed; keep running on a bad one."""
        self.reloading_since = time.monotonic()
        try:
            await self._reload()
        finally:
            self.reloading_since = None

    async def _reload(self) -> None:
        path = self.config_path
        if path is None:
            telemetry.config_reload_failed("", ["the shipper was not started from a file"])
            return
        try:
            new = load_config(path)
        except ConfigError as exc:
            telemetry.config_reload_failed(str(path), exc.problems)
            return
        old = self.config
        restart = [name for name in RESTART_ONLY if getattr(new, name) != getattr(old, name)]
        if restart:
            telemetry.config_restart_required(str(path), restart)
        new = dataclasses.replace(new, **{name: getattr(old, name) for name in RESTART_ONLY})
        before = {r.follower.key: r.follower.source for r in self.readers}
        after = {source_key(s): s for s in self.categories.sources(new, self.values)}
        removed = [key for key in before if key not in after]
        # A source whose reader ended (it did not stop in time at an earlier reload, and
        # stopped since) is started again, as if changed.
        ended = [key for key in before if key in after and self._reader_ended(key)]
        changed = [
            key for key in before if key in after and (after[key] != before[key] or key in ended)
        ]
        added = [key for key in after if key not in before]
        self.config = new
        self.budget.limit = for_streams(new.batch.queue_batches, new.batch.max_bytes).limit
        if new.log_level != old.log_level:
            logs.set_level(new.log_level)
        stuck = await self.remove_sources(removed + changed)
        if stuck:
            # A reader still running keeps its source as it was: a second reader on the
            # same files would send them twice.  The next reload tries again.
            removed = [key for key in removed if key not in stuck]
            changed = [key for key in changed if key not in stuck]
            kept = [s for s in new.sources if source_key(s) not in stuck]
            self.config = dataclasses.replace(new, sources=kept + [before[k] for k in stuck])
        # What the readers of changed and returning sources handed over is delivered
        # first, so that reading again from the delivered position sends nothing twice.
        returning = [key for key in changed + added if key in self.retired_streams]
        await self._drain([self.retired_streams[key] for key in returning], RELOAD_DRAIN_WAIT)
        now = time.time()
        for key in changed + added:
            self.retired_streams.pop(key, None)
            self.add_source(after[key], self._saved(key), now)
        await self.save_checkpoints()  # removed sources' positions are kept in the file
        if removed or changed:
            heap.resettle_heap()  # what the removed sources held is garbage now: let it be found
        telemetry.config_reloaded(str(path), added, removed, changed)

    async def remove_sources(self, keys: list[str]) -> set[str]:
        """Stop following the sources ``keys``; return those whose reader would not stop.

        Their checkpoints are kept.  Events already handed to a stream are still
        delivered (and acknowledged); a record cut short is read again when the
        source comes back, as its offset was never acknowledged.  A reader still
        running after ``READER_STOP_WAIT`` is reported and keeps its source.
        """
        tasks = {key: self.reader_tasks[key] for key in keys if key in self.reader_tasks}
        stuck = await _stop_tasks(tasks, READER_STOP_WAIT)
        for key in stuck:
            telemetry.reader_stuck(key, READER_STOP_WAIT)
            self.stuck[key] = tasks[key]
            # Once it does end, a reload applies what the file asks for this source.
            tasks[key].add_done_callback(lambda _: self.reload_requested.set())
        for key in tasks.keys() - stuck:
            del self.reader_tasks[key]
            self.stuck.pop(key, None)
        leaving = [
            r for r in self.readers if r.follower.key in keys and r.follower.key not in stuck
        ]
        for reader in leaving:
            key = reader.follower.key
            self.readers.remove(reader)
            reader.follower.close()
            self.retired[key] = reader.follower
            self.retired_streams[key] = reader.stream
            self._forget_gauges(reader.follower)
        # A stream no source writes to any more delivers what it holds, then ends.
        in_use = {id(r.stream) for r in self.readers}
        in_use |= {id(output.stream) for output in self.metrics_outputs.values()}
        for names, stream in list(self.streams.items()):
            if id(stream) not in in_use:
                stream.close()
                del self.streams[names]
        return stuck

    def _reader_ended(self, key: str) -> bool:
        """Whether the source ``key`` is followed but its reader task has ended (and not
        because the shipper is stopping)."""
        task = self.reader_tasks.get(key)
        return not self.stopping.is_set() and task is not None and task.done()

    async def _drain(self, streams: list[Stream], seconds: float) -> None:
        """Wait until ``streams`` hold nothing undelivered, or ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        while any(s.undelivered() for s in streams):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.delivered.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self.delivered.wait()

    def _saved(self, key: str) -> SourceCheckpoint | None:
        """The position to resume a source at, if it was ever followed."""
        follower = self.retired.pop(key, None)
        if follower is not None:
            return follower.checkpoint()
        return self.resting.pop(key, None)

    def readiness(self) -> list[str]:
        problems = []
        if not self.started:
            problems.append("starting")
        for reader in self.readers:
            directory = reader.follower.directory
            if not directory.is_dir():
                problems.append(f"{directory}: folder does not exist")
            elif self.watcher is None or not self.watcher.watching(directory):
                problems.append(f"{directory}: not watched yet")
            mismatch = reader.follower.mismatches.reason(time.monotonic())
            if mismatch is not None:
                problems.append(mismatch)
        now = time.monotonic()
        for (group, name), stream in self.streams.items():
            since = stream.failing_since
            if since is not None and now - since > READY_FAILURE_GRACE:
                problems.append(f"{group} {name}: deliveries failing for {now - since:.0f}s")
            if stream.blocked is not None:
                problems.append(f"{group} {name}: {stream.blocked}")
        for key, task in self.stuck.items():
            if not task.done():
                problems.append(f"{key}: its reader did not stop when a reload asked it to")
        if self.reloading_since is not None:
            took = now - self.reloading_since
            if took > READER_STOP_WAIT + RELOAD_DRAIN_WAIT:
                problems.append(f"a reload has been under way for {took:.0f}s")
        if self.checkpoint_failure is not None:
            problems.append(f"checkpoints cannot be saved: {self.checkpoint_failure}")
        return problems

    # ------------------------------------------------------------------ stopping

    async def shutdown(
        self, readers: list[asyncio.Task[None]], senders: list[asyncio.Task[None]]
    ) -> None:
        deadline = time.monotonic() + max(self.config.shutdown_timeout - 1.0, 0.5)

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        await _wait_or_cancel(readers, left())
        # The open intervals' metrics, while their streams still take events.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left()):
                await self.emit_metrics(closing=True)
        for stream in self.streams.values():
            stream.close()
        await _wait_or_cancel(senders, left())
        await self.save_checkpoints()
        undelivered = sum(s.undelivered() for s in self.streams.values())
        telemetry.shipper_stopped(clean=undelivered == 0, undelivered=undelivered)
        await self.close()

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for reader in self.readers:
            reader.follower.close()
        for follower in self.retired.values():
            follower.close()
        if self.health is not None:
            await self.health.stop()
        await self.client.close()

    def _on_delivered(self) -> None:
        self.save_due.set()
        self.delivered.set()

    async def checkpoint_loop(self) -> None:
        """Save checkpoints at most every ``checkpoint_interval``, when a save is due,
        until stopping (shutdown saves the last time, once the streams are delivered).
        With nothing delivered it sleeps: a quiet host's shipper wakes for nothing."""
        while not self.stopping.is_set():
            await first_set(self.save_due, self.stopping)
            await first_set(self.stopping, within=self.config.checkpoint_interval)
            if self.save_due.is_set() and not self.stopping.is_set():
                await self.save_checkpoints()

    async def save_checkpoints(self) -> None:
        """Save every source's delivered positions now.

        The document is built here, on the event loop (the followers change only on
        it); writing and fsyncing it happens in a thread.  Shielded and locked: a
        save, once begun, completes even if its caller is cancelled, and the next
        waits for it, so two saves never run at once nor land out of order.
        """
        await asyncio.shield(self._save_in_turn())

    async def _save_in_turn(self) -> None:
        async with self._save_lock:
            self.save_due.clear()
            sources = dict(self.resting)
            sources.update((key, f.checkpoint()) for key, f in self.retired.items())
            sources.update((r.follower.key, r.follower.checkpoint()) for r in self.readers)
            state = State(sources=sources)
            before = self.saved
            try:
                await asyncio.to_thread(self.store.save, state)
            except OSError as exc:
                self.save_due.set()  # tried again at the next interval
                self.checkpoint_failure = exc.strerror or str(exc)
                telemetry.checkpoint_error(str(self.store.path), self.checkpoint_failure)
            else:
                self.checkpoint_failure = None
                self.saved = sources
            # The lag gauges count from the saved positions: only the files whose saved
            # positions moved need them set again, not every rotated file followed.
            for reader in self.readers:
                follower = reader.follower
                moved = _moved(before.get(follower.key), self.saved.get(follower.key))
                if moved:
                    cursors = [follower.cursors[k] for k in moved if k in follower.cursors]
                    self._update_lags(follower, cursors)


def _moved(before: SourceCheckpoint | None, after: SourceCheckpoint | None) -> set[tuple[int, int]]:
    """The files (device, inode) whose saved offset differs between two saves."""
    if after is None or before == after:
        return set()
    old = {(f.dev, f.ino): f.offset for f in before.files} if before is not None else {}
    return {(f.dev, f.ino) for f in after.files if old.get((f.dev, f.ino)) != f.offset}


async def _stop_tasks(tasks: dict[str, asyncio.Task[None]], seconds: float) -> set[str]:
    """Cancel ``tasks`` until they end, for at most ``seconds``; the keys of those that
    are still running then.  The cancellation is repeated: one can be lost."""
    deadline = time.monotonic() + seconds
    running = {task for task in tasks.values() if not task.done()}
    while running:
        for task in running:
            task.cancel()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _done, running = await asyncio.wait(running, timeout=min(RECANCEL_EVERY, left))
    return {key for key, task in tasks.items() if not task.done()}


async def _wait_or_cancel(tasks: list[asyncio.Task[None]], seconds: float) -> None:
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def run(config: Config, config_path: Path | None = None) -> None:
    shipper = Shipper(config, config_path)
    try:
        await shipper.startup()
    except BaseException:
        await shipper.close()
        raise
    await shipper.main_loop()
