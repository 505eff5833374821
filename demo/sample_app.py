"""A sample web app's logging, the way the shipper meets it in production.

    python -m demo.sample_app --logs DIR --seconds 5 --status written.json

Two categories, each through its own ``TimedRotatingFileHandler(when="midnight")``
with the ``%Y%m%d`` suffix: ``app`` logs one JSON request summary per line (with the
client's e-mail address) and now and then a ``logger.exception`` traceback; ``db``
logs the SQL it runs, addresses included.  Midnight is forced every few seconds, so
the demo sees real rotations: the handler renames ``app.log`` to ``app.log.<day>``
and opens a new file, exactly as at a real midnight.  ``--status`` gets the number of
records written per category, kept current while it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import random
import time
from pathlib import Path

APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
APP_DATEFMT = "%Y-%m-%d %H:%M:%S"
DB_FORMAT = (
    "%(asctime)s [pid:%(process)d] %(filename)s(line:%(lineno)d) %(levelname)s "
    "[%(request_id)s] %(message)s"
)
DAY = 86_400
USERS = [
    "alice.kim@example.com",
    "bob.lee+orders@mail.example.org",
    "carol@shop.example.net",
    "dae-jung.park@example.co.kr",
]
PATHS = ["/api/orders", "/api/cart", "/api/users/me", "/api/search"]


def handler_for(
    path: Path, fmt: str, datefmt: str | None
) -> logging.handlers.TimedRotatingFileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight", backupCount=7)
    handler.suffix = "%Y%m%d"
    handler.setFormatter(logging.Formatter(fmt, datefmt))
    return handler


def logger_for(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def midnight(handlers: list[logging.handlers.TimedRotatingFileHandler], day: int) -> None:
    """Roll every handler over as at the midnight ending ``day`` days ago."""
    ended = time.time() - day * DAY
    start_of_day = time.mktime((*time.localtime(ended)[:3], 0, 0, 0, 0, 0, -1))
    for handler in handlers:
        handler.rolloverAt = int(start_of_day) + DAY
        handler.doRollover()


def write_status(path: Path, written: dict[str, int], done: bool) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**written, "done": done}))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, required=True, help="the log root")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to write")
    parser.add_argument("--rate", type=float, default=120.0, help="requests per second")
    parser.add_argument("--rollovers", type=int, default=2, help="forced midnights")
    parser.add_argument("--status", type=Path, required=True, help="records written, as JSON")
    args = parser.parse_args()

    app_handler = handler_for(args.logs / "app" / "app.log", APP_FORMAT, APP_DATEFMT)
    db_handler = handler_for(args.logs / "db" / "db.log", DB_FORMAT, None)
    app = logger_for("app", app_handler)
    db = logger_for("db", db_handler)
    rng = random.Random(7)
    written = {"app": 0, "db": 0}
    started = time.monotonic()
    next_midnight = args.seconds / (args.rollovers + 1)
    days_back = args.rollovers
    n = 0
    while time.monotonic() - started < args.seconds:
        n += 1
        email = rng.choice(USERS)
        request_id = f"req-{n:05d}"
        summary = {
            "url": f"{rng.choice(PATHS)}?page={n % 5}",
            "method": rng.choice(["GET", "GET", "POST"]),
            "statusCode": 200,
            "client": {"email": email, "ip": f"10.0.{n % 7}.{n % 250}"},
            "processedTime": round(rng.uniform(2, 80), 1),
        }
        if n % 40 == 0:
            try:
                raise LookupError(f"no cart for {email}")
            except LookupError:
                summary["statusCode"] = 500
                summary["errorDetail"] = "cart lookup failed"
                app.exception(json.dumps(summary))
        else:
            app.info(json.dumps(summary))
        written["app"] += 1
        if n % 3 == 0:
            db.info(
                "SELECT id, total FROM orders WHERE customer_email = '%s' LIMIT 20",
                email,
                extra={"request_id": request_id},
            )
            written["db"] += 1
        if n % 25 == 0:
            write_status(args.status, written, done=False)
        if days_back > 0 and time.monotonic() - started >= next_midnight:
            midnight([app_handler, db_handler], days_back)
            days_back -= 1
            next_midnight += args.seconds / (args.rollovers + 1)
        time.sleep(1.0 / args.rate)
    app_handler.close()
    db_handler.close()
    write_status(args.status, written, done=True)


if __name__ == "__main__":
    main()
