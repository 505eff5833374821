"""Writes the benchmark's log file: an app's lines in the format the applications use.

    [INFO] 2026-11-21 09:14:03 views.py:118 {"url": "/api/orders/812", "method": "GET", ...}

Every line carries an e-mail address (``client.email`` in the JSON message, or in the
text of the few plain-text lines), lines average about 213 bytes, and one record in
about 400 has a Python traceback after it (continuation lines).  The file is built
with plain string formatting, not through ``logging``, so that two million lines take
seconds.  Alongside it goes ``<file>.json``: how many lines, records (= the events the
shipper must deliver) and bytes it holds.

    python -m bench.generate --lines 2000000 --out /tmp/bench/app.log
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
ZONE = "Asia/Seoul"

_URLS = (
    "/api/orders/{n}",
    "/api/users/{n}",
    "/cart",
    "/api/pay/{n}",
    "/api/search?page={n}",
    "/health",
    "/api/stock/{n}",
    "/api/login",
)
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH")
_STATUSES = (200, 200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 500, 502)
_ERRORS = {
    400: "invalid field 'quantity'",
    401: "token expired",
    403: "permission denied for resource",
    404: "not found",
    409: "version conflict, retry",
    500: "unexpected error in handler",
    502: "upstream timed out",
}
_FILES = (("views.py", 118), ("views.py", 240), ("app.py", 57), ("auth.py", 33))
_LEVELS = {200: "INFO", 201: "INFO", 204: "INFO", 301: "INFO"}
_NAMES = ("kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim")
_DOMAINS = ("example.com", "mail.example.org", "corp.example.co.kr", "example.net")
_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/views.py", line 240, in handle\n'
    "    result = service.process(order)\n"
    "             ^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/srv/app/orders.py", line 57, in process\n'
    '    raise ValueError(f"order {order.id} for {order.email} cannot be processed")\n'
    "ValueError: order {n} for {email} cannot be processed\n"
)
TRACEBACK_EVERY = 400  # about one record in this many has a traceback
PLAIN_EVERY = 50  # about one record in this many has a plain-text message


def email(rng: random.Random) -> str:
    return f"{rng.choice(_NAMES)}.{rng.randrange(10000)}@{rng.choice(_DOMAINS)}"


def record(rng: random.Random, stamp: str) -> tuple[str, int]:
    """One record's text (with its newline) and how many lines it has."""
    status = rng.choice(_STATUSES)
    level = _LEVELS.get(status, "WARNING" if status < 500 else "ERROR")
    filename, lineno = rng.choice(_FILES)
    address = email(rng)
    if rng.randrange(PLAIN_EVERY) == 0:
        message = f"session refreshed for {address} after {rng.randrange(1, 900)} s idle"
    else:
        fields = {
            "url": rng.choice(_URLS).format(n=rng.randrange(1, 99999)),
            "method": rng.choice(_METHODS),
            "statusCode": status,
            "errorDetail": _ERRORS.get(status),
            "client": {"email": address, "app": rng.choice(("ios", "web"))},
            "processedTime": round(rng.expovariate(1 / 0.08), 3),
        }
        message = json.dumps(fields)
    text = f"[{level}] {stamp} {filename}:{lineno} {message}\n"
    if rng.randrange(TRACEBACK_EVERY) == 0:
        text += _TRACEBACK.replace("{n}", str(rng.randrange(99999))).replace("{email}", address)
        return text, 1 + _TRACEBACK.count("\n")
    return text, 1


def generate(
    path: Path, lines: int, zone: str = ZONE, seed: int = 7, per_second: int = 2000
) -> dict[str, int]:
    """Write at least ``lines`` lines to ``path``; return its lines, records and bytes.

    Times start a little over an hour ago (so CloudWatch would accept every event) and
    advance one second per ``per_second`` records, written in the local time of
    ``zone`` as the applications write them.
    """
    tz = ZoneInfo(zone)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = records = nbytes = 0
    start = int(time.time()) - 3600 - lines // per_second
    with path.open("w", encoding="utf-8", newline="\n") as out:
        second = -1
        stamp = ""
        block: list[str] = []
        while written < lines:
            if records // per_second != second:
                second = records // per_second
                stamp = datetime.fromtimestamp(start + second, tz).strftime(DATEFMT)
            text, count = record(rng, stamp)
            block.append(text)
            written += count
            records += 1
            if len(block) == 4096:
                nbytes += out.write("".join(block))
                block.clear()
        nbytes += out.write("".join(block))
    # Plain text with ASCII only: characters written are bytes written.
    return {"lines": written, "records": records, "bytes": nbytes}


def ensure(path: Path, lines: int) -> dict[str, int]:
    """The file at ``path`` with ``lines`` lines, written unless it already exists."""
    meta_path = path.with_name(path.name + ".json")
    if path.exists() and meta_path.exists():
        meta: dict[str, int] = json.loads(meta_path.read_text())
        if meta.get("requested") == lines and path.stat().st_size == meta["bytes"]:
            return meta
    meta = generate(path, lines)
    meta["requested"] = lines
    meta_path.write_text(json.dumps(meta))
    return meta


def file_from_arguments(description: str, lines: int) -> Path:
    """For the prototypes: the benchmark file that ``--lines`` (default ``lines``) and
    ``--data`` (a folder) name, written unless it exists."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lines", type=int, default=lines)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "shipper-bench")
    args = parser.parse_args()
    path: Path = args.data / f"app-{args.lines}.log"
    ensure(path, args.lines)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    meta = ensure(args.out, args.lines)
    took = time.perf_counter() - started
    print(
        f"{args.out}: {meta['lines']:,} lines, {meta['records']:,} records, "
        f"{meta['bytes'] / 1e6:.1f} MB, {meta['bytes'] / meta['lines']:.0f} bytes/line "
        f"({took:.1f} s)"
    )


if __name__ == "__main__":
    main()
