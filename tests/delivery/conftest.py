"""Fixtures for delivery tests: the shipper as a process, talking to the strict front.

Every test here runs ``python -m shipper run`` against :mod:`tests.support.strict_front`
(itself before the session's moto server), writes records with the standard
library's handlers (:mod:`tests.support.writer`), and reads back what moto stored.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudwatch import MotoServer
from tests.support.process import write_config
from tests.support.strict_front import StrictFront

FORMAT = "%(asctime)s %(levelname)s %(message)s"
ROOT = Path(__file__).parent.parent.parent
RECORD = re.compile(r"rec-(\w+)-(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    """One shipper deployment under test: its log folder, config and CloudWatch names."""

    def __init__(self, tmp_path: Path, front: StrictFront, moto: MotoServer, prefix: str) -> None:
        self.tmp_path = tmp_path
        self.logs = tmp_path / "logs"
        self.front = front
        self.moto = moto
        self.prefix = prefix
        self.health_port = free_port()
        self.config_path = tmp_path / "shipper.yaml"

    def group(self, category: str) -> str:
        return f"{self.prefix}/{category}"

    def configure(self, categories: list[str], **cloudwatch: Any) -> Path:
        for category in categories:
            (self.logs / category).mkdir(parents=True, exist_ok=True)
        config = {
            "state_dir": str(self.tmp_path / "state"),
            "shutdown_timeout": 15,
            "rescan_interval": 1.0,
            "cloudwatch": {
                "region": "us-east-1",
                "endpoint_url": self.front.url,
                "log_group": self.prefix + "/{category}",
                "log_stream": "{category}",
                "max_backoff": 1.0,
                "request_timeout": 10,
                **cloudwatch,
            },
            "batch": {"flush_interval": 0.2},
            "sources": [
                {"category": c, "path": str(self.logs / c / f"{c}.log"), "format": FORMAT}
                for c in categories
            ],
            "health": {"listen": f"127.0.0.1:{self.health_port}"},
        }
        return write_config(self.config_path, config)

    def writer_args(self, category: str, count: int, start: int, **options: Any) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "tests.support.writer",
            "--path",
            str(self.logs / category / f"{category}.log"),
            "--category",
            category,
            "--format",
            FORMAT,
            "--manifest",
            str(self.tmp_path / f"{category}.manifest"),
            "--count",
            str(count),
            "--start",
            str(start),
        ]
        for key, value in options.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        return args

    def write(self, category: str, count: int, start: int = 0, **options: Any) -> None:
        """A Python app logs ``count`` records (rec-<category>-<start..>) and exits."""
        subprocess.run(self.writer_args(category, count, start, **options), check=True, cwd=ROOT)

    def write_in_background(
        self, category: str, count: int, start: int = 0, **options: Any
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.writer_args(category, count, start, **options), cwd=ROOT)

    def numbers(self, category: str) -> list[int]:
        """The record numbers CloudWatch (moto) holds for ``category``, duplicates included."""
        found = []
        for event in self.moto.events(self.group(category)):
            match = RECORD.search(event["message"])
            assert match is not None, event
            found.append(int(match.group(2)))
        return found

    def has_all(self, category: str, count: int) -> bool:
        return len(set(self.numbers(category))) >= count

    def samples(self) -> list[tuple[str, float]]:
        """The shipper's /metrics, as (series, value) pairs."""
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        pairs = []
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                pairs.append((series, float(value)))
        return pairs

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the shipper's /metrics (0 when absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        series = f"{name}{{{wanted}}}" if labels else name
        return next((value for s, value in self.samples() if s == series), 0.0)

    def metric_sum(self, name: str) -> float:
        """The sum of every series of one metric."""
        return sum(v for s, v in self.samples() if s == name or s.startswith(name + "{"))


def duplicates(numbers: list[int]) -> Counter[int]:
    return Counter({n: c - 1 for n, c in Counter(numbers).items() if c > 1})


def assert_clean_front(front: StrictFront) -> None:
    """No PutLogEvents broke a rule, and no DescribeLogStreams was ever needed."""
    assert front.violations == []
    assert front.calls["DescribeLogStreams"] == 0


@pytest.fixture
def deployment(
    tmp_path: Path, front: StrictFront, moto: MotoServer, group_prefix: str
) -> Deployment:
    return Deployment(tmp_path, front, moto, group_prefix)
