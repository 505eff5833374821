"""The shipper's life: :meth:`Shipper.startup`, :meth:`Shipper.main_loop`, :meth:`Shipper.shutdown`.

One reader task per source follows its files and hands events to the stream its
templates name; one delivery task per stream puts them to CloudWatch.  A signal
handler only sets a flag.  On SIGTERM or SIGINT the readers stop, what was read is
delivered, checkpoints are saved, and the process exits within ``shutdown_timeout``.

SIGHUP re-reads the config file (:meth:`Shipper.reload`).  Sources added start
reading, sources removed stop, and a source whose settings changed restarts from
where it was delivered.  A removed source's checkpoint is kept, so putting it back
later resumes at its position instead of starting over.  A config that does not load
is reported and the running one kept.  ``log_level``, ``shutdown_timeout`` and
``rescan_interval`` apply at once; the sections in ``RESTART_ONLY`` (the sink, the
state folder, masking, the health listener) keep their running values until a
restart, and ``config.restart_required`` names those that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from shipper import __version__, emf, identity, logs, metrics, telemetry
from shipper.batcher import Batcher
from shipper.categories import Discovery
from shipper.checkpoints import CheckpointStore, SourceCheckpoint, State
from shipper.cloudwatch import LogsClient
from shipper.config import STREAM_PLACEHOLDERS, Config, ConfigError, SourceConfig, name_problems
from shipper.config import load as load_config
from shipper.follow import MULTILINE_WAIT, Cursor, Follower, source_key
from shipper.health import READY_FAILURE_GRACE, HealthServer
from shipper.mask import Masker, masker_for
from shipper.render import Renderer
from shipper.retry import Backoff
from shipper.stream import Stream
from shipper.watcher import Watcher

# Config sections a reload cannot apply to a running process: they keep their values.
RESTART_ONLY = ("state_dir", "cloudwatch", "batch", "masking", "health", "metrics")
# How long a reload waits for a restarted source's events to be delivered before
# reading it again (so they are neither sent twice nor overtaken).
RELOAD_DRAIN_WAIT = 5.0
# While a reader makes progress through a backlog and nothing in the folder changed,
# it looks at the folder (a listdir and a stat per file) at most this often rather
# than after every chunk; a change the watcher reports is looked at at once.
SCAN_WHILE_READING = 0.25
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
        self.crashed: BaseException | None = None  # a task's unexpected error ends the run
        self._lag_paths: dict[str, set[str]] = {}  # per source: paths with a lag gauge
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
        settle_heap()
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
        self.watcher.add(source.path.parent, reader.wake)
        self.readers.append(reader)
        if self.running:
            self._start_reader(reader)

    def followed(self) -> set[str]:
        return {source_key(r.follower.source) for r in self.readers}

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
        discovering = asyncio.create_task(
            self.categories.run(self, lambda: self.config.rescan_interval), name="categories"
        )
        discovering.add_done_callback(self._supervise)
        await self.stopping.wait()
        await reloads  # a reload under way completes first
        await emitting
        await discovering
        await self.shutdown(list(self.reader_tasks.values()), self.sender_tasks)
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
        self.reader_tasks[source_key(reader.follower.source)] = task

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
        """Follow one source's files, oldest first, until stopping; then flush its records."""
        follower, stream, wake = reader.follower, reader.stream, reader.wake
        progressed = False
        scanned = -SCAN_WHILE_READING
        cursors: list[Cursor] = []
        while not self.stopping.is_set():
            now = time.monotonic()
            if wake.is_set() or not progressed or now - scanned >= SCAN_WHILE_READING:
                wake.clear()
                scanned = now
                cursors = follower.scan()
                for orphaned in follower.take_orphaned():
                    await stream.put(orphaned)
                self._update_gauges(follower)  # sizes change only in a scan
            progressed = False
            for cursor in cursors:
                events = follower.read(cursor, int(time.time() * 1000))
                if events is None:
                    if not cursor.live:
                        # Its last record is complete: ship it before any newer file's.
                        rest = follower.flush_quiet(cursor, 0.0)
                        if rest:
                            await stream.put(rest)
                    continue  # at the end of this file: on to the next (newer) one
                progressed = True
                if events:
                    await stream.put(events)
                break  # finish the older file before reading a newer one
            waiting = False
            for cursor in list(follower.cursors.values()):
                quiet = follower.flush_quiet(cursor, MULTILINE_WAIT)
                if quiet:
                    await stream.put(quiet)
                waiting = waiting or cursor.pending_record()
            if progressed:
                await asyncio.sleep(0)
                continue
            assert self.watcher is not None
            if self.watcher.ensure(follower.directory):
                continue  # a new watch: what changed before it is found by a scan now
            timeout = MULTILINE_WAIT if waiting else self.config.rescan_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(wake, self.stopping), timeout)
        # Stopping: the records still waiting for continuation lines are complete now.
        for cursor in list(follower.cursors.values()):
            events = follower.flush_quiet(cursor, 0.0)
            if events:
                await stream.put(events)

    def _update_gauges(self, follower: Follower) -> None:
        metrics.FILES_WATCHED.labels(follower.category).set(len(follower.cursors))
        lags = follower.lag_bytes()
        for path, lag in lags.items():
            metrics.LAG_BYTES.labels(follower.category, path).set(lag)
        key = source_key(follower.source)
        # Files no longer followed (rotated away and deleted) leave the metrics too.
        for path in self._lag_paths.get(key, set()) - lags.keys():
            metrics.LAG_BYTES.remove(follower.category, path)
        self._lag_paths[key] = set(lags)

    def _forget_gauges(self, follower: Follower) -> None:
        for path in self._lag_paths.pop(source_key(follower.source), set()):
            metrics.LAG_BYTES.remove(follower.category, path)
        if not any(r.follower.category == follower.category for r in self.readers):
            metrics.FILES_WATCHED.remove(follower.category)

    # ------------------------------------------------------------------ reloading

    async def reload_loop(self) -> None:
        """Apply a reload each time SIGHUP asks for one, until stopping."""
        while True:
            await _first(self.reload_requested, self.stopping)
            if self.stopping.is_set():
                return
            self.reload_requested.clear()
            async with self.categories.lock:  # no category is added halfway through
                await self.reload()

    async def reload(self) -> None:
        """Re-read the config file and apply what changed; keep running on a bad one."""
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
        before = {source_key(r.follower.source): r.follower.source for r in self.readers}
        after = {source_key(s): s for s in self.categories.sources(new, self.values)}
        removed = [key for key in before if key not in after]
        changed = [key for key in before if key in after and after[key] != before[key]]
        added = [key for key in after if key not in before]
        self.config = new
        if new.log_level != old.log_level:
            logs.set_level(new.log_level)
        drained = await self.remove_sources(removed + changed)
        if changed:
            await self._drain(drained, RELOAD_DRAIN_WAIT)
        now = time.time()
        for key in changed + added:
            self.add_source(after[key], self._saved(key), now)
        self.save_checkpoints()
        gc.unfreeze()  # what the removed sources held is garbage now: let it be found
        settle_heap()
        telemetry.config_reloaded(str(path), added, removed, changed)

    async def remove_sources(self, keys: list[str]) -> list[Stream]:
        """Stop following the sources ``keys``; return the streams they wrote to.

        Their checkpoints are kept.  Events already handed to a stream are still
        delivered (and acknowledged); a record cut short is read again when the
        source comes back, as its offset was never acknowledged.
        """
        leaving = [r for r in self.readers if source_key(r.follower.source) in keys]
        tasks = [self.reader_tasks.pop(key) for key in keys if key in self.reader_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for reader in leaving:
            self.readers.remove(reader)
            reader.follower.close()
            self.retired[source_key(reader.follower.source)] = reader.follower
            self._forget_gauges(reader.follower)
        # A stream no source writes to any more delivers what it holds, then ends.
        in_use = {id(r.stream) for r in self.readers}
        in_use |= {id(output.stream) for output in self.metrics_outputs.values()}
        for names, stream in list(self.streams.items()):
            if id(stream) not in in_use:
                stream.close()
                del self.streams[names]
        return [r.stream for r in leaving]

    async def _drain(self, streams: list[Stream], seconds: float) -> None:
        """Wait until ``streams`` hold nothing undelivered, or ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        while any(s.undelivered() for s in streams):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.delivered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.delivered.wait(), left)

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
        self.save_checkpoints()
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
        self.save_checkpoints()
        self.delivered.set()

    def save_checkpoints(self) -> None:
        sources = dict(self.resting)
        sources.update((key, f.checkpoint()) for key, f in self.retired.items())
        sources.update(
            (source_key(r.follower.source), r.follower.checkpoint()) for r in self.readers
        )
        try:
            self.store.save(State(sources=sources))
        except OSError as exc:
            telemetry.checkpoint_error(str(self.store.path), exc.strerror or str(exc))


# Allocations between two young-generation collections (Python's default is 700).
# Reading a backlog allocates a few objects per event, nearly all freed by reference
# counting within the chunk; at 700 the collector ran some 6,000 times per 2 million
# events and kept moving live in-flight events to older generations.
YOUNG_COLLECTION_EVERY = 20_000


def settle_heap() -> None:
    """Collect start-up's garbage, then take what is left out of the collector's sight.

    Start-up leaves a couple of hundred thousand long-lived objects (the imported
    modules, botocore's service model); each full collection walked all of them, and
    while a backlog was read the collector took a sixth of the CPU of raw shipping.
    Frozen, they are not scanned again; the pipeline's records and events still are,
    less often.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


async def _first(*events: asyncio.Event) -> None:
    """Return when any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


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
