"""Asking the shipper's health listener over real HTTP, and reading /metrics."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(url: str, timeout: float = 5.0, method: str = "GET") -> tuple[int, str]:
    """Status and body of a GET, or of another ``method`` (error statuses included,
    not raised)."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method=method), timeout=timeout
        ) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Metrics:
    """One scrape of /metrics: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample, found, value in self.samples
            if sample == name and all(found.get(k) == v for k, v in labels.items())
        )

    def labels(self, name: str) -> list[dict[str, str]]:
        return [found for sample, found, _ in self.samples if sample == name]


def scrape(base_url: str) -> Metrics:
    status, text = get(f"{base_url}/metrics")
    assert status == 200, text
    return Metrics(text)
