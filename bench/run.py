"""The shipper's benchmark: CPU per event, throughput, memory, idle cost, latency, start-up.

Each measurement runs ``python -m shipper run -c CONFIG`` as a real process against
the local CloudWatch Logs API of :mod:`bench.sink` (its own process), with a fresh
state folder, and takes CPU time and peak RSS from the kernel's accounting of that
one child (``os.wait4``).  Figures are medians over ``--repeat`` runs with min-max.
Shipping runs also sample the child's resident memory, and report it 2 s after the
start and when the last event has arrived: a rise between the two is memory growing
with the backlog.

- ``full``: the app format parsed, the JSON message turned into fields, e-mails
  masked, JSON events; ``raw``: ``output: raw``, masking off (no e-mail masking, no
  key rules); ``raw+keys``: raw with the default key rules on.  Each ships the file
  of :mod:`bench.generate` from its first byte to its last event.
- ``backlog``: peak RSS of the full mode for a file a tenth of the size, to show
  that memory does not grow with the backlog.
- ``idle``: 10 quiet watched files, CPU over ``--idle-seconds``.
- ``latency``: a writer appends 1,000 lines/s, ``flush_interval: 1``; from each
  line's write to the sink's acceptance of it.
- ``startup``: from starting the process to the first delivered batch.
- ``import``: ``python -X importtime -c "import shipper.app"``.
- ``40x5`` and ``400x0.5``: many quiet sources (:mod:`bench.many_sources`), each its
  own category, written for ``--sources-seconds``: % of a core while writing, CPU ms
  per PutLogEvents call, calls/s, peak RSS, and % of a core over ``--idle-seconds``
  once they are quiet.

    python -m bench.run                       # everything, 2,000,000 lines, 3 runs
    python -m bench.run --lines 200000 --repeat 1 --idle-seconds 10 --latency-seconds 10
    python -m bench.run --only full,raw
    python -m bench.run --lines 200000 --repeat 1 --only full,raw --py-spy /tmp/spy
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import queue
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bench.generate import DATEFMT, FORMAT, ZONE, ensure
from bench.reference import reference_seconds
from shipper.config import MASK_DETECTORS

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
REPO = Path(__file__).resolve().parent.parent
PY_SPY = str(Path(sys.executable).with_name("py-spy"))  # pip install py-spy
_children: list[subprocess.Popen[bytes]] = []


@atexit.register
def _kill_leftovers() -> None:
    """A failed measurement must not leave a sink or shipper running."""
    for proc in _children:
        if proc.returncode is None and proc.poll() is None:
            proc.kill()


MEASUREMENTS = (
    "full",
    "raw",
    "raw+keys",
    "backlog",
    "idle",
    "latency",
    "startup",
    "import",
    "40x5",
    "400x0.5",
)


# ---------------------------------------------------------------------- processes


class SinkProcess:
    """:mod:`bench.sink` in its own process; its stdout lines are read on a thread."""

    def __init__(
        self,
        expect: int | None,
        keep: Path | None = None,
        delay: float = 0.0,
        ids: str | None = None,
    ) -> None:
        args = [sys.executable, "-m", "bench.sink", "--delay", str(delay)]
        if ids is not None:
            args += ["--ids", ids]
        if expect is not None:
            args += ["--expect", str(expect)]
        if keep is not None:
            args += ["--keep", str(keep)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=REPO, env=_env())
        _children.append(self.proc)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self.next_line(10)["listening"]
        self.url = f"http://127.0.0.1:{self.port}"

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next_line(self, timeout: float) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the sink said nothing for {timeout} s") from None

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/stats", timeout=5) as reply:
            result: dict[str, Any] = json.load(reply)
            return result

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        final: dict[str, Any] = {}
        while not self.lines.empty():
            final = self.lines.get()
        return final


@dataclass
class Usage:
    """The kernel's accounting of one finished shipper process."""

    cpu: float  # user + system seconds
    max_rss_mib: float
    exit_code: int


class ShipperUnderTest:
    """``python -m shipper run -c CONFIG`` against ``sink`` (anything with a ``url``),
    its CPU and memory from ``os.wait4``."""

    def __init__(self, workdir: Path, sink: Any, sources: list[dict[str, Any]], **extra: Any):
        config: dict[str, Any] = {
            "state_dir": str(workdir / "state"),
            "rescan_interval": 5.0,
            "cloudwatch": {
                "region": "us-east-1",
                "endpoint_url": sink.url,
                "log_group": "/bench/{category}",
                "log_stream": "bench",
            },
            "batch": {"flush_interval": 1.0},
            "sources": sources,
            # As deployed: the health server on (on a port the system picks).
            "health": {"listen": "127.0.0.1:0"},
        }
        for key, value in extra.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
        self.config = workdir / "shipper.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = (workdir / "shipper.out").open("wb")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shipper", "run", "-c", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=_env(),
        )
        _children.append(self.proc)

    def cpu_so_far(self) -> float:
        """Seconds on a CPU so far, all threads: the scheduler's own count
        (``/proc/PID/task/*/schedstat``), exact where the user + system times of
        ``/proc/PID/stat`` are sampled in clock ticks (10 ms of CPU charged to whoever
        runs at a tick: too coarse for a process that wakes briefly a few times a
        second)."""
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def stop(self, timeout: float = 60.0) -> Usage:
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.05)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.log.close()
        return Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, self.proc.returncode)


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        **CREDENTIALS,
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
    }


def masking_for(mode: str) -> dict[str, Any]:
    """The ``masking`` section of each mode: full is the default masking (e-mails, the
    detectors on by default, key rules); raw turns every detector and the key rules
    off; raw+keys keeps only the key rules."""
    every_detector_off = dict.fromkeys(MASK_DETECTORS, "off")
    if mode == "raw":
        return {**every_detector_off, "keys": []}
    if mode == "raw+keys":
        return every_detector_off
    return {"email": "partial"}


def source(category: str, path: Path, mode: str = "full") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "category": category,
        "path": str(path),
        "format": FORMAT,
        "datefmt": DATEFMT,
        "timezone": ZONE,
    }
    if mode.startswith("raw"):
        entry["output"] = "raw"
    return entry


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="shipper-bench-") as name:
        yield Path(name)


# ---------------------------------------------------------------------- measurements


def memory_kib(pid: int, key: str) -> int:
    """A memory figure of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``) in KiB; 0 when the
    process no longer has one (a zombie).  OSError once the process is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class ResidentTrace:
    """The resident memory (``VmRSS``) of a process, sampled on a thread every 50 ms:
    where ``os.wait4``'s peak says how high memory went, this says when, so a backlog
    that makes memory grow shows as a rise between the first seconds and the end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.started = time.monotonic()
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            try:
                kib = memory_kib(self.pid, "VmRSS")
            except OSError:
                return  # the process has ended
            if kib:
                self.samples.append((time.monotonic() - self.started, kib / 1024))
            time.sleep(0.05)

    def at(self, seconds: float) -> float:
        """The last sample taken by ``seconds`` after the start."""
        return max((s for s in self.samples if s[0] <= seconds), default=(0.0, 0.0))[1]

    def last(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0


def ship_file(path: Path, events: int, mode: str, py_spy: Path | None = None) -> dict[str, float]:
    """Ship ``path`` from its head to its last event; CPU, RSS and throughput.

    With ``py_spy`` (a file name), py-spy samples the shipper from outside and writes
    its collapsed stacks there (``python -m bench.stacks FILE`` sums them up).
    """
    masking = masking_for(mode)
    with workdir() as work:
        sink = SinkProcess(expect=events)
        shipper = ShipperUnderTest(work, sink, [source("app", path, mode)], masking=masking)
        resident = ResidentTrace(shipper.proc.pid)
        spy = None
        if py_spy is not None:
            record = ["record", "--nonblocking", "--rate", "200", "--format", "raw"]
            spy = subprocess.Popen(
                [PY_SPY, *record, "--output", str(py_spy), "--pid", str(shipper.proc.pid)],
                stdout=subprocess.DEVNULL,
            )
        try:
            reached = sink.next_line(timeout=3600)
            rss_at_end = resident.last()
        finally:
            usage = shipper.stop()
            final = sink.stop()
            if spy is not None:
                spy.wait(60)
        _check(final, usage, shipper)
    if reached["events"] != events:
        # One record split in two (or two merged) is a finding, not a reason to lose a run.
        print(f"  note: {events:,} records written, {reached['events']:,} events arrived")
    wall = reached["last_at"] - shipper.started
    return {
        "events_per_s": events / wall,
        "cpu_s_per_million": usage.cpu / events * 1e6,
        "cpu_s": usage.cpu,
        "wall_s": wall,
        "peak_rss_mib": usage.max_rss_mib,
        "rss_2s_mib": resident.at(2.0),
        "rss_end_mib": rss_at_end,
    }


def idle(seconds: float) -> dict[str, float]:
    """CPU of a shipper watching 10 quiet files (each with a few delivered lines)."""
    with workdir() as work:
        sources = []
        for index in range(10):
            category = f"cat{index}"
            path = work / "logs" / category / f"{category}.log"
            path.parent.mkdir(parents=True)
            path.write_text(_lines(10, "idle"))
            sources.append(source(category, path))
        sink = SinkProcess(expect=100)
        shipper = ShipperUnderTest(work, sink, sources)
        try:
            sink.next_line(timeout=60)
            time.sleep(3)  # let start-up work settle
            before, started = shipper.cpu_so_far(), time.monotonic()
            time.sleep(seconds)
            used, took = shipper.cpu_so_far() - before, time.monotonic() - started
        finally:
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
    return {"idle_cpu_s": used, "idle_core_percent": used / took * 100}


def latency(seconds: float, rate: int = 1000) -> dict[str, float]:
    """p50/p99 from a line's write to its acceptance, at ``rate`` lines/s."""
    total = int(seconds * rate)
    with workdir() as work:
        path = work / "logs" / "app" / "app.log"
        path.parent.mkdir(parents=True)
        path.touch()
        keep = work / "arrived.jsonl"
        sink = SinkProcess(expect=total, keep=keep)
        shipper = ShipperUnderTest(work, sink, [source("app", path)], batch={"flush_interval": 1.0})
        try:
            time.sleep(2.0)  # started and watching
            written = _write_paced(path, total, rate)
            sink.next_line(timeout=seconds + 60)
        finally:
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
        seq = re.compile(r'"seq":\s*(\d+)')
        delays = []
        for line in keep.read_text().splitlines():
            at, message = json.loads(line)
            found = seq.search(message)
            if found:
                delays.append(at - written[int(found.group(1))])
    delays.sort()
    return {
        "p50_s": delays[len(delays) // 2],
        "p99_s": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max_s": delays[-1],
    }


def _write_paced(path: Path, total: int, rate: int) -> list[float]:
    """Append ``total`` lines at ``rate`` per second, 10 ms at a time; their write times."""
    written = [0.0] * total
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        begin = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - begin) * rate) + 1)
            if due > sent:
                os.write(fd, "".join(_line(i, "latency") for i in range(sent, due)).encode())
                now = time.time()
                for index in range(sent, due):
                    written[index] = now
                sent = due
            time.sleep(0.01)
    finally:
        os.close(fd)
    return written


def startup(path: Path) -> dict[str, float]:
    """Seconds from starting the process to ``shipper.started``, and to the first delivery.

    Ten lines wait in the file; a stream's first batch is sent as soon as it holds
    events (nine of them: the last record is complete once the file has been quiet
    for a moment), without waiting ``flush_interval`` for company.
    """
    with workdir() as work:
        sink = SinkProcess(expect=1)
        shipper = ShipperUnderTest(work, sink, [source("app", path)])
        try:
            reached = sink.next_line(timeout=60)
        finally:
            usage = shipper.stop()
            final = sink.stop()
        _check(final, usage, shipper)
        log = Path(shipper.log.name).read_text()
    started = _logged_at(log, "shipper.started") - shipper.started
    return {"running_s": started, "startup_s": reached["first_at"] - shipper.started}


def _logged_at(log: str, event: str) -> float:
    """Epoch seconds of the first ``event`` in the shipper's JSON log."""
    for line in log.splitlines():
        entry = json.loads(line)
        if entry.get("event") == event:
            return datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
    raise RuntimeError(f"no {event} in the shipper's log")


def import_time() -> dict[str, float]:
    """Cumulative import time of shipper.app, from ``-X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import shipper.app"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(),
        check=True,
    )
    for line in result.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == "shipper.app":
            return {"import_s": int(parts[1]) / 1e6}
    raise RuntimeError("shipper.app not in the -X importtime output")


def _line(index: int, kind: str) -> str:
    stamp = datetime.now(ZoneInfo(ZONE)).strftime(DATEFMT)
    message = json.dumps({"seq": index, "kind": kind, "client": {"email": f"u{index}@example.com"}})
    return f"[INFO] {stamp} bench.py:1 {message}\n"


def _lines(count: int, kind: str) -> str:
    return "".join(_line(i, kind) for i in range(count))


def _check(final: dict[str, Any], usage: Usage, shipper: ShipperUnderTest) -> None:
    if final.get("violations"):
        raise RuntimeError(f"batch rules broken: {final['violation_examples']}")
    if usage.exit_code != 0:
        log = Path(shipper.log.name).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the shipper exited {usage.exit_code}:\n{log}")


# ---------------------------------------------------------------------- report


def repeat(times: int, measure: Callable[[], dict[str, float]]) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {}
    for _ in range(times):
        for key, value in measure().items():
            runs.setdefault(key, []).append(value)
    return runs


def summary(values: list[float], fmt: str) -> str:
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


ROWS = (
    ("events_per_s", "events/s", "{:,.0f}"),
    ("cpu_s_per_million", "CPU-s per million events", "{:.1f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ("rss_2s_mib", "RSS at 2 s", "{:.1f}"),
    ("rss_end_mib", "at the end", "{:.1f}"),
    ("wall_s", "wall s", "{:.1f}"),
    ("idle_cpu_s", "CPU-s", "{:.3f}"),
    ("idle_core_percent", "% of a core", "{:.3f}"),
    ("p50_s", "p50 s", "{:.3f}"),
    ("p99_s", "p99 s", "{:.3f}"),
    ("max_s", "max s", "{:.3f}"),
    ("running_s", "to shipper.started s", "{:.3f}"),
    ("startup_s", "to first delivery s", "{:.3f}"),
    ("import_s", "import shipper.app s", "{:.3f}"),
    ("core_percent", "% of a core writing", "{:.2f}"),
    ("ms_per_call", "CPU ms per call", "{:.2f}"),
    ("calls_per_s", "calls/s", "{:.1f}"),
    ("quiet_core_percent", "% of a core quiet after", "{:.3f}"),
)


def report(name: str, runs: dict[str, list[float]]) -> None:
    cells = [f"{label} {summary(runs[key], fmt)}" for key, label, fmt in ROWS if key in runs]
    print(f"{name:<9} " + " | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines in the test file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "shipper-bench")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--sources-seconds", type=float, default=60.0, help="writing window of 40x5 and 400x0.5"
    )
    parser.add_argument("--only", default=",".join(MEASUREMENTS), help="comma-separated")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="profile full/raw runs with py-spy into DIR"
    )
    args = parser.parse_args()
    only = args.only.split(",")
    unknown = set(only) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurements {sorted(unknown)}; choose from {MEASUREMENTS}")

    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    big = args.data / f"app-{args.lines}.log"
    meta = ensure(big, args.lines)
    print(
        f"file {big}: {meta['lines']:,} lines, {meta['records']:,} events, "
        f"{meta['bytes'] / 1e6:.0f} MB; {os.cpu_count()} cores; runs: {args.repeat}",
        flush=True,
    )
    speed = "machine speed: reference workload {} CPU-s"
    print(speed.format(summary(reference_seconds(), "{:.2f}")), flush=True)
    results: dict[str, dict[str, list[float]]] = {}
    for name in only:
        if name in ("full", "raw", "raw+keys"):
            spy = args.py_spy / f"{name}.txt" if args.py_spy else None
            runs = repeat(args.repeat, lambda n=name, o=spy: ship_file(big, meta["records"], n, o))
        elif name == "backlog":
            small = args.data / f"app-{args.lines // 10}.log"
            small_meta = ensure(small, args.lines // 10)
            events = small_meta["records"]
            runs = repeat(args.repeat, lambda f=small, n=events: ship_file(f, n, "full"))
            name = f"full/{small_meta['bytes'] / 1e6:.0f}MB"
        elif name == "idle":
            runs = repeat(args.repeat, lambda: idle(args.idle_seconds))
        elif name == "latency":
            runs = repeat(args.repeat, lambda: latency(args.latency_seconds))
        elif name == "startup":
            first = args.data / "startup.log"
            first.write_text(_lines(10, "startup"))
            runs = repeat(args.repeat, lambda f=first: startup(f))
        elif name == "import":
            runs = repeat(args.repeat, import_time)
        else:  # many sources: bench/many_sources.py
            from bench import many_sources  # it builds on this module

            shape = many_sources.Shape.parse(name)
            windows = (args.sources_seconds, args.idle_seconds)
            runs = repeat(
                args.repeat, lambda s=shape, w=windows: many_sources.measure(s, w[0], w[1])
            )
        results[name] = runs
        report(name, runs)
    print(speed.format(summary(reference_seconds(), "{:.2f}")) + " after (lower is faster)")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"(all children: {children.ru_utime + children.ru_stime:.1f} CPU-s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
