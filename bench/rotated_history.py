"""CPU per event with a year of rotated files beside the live one, against none.

A shipper process (``python -m shipper run``) follows ``app.log`` in a folder that
also holds ``--rotated`` rotated files (``app.log.YYYY-MM-DD``, one per day back, each
last written on its day: those within ``ignore_older``, 14 days, are shipped at the
start, the rest skipped).  Once they are delivered, a writer appends ``--lines`` lines
at ``--rate`` per second; the shipper's CPU from the first appended line to the last
one's arrival at the local sink (:mod:`bench.sink`) is divided by the events.  The
same is measured with no rotated files, in turns, ``--repeat`` times.

    PYTHONPATH=$PWD python -m bench.rotated_history --rotated 365 --lines 20000 --rate 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.run import (
    ShipperUnderTest,
    SinkProcess,
    _check,
    _lines,
    _write_paced,
    source,
    workdir,
)

DAY = 86_400
IGNORE_OLDER_DAYS = 14
LINES_PER_ROTATED = 5
LIVE_LINES = 10


def _wait_for(sink: SinkProcess, events: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sink.stats()["events"] < events:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sink.stats()['events']} of {events} events arrived")
        time.sleep(0.1)


def cpu_ms_per_thousand(rotated: int, lines: int, rate: int) -> float:
    """CPU milliseconds of the shipper per 1,000 events appended to the live file."""
    with workdir() as work:
        folder = work / "logs" / "app"
        folder.mkdir(parents=True)
        now = time.time()
        shipped_first = LIVE_LINES
        for day in range(1, rotated + 1):
            at = now - day * DAY + 3600
            path = folder / f"app.log.{time.strftime('%Y-%m-%d', time.localtime(at))}"
            path.write_text(_lines(LINES_PER_ROTATED, f"rotated-{day}"))
            os.utime(path, (at, at))
            if day < IGNORE_OLDER_DAYS:
                shipped_first += LINES_PER_ROTATED
        live: Path = folder / "app.log"
        live.write_text(_lines(LIVE_LINES, "live"))
        sink = SinkProcess(expect=None)
        shipper = ShipperUnderTest(work, sink, [source("app", live)])
        try:
            _wait_for(sink, shipped_first, timeout=120)
            time.sleep(2.0)  # the first batches' work is over
            before = shipper.cpu_so_far()
            _write_paced(live, lines, rate)
            _wait_for(sink, shipped_first + lines, timeout=120)
            used = shipper.cpu_so_far() - before
        finally:
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
    return used * 1000 / (lines / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotated", type=int, default=365)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    alone: list[float] = []
    crowded: list[float] = []
    for _ in range(args.repeat):  # in turns, so a busy moment of the machine hits both
        alone.append(cpu_ms_per_thousand(0, args.lines, args.rate))
        crowded.append(cpu_ms_per_thousand(args.rotated, args.lines, args.rate))
    a, c = statistics.median(alone), statistics.median(crowded)
    print(f"{args.lines} lines at {args.rate}/s; CPU ms per 1,000 events, median of {args.repeat}")
    print(f"  live file alone:          {a:7.1f}  (runs: {', '.join(f'{v:.1f}' for v in alone)})")
    print(
        f"  with {args.rotated} rotated files: {c:7.1f}  "
        f"(runs: {', '.join(f'{v:.1f}' for v in crowded)})"
    )
    print(f"  ratio:                    {c / a:7.2f}x")


if __name__ == "__main__":
    main()
