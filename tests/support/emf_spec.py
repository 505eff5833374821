"""Reading EMF events back: a check of each against the Embedded Metric Format
specification, and the metrics they add up to (as CloudWatch would sum them)."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The units the specification allows a MetricDefinition.
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
    "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
    "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip
MAX_METRICS = 100  # MetricDefinitions per directive
MAX_VALUES = 100  # values of one metric in one event
MAX_DIMENSIONS = 30  # keys per dimension set


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_emf(message: str) -> dict[str, Any]:
    """The event's document, after asserting it is a valid EMF document."""
    document = json.loads(message)
    assert isinstance(document, dict), message
    aws = document.get("_aws")
    assert isinstance(aws, dict)
    assert set(aws) <= {"Timestamp", "CloudWatchMetrics", "LogGroupName"}
    assert isinstance(aws.get("Timestamp"), int), aws
    assert aws["Timestamp"] >= 0, aws
    directives = aws.get("CloudWatchMetrics")
    assert isinstance(directives, list), aws
    assert directives, aws
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}, directive
        namespace = directive["Namespace"]
        assert isinstance(namespace, str)
        assert 1 <= len(namespace) <= 255
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list)
            assert len(dimension_set) <= MAX_DIMENSIONS
            for key in dimension_set:
                value = document.get(key)
                assert isinstance(value, str), (key, message)
                assert 1 <= len(value) <= 1024, (key, message)
        metrics = directive["Metrics"]
        assert isinstance(metrics, list)
        assert 1 <= len(metrics) <= MAX_METRICS
        for definition in metrics:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}, definition
            name = definition["Name"]
            assert isinstance(name, str)
            assert 1 <= len(name) <= 255
            assert definition.get("Unit", "None") in UNITS, definition
            value = document.get(name)
            if isinstance(value, dict):  # values with counts
                assert set(value) == {"Values", "Counts"}, value
                values, counts = value["Values"], value["Counts"]
                assert 1 <= len(values) <= MAX_VALUES
                assert len(counts) == len(values)
                assert all(map(_number, values))
                assert all(map(_number, counts))
            elif isinstance(value, list):
                assert 1 <= len(value) <= MAX_VALUES
                assert all(map(_number, value))
            else:
                assert _number(value), (name, message)
    return document


Key = tuple[str, tuple[tuple[str, str], ...]]  # metric name, dimensions


@dataclass
class Metrics:
    """What EMF events add up to, per metric, dimension set and timestamp."""

    sums: Counter[tuple[Key, int]] = field(default_factory=Counter)
    values: dict[tuple[Key, int], Counter[float]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    namespaces: set[str] = field(default_factory=set)

    def total(self, name: str, **dimensions: str) -> float:
        key = (name, tuple(sorted(dimensions.items())))
        return sum(n for (k, _), n in self.sums.items() if k == key)

    def by_time(self, name: str, **dimensions: str) -> dict[int, float]:
        key = (name, tuple(sorted(dimensions.items())))
        return {t: n for (k, t), n in self.sums.items() if k == key}

    def latency(self, **dimensions: str) -> Counter[float]:
        key = ("Latency", tuple(sorted(dimensions.items())))
        merged: Counter[float] = Counter()
        for (k, _), counts in self.values.items():
            if k == key:
                merged.update(counts)
        return merged


def add_up(messages: Iterable[str]) -> Metrics:
    """Validate each EMF event and sum its metrics as CloudWatch does."""
    metrics = Metrics()
    for message in messages:
        document = check_emf(message)
        timestamp = document["_aws"]["Timestamp"]
        for directive in document["_aws"]["CloudWatchMetrics"]:
            metrics.namespaces.add(directive["Namespace"])
            for dimension_set in directive["Dimensions"]:
                dims = tuple(sorted((k, document[k]) for k in dimension_set))
                for definition in directive["Metrics"]:
                    name = definition["Name"]
                    value = document[name]
                    key = ((name, dims), timestamp)
                    if isinstance(value, dict):
                        for v, n in zip(value["Values"], value["Counts"], strict=True):
                            metrics.values[key][v] += n
                            metrics.sums[key] += n
                    else:
                        metrics.sums[key] += value
    return metrics


def percentile(counts: Counter[float], q: float) -> float:
    """The ``q`` quantile (0..1) of values given with their counts (nearest rank)."""
    total = sum(counts.values())
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    raise ValueError("no values")


def true_percentile(values: list[float], q: float) -> float:
    return percentile(Counter(values), q)
