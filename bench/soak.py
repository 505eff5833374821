"""A long run: resident memory and CPU per event over time, nothing lost or duplicated.

A shipper process (``python -m shipper run``) follows ``--categories`` log files,
each written by the standard library's ``TimedRotatingFileHandler`` (``when="midnight"``)
in a writer process at ``--rate`` lines per second, ``--rollover-every`` seconds a
midnight forced with ``doRollover()`` (``app.log.2024-01-01``, then the next day, …),
and a SIGHUP to the shipper every ``--sighup-every`` seconds.  Every line carries an
id (``soak-c0-123``); the local sink (:mod:`bench.sink`) counts the ids it receives.

Each slice of the run prints the shipper's resident memory (``VmRSS``; its anonymous
part split into the main heap, other anonymous mappings such as malloc's thread
arenas, and the count of threads), the CPU it spent per 1,000 events delivered in
the slice (the scheduler's run time of every thread, as
:meth:`bench.run.ShipperUnderTest.cpu_so_far`) and the events delivered.  At the
end: how far RSS grew after the warm-up (the first 5 minutes, a third of shorter
runs) and its slope per 10 minutes, CPU per event of the last third against the
first, and the lines lost and duplicated.

    PYTHONPATH=$PWD python -m bench.soak                 # 60 minutes
    PYTHONPATH=$PWD python -m bench.soak --minutes 12
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import multiprocessing
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.generate import DATEFMT, FORMAT, ZONE
from bench.run import ShipperUnderTest, SinkProcess, _check, memory_kib, source, workdir

DAY = 86_400
NEVER = 2**62  # a rolloverAt no clock reaches: only the forced midnights roll over
FIRST_MIDNIGHT = time.mktime((2024, 1, 2, 0, 0, 0, 0, 0, -1))
ID_PATTERN = r"soak-(c[0-9]+)-([0-9]+)"
WRITE_STEP = 0.1  # seconds between the writer's bursts


# ---------------------------------------------------------------------- the app


def _handler(path: Path) -> logging.handlers.TimedRotatingFileHandler:
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight")
    formatter = logging.Formatter(FORMAT, DATEFMT)
    zone = ZoneInfo(ZONE)
    formatter.converter = lambda at: datetime.fromtimestamp(at, zone).timetuple()  # type: ignore[assignment,method-assign]
    handler.setFormatter(formatter)
    handler.rolloverAt = NEVER
    return handler


def _midnight(handler: logging.handlers.TimedRotatingFileHandler, day: int) -> None:
    """Roll over as at the midnight that ends ``day`` days after 2024-01-01."""
    handler.rolloverAt = int(FIRST_MIDNIGHT) + day * DAY
    handler.doRollover()
    handler.rolloverAt = NEVER  # doRollover armed it for the next real midnight


def write_app_logs(
    paths: list[Path],
    rate: float,
    rollover_every: float,
    stop: StopEvent,
    written: SynchronizedArray,  # type: ignore[type-arg]
) -> None:
    """The writer process: ``rate`` lines a second into each path through its own
    logger and handler, a midnight every ``rollover_every`` seconds, until ``stop``."""
    loggers = []
    for index, path in enumerate(paths):
        logger = logging.getLogger(f"soak.c{index}")
        logger.addHandler(_handler(path))
        logger.setLevel(logging.INFO)
        logger.propagate = False
        loggers.append(logger)
    begin = time.monotonic()
    days = 0
    while not stop.is_set():
        elapsed = time.monotonic() - begin
        due = int(elapsed * rate) + 1  # lines each category should have by now
        for index, logger in enumerate(loggers):
            for n in range(written[index], due):
                logger.info(
                    '{"id": "soak-c%d-%d", "url": "/api/items/%d", "statusCode": 200,'
                    ' "client": {"email": "user.%d@mail.example.com"}}',
                    index,
                    n,
                    n,
                    n,
                )
            written[index] = due
        if elapsed >= (days + 1) * rollover_every:
            days += 1
            for logger in loggers:
                handler = logger.handlers[0]
                assert isinstance(handler, logging.handlers.TimedRotatingFileHandler)
                _midnight(handler, days)
        time.sleep(WRITE_STEP)
    for logger in loggers:
        for handler in logger.handlers:
            handler.close()


# ---------------------------------------------------------------------- the shipper's memory


@dataclass(frozen=True)
class Memory:
    """Where the shipper's resident memory is (MiB), from ``/proc/PID/smaps``."""

    rss: float
    heap: float  # the main arena ([heap], grown by brk)
    other_anon: float  # anonymous mappings: thread arenas, large mallocs, Python's arenas
    threads: int

    @classmethod
    def of(cls, pid: int) -> Memory:
        heap = anon = 0
        name = ""
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Rss:":
                kib = int(line.split()[1])
                if name == "[heap]":
                    heap += kib
                elif name == "":
                    anon += kib
        threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
        return cls(memory_kib(pid, "VmRSS") / 1024, heap / 1024, anon / 1024, threads)


# ---------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Slice:
    ended: float  # minutes since the writer started
    memory: Memory
    cpu: float  # seconds in the slice
    events: int  # delivered in the slice


def _slope_per_ten_minutes(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minutes, MiB) points, in MiB per 10 minutes."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return 0.0
    return 10 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def soak(args: argparse.Namespace) -> None:
    seconds = args.minutes * 60
    slice_seconds = args.slice_minutes * 60
    warmup = args.warmup_minutes
    with workdir() as work:
        paths, sources = [], []
        for index in range(args.categories):
            category = f"c{index}"
            path = work / "logs" / category / "app.log"
            path.parent.mkdir(parents=True)
            path.touch()
            paths.append(path)
            sources.append(source(category, path))
        sink = SinkProcess(expect=None, ids=ID_PATTERN)
        shipper = ShipperUnderTest(work, sink, sources)
        pid = shipper.proc.pid
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        written = context.Array("q", args.categories)
        writer = context.Process(
            target=write_app_logs, args=(paths, args.rate, args.rollover_every, stop, written)
        )
        slices: list[Slice] = []
        rss: list[tuple[float, float]] = []  # (minutes, MiB) every second
        try:
            time.sleep(3.0)  # started and watching every folder
            writer.start()
            begin = time.monotonic()
            cpu_before, events_before = shipper.cpu_so_far(), sink.stats()["events"]
            next_hup = args.sighup_every
            next_slice = slice_seconds
            print(
                f"{args.categories} categories x {args.rate:g} lines/s, a midnight every "
                f"{args.rollover_every:g} s, SIGHUP every {args.sighup_every:g} s, "
                f"{args.minutes:g} min",
                flush=True,
            )
            print(
                " minutes     RSS    heap  o.anon thr  CPU ms/1k ev    events",
                flush=True,
            )
            while (elapsed := time.monotonic() - begin) < seconds:
                if elapsed >= next_hup:
                    shipper.proc.send_signal(signal.SIGHUP)
                    next_hup += args.sighup_every
                rss.append((elapsed / 60, memory_kib(pid, "VmRSS") / 1024))
                if elapsed >= next_slice or elapsed + 1 >= seconds:
                    cpu, events = shipper.cpu_so_far(), sink.stats()["events"]
                    part = Slice(
                        elapsed / 60, Memory.of(pid), cpu - cpu_before, events - events_before
                    )
                    slices.append(part)
                    cpu_before, events_before = cpu, events
                    next_slice += slice_seconds
                    m = part.memory
                    print(
                        f"{part.ended:8.1f} {m.rss:7.1f} {m.heap:7.1f} {m.other_anon:7.1f}"
                        f" {m.threads:3d} {part.cpu * 1e6 / max(part.events, 1):13.1f}"
                        f" {part.events:9,d}",
                        flush=True,
                    )
                time.sleep(1.0)
            stop.set()
            writer.join(30)
            totals = {f"c{i}": written[i] for i in range(args.categories)}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the last batches
                ids = sink.stats()["ids"]
                if all(ids.get(c, {}).get("distinct", 0) >= n for c, n in totals.items()):
                    break
                time.sleep(0.5)
            ids = sink.stats()["ids"]
        finally:
            stop.set()
            if writer.is_alive():
                writer.kill()
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
    report(slices, rss, warmup, totals, ids)


def report(
    slices: list[Slice],
    rss: list[tuple[float, float]],
    warmup: float,
    written: dict[str, int],
    ids: dict[str, dict[str, int]],
) -> None:
    after = [(t, v) for t, v in rss if t >= warmup]
    at_warmup = after[0][1] if after else 0.0
    print(
        f"RSS after {warmup:g} min: {at_warmup:.1f} MiB, at the end {rss[-1][1]:.1f} MiB: "
        f"grew {rss[-1][1] - at_warmup:+.1f} MiB (highest {max(v for _, v in after):.1f}); "
        f"slope {_slope_per_ten_minutes(after):+.2f} MiB per 10 min"
    )
    third = len(slices) // 3 or 1
    first, last = slices[:third], slices[-third:]
    first_cost = sum(s.cpu for s in first) * 1e6 / max(sum(s.events for s in first), 1)
    last_cost = sum(s.cpu for s in last) * 1e6 / max(sum(s.events for s in last), 1)
    print(
        f"CPU ms per 1,000 events: first third {first_cost:.1f}, last third {last_cost:.1f}: "
        f"{last_cost / first_cost:.2f}x"
    )
    lost = sum(n - ids.get(c, {}).get("distinct", 0) for c, n in written.items())
    duplicated = sum(found["duplicates"] for found in ids.values())
    beyond = sum(max(0, found["highest"] + 1 - written.get(c, 0)) for c, found in ids.items())
    print(
        f"lines written {sum(written.values()):,}: lost {lost}, duplicated {duplicated}"
        + (f", {beyond} ids never written" if beyond else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--categories", type=int, default=3)
    parser.add_argument("--rate", type=float, default=150.0, help="lines/s per category")
    parser.add_argument("--rollover-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--sighup-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--slice-minutes", type=float, help="default: 5, a tenth of short runs")
    parser.add_argument("--warmup-minutes", type=float, help="default: 5, a third of short runs")
    args = parser.parse_args()
    if args.slice_minutes is None:
        args.slice_minutes = min(5.0, args.minutes / 10)
    if args.warmup_minutes is None:
        args.warmup_minutes = min(5.0, args.minutes / 3)
    soak(args)


if __name__ == "__main__":
    main()
