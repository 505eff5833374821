"""Memory under a backlog built while CloudWatch is unreachable, on a real shipper.

    PYTHONPATH=$PWD python -m bench.outage_backlog [--sizes 30,300]

For each size, a log file of that many MB is written while CloudWatch is
unreachable (the sink resets every connection); after 10 s the sink comes back and
the backlog is shipped.  Prints the peak resident memory (VmHWM) and the RSS sampled
while unreachable and while shipping: the files are the buffer, so the peak should
not grow with the backlog.  (Idle CPU is measured by ``python -m bench.run --only
idle``.)

The sink is a tiny CloudWatch Logs endpoint on 127.0.0.1 that counts the events it
accepts (moto would keep 300 MB in its own memory and slow the run down).  Linux
only (/proc).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.run import ShipperUnderTest, memory_kib

FORMAT = "%(asctime)s %(levelname)s %(message)s"
# Words, as log messages are made of (long runs of word characters after an e-mail
# address cost the masker far more: that is another benchmark's subject).
PADDING = "GET /api/items?page=3 took 12 ms status 200 size 5120 " * 200


class Sink(ThreadingHTTPServer):
    """Accepts CloudWatch Logs JSON calls and counts events; ``up`` False resets."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.up = True
        self.events = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SinkHandler(BaseHTTPRequestHandler):
    server: Sink
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if not self.server.up:
            self.close_connection = True
            self.connection.close()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        reply = b"{}"
        if target.endswith("PutLogEvents"):
            count = len(json.loads(body)["logEvents"])
            with self.server.lock:
                self.server.events += count
                reply = json.dumps({"nextSequenceToken": str(self.server.events)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def running_sink() -> Iterator[Sink]:
    sink = Sink()
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s")
        time.sleep(0.2)


def write_lines(path: Path, start: int, count: int, line_bytes: int) -> None:
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,000")
    with path.open("a") as f:
        for n in range(start, start + count):
            head = f"{stamp} INFO rec-{n:08d} user someone{n % 97}@example.com "
            f.write(head + PADDING[: max(line_bytes - len(head) - 1, 0)] + "\n")


def bench_backlog(megabytes: int, line_bytes: int) -> None:
    lines = megabytes * 1_000_000 // line_bytes
    with tempfile.TemporaryDirectory() as tmp, running_sink() as sink:
        work = Path(tmp)
        path = work / "logs" / "app" / "app.log"
        path.parent.mkdir(parents=True)
        write_lines(path, 0, 1000, line_bytes)
        source = {"category": "app", "path": str(path), "format": FORMAT}
        shipper = ShipperUnderTest(work, sink, [source], cloudwatch={"max_backoff": 2.0})
        pid = shipper.proc.pid
        try:
            wait_for(lambda: sink.events >= 1000, 60)
            sink.up = False  # CloudWatch unreachable while the backlog builds up
            write_lines(path, 1000, lines, line_bytes)
            down_peak = 0
            for _ in range(50):
                down_peak = max(down_peak, memory_kib(pid, "VmRSS"))
                time.sleep(0.2)
            sink.up = True
            started = time.monotonic()
            shipping_peak = 0
            while sink.events < lines + 1000:
                if shipper.proc.poll() is not None:
                    raise SystemExit("the shipper exited")
                shipping_peak = max(shipping_peak, memory_kib(pid, "VmRSS"))
                time.sleep(0.2)
            took = time.monotonic() - started
            hwm = memory_kib(pid, "VmHWM")
        finally:
            shipper.stop()
    print(
        f"backlog {megabytes} MB ({lines} lines of {line_bytes} B): peak RSS (VmHWM) "
        f"{hwm / 1024:.1f} MiB; RSS while unreachable {down_peak / 1024:.1f} MiB, while "
        f"shipping {shipping_peak / 1024:.1f} MiB; shipped in {took:.1f} s "
        f"({megabytes / took:.1f} MB/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="30,300", help="backlog sizes in MB")
    parser.add_argument("--line-bytes", type=int, default=300)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",") if s):
        bench_backlog(size, args.line_bytes)


if __name__ == "__main__":
    main()
