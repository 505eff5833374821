"""Real output of the ``logging`` module, produced in the test process.

Tests write through a real ``logging.Formatter`` and ``StreamHandler`` and get the text
back with the ``LogRecord`` each part came from, so expectations are taken from what
``logging`` actually wrote, never typed by hand.  Times can be pinned (``created``)
and the local timezone set (``TZ`` + ``time.tzset``), as an app's host would have it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

_names = itertools.count()


@dataclass
class Written:
    """What one logger wrote: the whole text, and each record with its own text."""

    text: str = ""
    records: list[logging.LogRecord] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # each record's formatted text

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


class _Capture(logging.Handler):
    """Formats like a file handler, and keeps each record and its text."""

    def __init__(self, out: Written, stream: io.StringIO, created: Iterator[float] | None):
        super().__init__()
        self.out = out
        self.stream = stream
        self.created = created

    def emit(self, record: logging.LogRecord) -> None:
        if self.created is not None:
            when = next(self.created)
            record.created = when
            # As LogRecord.__init__ computes it from the time.
            record.msecs = int((when - int(when)) * 1000) + 0.0
        text = self.format(record)
        self.stream.write(text + "\n")
        self.out.records.append(record)
        self.out.parts.append(text)


def write_logs(
    formatter: logging.Formatter,
    calls: Callable[[logging.Logger], None],
    created: Iterable[float] | None = None,
) -> Written:
    """Run ``calls(logger)`` against a fresh logger; return what the formatter wrote."""
    out = Written()
    stream = io.StringIO()
    handler = _Capture(out, stream, iter(created) if created is not None else None)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"shipper.tests.app{next(_names)}")
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        calls(logger)
    finally:
        logger.handlers = []
    out.text = stream.getvalue()
    return out


@contextlib.contextmanager
def local_zone(zone: str) -> Iterator[None]:
    """Make ``zone`` the process's local timezone (what ``asctime`` is written in)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
