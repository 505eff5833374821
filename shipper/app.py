"""The shipper's life: :meth:`Shipper.startup`, :meth:`Shipper.main_loop`, :meth:`Shipper.shutdown`.

One reader task per source follows its files and hands events to the stream its
templates name; one delivery task per stream puts them to CloudWatch.  A signal
handler only sets a flag.  On SIGTERM or SIGINT the readers stop, what was read is
delivered, checkpoints are saved, and the process exits within ``shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass

from shipper import __version__, identity, logs, metrics, telemetry
from shipper.batcher import Batcher
from shipper.checkpoints import CheckpointStore, State
from shipper.cloudwatch import LogsClient
from shipper.config import STREAM_PLACEHOLDERS, Config, SourceConfig
from shipper.follow import MULTILINE_WAIT, Follower, source_key
from shipper.health import READY_FAILURE_GRACE, HealthServer
from shipper.mask import Masker
from shipper.render import Renderer
from shipper.retry import Backoff
from shipper.stream import Stream
from shipper.watcher import Watcher


def build_masker(config: Config) -> Masker:
    import os

    key = config.masking.hash_key or os.environ.get("SHIPPER_HASH_KEY")
    return Masker(config.masking.email, key)


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
    return Follower(source, state.sources.get(source_key(source)), renderer, now)


@dataclass
class Reader:
    follower: Follower
    stream: Stream
    wake: asyncio.Event


class Shipper:
    """Runs the pipeline for one configuration until asked to stop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopping = asyncio.Event()
        self.store = CheckpointStore(config.state_dir)
        self.client = LogsClient(config.cloudwatch)
        self.streams: dict[tuple[str, str], Stream] = {}
        self.readers: list[Reader] = []
        self.watcher: Watcher | None = None
        self.health: HealthServer | None = None
        self.started = False

    # ------------------------------------------------------------------ startup

    async def startup(self) -> None:
        config = self.config
        masker = build_masker(config)
        logs.set_masker(masker)
        values = await placeholder_values(config)
        state = self.store.load()
        await self.client.open()
        loop = asyncio.get_running_loop()
        self.watcher = Watcher(loop)
        backoff = Backoff(cap=config.cloudwatch.max_backoff)
        now = time.time()
        for source in config.sources:
            group, name = stream_names(config, source, values)
            stream = self.streams.get((group, name))
            if stream is None:
                stream = Stream(
                    group,
                    name,
                    self.client,
                    Batcher(config.batch.max_events, config.batch.max_bytes),
                    config.batch.flush_interval,
                    config.batch.queue_batches,
                    config.cloudwatch.create_log_group,
                    config.cloudwatch.retention_days,
                    backoff,
                    self.save_checkpoints,
                )
                self.streams[(group, name)] = stream
            reader = Reader(build_follower(source, state, masker, now), stream, asyncio.Event())
            self.watcher.add(source.path.parent, reader.wake)
            self.readers.append(reader)
        self.watcher.start()
        if config.health.listen:
            self.health = HealthServer(config.health.listen, self.readiness)
            await self.health.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        self.started = True
        telemetry.shipper_started(len(self.readers), __version__)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        if not self.stopping.is_set():
            telemetry.shipper_stopping(signal.Signals(signum).name)
            self.stopping.set()

    # ------------------------------------------------------------------ running

    async def main_loop(self) -> None:
        """Read and deliver until asked to stop, then shut down gracefully."""
        senders = [
            asyncio.create_task(s.run(), name=f"deliver {k}") for k, s in self.streams.items()
        ]
        readers = [
            asyncio.create_task(self.read(r), name=f"read {r.follower.category}")
            for r in self.readers
        ]
        await self.stopping.wait()
        await self.shutdown(readers, senders)

    async def read(self, reader: Reader) -> None:
        """Follow one source's files, oldest first, until stopping; then flush its records."""
        follower, stream, wake = reader.follower, reader.stream, reader.wake
        while not self.stopping.is_set():
            wake.clear()
            progressed = False
            for cursor in follower.scan():
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
            self._update_gauges(follower)
            if progressed:
                await asyncio.sleep(0)
                continue
            assert self.watcher is not None
            self.watcher.ensure(follower.directory)
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
        for path, lag in follower.lag_bytes().items():
            metrics.LAG_BYTES.labels(follower.category, path).set(lag)

    def readiness(self) -> list[str]:
        problems = []
        if not self.started:
            problems.append("starting")
        for reader in self.readers:
            if not reader.follower.directory.is_dir():
                problems.append(f"{reader.follower.directory}: folder does not exist")
        now = time.monotonic()
        for (group, name), stream in self.streams.items():
            since = stream.failing_since
            if since is not None and now - since > READY_FAILURE_GRACE:
                problems.append(f"{group} {name}: deliveries failing for {now - since:.0f}s")
        return problems

    # ------------------------------------------------------------------ stopping

    async def shutdown(
        self, readers: list[asyncio.Task[None]], senders: list[asyncio.Task[None]]
    ) -> None:
        deadline = time.monotonic() + max(self.config.shutdown_timeout - 1.0, 0.5)

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        await _wait_or_cancel(readers, left())
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
        if self.health is not None:
            await self.health.stop()
        await self.client.close()

    def save_checkpoints(self) -> None:
        sources = {source_key(r.follower.source): r.follower.checkpoint() for r in self.readers}
        try:
            self.store.save(State(sources=sources))
        except OSError as exc:
            telemetry.checkpoint_error(str(self.store.path), exc.strerror or str(exc))


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


async def run(config: Config) -> None:
    shipper = Shipper(config)
    try:
        await shipper.startup()
    except BaseException:
        await shipper.close()
        raise
    await shipper.main_loop()
