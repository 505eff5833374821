"""Metrics from the logs (shipper.emf): routes, latency buckets, intervals and the EMF
events that carry them, checked against the Embedded Metric Format specification."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from shipper import emf
from shipper.config import ConfigError, MaskingConfig, MaskRule, RequestsConfig, parse
from shipper.mask import masker_for
from shipper.records import Record
from tests.support.emf_spec import add_up, check_emf, percentile, true_percentile

MINUTE = 60_000
T0 = 1_717_200_000_000  # a minute's start (ms)
AUTO = RequestsConfig()


def aggregator(max_routes: int = 200, interval: int = 60) -> emf.Aggregator:
    return emf.Aggregator("MyApp", "access", interval, max_routes)


def request(agg: emf.Aggregator, line: str, status: int, seconds: float, at: int) -> None:
    fields = {"request_line": line, "status_code": status, "request_time": seconds}
    agg.observe_one(fields, at, [], AUTO)


def messages(events: list) -> list[str]:
    return [event.message for event in events]


class TestRoutes:
    """A route names a handler, not a request: ids never become dimension values."""

    @pytest.mark.parametrize(
        ("target", "method", "route"),
        [
            ("GET /users/42/orders?page=2 HTTP/1.1", None, "GET /users/{id}/orders"),
            ("/users/42/orders", "post", "POST /users/{id}/orders"),
            ("/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "GET", "GET /items/{id}"),
            ("/blobs/9f86d081884c7d659a2feaa0c55ad015/raw", "GET", "GET /blobs/{id}/raw"),
            ("/users/someone@example.com/cart", "GET", "GET /users/{id}/cart"),
            ("/users/someone%40example.com", "GET", "GET /users/{id}"),
            ("https://api.example.com/v2/orders/7?x=1", "DELETE", "DELETE /v2/orders/{id}"),
            ("/api/cart", None, "/api/cart"),
            ("/", "GET", "GET /"),
            ("/static/app.css", "GET", "GET /static/app.css"),
        ],
    )
    def test_templated(self, target, method, route):
        assert emf.route_of(target, method) == route

    def test_routes_beyond_max_routes_fold_into_other(self):
        agg = aggregator(max_routes=3)
        for n in range(10):
            request(agg, f"GET /r{n}/1 HTTP/1.1", 200, 0.01, T0 + n)
        request(agg, "GET /r0/2 HTTP/1.1", 200, 0.01, T0 + 20)  # a known route stays itself
        metrics = add_up(messages(agg.drain()))
        for n in range(3):
            assert metrics.total("Requests", Category="access", Route=f"GET /r{n}/{{id}}") == (
                2 if n == 0 else 1
            )
        assert metrics.total("Requests", Category="access", Route="other") == 7
        assert metrics.total("Requests", Category="access") == 11


class TestRequests:
    """Request facts are found under their usual names, in the fields or a JSON message."""

    def test_uvicorn_access_fields(self):
        fields = {"request_line": "GET /a/1 HTTP/1.1", "status_code": 503, "request_time": 0.25}
        assert emf.parse_request(fields, AUTO) == emf.Request("GET /a/{id}", 503, 250.0)

    def test_json_request_summary_in_the_message(self):
        message = {"url": "/api/orders?page=1", "method": "POST", "statusCode": 201}
        fields = {"levelname": "INFO", "message": {**message, "processedTime": "12.5ms"}}
        assert emf.parse_request(fields, AUTO) == emf.Request("POST /api/orders", 201, 12.5)

    def test_configured_fields_and_unit(self):
        spec = RequestsConfig(route="target", status="code", duration="took", duration_unit="ms")
        fields = {"target": "/x/9", "code": "404", "took": 7}
        assert emf.parse_request(fields, spec) == emf.Request("/x/{id}", 404, 7.0)

    def test_not_a_request(self):
        assert emf.parse_request({"message": "cache warmed"}, AUTO) is None

    @pytest.mark.parametrize(
        ("value", "unit", "ms"),
        [(0.5, None, 500.0), ("0.5s", None, 500.0), ("12ms", None, 12.0), ("3", "ms", 3.0),
         ("fast", None, None), (-1, None, None), (True, None, None)],
    )  # fmt: skip
    def test_durations(self, value, unit, ms):
        assert emf.duration_ms(value, unit) == ms


class TestLatency:
    """Latency values are bucketed to within 2%, at most 100 values per event."""

    def test_bucket_error_within_two_percent(self):
        rng = random.Random(3)
        samples = [rng.lognormvariate(3, 2) for _ in range(20_000)] + [0.001, 1e6, 1.0]
        for ms in samples:
            assert abs(emf.bucket(ms) - ms) <= emf.BUCKET_ERROR * ms, ms

    def test_percentiles_from_the_values_within_two_percent(self):
        rng = random.Random(5)
        agg = aggregator()
        latencies = [rng.lognormvariate(4, 1.2) for _ in range(5000)]
        for n, ms in enumerate(latencies):
            request(agg, "GET /slow HTTP/1.1", 200, ms / 1000, T0 + n % MINUTE)
        events = agg.drain()
        metrics = add_up(messages(events))
        values = metrics.latency(Category="access", Route="GET /slow")
        assert sum(values.values()) == 5000
        for q in (0.5, 0.9, 0.99):
            true = true_percentile(latencies, q)
            assert abs(percentile(values, q) - true) <= 0.02 * true
        # Spread over several events, none with more than 100 values.
        carrying = [json.loads(e.message) for e in events if "Latency" in e.message]
        assert len(carrying) > 1
        assert all(len(doc["Latency"]["Values"]) <= emf.MAX_VALUES for doc in carrying)
        # The category's latency is the same values (the [Category] dimension set).
        assert metrics.latency(Category="access") == values


class TestIntervals:
    """Aggregates are keyed by the records' own times (a backfill lands in its minutes)."""

    def test_out_of_order_and_backfilled_times(self):
        agg = aggregator()
        hours_ago = T0 - 3 * 3600_000
        times = [T0 + 5, T0 + MINUTE + 1, T0 + 10, hours_ago + 7, T0 + 2 * MINUTE - 1]
        for at in times:
            request(agg, "GET /a HTTP/1.1", 500, 0.1, at)
        metrics = add_up(messages(agg.drain()))
        assert metrics.by_time("Errors5xx", Category="access", Route="GET /a") == {
            T0: 2,
            T0 + MINUTE: 2,
            hours_ago - hours_ago % MINUTE: 1,
        }

    def test_emitted_once_records_moved_past_it_or_the_clock_did(self):
        agg = aggregator()
        request(agg, "GET /a HTTP/1.1", 200, 0.1, T0 + 1)
        assert agg.take_closed(now_ms=T0 + 30_000) == []  # still open
        request(agg, "GET /a HTTP/1.1", 200, 0.1, T0 + MINUTE + 1)  # a later minute's record
        first = add_up(messages(agg.take_closed(now_ms=T0 + MINUTE + 2)))
        assert first.by_time("Requests", Category="access", Route="GET /a") == {T0: 1}
        assert agg.take_closed(now_ms=T0 + 2 * MINUTE) == []  # within the grace
        second = add_up(messages(agg.take_closed(now_ms=T0 + 2 * MINUTE + emf.CLOSE_GRACE_MS)))
        assert second.by_time("Requests", Category="access", Route="GET /a") == {T0 + MINUTE: 1}

    def test_a_late_record_reopens_its_interval_and_sums(self):
        """Two events for one minute add up, as CloudWatch sums them (and a restart's)."""
        agg = aggregator()
        request(agg, "GET /a HTTP/1.1", 200, 0.1, T0 + 1)
        request(agg, "GET /a HTTP/1.1", 200, 0.1, T0 + MINUTE)
        early = messages(agg.take_closed(now_ms=T0))
        request(agg, "GET /a HTTP/1.1", 200, 0.1, T0 + 2)  # late, for the emitted minute
        metrics = add_up(early + messages(agg.drain()))
        assert metrics.by_time("Requests", Category="access", Route="GET /a")[T0] == 2


class TestExceptionsAndLevels:
    """Every source counts its exceptions by final type and its ERROR/WARNING records."""

    CHAINED = (
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in <module>',
        "    1 / 0",
        "    ~~^~~",
        "ZeroDivisionError: division by zero",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "db.py", line 9, in query',
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not connect",
        "  to server at someone@example.com",
    )

    def test_final_exception_type(self):
        assert emf.exception_type(self.CHAINED) == "sqlalchemy.exc.OperationalError"
        assert emf.exception_type(list(self.CHAINED[:5])) == "ZeroDivisionError"
        assert emf.exception_type(["not a traceback"]) is None

    def test_counted_by_type_and_level(self):
        agg = emf.Aggregator("MyApp", "app", 60, 200)
        error = {"levelname": "ERROR", "message": "boom"}
        records = [
            Record("boom", error, T0 + 1, 10, list(self.CHAINED)),
            Record("boom", error, T0 + 2, 20, list(self.CHAINED[:5])),
            Record("boom", error, T0 + 3, 30, list(self.CHAINED[:5])),
            ("careful", {"levelname": "WARNING", "message": "careful"}, T0 + 4, 40),
            ("fine", {"levelname": "INFO", "message": "fine"}, T0 + 5, 50),
        ]
        agg.observe(records, None)
        metrics = add_up(messages(agg.drain()))
        assert metrics.total("Exceptions", Category="app") == 3
        assert metrics.total("Exceptions", Category="app", Exception="ZeroDivisionError") == 2
        kind = "sqlalchemy.exc.OperationalError"
        assert metrics.total("Exceptions", Category="app", Exception=kind) == 1
        assert metrics.total("Errors", Category="app") == 3
        assert metrics.total("Warnings", Category="app") == 1
        assert metrics.total("Requests", Category="app") == 0  # not a requests source

    def test_dimension_values_are_masked(self):
        """A secret in a path segment no id rule templates is masked (promise 4)."""
        rule = MaskRule(name="order_secret", pattern="osk_[A-Za-z0-9]{16}")
        masker = masker_for(MaskingConfig(rules=[rule]))
        agg = emf.Aggregator("MyApp", "access", 60, 200, masker.mask)
        request(agg, "GET /orders/osk_ABCDEFGHIJKLMNOP/items HTTP/1.1", 200, 0.1, T0)
        metrics = add_up(messages(agg.drain()))
        route = "GET /orders/<order_secret>/items"
        assert metrics.total("Requests", Category="access", Route=route) == 1


class TestDocuments:
    """Every event is a valid EMF document (specification: structure, limits)."""

    def test_every_event_is_valid_emf(self):
        rng = random.Random(9)
        agg = aggregator(max_routes=5)
        for n in range(3000):
            line = f"{rng.choice(['GET', 'POST'])} /p{n % 8}/{n} HTTP/1.1"
            request(agg, line, rng.choice([200, 404, 503]), rng.uniform(0, 3), T0 + n * 97)
        events = agg.drain()
        assert events
        for event in events:
            document = check_emf(event.message)
            assert document["_aws"]["Timestamp"] == event.timestamp
            assert event.timestamp % MINUTE == 0
        metrics = add_up(messages(events))
        assert metrics.namespaces == {"MyApp"}
        assert metrics.total("Requests", Category="access") == 3000

    def test_a_long_route_stays_a_valid_dimension_value(self):
        agg = aggregator()
        request(agg, "GET /" + "x" * 3000 + " HTTP/1.1", 200, 0.1, T0)
        (event,) = [e for e in agg.drain() if "Route" in e.message]
        assert len(check_emf(event.message)["Route"]) == emf.MAX_DIMENSION_CHARS


class TestConfig:
    """The metrics keys load with their documented defaults, and a mistake is loud
    (promise 7: key path, value, what was expected)."""

    SOURCE = (
        "sources:\n  - category: access\n    path: logs/access.log\n    format: uvicorn_access\n"
    )

    def problems(self, text: str) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            parse(text, Path("/tmp"))
        return caught.value.problems

    def test_defaults_and_requests(self):
        loaded = parse(self.SOURCE + "    requests: {duration_unit: ms}\nmetrics:\n"
                       "  namespace: MyApp\n", Path("/tmp"))  # fmt: skip
        assert loaded.metrics.interval == 60
        assert loaded.metrics.log_group == "/shipper/metrics"
        assert loaded.metrics.max_routes == 200
        assert loaded.sources[0].requests == RequestsConfig(duration_unit="ms")
        assert parse(self.SOURCE, Path("/tmp")).metrics.namespace is None  # metrics off

    def test_requests_without_a_namespace(self):
        (problem,) = self.problems(self.SOURCE + "    requests: {}\n")
        assert problem.startswith("sources[0].requests:")
        assert "metrics.namespace" in problem

    def test_requests_with_raw_output(self):
        text = self.SOURCE + "    output: raw\n    requests: {}\nmetrics: {namespace: A}\n"
        (problem,) = self.problems(text)
        assert problem.startswith("sources[0].requests:")
        assert "output json" in problem

    @pytest.mark.parametrize(
        ("key", "value"),
        [("namespace", "AWS/Lambda"), ("namespace", '"bad{ns}"'), ("interval", 0),
         ("log_group", '"no spaces allowed"'), ("max_routes", 0)],
    )  # fmt: skip
    def test_bad_values(self, key, value):
        (problem,) = self.problems(self.SOURCE + f"metrics:\n  {key}: {value}\n")
        assert problem.startswith(f"metrics.{key}:")

    def test_bad_duration_unit(self):
        text = self.SOURCE + "    requests: {duration_unit: us}\nmetrics: {namespace: A}\n"
        (problem,) = self.problems(text)
        assert problem.startswith("sources[0].requests.duration_unit: 'us'")
