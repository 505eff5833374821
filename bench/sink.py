"""A fast local CloudWatch Logs API for the benchmark: accepts, checks and counts.

It speaks the JSON 1.1 protocol as aiobotocore sends it (``POST /`` with an
``X-Amz-Target: Logs_20140328.<Operation>`` header) for CreateLogGroup,
CreateLogStream, PutRetentionPolicy, DescribeLogStreams and PutLogEvents, and
checks every PutLogEvents against the API's rules: at most 10,000 events and
1,048,576 bytes (UTF-8 message bytes plus 26 per event), events in chronological
order, spanning at most 24 hours.  A call breaking a rule is answered the way the
service answers it (``InvalidParameterException``, HTTP 400) and counted as a
violation; its events are not counted as delivered.

It keeps no messages unless asked (``--keep FILE``, for latency runs; ``--ids REGEX``
counts each id the pattern's two groups name, a prefix and a number, so a long run
can tell lost and duplicated events without keeping them); it stores
each accepted call's arrival time and event count.  It runs in its own process, so
its CPU is not the shipper's, and talks to its parent through stdout, one JSON
object a line:

    {"listening": PORT}
    {"reached": N, "at": EPOCH_SECONDS, ...stats}   once N events have arrived (--expect N)

``GET /stats`` returns the same statistics at any time.

    python -m bench.sink --expect 2000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

TARGET_PREFIX = "Logs_20140328."
MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_SPAN_MS = 24 * 3600 * 1000


class LogEvent(msgspec.Struct):
    timestamp: int
    message: str


class PutLogEvents(msgspec.Struct, rename="camel"):
    log_group_name: str
    log_stream_name: str
    log_events: list[LogEvent]
    sequence_token: str | None = None


_decode_put = msgspec.json.Decoder(PutLogEvents).decode


def batch_problem(events: list[LogEvent]) -> str | None:
    """Which PutLogEvents rule a call's events break, or None when they obey all."""
    if not events:
        return "no events"
    if len(events) > MAX_EVENTS:
        return f"{len(events)} events, more than {MAX_EVENTS}"
    size = batch_bytes(events)
    if size > MAX_BYTES:
        return f"{size} bytes, more than {MAX_BYTES}"
    previous = events[0].timestamp
    for index, event in enumerate(events):
        if event.timestamp < previous:
            return f"event {index} is older than the one before it (not chronological)"
        previous = event.timestamp
    span = events[-1].timestamp - events[0].timestamp
    if span > MAX_SPAN_MS:
        return f"events span {span} ms, more than 24 hours"
    return None


def batch_bytes(events: list[LogEvent]) -> int:
    """The size CloudWatch counts: UTF-8 message bytes plus 26 per event."""
    total = EVENT_OVERHEAD * len(events)
    for event in events:
        message = event.message
        total += len(message) if message.isascii() else len(message.encode("utf-8"))
    return total


@dataclass
class Sink:
    """What has arrived, per call and in total."""

    expect: int | None = None
    keep: Path | None = None
    delay: float = 0.0  # seconds each PutLogEvents takes: a slow CloudWatch
    events: int = 0
    bytes: int = 0
    calls: int = 0
    violations: list[str] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (time, events)
    kept: list[tuple[float, list[str]]] = field(default_factory=list)
    streams: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> stream -> n
    reached: bool = False
    ids: re.Pattern[str] | None = None
    seen: dict[str, bytearray] = field(default_factory=dict)  # prefix -> times seen by number

    def stats(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "bytes": self.bytes,
            "calls": self.calls,
            "violations": len(self.violations),
            "violation_examples": self.violations[:5],
            "first_at": self.first_at,
            "last_at": self.last_at,
            "ids": {prefix: _id_counts(seen) for prefix, seen in self.seen.items()},
        }

    def count_ids(self, events: list[LogEvent]) -> None:
        assert self.ids is not None
        for event in events:
            found = self.ids.search(event.message)
            if found is None:
                continue
            seen = self.seen.setdefault(found[1], bytearray())
            number = int(found[2])
            if number >= len(seen):
                seen.extend(bytes(number + 1 - len(seen)))
            seen[number] = min(seen[number] + 1, 255)

    def accept(self, request: PutLogEvents, at: float) -> dict[str, Any]:
        events = request.log_events
        problem = batch_problem(events)
        if problem is not None:
            self.violations.append(problem)
            return _error("InvalidParameterException", problem)
        group = self.streams.get(request.log_group_name)
        if group is None or request.log_stream_name not in group:
            return _error("ResourceNotFoundException", "The specified log stream does not exist.")
        self.calls += 1
        self.events += len(events)
        self.bytes += batch_bytes(events)
        group[request.log_stream_name] += len(events)
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        self.arrivals.append((at, len(events)))
        if self.keep is not None:
            self.kept.append((at, [e.message for e in events]))
        if self.ids is not None:
            self.count_ids(events)
        if self.expect is not None and not self.reached and self.events >= self.expect:
            self.reached = True
            self.report_reached()
        return {"body": {"nextSequenceToken": str(self.calls)}}

    def report_reached(self) -> None:
        if self.keep is not None:
            with self.keep.open("w") as out:
                for at, messages in self.kept:
                    for message in messages:
                        out.write(json.dumps([at, message]) + "\n")
        print(json.dumps({"reached": self.events, "at": self.last_at, **self.stats()}), flush=True)


def _id_counts(seen: bytearray) -> dict[str, int]:
    """Of the numbers 0..highest seen: how many arrived, how many more than once
    (the extra copies), the highest."""
    return {
        "distinct": len(seen) - seen.count(0),
        "duplicates": sum(seen) - (len(seen) - seen.count(0)),
        "highest": len(seen) - 1,
    }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"status": 400, "body": {"__type": code, "message": message}}


def _reply(result: dict[str, Any]) -> web.Response:
    return web.Response(
        body=json.dumps(result.get("body", {})).encode(),
        status=result.get("status", 200),
        content_type="application/x-amz-json-1.1",
    )


def build_app(sink: Sink) -> web.Application:
    async def api(request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        body = await request.read()
        at = time.time()
        if operation == "PutLogEvents":
            if sink.delay:
                await asyncio.sleep(sink.delay)
            try:
                put = _decode_put(body)
            except msgspec.ValidationError as exc:
                sink.violations.append(f"malformed request: {exc}")
                return _reply(_error("SerializationException", str(exc)))
            return _reply(sink.accept(put, at))
        params = json.loads(body or b"{}")
        if operation == "CreateLogGroup":
            if params["logGroupName"] in sink.streams:
                return _reply(_error("ResourceAlreadyExistsException", "group exists"))
            sink.streams[params["logGroupName"]] = {}
            return _reply({})
        if operation == "CreateLogStream":
            group = sink.streams.get(params["logGroupName"])
            if group is None:
                return _reply(_error("ResourceNotFoundException", "no such group"))
            if params["logStreamName"] in group:
                return _reply(_error("ResourceAlreadyExistsException", "stream exists"))
            group[params["logStreamName"]] = 0
            return _reply({})
        if operation == "PutRetentionPolicy":
            return _reply({})
        if operation == "DescribeLogStreams":
            group = sink.streams.get(params["logGroupName"], {})
            prefix = params.get("logStreamNamePrefix", "")
            found = [{"logStreamName": n} for n in group if n.startswith(prefix)]
            return _reply({"body": {"logStreams": found}})
        return _reply(_error("UnknownOperationException", f"not served here: {target!r}"))

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(sink.stats())

    app = web.Application(client_max_size=8 * MAX_BYTES)
    app.router.add_post("/", api)
    app.router.add_get("/stats", stats)
    return app


async def serve(sink: Sink, port: int) -> None:
    runner = web.AppRunner(build_app(sink), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    await web.SockSite(runner, sock).start()
    print(json.dumps({"listening": sock.getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expect", type=int, help="report once this many events arrived")
    parser.add_argument("--keep", type=Path, help="write (arrival, message) lines here")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per PutLogEvents")
    parser.add_argument("--ids", type=re.compile, help="count ids: (prefix)(number) groups")
    args = parser.parse_args()
    sink = Sink(expect=args.expect, keep=args.keep, delay=args.delay, ids=args.ids)
    try:
        asyncio.run(serve(sink, args.port))
    except KeyboardInterrupt:
        pass
    print(json.dumps({"final": True, **sink.stats()}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
