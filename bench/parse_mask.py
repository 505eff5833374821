"""CPU cost of parsing, rendering and masking, per million lines, for each format.

    PYTHONPATH=. python -m bench.parse_mask [--lines 200000] [--all-detectors]

Lines are written by the standard library's ``logging`` (and python-json-logger /
structlog for JSON lines) into memory, one in ten with an e-mail address and one in
fifty with a traceback, like the apps of SPEC §2.  Each stage is timed with
``time.process_time``; the figures are printed, not judged.

- parse: lines -> records (format regex, times, multi-line assembly)
- render: records -> JSON text (with masking off)
- mask: the masker over the rendered texts
- total: records -> masked events, as the pipeline does it (render + key rules + mask)
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from shipper.config import MASK_DETECTORS, MaskingConfig
from shipper.mask import Masker, masker_for
from shipper.multiline import Assembler
from shipper.parse import PRESETS, build_parser
from shipper.records import Record
from shipper.render import Renderer

APP = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
DB = (
    "%(asctime)s [pid:%(process)d] %(filename)s(line:%(lineno)d) %(levelname)s "
    "[%(request_id)s] %(message)s"
)
BRACE = "{asctime} {levelname:<8} {name} {lineno:>5d} [{request_id}] {message}"


class _Where:
    category = "bench"
    path = "bench.log"

    def delivered(self, offset: int) -> None:
        pass


def _fail() -> None:
    raise ValueError("payment declined")


def app_calls(log: logging.Logger, count: int) -> None:
    extra = {
        "request_id": "5f1c2a9e",
        "status_code": 200,
        "request_time": 0.0123,
        "client_addr": "10.0.0.7:51234",
        "request_line": "GET /v1/orders?page=2 HTTP/1.1",
    }
    for n in range(count):
        if n % 50 == 49:
            try:
                _fail()
            except ValueError:
                log.exception("checkout failed", extra=extra)
            continue
        body: dict[str, Any] = {
            "url": f"/v1/orders/{n}",
            "method": "GET",
            "statusCode": 200,
            "processedTime": 0.021,
        }
        if n % 10 == 0:
            body["client"] = {"email": f"user.{n}+tag@example.com"}
        log.info(json.dumps(body), extra=extra)


def written(formatter: logging.Formatter, count: int) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"bench.{id(formatter)}")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    app_calls(logger, count)
    return stream.getvalue().splitlines()


def structlog_lines(count: int) -> list[str]:
    import structlog

    stream = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
    )
    for n in range(count):
        email = f"user.{n}+tag@example.com" if n % 10 == 0 else None
        logger.info("order.viewed", order=n, status=200, email=email)
    return stream.getvalue().splitlines()


def json_logger_lines(count: int) -> list[str]:
    from pythonjsonlogger.json import JsonFormatter

    return written(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"), count)


# name -> (source format, datefmt, style, how the lines are written)
CASES: dict[str, tuple[str, str | None, str, Callable[[int], list[str]]]] = {
    "spec-app (%, datefmt)": (
        APP,
        "%Y-%m-%d %H:%M:%S",
        "%",
        lambda n: written(logging.Formatter(APP, "%Y-%m-%d %H:%M:%S"), n),
    ),
    "spec-db (%, default asctime)": (DB, None, "%", lambda n: written(logging.Formatter(DB), n)),
    "brace-style": (BRACE, None, "{", lambda n: written(logging.Formatter(BRACE, style="{"), n)),
    "uvicorn_access preset": (
        "uvicorn_access",
        None,
        "%",
        lambda n: written(logging.Formatter(PRESETS["uvicorn_access"].fmt), n),
    ),
    "json (python-json-logger)": ("json", None, "%", json_logger_lines),
    "json (structlog)": ("json", None, "%", structlog_lines),
}


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def assemble(fmt: str, datefmt: str | None, style: str, lines: list[str]) -> list[Record]:
    assembler = Assembler(build_parser(fmt, datefmt, "Asia/Seoul", style), 1000)
    records = assembler.feed([(line, n) for n, line in enumerate(lines)], 0)
    last = assembler.flush()
    return records + ([last] if last else [])


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--lines", type=int, default=200_000)
    options.add_argument(
        "--all-detectors", action="store_true", help="every detector on (partial), not just e-mail"
    )
    args = options.parse_args()
    config = MaskingConfig()
    if args.all_detectors:
        config = MaskingConfig(**dict.fromkeys(MASK_DETECTORS, "partial"))  # type: ignore[arg-type]
    masker = masker_for(config, env={})
    where = _Where()
    per_million = 1_000_000 / args.lines
    print(f"{args.lines} lines per format; CPU seconds per million lines")
    print(f"masking: {'every detector' if args.all_detectors else 'e-mail'} + key rules")
    print(f"{'format':32} {'parse':>7} {'render':>7} {'mask':>7} {'total':>7}  events")
    for name, (fmt, datefmt, style, make) in CASES.items():
        lines = make(args.lines)[: args.lines]
        parse_s, records = timed(lambda: assemble(fmt, datefmt, style, lines))  # noqa: B023
        json_lines = fmt == "json"
        plain = Renderer("bench", "json", Masker("off"), json_lines)
        render_s, texts = timed(lambda: [plain.event(r, where).message for r in records])  # noqa: B023
        mask_s, _ = timed(lambda: [masker.mask(t) for t in texts])  # noqa: B023
        full = Renderer("bench", "json", masker, json_lines)
        full_s, events = timed(lambda: [full.event(r, where) for r in records])  # noqa: B023
        total = parse_s + full_s
        print(
            f"{name:32} {parse_s * per_million:7.2f} {render_s * per_million:7.2f} "
            f"{mask_s * per_million:7.2f} {total * per_million:7.2f}  {len(events)}"
        )


if __name__ == "__main__":
    main()
