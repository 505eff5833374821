"""A Python app's logging, as a separate process: the standard library's handlers write.

    python -m tests.support.writer --path logs/app/app.log --count 300 --rollovers 2 \
        --manifest app.jsonl --format "..." [--datefmt ...] [--traceback-every 25]

Records carry an id (``rec-<category>-<n>``) and an e-mail address; every
``--traceback-every``-th record is logged with ``logger.exception``.  The manifest gets
one JSON line per record: its id and ``record.created``, so tests can tell what time
each record was written with.  Rollovers are forced like a midnight would force them:
each renames the file to the suffix of a different day (``app.log.<day>``).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import subprocess
import sys
import time
from pathlib import Path

DAY = 86_400
NEVER = 2**62  # a rolloverAt no clock reaches


class _Manifest(logging.Filter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.out = path.open("a")

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", f"req-{record.rid}")  # type: ignore[attr-defined]
        self.out.write(json.dumps({"id": record.rid, "created": record.created}) + "\n")  # type: ignore[attr-defined]
        self.out.flush()
        return True


def write(path: Path, fmt: str, manifest: Path, **options: object) -> None:
    """Run this writer as a process: ``options`` are its flags (``count=10`` is
    ``--count 10``, ``json_message=True`` is ``--json-message``)."""
    args = [sys.executable, "-m", "tests.support.writer", "--path", str(path)]
    args += ["--format", fmt, "--manifest", str(manifest)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    root = Path(__file__).resolve().parents[2]
    subprocess.run(args, check=True, cwd=root)


def make_handler(args: argparse.Namespace) -> logging.handlers.TimedRotatingFileHandler:
    Path(args.path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.TimedRotatingFileHandler(
        args.path, when="midnight", backupCount=args.backup_count
    )
    handler.suffix = args.suffix
    handler.setFormatter(logging.Formatter(args.format, args.datefmt))
    hold_midnight(handler)
    return handler


def hold_midnight(handler: logging.handlers.TimedRotatingFileHandler) -> None:
    """Let the handler roll over only when a test forces it: a run that crosses the
    wall clock's midnight would otherwise add a rotation the test did not plan."""
    handler.rolloverAt = NEVER


def force_rollover(handler: logging.handlers.TimedRotatingFileHandler, day: int) -> None:
    """Roll over as at the midnight that ends ``day`` days after 2024-01-01."""
    base = time.mktime((2024, 1, 1, 0, 0, 0, 0, 0, -1))
    handler.rolloverAt = int(base) + (day + 1) * DAY
    handler.doRollover()
    hold_midnight(handler)  # doRollover armed it for the next real midnight


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--category", default="app")
    parser.add_argument("--format", required=True)
    parser.add_argument("--datefmt", default=None)
    parser.add_argument("--suffix", default="%Y%m%d")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--rollovers", type=int, default=0)
    parser.add_argument("--first-day", type=int, default=0)
    parser.add_argument("--backup-count", type=int, default=0)
    parser.add_argument("--traceback-every", type=int, default=0)
    parser.add_argument("--json-message", action="store_true")
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--manifest", required=True)
    args = parser.parse_args()

    handler = make_handler(args)
    handler.addFilter(_Manifest(Path(args.manifest)))
    logger = logging.getLogger(args.category)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    every = args.count // (args.rollovers + 1) if args.rollovers else 0
    day = args.first_day
    for n in range(args.start, args.start + args.count):
        rid = f"rec-{args.category}-{n}"
        email = f"user.{n}+tag@mail{n % 7}.example.com"
        extra = {"rid": rid}
        if args.json_message:
            message = json.dumps(
                {
                    "id": rid,
                    "url": f"/api/items/{n}",
                    "method": "GET",
                    "statusCode": 200,
                    "client": {"email": email},
                    "processedTime": n % 97,
                }
            )
        else:
            message = f"{rid} query by {email} took {n % 97}ms"
        if args.traceback_every and n % args.traceback_every == args.traceback_every - 1:
            try:
                {}["missing"]
            except KeyError:
                try:
                    raise ValueError(f"lookup failed for {email}")
                except ValueError:
                    logger.exception(message, extra=extra)
        else:
            logger.info(message, extra=extra)
        if every and (n - args.start + 1) % every == 0 and day - args.first_day < args.rollovers:
            force_rollover(handler, day)
            day += 1
        if args.interval:
            time.sleep(args.interval)
    handler.close()


if __name__ == "__main__":
    main()
