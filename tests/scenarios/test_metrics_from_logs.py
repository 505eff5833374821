"""Metrics from the logs, end to end: an access log in uvicorn's format and JSON request
summaries with tracebacks, written by the logging module, shipped by the real process
to moto; the EMF events it writes are valid and add up to exactly what was written."""

from __future__ import annotations

import json
import logging
import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from shipper.parse import PRESETS
from tests.support.cloudwatch import MotoServer
from tests.support.emf_spec import Metrics, add_up, percentile, true_percentile
from tests.support.process import ShipperProcess, wait_until

APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
APP_DATEFMT = "%Y-%m-%d %H:%M:%S"
MINUTE_MS = 60_000
MAX_ROUTES = 4
# Route templates and how a request's path fills them.
ROUTES = [
    ("GET", "/users/{id}/orders", lambda rng: str(rng.randrange(1, 10**6))),
    ("POST", "/carts/{id}", lambda rng: str(uuid.UUID(int=rng.getrandbits(128)))),
    ("GET", "/profiles/{id}", lambda rng: f"user{rng.randrange(99)}@example.com"),
    ("DELETE", "/blobs/{id}", lambda rng: f"{rng.getrandbits(96):024x}"),
    ("GET", "/search", None),
    ("GET", "/health/{id}/deep", lambda rng: str(rng.randrange(9))),
]


class OperationalError(Exception):
    """Stands for a library's exception: written with its module's dotted name."""


OperationalError.__module__ = "sqlalchemy.exc"


class Clock(logging.Filter):
    """Gives each record the time the test chose (the records of a backfill)."""

    def __init__(self) -> None:
        super().__init__()
        self.at = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        record.created = self.at
        record.msecs = int((self.at - int(self.at)) * 1000)
        return True


def logger_for(path: Path, fmt: str, datefmt: str | None, clock: Clock) -> logging.Logger:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    formatter = logging.Formatter(fmt, datefmt)
    formatter.converter = time.gmtime  # the sources' timezone is UTC
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"emf.{path.parent.name}.{id(clock)}")
    logger.handlers = [handler]
    logger.addFilter(clock)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


class Written:
    """What the test wrote, by (route, interval start)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.errors_5xx: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.exceptions: Counter[str] = Counter()
        self.routes: list[str] = []  # in the order first written
        self.lines = 0

    def add(self, route: str, at_ms: int, status: int, ms: float) -> None:
        if route not in self.routes:
            self.routes.append(route)
        start = at_ms - at_ms % MINUTE_MS
        self.requests[route, start] += 1
        self.errors_5xx[route, start] += status >= 500
        self.latency[route].append(ms)
        self.lines += 1

    def folded(self, route: str) -> str:
        """The route a metric names: the first MAX_ROUTES routes, then ``other``."""
        return route if route in self.routes[:MAX_ROUTES] else "other"


def write_access(path: Path, start: float, rng: random.Random, count: int) -> Written:
    """uvicorn access lines, as the `uvicorn_access` preset describes them."""
    clock = Clock()
    log = logger_for(path, PRESETS["uvicorn_access"].fmt, None, clock)
    written = Written()
    for n in range(count):
        clock.at = start + n * 0.37 + 0.1  # spread over minutes, never on a boundary
        method, template, fill = rng.choice(ROUTES)
        target = template.replace("{id}", fill(rng)) if fill else template
        status = rng.choice([200, 200, 200, 201, 404, 500, 503])
        seconds = round(rng.lognormvariate(-3, 1), 6)
        query = f"?page={n % 3}" if n % 2 else ""
        log.info(
            "request",
            extra={
                "request_id": f"req-{n}",
                "status_code": status,
                "request_time": f"{seconds:.6f}",
                "client_addr": "10.0.0.1:5000",
                "request_line": f"{method} {target}{query} HTTP/1.1",
            },
        )
        written.add(f"{method} {template}", int(clock.at * 1000), status, seconds * 1000)
    for handler in log.handlers:
        handler.close()
    return written


def write_summaries(path: Path, start: float, rng: random.Random, count: int) -> Written:
    """JSON request summaries (url, method, statusCode, processedTime in ms) with a
    traceback now and then, as the seeds' apps write them."""
    clock = Clock()
    log = logger_for(path, APP_FORMAT, APP_DATEFMT, clock)
    written = Written()
    for n in range(count):
        clock.at = start + n * 1.3 + 0.5
        summary: dict[str, Any] = {
            "url": f"/api/orders/{rng.randrange(10**5)}?expand=items",
            "method": "GET",
            "statusCode": 200,
            "client": {"email": "someone@example.com"},
            "processedTime": round(rng.uniform(1, 400), 1),
        }
        if n % 7 == 0:
            summary["statusCode"] = 500
            error = ZeroDivisionError if n % 2 else OperationalError
            try:
                raise error("while reading orders for someone@example.com")
            except Exception:
                log.exception(json.dumps(summary))
            written.exceptions[error.__name__ if n % 2 else "sqlalchemy.exc.OperationalError"] += 1
        else:
            log.info(json.dumps(summary))
        # Written to the second: the interval is the written second's.
        at_ms = int(clock.at) * 1000
        written.add("GET /api/orders/{id}", at_ms, summary["statusCode"], summary["processedTime"])
    for handler in log.handlers:
        handler.close()
    return written


def check_requests(metrics: Metrics, category: str, written: Written) -> None:
    """Requests, Errors5xx and latency value counts per route and interval are what was
    written; latency percentiles from the values are within 2% of the true ones."""
    expected_requests: Counter[tuple[str, int]] = Counter()
    expected_5xx: Counter[tuple[str, int]] = Counter()
    for (route, start), n in written.requests.items():
        expected_requests[written.folded(route), start] += n
        expected_5xx[written.folded(route), start] += written.errors_5xx[route, start]
    for route in {r for r, _ in expected_requests}:
        requests = metrics.by_time("Requests", Category=category, Route=route)
        errors = metrics.by_time("Errors5xx", Category=category, Route=route)
        latency = metrics.by_time("Latency", Category=category, Route=route)
        want = {t: n for (r, t), n in expected_requests.items() if r == route}
        assert requests == want, route
        assert latency == want, route  # one latency value per request
        assert {t: n for t, n in errors.items() if n} == {
            t: n for (r, t), n in expected_5xx.items() if r == route and n
        }, route
    for route, values in written.latency.items():
        if written.folded(route) != route:
            continue
        counts = metrics.latency(Category=category, Route=route)
        assert sum(counts.values()) == len(values)
        for q in (0.5, 0.99):
            true = true_percentile(values, q)
            assert abs(percentile(counts, q) - true) <= 0.02 * true, (route, q)
    assert metrics.total("Requests", Category=category) == written.lines


class TestMetricsFromLogs:
    def test_emf_events_add_up_to_what_was_written(
        self, tmp_path: Path, moto: MotoServer, make_config: Any, group_prefix: str
    ) -> None:
        """Per route and interval, Requests and Errors5xx sum to what was written, the
        latency values count the requests and give the percentiles within 2%,
        exceptions are counted by their final type, routes past max_routes are
        ``other``, and every event is valid EMF (specification's structure)."""
        rng = random.Random(11)
        start = float((int(time.time()) - 3 * 3600) // 60 * 60)  # a minute, 3 hours ago
        logs = tmp_path / "logs"
        access = write_access(logs / "access" / "access.log", start, rng, 1500)
        app = write_summaries(logs / "app" / "app.log", start, rng, 400)
        assert len(access.routes) > MAX_ROUTES  # some routes fold into `other`
        metrics_group = f"{group_prefix}/metrics"
        config = make_config(
            [
                {
                    "category": "access",
                    "path": str(logs / "access" / "access.log"),
                    "format": "uvicorn_access",
                    "requests": {},
                },
                {
                    "category": "app",
                    "path": str(logs / "app" / "app.log"),
                    "format": APP_FORMAT,
                    "datefmt": APP_DATEFMT,
                    "requests": {"duration_unit": "ms"},
                },
            ],
            metrics={
                "namespace": "ShipperTest",
                "log_group": metrics_group,
                "max_routes": MAX_ROUTES,
            },
        )
        total = access.lines + app.lines
        with ShipperProcess(config) as shipper:
            wait_until(
                lambda: (
                    sum(len(moto.events(f"{group_prefix}/{c}")) for c in ("access", "app")) >= total
                ),
                timeout=60,
                interval=0.5,
            )
            assert shipper.stop() == 0, shipper.output()[-3000:]
        messages = [event["message"] for event in moto.events(metrics_group)]
        metrics = add_up(messages)  # validates each event against the specification
        assert metrics.namespaces == {"ShipperTest"}
        check_requests(metrics, "access", access)
        check_requests(metrics, "app", app)
        by_type = {
            kind: metrics.total("Exceptions", Category="app", Exception=kind)
            for kind in app.exceptions
        }
        assert by_type == dict(app.exceptions)
        assert metrics.total("Exceptions", Category="app") == sum(app.exceptions.values())
        assert metrics.total("Errors", Category="app") == sum(app.exceptions.values())
        assert metrics.total("Exceptions", Category="access") == 0
        assert "someone@example.com" not in "\n".join(messages)  # promise 4


class TestOpenIntervals:
    def write_live(self, path: Path, count: int, offset: int) -> None:
        clock = Clock()
        log = logger_for(path, PRESETS["uvicorn_access"].fmt, None, clock)
        for n in range(count):
            clock.at = time.time()
            log.info(
                "request",
                extra={
                    "request_id": f"req-{offset + n}",
                    "status_code": 200,
                    "request_time": "0.010",
                    "client_addr": "10.0.0.1:5000",
                    "request_line": f"GET /live/{offset + n} HTTP/1.1",
                },
            )
        for handler in log.handlers:
            handler.close()

    def test_graceful_stop_emits_open_intervals_and_a_crash_loses_only_them(
        self, tmp_path: Path, moto: MotoServer, make_config: Any, group_prefix: str
    ) -> None:
        """An hour still open is emitted at SIGTERM, and a restart's emission of the same
        hour adds to it (CloudWatch sums); after SIGKILL the open hour's metrics are
        lost, never its log lines."""
        left = 3600 - time.time() % 3600
        if left < 90:  # the hour must stay open through the test's three runs
            time.sleep(left + 1)
        path = tmp_path / "logs" / "access" / "access.log"
        metrics_group = f"{group_prefix}/metrics"
        config = make_config(
            [{"category": "access", "path": str(path), "format": "uvicorn_access", "requests": {}}],
            metrics={"namespace": "ShipperTest", "log_group": metrics_group, "interval": 3600},
        )
        group = f"{group_prefix}/access"

        def requests() -> float:
            messages = [event["message"] for event in moto.events(metrics_group)]
            return add_up(messages).total("Requests", Category="access", Route="GET /live/{id}")

        def run(count: int, offset: int, stop: Any) -> None:
            self.write_live(path, count, offset)
            with ShipperProcess(config) as shipper:
                wait_until(lambda: len(moto.events(group)) >= offset + count, timeout=30)
                stop(shipper)

        run(30, 0, lambda shipper: shipper.stop())
        assert requests() == 30  # the open hour, emitted at the stop
        run(20, 30, lambda shipper: shipper.stop())
        assert requests() == 50  # the same hour again: the two add up
        run(10, 50, lambda shipper: shipper.kill())
        assert len(moto.events(group)) == 60  # every line arrived
        assert requests() == 50  # the killed run's open hour was lost

    def test_a_reload_keeps_the_metrics_stream_and_counts_each_request_once(
        self, tmp_path: Path, moto: MotoServer, make_config: Any, group_prefix: str
    ) -> None:
        """A source changed by SIGHUP restarts; its category's metrics go on in the same
        stream, and what was read before the reload is not counted again."""
        left = 3600 - time.time() % 3600
        if left < 90:
            time.sleep(left + 1)
        path = tmp_path / "logs" / "access" / "access.log"
        metrics_group = f"{group_prefix}/metrics"
        access = {"category": "access", "path": str(path), "format": "uvicorn_access"}
        config = make_config(
            [{**access, "requests": {}}],
            metrics={"namespace": "ShipperTest", "log_group": metrics_group, "interval": 3600},
        )
        group = f"{group_prefix}/access"
        with ShipperProcess(config) as shipper:
            self.write_live(path, 25, 0)
            wait_until(lambda: len(moto.events(group)) >= 25, timeout=30)
            document = yaml.safe_load(config.read_text())
            document["sources"] = [{**access, "requests": {"duration_unit": "s"}}]
            config.write_text(yaml.safe_dump(document, sort_keys=False))
            seen = len(shipper.find("config.reloaded"))
            shipper.proc.send_signal(signal.SIGHUP)
            event = wait_until(lambda: shipper.find("config.reloaded")[seen:], timeout=20)[0]
            assert event["changed"] == [str(path)]
            self.write_live(path, 15, 25)
            wait_until(lambda: len(moto.events(group)) >= 40, timeout=30)
            assert shipper.stop() == 0
        messages = [event["message"] for event in moto.events(metrics_group)]
        metrics = add_up(messages)
        assert metrics.total("Requests", Category="access", Route="GET /live/{id}") == 40
        assert len(moto.streams(metrics_group)) == 1
