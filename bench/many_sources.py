"""Cost at the shapes of load real hosts have: many categories, each quiet.

A host with 40 categories writing 5 lines/s each pays per source and per
PutLogEvents call, not per event: what matters is the CPU the shipper spends while
the writers run (% of one core), the CPU per call, and resident memory.  Each shape
runs ``python -m shipper run`` as a real process against :mod:`bench.sink`, writes
paced lines into every source for ``--seconds``, and takes:

- **core %**: the shipper's CPU over the writing window (the scheduler's exact run
  time of every thread, as :meth:`bench.run.ShipperUnderTest.cpu_so_far`), divided by
  the window;
- **ms per call**: that CPU divided by the PutLogEvents calls the sink accepted in
  the window (all-in: reading, batching, the request, signing, the response, the
  acknowledgement and checkpoint saves);
- **RSS**: the peak resident memory of the whole run (``os.wait4``) and the resident
  memory at the end of the window;
- **idle %**: the same CPU figure over a quiet window after the writers stop.

    python -m bench.many_sources                       # 40 x 5/s and 400 x 0.5/s, 60 s each
    python -m bench.many_sources --shapes 40x5 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.run import (
    ResidentTrace,
    ShipperUnderTest,
    SinkProcess,
    _check,
    _line,
    source,
    workdir,
)


@dataclass(frozen=True)
class Shape:
    sources: int
    rate: float  # lines per second per source

    @classmethod
    def parse(cls, text: str) -> Shape:
        count, _, rate = text.partition("x")
        return cls(int(count), float(rate))

    def __str__(self) -> str:
        return f"{self.sources} sources x {self.rate:g} lines/s"


def _write(paths: list[Path], rate: float, seconds: float, stop: threading.Event) -> int:
    """Append lines to every path at ``rate`` per second each, 100 ms at a time,
    spread over the 100 ms so the files are not all written in the same instant."""
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in paths]
    written = 0
    try:
        begin = time.monotonic()
        due_before = 0
        while not stop.is_set():
            elapsed = time.monotonic() - begin
            if elapsed >= seconds:
                break
            due = int(elapsed * rate) + 1  # lines each file should have by now
            lines = "".join(_line(due_before + i, "many") for i in range(due - due_before))
            if lines:
                for fd in fds:
                    os.write(fd, lines.encode())
            written += (due - due_before) * len(fds)
            due_before = due
            time.sleep(0.1)
    finally:
        for fd in fds:
            os.close(fd)
    return written


def _warm_up(paths: list[Path], sink: SinkProcess) -> None:
    """One line in every source, delivered, before the window: each stream's group and
    stream are created with its first batch, a start-up cost (``bench.run``'s startup
    figure) that a window of steady writing should not carry."""
    arrived = sink.stats()["events"]
    for path in paths:
        with path.open("a") as file:
            file.write(_line(0, "warm-up"))
    deadline = time.monotonic() + 30.0
    while sink.stats()["events"] < arrived + len(paths):
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up lines did not all arrive in 30 s")
        time.sleep(0.1)
    time.sleep(1.5)  # their acknowledgements and checkpoint saves done


def measure(shape: Shape, seconds: float, idle_seconds: float) -> dict[str, float]:
    with workdir() as work:
        paths = []
        sources = []
        for index in range(shape.sources):
            category = f"cat{index:03d}"
            path = work / "logs" / category / f"{category}.log"
            path.parent.mkdir(parents=True)
            path.touch()
            paths.append(path)
            sources.append(source(category, path))
        sink = SinkProcess(expect=None)
        shipper = ShipperUnderTest(work, sink, sources)
        resident = ResidentTrace(shipper.proc.pid)
        stop = threading.Event()
        try:
            time.sleep(3.0)  # started and watching every folder
            _warm_up(paths, sink)
            calls_before = sink.stats()["calls"]
            cpu_before, began = shipper.cpu_so_far(), time.monotonic()
            written = _write(paths, shape.rate, seconds, stop)
            cpu_writing, took = shipper.cpu_so_far() - cpu_before, time.monotonic() - began
            time.sleep(2.5)  # the last batches' flush_interval
            stats = sink.stats()
            calls = stats["calls"] - calls_before
            rss_end = resident.last()
            cpu_before, began = shipper.cpu_so_far(), time.monotonic()
            time.sleep(idle_seconds)
            cpu_idle, idle_took = shipper.cpu_so_far() - cpu_before, time.monotonic() - began
        finally:
            stop.set()
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
    expected = written + len(paths)  # and the warm-up lines
    if final["events"] < expected:
        print(f"  note: {expected:,} lines written, {final['events']:,} events arrived")
    return {
        "core_percent": cpu_writing / took * 100,
        "ms_per_call": cpu_writing / max(calls, 1) * 1000,
        "calls_per_s": calls / took,
        "events_per_s": written / took,
        "quiet_core_percent": cpu_idle / idle_took * 100,
        "peak_rss_mib": usage.max_rss_mib,
        "rss_end_mib": rss_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="40x5,400x0.5", help="SOURCESxRATE, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="writing window per shape")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="quiet window after it")
    args = parser.parse_args()
    for text in args.shapes.split(","):
        shape = Shape.parse(text)
        figures = measure(shape, args.seconds, args.idle_seconds)
        print(
            f"{shape}: {figures['core_percent']:.2f}% of a core while writing, "
            f"{figures['ms_per_call']:.2f} ms CPU per PutLogEvents call "
            f"({figures['calls_per_s']:.1f} calls/s, {figures['events_per_s']:.0f} events/s), "
            f"quiet after {figures['quiet_core_percent']:.3f}%, "
            f"peak RSS {figures['peak_rss_mib']:.1f} MiB (end of writing "
            f"{figures['rss_end_mib']:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
