"""A strict CloudWatch Logs front for tests: an aiohttp server on 127.0.0.1 before moto.

moto stores whatever it is sent and never fails; the real service refuses batches
that break its rules and fails in several ways.  The front sits between the shipper
and the moto server and

- checks every PutLogEvents against the rules of SPEC §6 (at most 10,000 events and
  1,048,576 bytes counting UTF-8 message bytes plus 26 per event, each event at most
  1 MB, chronological order, a span of at most 24 hours, no empty message), answering
  a violation as the service does (400 ``InvalidParameterException``) and recording
  it in :attr:`StrictFront.violations`;
- injects faults on demand (:meth:`StrictFront.inject`): ``throttle``
  (``ThrottlingException``), ``unavailable`` (503 ``ServiceUnavailableException``, for
  every call), ``reset`` (the data is stored upstream, then the connection is cut
  before the answer), ``slow`` (the data is stored, the answer held back),
  ``invalid`` (a valid batch refused with ``InvalidParameterException``),
  ``refuse_group`` (a valid CreateLogGroup refused so), ``fail_retention``
  (PutRetentionPolicy answered 503); and, set up by their own
  methods, expired credentials (:meth:`expire_key`), legacy sequence tokens
  (:meth:`legacy_tokens`), events refused as expired (:meth:`expire_before`) and
  batches refused for one event's text (:meth:`refuse_messages_with`);
- refuses, as the service does, group and stream names its API reference does not
  allow (recorded in :attr:`violations` too: the shipper must never send one);
- records every other call's parameters (:attr:`requests`), STS's included, for the
  parameters moto ignores;
- counts every call by operation (:attr:`calls`) and the faults it served
  (:attr:`served`).

It runs its own event loop in a thread, so tests drive it with plain method calls
while the shipper runs as a process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
MAX_EVENT_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_SPAN_MS = 24 * 3600 * 1000
FAULT_KINDS = (
    "throttle", "unavailable", "reset", "slow", "invalid", "refuse_group", "fail_retention"
)  # fmt: skip
_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
_STREAM_NAME = re.compile(r"[^:*]{1,512}")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_JSON = "application/x-amz-json-1.1"


def check_put(params: dict[str, Any]) -> str | None:
    """The service's complaint about a PutLogEvents request, or None when it is valid."""
    events = params.get("logEvents")
    if not isinstance(events, list) or not events:
        return "logEvents must hold at least 1 event"
    if len(events) > MAX_EVENTS:
        return f"{len(events)} events: at most {MAX_EVENTS} are allowed in one call"
    total = 0
    previous = None
    for index, event in enumerate(events):
        message = event.get("message")
        if not isinstance(message, str) or not message:
            return f"logEvents[{index}].message is empty"
        size = len(message.encode("utf-8", "surrogatepass")) + EVENT_OVERHEAD
        if size > MAX_EVENT_BYTES:
            return f"logEvents[{index}] is {size} bytes: an event may hold {MAX_EVENT_BYTES}"
        total += size
        timestamp = event.get("timestamp")
        if not isinstance(timestamp, int):
            return f"logEvents[{index}].timestamp is not an integer"
        if previous is not None and timestamp < previous:
            return (
                "Log events in a single PutLogEvents request must be in chronological order."
                f" (logEvents[{index}])"
            )
        previous = timestamp
    if total > MAX_BYTES:
        return f"batch is {total} bytes: at most {MAX_BYTES} are allowed"
    span = events[-1]["timestamp"] - events[0]["timestamp"]
    if span > MAX_SPAN_MS:
        return f"a batch may span at most 24 hours; this one spans {span} ms"
    return None


@dataclass
class Fault:
    """One injected fault: served ``times`` times, or until ``until`` (monotonic)."""

    kind: str
    stream: str | None = None  # only calls for this log stream; None: every stream
    times: int | None = None
    until: float | None = None
    delay: float = 0.0  # for ``slow``

    def live(self, now: float) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return self.until is None or now < self.until


@dataclass
class Put:
    """A PutLogEvents call the upstream stored."""

    group: str
    stream: str
    events: int
    nbytes: int
    reset: bool = False  # stored, but the connection was cut before the answer
    slow: bool = False  # stored, and the answer held back


class StrictFront:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self.violations: list[str] = []
        self.calls: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.puts: list[Put] = []
        self.rejected_info: list[dict[str, int]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (operation, parameters)
        self._refused_text: str | None = None
        self._faults: list[Fault] = []
        self._expired_keys: set[str] = set()
        self._keys_seen: Counter[str] = Counter()
        self._expire_before: int | None = None
        self._legacy = False
        # (group, stream) -> (next expected token, last accepted token, its batch digest)
        self._tokens: dict[tuple[str, str], tuple[str | None, str | None, str | None]] = {}
        self._token_count = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ test controls

    def inject(
        self,
        kind: str,
        *,
        times: int | None = None,
        seconds: float | None = None,
        stream: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Serve ``kind`` to the next ``times`` matching calls, or for ``seconds``."""
        assert kind in FAULT_KINDS, kind
        assert times is not None or seconds is not None
        until = time.monotonic() + seconds if seconds is not None else None
        with self._lock:
            self._faults.append(Fault(kind, stream, times, until, delay))

    def expire_key(self, access_key: str) -> None:
        """Answer ``ExpiredTokenException`` to every call signed with ``access_key``."""
        with self._lock:
            self._expired_keys.add(access_key)

    def keys_seen(self) -> Counter[str]:
        """Calls per access key that signed them."""
        with self._lock:
            return Counter(self._keys_seen)

    def legacy_tokens(self, seed: dict[tuple[str, str], str] | None = None) -> None:
        """Demand sequence tokens as the service once did; ``seed``: streams with data."""
        with self._lock:
            self._legacy = True
            for key, token in (seed or {}).items():
                self._tokens[key] = (token, None, None)

    def expire_before(self, timestamp_ms: int | None) -> None:
        """Refuse events older than this as past the group's retention (expired)."""
        with self._lock:
            self._expire_before = timestamp_ms

    def refuse_messages_with(self, text: str | None) -> None:
        """Refuse as invalid every PutLogEvents holding an event whose message has ``text``."""
        with self._lock:
            self._refused_text = text

    def operations(self, name: str) -> list[dict[str, Any]]:
        """The parameters of every ``name`` call (not PutLogEvents) the front served."""
        with self._lock:
            return [params for operation, params in self.requests if operation == name]

    def put_count(self, stream: str | None = None) -> int:
        with self._lock:
            return sum(1 for p in self.puts if stream is None or p.stream == stream)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> StrictFront:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ serving

    def _take_fault(self, kind: str, stream: str | None) -> Fault | None:
        now = time.monotonic()
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind or not fault.live(now):
                    continue
                if fault.stream is not None and fault.stream != stream:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                self.served[kind] += 1
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        found = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        key = found.group(1) if found else ""
        with self._lock:
            self.calls[operation] += 1
            self._keys_seen[key] += 1
            expired = key in self._expired_keys
        if expired:
            self.served["expired"] += 1
            return _error(
                400,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
        if self._take_fault("unavailable", None):
            return _error(503, "ServiceUnavailableException", "The service is unavailable.")
        if operation == "PutLogEvents":
            return await self._put(request, body)
        params = _parameters(operation, body)
        with self._lock:
            self.requests.append((params.pop("Action", operation), params))
        refused = _name_refused(params)
        if operation in ("CreateLogGroup", "CreateLogStream") and refused is not None:
            with self._lock:
                self.violations.append(f"{operation}: {refused}")
            return _error(400, "InvalidParameterException", refused)
        if operation == "CreateLogGroup" and self._take_fault("refuse_group", None):
            return _error(400, "InvalidParameterException", "refused on purpose by the test")
        if operation == "PutRetentionPolicy" and self._take_fault("fail_retention", None):
            return _error(503, "ServiceUnavailableException", "The service is unavailable.")
        response = await self._forward(request, body)
        if operation == "CreateLogStream" and response.status == 200:
            params = json.loads(body)
            with self._lock:
                self._tokens.pop((params["logGroupName"], params["logStreamName"]), None)
        return response

    async def _put(self, request: web.Request, body: bytes) -> web.StreamResponse:
        params = json.loads(body)
        group, stream = params.get("logGroupName", ""), params.get("logStreamName", "")
        problem = check_put(params)
        if problem is not None:
            with self._lock:
                self.violations.append(f"{group} {stream}: {problem}")
            return _error(400, "InvalidParameterException", problem)
        if self._take_fault("throttle", stream):
            return _error(400, "ThrottlingException", "Rate exceeded")
        if self._take_fault("invalid", stream):
            return _error(400, "InvalidParameterException", "refused on purpose by the test")
        with self._lock:
            refused_text = self._refused_text
        if refused_text is not None and any(
            refused_text in e["message"] for e in params["logEvents"]
        ):
            self.served["refused_text"] += 1
            return _error(400, "InvalidParameterException", f"an event holds {refused_text!r}")
        slow = self._take_fault("slow", stream)
        digest = hashlib.sha256(json.dumps(params["logEvents"]).encode()).hexdigest()
        token_error = self._check_token(group, stream, params.get("sequenceToken"), digest)
        if token_error is not None:
            return token_error
        events = params["logEvents"]
        expired = 0
        with self._lock:
            before = self._expire_before
        if before is not None:
            while expired < len(events) and events[expired]["timestamp"] < before:
                expired += 1
            params = {**params, "logEvents": events[expired:]}
        if expired == len(events):
            upstream: dict[str, Any] = {}
        else:
            response = await self._forward(request, json.dumps(params).encode())
            if response.status != 200:
                return response
            assert isinstance(response.body, bytes)
            upstream = json.loads(response.body or b"{}")
        info = _shift(upstream.get("rejectedLogEventsInfo") or {}, expired)
        if expired:
            info["expiredLogEventEndIndex"] = expired - 1
        answer: dict[str, Any] = {}
        reset = self._take_fault("reset", stream) is not None
        with self._lock:
            nbytes = sum(len(e["message"].encode()) for e in events)
            self.puts.append(Put(group, stream, len(events), nbytes, reset, slow is not None))
            if info:
                self.rejected_info.append(info)
                answer["rejectedLogEventsInfo"] = info
            if self._legacy:
                answer["nextSequenceToken"] = self._advance_token(group, stream, digest)
            elif "nextSequenceToken" in upstream:
                answer["nextSequenceToken"] = upstream["nextSequenceToken"]
        if slow is not None:
            await asyncio.sleep(slow.delay)
        if reset:
            # Stored upstream; the answer never arrives.
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=200)
        return web.Response(body=json.dumps(answer).encode(), content_type=_JSON)

    def _check_token(
        self, group: str, stream: str, sent: str | None, digest: str
    ) -> web.Response | None:
        with self._lock:
            if not self._legacy:
                return None
            expected, last_sent, last_digest = self._tokens.get((group, stream), (None, None, None))
        if sent == expected:
            return None
        shown = expected if expected is not None else "null"
        if last_digest is not None and sent == last_sent and digest == last_digest:
            self.served["data_already_accepted"] += 1
            return _error(
                400,
                "DataAlreadyAcceptedException",
                "The given batch of log events has already been accepted. "
                f"The next batch can be sent with sequenceToken: {shown}",
                expectedSequenceToken=expected,
            )
        self.served["invalid_sequence_token"] += 1
        return _error(
            400,
            "InvalidSequenceTokenException",
            f"The given sequenceToken is invalid. The next expected sequenceToken is: {shown}",
            expectedSequenceToken=expected,
        )

    def _advance_token(self, group: str, stream: str, digest: str) -> str:
        """The token after an accepted batch (the lock is held)."""
        previous = self._tokens.get((group, stream), (None, None, None))[0]
        self._token_count += 1
        token = f"{49_600_000_000 + self._token_count:056d}"
        self._tokens[(group, stream)] = (token, previous, digest)
        return token

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            data = await upstream.read()
            return web.Response(
                status=upstream.status,
                body=data,
                headers={"Content-Type": upstream.headers.get("Content-Type", _JSON)},
            )


def _parameters(operation: str, body: bytes) -> dict[str, Any]:
    """A call's parameters: the JSON protocol's body, or the query protocol's (STS) form."""
    if operation:
        loaded = json.loads(body or b"{}")
        return loaded if isinstance(loaded, dict) else {}
    return {key: values[0] for key, values in urllib.parse.parse_qs(body.decode()).items()}


def _name_refused(params: dict[str, Any]) -> str | None:
    """The service's complaint about a group or stream name, or None."""
    group, stream = params.get("logGroupName"), params.get("logStreamName")
    if group is not None and not _GROUP_NAME.fullmatch(group):
        return f"Value {group!r} at 'logGroupName' failed to satisfy constraint"
    if stream is not None and not _STREAM_NAME.fullmatch(stream):
        return f"Value {stream!r} at 'logStreamName' failed to satisfy constraint"
    return None


def _error(status: int, code: str, message: str, **fields: Any) -> web.Response:
    body = {"__type": code, "message": message, **fields}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=_JSON)


def _shift(info: dict[str, int], by: int) -> dict[str, int]:
    return {key: index + by for key, index in info.items()}


@contextmanager
def strict_front(upstream: str) -> Iterator[StrictFront]:
    front = StrictFront(upstream).start()
    try:
        yield front
    finally:
        front.stop()
