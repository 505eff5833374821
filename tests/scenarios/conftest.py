"""What the scenarios share: an app logging through a real stdlib handler, a one-source
shipper config, and reading back which records reached the moto server."""

from __future__ import annotations

import itertools
import logging
import logging.handlers
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudwatch import MotoServer
from tests.support.process import ShipperProcess, wait_until
from tests.support.writer import force_rollover, hold_midnight

FORMAT = "%(asctime)s %(levelname)s %(message)s"
RECORD_ID = re.compile(r"rec-[\w-]+")
# How every record AppLog writes ends: a message without it is a line shipped torn.
LINE_END = "did something"
_loggers = itertools.count()


class AppLog:
    """An application's logger writing through ``handler``: records ``rec-<tag>-<n>``."""

    def __init__(self, handler: logging.Handler, tag: str = "a") -> None:
        handler.setFormatter(logging.Formatter(FORMAT))
        self.handler = handler
        self.tag = tag
        self.logger = logging.getLogger(f"scenario.app{next(_loggers)}")
        self.logger.addHandler(handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.written: list[str] = []

    def write(self, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            rid = f"rec-{self.tag}-{len(self.written):05d}"
            self.logger.info("%s user %s " + LINE_END, rid, len(self.written))
            self.written.append(rid)
            ids.append(rid)
        return ids

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()


def timed_handler(path: Path, suffix: str = "%Y%m%d") -> logging.handlers.TimedRotatingFileHandler:
    """``TimedRotatingFileHandler(when="midnight")`` as the applications configure it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight")
    handler.suffix = suffix
    hold_midnight(handler)
    return handler


def rollover(handler: logging.handlers.TimedRotatingFileHandler, day: int) -> None:
    """The rollover of the midnight that ends ``day`` days after 2024-01-01."""
    force_rollover(handler, day)


@dataclass
class Scenario:
    tmp_path: Path
    moto: MotoServer
    make_config: Any
    group_prefix: str
    logs: Path = field(init=False)

    def __post_init__(self) -> None:
        self.logs = self.tmp_path / "logs"

    @property
    def group(self) -> str:
        return f"{self.group_prefix}/app"

    @property
    def live(self) -> Path:
        return self.logs / "app" / "app.log"

    def config(self, source: dict[str, Any] | None = None, **overrides: Any) -> Path:
        """A config with one source, ``app``, on ``logs/app/app.log``."""
        entry = {"category": "app", "path": str(self.live), "format": FORMAT, **(source or {})}
        return self.make_config([entry], **overrides)  # type: ignore[no-any-return]

    def ids(self, whole_only: bool = False) -> list[str]:
        """The record ids CloudWatch holds, in the order it returns them (``whole_only``:
        of the lines that arrived whole)."""
        found = []
        for event in self.moto.events(self.group):
            if whole_only and LINE_END not in event["message"]:
                continue
            match = RECORD_ID.search(event["message"])
            assert match, event["message"]
            found.append(match.group())
        return found

    def wait_delivered(self, expected: Collection[str], timeout: float = 30.0) -> None:
        wanted = set(expected)
        try:
            wait_until(lambda: wanted <= set(self.ids()), timeout=timeout, interval=0.3)
        except AssertionError:
            missing = sorted(wanted - set(self.ids()))
            raise AssertionError(f"{len(missing)} records never arrived: {missing[:20]}") from None

    def assert_exactly_once(self, expected: Collection[str]) -> None:
        """Each expected record arrived once, and nothing else did (promises 1 and 2)."""
        ids = self.ids()
        duplicated = sorted(i for i, n in Counter(ids).items() if n > 1)
        assert not duplicated, f"{len(duplicated)} records arrived twice: {duplicated[:20]}"
        missing = sorted(set(expected) - set(ids))
        assert not missing, f"{len(missing)} records lost: {missing[:20]}"
        assert sorted(ids) == sorted(expected)


@pytest.fixture
def scenario(tmp_path: Path, moto: MotoServer, make_config: Any, group_prefix: str) -> Scenario:
    return Scenario(tmp_path, moto, make_config, group_prefix)


def delivered_since(shipper: ShipperProcess, since: float) -> int:
    """Events the process logged as delivered at or after ``since`` (Unix time), with a
    tenth of a second's grace for the time a save takes."""
    return sum(
        event["events"]
        for event in shipper.find("batch.delivered")
        if datetime.fromisoformat(event["ts"]).timestamp() >= since - 0.1
    )
