"""Peak resident memory while many sources each ship a backlog.

Every source is its own category whose live file already holds the file of
:mod:`bench.generate` (a hard link of one file, so the disk holds it once); the
shipper ships them all from their first byte, and the figures are its peak RSS, its
CPU and the wall time until the last event arrived.

    python -m bench.many_backlogs --sources 40 --lines 100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.generate import ensure
from bench.run import ShipperUnderTest, SinkProcess, _check, source, workdir


def measure(sources: int, lines: int, data: Path) -> dict[str, float]:
    big = data / f"app-{lines}.log"
    meta = ensure(big, lines)
    with workdir() as work:
        configured = []
        for index in range(sources):
            category = f"cat{index:03d}"
            path = work / "logs" / category / f"{category}.log"
            path.parent.mkdir(parents=True)
            os.link(big, path)
            configured.append(source(category, path))
        events = meta["records"] * sources
        sink = SinkProcess(expect=events)
        began = time.monotonic()
        shipper = ShipperUnderTest(work, sink, configured)
        try:
            sink.next_line(timeout=3600)  # the last event arrived
            wall = time.monotonic() - began
        finally:
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
    return {"events": events, "peak_rss_mib": usage.max_rss_mib, "cpu_s": usage.cpu, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default="1,40", help="source counts, comma-separated")
    parser.add_argument("--lines", type=int, default=100_000, help="lines in each backlog")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "shipper-bench")
    args = parser.parse_args()
    for text in args.sources.split(","):
        figures = measure(int(text), args.lines, args.data)
        print(
            f"{text} sources x {args.lines:,} lines: {figures['events']:,} events, "
            f"peak RSS {figures['peak_rss_mib']:.1f} MiB, {figures['cpu_s']:.1f} CPU-s, "
            f"{figures['wall_s']:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
