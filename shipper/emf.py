"""Metrics from the logs, as CloudWatch Embedded Metric Format (EMF) events.

Pure aggregation: records in (their parsed fields, time and traceback), EMF event
messages out; no I/O, and every time is a parameter.

Per category and interval (``metrics.interval`` seconds, by the records' own times):

- for a source with ``requests``, per route: ``Requests``, ``Errors4xx``,
  ``Errors5xx`` (Count) and ``Latency`` (Milliseconds, as values with counts, so
  CloudWatch computes percentiles), with the dimension sets ``[Category]`` and
  ``[Category, Route]``.  A route is the method and templated path (``GET
  /users/{id}/orders``); past ``max_routes`` routes in a category, ``other``.
- for every source: ``Exceptions`` (Count) with ``[Category]`` and ``[Category,
  Exception]`` (the final exception's type as written), and ``Errors`` and
  ``Warnings`` (records at those levels) with ``[Category]``.

Latencies are bucketed on a logarithmic scale whose representative value is within
:data:`BUCKET_ERROR` of every latency in the bucket, so a percentile read from the
values is within that of the true one.  EMF allows at most :data:`MAX_VALUES` values
per metric in an event: a route's latencies spread over as many events as needed.

An interval is emitted once a record of a later interval was seen, or once the wall
clock is past its end by :data:`CLOSE_GRACE_MS`, and at shutdown (:meth:`drain`).  A
record that arrives for an interval already emitted opens it again; CloudWatch sums
what two events say of one minute, so nothing is counted twice or lost (the same holds
when a restart emits a minute again).  What a crash loses is the open intervals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

from shipper.config import RequestsConfig
from shipper.records import EVENT_OVERHEAD, Event, Fields, FileEvents, Line, Record, utf8_len

# EMF: a metric's array holds at most 100 values.
MAX_VALUES = 100
# Relative error of a bucketed latency (the percentiles read from the values inherit it).
BUCKET_ERROR = 0.02
# Kept a little under BUCKET_ERROR so that rounding the representative stays within it.
_ALPHA = 0.019
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
# An interval whose end the wall clock passed this long ago is complete: the live
# file's records of it have been read (a record waits at most a moment for its lines).
CLOSE_GRACE_MS = 10_000
OTHER_ROUTE = "other"
# EMF: a dimension value holds at most this many characters.
MAX_DIMENSION_CHARS = 1024
ID_SEGMENT = "{id}"

# Where a record's request facts are looked for when the source does not name them.
AUTO_ROUTE = ("request_line", "url", "path")
AUTO_METHOD = ("method", "request_method")
AUTO_STATUS = ("status_code", "statusCode", "status")
AUTO_DURATION = ("request_time", "processedTime", "duration")
LEVEL_KEYS = ("levelname", "level")
# Fields of JSON loggers that carry a formatted traceback.
TRACEBACK_KEYS = ("exc_info", "exception", "stack_trace", "traceback")

_HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT")
)
# A whole path segment (between slashes, or the path's ends) that identifies something:
# digits, a UUID, long hex, or anything holding an @ (written or %40-encoded).
_ID_SEGMENTS = re.compile(
    r"(?<![^/])"
    r"(?:[0-9]+|[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}|[0-9a-fA-F]{16,}"
    r"|[^/]*(?:@|%40)[^/]*)"
    r"(?![^/])"
)
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*")
_EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*)(?::|$)")
_TRACEBACK_HEAD = "Traceback (most recent call last):"


# --------------------------------------------------------------------------- routes


def template_path(path: str) -> str:
    """``path`` with its query dropped and its identifying segments (digits, UUIDs,
    long hex, anything holding an ``@``) replaced by ``{id}``."""
    path = path.partition("?")[0].partition("#")[0]
    return _ID_SEGMENTS.sub(ID_SEGMENT, path) or "/"


def route_of(target: str, method: str | None = None) -> str:
    """The route of a request line (``GET /users/7?x=1 HTTP/1.1``), a path or a URL,
    with ``method`` when the text holds none: ``GET /users/{id}``."""
    parts = target.split()
    if len(parts) >= 2 and parts[0].upper() in _HTTP_METHODS:
        method, target = parts[0], parts[1]
    elif parts:
        target = parts[0]
    if "://" in target:
        target = urlsplit(target).path
    path = template_path(target)
    return f"{method.upper()} {path}" if method else path


# --------------------------------------------------------------------------- latency


def bucket(milliseconds: float) -> float:
    """The representative of ``milliseconds``'s bucket: within BUCKET_ERROR of it."""
    if milliseconds <= 0:
        return 0.0
    index = math.ceil(math.log(milliseconds) / _LOG_GAMMA)
    # The bucket (gamma^(i-1), gamma^i]; this point is at most _ALPHA from both ends.
    return float(f"{2 * _GAMMA**index / (_GAMMA + 1):.6g}")


def duration_ms(value: Any, unit: str | None) -> float | None:
    """A duration field's value in milliseconds: ``unit`` (s | ms) if set, else the
    value's suffix (``12ms``, ``0.5s``), else seconds.  None when it is no duration."""
    suffix = None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            return None
        number, suffix = float(match[1]), match[2]
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number if (unit or suffix or "s") == "ms" else number * 1000.0


# --------------------------------------------------------------------------- records


def exception_type(lines: Iterable[str]) -> str | None:
    """The type of a traceback's final exception, as written (``ZeroDivisionError``,
    ``sqlalchemy.exc.OperationalError``); None without a traceback."""
    found = None
    in_traceback = False
    for line in lines:
        if line.startswith(_TRACEBACK_HEAD):
            in_traceback, found = True, None  # a later (chained) exception is the final one
            continue
        if in_traceback and line and not line[0].isspace():
            match = _EXCEPTION_LINE.match(line)
            if match is not None:
                found = match[1]
            in_traceback = False
    return found


def _as_dict(fields: Fields) -> dict[str, Any]:
    if fields is None:
        return {}
    if isinstance(fields, msgspec.Struct):
        return msgspec.structs.asdict(fields)
    return fields


def _message_object(fields: dict[str, Any]) -> dict[str, Any]:
    """The record's message when it is a JSON object (a request summary), else {}."""
    message = fields.get("message")
    if isinstance(message, msgspec.Raw):
        try:
            message = msgspec.json.decode(message)
        except msgspec.DecodeError:
            return {}
    return message if isinstance(message, dict) else {}


@dataclass(frozen=True)
class Request:
    route: str
    status: int | None
    latency_ms: float | None


def _first(places: Sequence[dict[str, Any]], names: Sequence[str]) -> Any:
    for place in places:
        for name in names:
            value = place.get(name)
            if value is not None:
                return value
    return None


def parse_request(fields: dict[str, Any], spec: RequestsConfig) -> Request | None:
    """The request a record's fields describe; None when they name no route."""
    places = (fields, _message_object(fields))
    target = _first(places, (spec.route,) if spec.route else AUTO_ROUTE)
    if not isinstance(target, str) or not target.strip():
        return None
    method = _first(places, AUTO_METHOD)
    route = route_of(target, method if isinstance(method, str) and method else None)
    status_value = _first(places, (spec.status,) if spec.status else AUTO_STATUS)
    status = None
    if isinstance(status_value, int) and not isinstance(status_value, bool):
        status = status_value
    elif isinstance(status_value, str) and status_value[:3].isdigit():
        status = int(status_value[:3])
    duration = _first(places, (spec.duration,) if spec.duration else AUTO_DURATION)
    latency = duration_ms(duration, spec.duration_unit) if duration is not None else None
    return Request(route, status, latency)


# --------------------------------------------------------------------------- aggregates


@dataclass
class RouteStats:
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency: dict[float, int] = field(default_factory=dict)  # bucket -> count


@dataclass
class IntervalStats:
    """What one interval of one category holds so far."""

    routes: dict[str, RouteStats] = field(default_factory=dict)
    exceptions: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    warnings: int = 0
    records: int = 0


class Aggregator:
    """One category's metrics, per interval of its records' times.

    Sources of one category share it (their routes count against one ``max_routes``).
    """

    def __init__(
        self,
        namespace: str,
        category: str,
        interval_s: int,
        max_routes: int,
        mask: Callable[[str], str] = str,
    ) -> None:
        self.namespace = namespace
        self.category = category
        self.interval_ms = interval_s * 1000
        self.max_routes = max_routes
        self.mask = mask
        self.routes: set[str] = set()  # routes with their own name (at most max_routes)
        self.open: dict[int, IntervalStats] = {}  # interval start (ms) -> its stats
        self.latest_ms: int | None = None  # the latest record time seen

    def observe(self, records: Sequence[Record | Line], requests: RequestsConfig | None) -> None:
        """Count ``records`` (``requests``: where they hold request facts, None: they
        are no requests)."""
        for record in records:
            if isinstance(record, Record):
                fields, timestamp, extra = record.fields, record.timestamp, record.extra
                if record.part > 1:
                    continue  # a later part of a long line: its record was counted
            else:
                _, fields, timestamp, _ = record
                extra = []
            self.observe_one(_as_dict(fields), timestamp, extra, requests)

    def observe_one(
        self,
        fields: dict[str, Any],
        timestamp_ms: int,
        traceback: Sequence[str],
        requests: RequestsConfig | None,
    ) -> None:
        start = timestamp_ms - timestamp_ms % self.interval_ms
        stats = self.open.get(start)
        if stats is None:
            stats = self.open[start] = IntervalStats()
        if self.latest_ms is None or timestamp_ms > self.latest_ms:
            self.latest_ms = timestamp_ms
        stats.records += 1
        level = _first((fields,), LEVEL_KEYS)
        if isinstance(level, str):
            level = level.upper()
            if level in ("ERROR", "CRITICAL", "FATAL"):
                stats.errors += 1
            elif level in ("WARNING", "WARN"):
                stats.warnings += 1
        kind = exception_type(traceback) if traceback else None
        if kind is None:
            for key in TRACEBACK_KEYS:
                text = fields.get(key)
                if isinstance(text, str) and _TRACEBACK_HEAD in text:
                    kind = exception_type(text.splitlines())
                    break
        if kind is not None:
            stats.exceptions[kind] = stats.exceptions.get(kind, 0) + 1
        if requests is not None:
            request = parse_request(fields, requests)
            if request is not None:
                self._count(stats, request)

    def _count(self, stats: IntervalStats, request: Request) -> None:
        route = request.route
        if route not in self.routes:
            if len(self.routes) < self.max_routes:
                self.routes.add(route)
            else:
                route = OTHER_ROUTE
        each = stats.routes.get(route)
        if each is None:
            each = stats.routes[route] = RouteStats()
        each.requests += 1
        if request.status is not None:
            if 400 <= request.status < 500:
                each.errors_4xx += 1
            elif request.status >= 500:
                each.errors_5xx += 1
        if request.latency_ms is not None:
            value = bucket(request.latency_ms)
            each.latency[value] = each.latency.get(value, 0) + 1

    # ------------------------------------------------------------------ emitting

    def take_closed(self, now_ms: int) -> list[Event]:
        """The EMF events of the intervals that are complete: a later record was seen,
        or the wall clock (``now_ms``) passed their end by CLOSE_GRACE_MS."""
        closed = [
            start
            for start in self.open
            if (self.latest_ms is not None and self.latest_ms >= start + self.interval_ms)
            or now_ms >= start + self.interval_ms + CLOSE_GRACE_MS
        ]
        return self._emit(sorted(closed))

    def drain(self) -> list[Event]:
        """The EMF events of every interval held (at shutdown)."""
        return self._emit(sorted(self.open))

    def _emit(self, starts: list[int]) -> list[Event]:
        events: list[Event] = []
        for start in starts:
            stats = self.open.pop(start)
            events.extend(Event(start, message) for message in self.documents(start, stats))
        return events

    def documents(self, start_ms: int, stats: IntervalStats) -> list[str]:
        """One interval's EMF events, as JSON text."""
        category = self.mask(self.category)
        out = []
        levels = {"Errors": stats.errors, "Warnings": stats.warnings}
        out.append(self._document(start_ms, [["Category"]], {"Category": category}, levels, {}))
        for kind, count in sorted(stats.exceptions.items()):
            out.append(
                self._document(
                    start_ms,
                    [["Category"], ["Category", "Exception"]],
                    {"Category": category, "Exception": self.mask(kind)},
                    {"Exceptions": count},
                    {},
                )
            )
        for route, each in sorted(stats.routes.items()):
            dims = {"Category": category, "Route": self.mask(route)}
            sets = [["Category"], ["Category", "Route"]]
            counts = {
                "Requests": each.requests,
                "Errors4xx": each.errors_4xx,
                "Errors5xx": each.errors_5xx,
            }
            # At most MAX_VALUES latency values an event: the first carries the counts too.
            values = sorted(each.latency.items())
            chunks = [values[i : i + MAX_VALUES] for i in range(0, len(values), MAX_VALUES)]
            out.append(self._document(start_ms, sets, dims, counts, _latency(chunks[0:1])))
            for chunk in chunks[1:]:
                out.append(self._document(start_ms, sets, dims, {}, _latency([chunk])))
        return out

    def _document(
        self,
        start_ms: int,
        dimension_sets: list[list[str]],
        dimensions: dict[str, str],
        counts: dict[str, int],
        latency: dict[str, Any],
    ) -> str:
        metrics = [{"Name": name, "Unit": "Count"} for name in counts]
        if latency:
            metrics.append({"Name": "Latency", "Unit": "Milliseconds"})
        document = {
            "_aws": {
                "Timestamp": start_ms,
                "CloudWatchMetrics": [
                    {"Namespace": self.namespace, "Dimensions": dimension_sets, "Metrics": metrics}
                ],
            },
            **{name: value[:MAX_DIMENSION_CHARS] for name, value in dimensions.items()},
            **counts,
            **latency,
        }
        return msgspec.json.encode(document).decode()


def _latency(chunks: list[list[tuple[float, int]]]) -> dict[str, Any]:
    """The ``Latency`` member of an event carrying the first of ``chunks`` (none: {}),
    in EMF's values-with-counts form."""
    if not chunks:
        return {}
    values, counts = zip(*chunks[0], strict=True)
    return {"Latency": {"Values": list(values), "Counts": list(counts)}}


# --------------------------------------------------------------------------- shipping


class MetricsPosition:
    """The position EMF events are acknowledged at: none (they come from no file)."""

    def __init__(self, category: str) -> None:
        self.category = category
        self.path = f"<metrics {category}>"

    def delivered(self, offset: int) -> None:
        pass  # a metric delivered moves no file's offset


def file_events(position: MetricsPosition, events: list[Event]) -> FileEvents:
    """``events`` as a stream takes them (sizes counted as for log events)."""
    step = FileEvents(position)
    for event in sorted(events, key=lambda e: e.timestamp):
        step.events.append(event)
        step.sizes.append(utf8_len(event.message) + EVENT_OVERHEAD)
        step.ends.append(0)
    return step
