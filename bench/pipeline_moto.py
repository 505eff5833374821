"""Ship a file written by the logging module to a moto server, and print the figures.

    python -m bench.pipeline_moto --lines 200000

The file is written through ``TimedRotatingFileHandler`` in the
``[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s`` format, with a JSON
message holding an e-mail address.  The shipper runs as a child process from the
head of the file until its own ``batch.delivered`` events account for every line;
the script prints records/s, the child's CPU seconds and its peak RSS (from the
kernel's accounting of the child, ``wait4``).  moto's server is pure Python, so it
bounds the wall-clock rate; CPU seconds of the shipper are the figure that is the
shipper's own.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from moto.server import ThreadedMotoServer

FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"


def write_file(path: Path, lines: int) -> int:
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight")
    handler.suffix = "%Y%m%d"
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    logger = logging.getLogger("bench")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for n in range(lines):
        logger.info(
            json.dumps(
                {
                    "url": f"/api/orders/{n}",
                    "method": "POST" if n % 3 else "GET",
                    "statusCode": 200 if n % 11 else 500,
                    "client": {"email": f"customer{n % 5000}@shop{n % 13}.example.com"},
                    "processedTime": n % 250,
                }
            )
        )
    handler.close()
    return path.stat().st_size


def delivered(log_path: Path) -> int:
    total = 0
    for line in log_path.read_text(errors="replace").splitlines():
        if '"batch.delivered"' in line:
            total += json.loads(line)["events"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "logs").mkdir()
        size = write_file(tmp / "logs" / "app.log", args.lines)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        config = {
            "state_dir": str(tmp / "state"),
            "cloudwatch": {"endpoint_url": f"http://{host}:{port}",
                           "log_group": "/bench/{category}"},
            "sources": [{"category": "app", "path": str(tmp / "logs" / "app.log"),
                         "format": FORMAT, "datefmt": DATEFMT}],
            "health": {"listen": None},
        }  # fmt: skip
        (tmp / "shipper.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
        log_path = tmp / "shipper.log"
        with log_path.open("wb") as log:
            started = time.monotonic()
            child = subprocess.Popen(
                [sys.executable, "-m", "shipper", "run", "-c", str(tmp / "shipper.yaml")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            while delivered(log_path) < args.lines:
                if child.poll() is not None:
                    sys.exit(f"shipper exited early:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            child.send_signal(signal.SIGTERM)
            _pid, status, usage = os.wait4(child.pid, 0)
        server.stop()

    cpu = usage.ru_utime + usage.ru_stime
    print(f"lines:            {args.lines:,} ({size / 1e6:.1f} MB)")
    print(f"wall:             {elapsed:.2f} s  ({args.lines / elapsed:,.0f} records/s)")
    print(f"shipper CPU:      {cpu:.2f} s  ({cpu / args.lines * 1e6:.2f} CPU-s per million)")
    print(f"shipper peak RSS: {usage.ru_maxrss / 1024:.1f} MiB")
    print(f"exit status:      {os.waitstatus_to_exitcode(status)}")


if __name__ == "__main__":
    main()
