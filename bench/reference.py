"""A fixed CPU workload that tells how fast the machine is running right now.

On a shared virtual machine the same run can cost 20 to 50% more CPU-seconds from one
hour to the next, with no steal time reported.  ``bench.run`` times this workload (five
tries) before and after its measurements, so that a set of figures can be read against
the machine's speed at the time.  The workload never changes with the shipper's code:
when its time goes up by a quarter, expect the shipper's figures to follow, and compare
two commits only between sets with alike reference times, or better, in turns.

The work is of the kinds a shipper does (a regular expression over text, tuples and
dicts made in a Python loop, JSON, SHA-256), in the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

_LINE = "[INFO] 2024-01-02 03:04:{:02d},{:03d} app.py:{} user {}@example.com paid {} EUR\n"
_TEXT = "".join(_LINE.format(n % 60, n % 1000, n % 500, n, n * 7) for n in range(20_000))
_PATTERN = re.compile(
    r"^\[(?P<level>[A-Z]+)\] (?P<time>[0-9 :,-]+) (?P<where>\S+?):(?P<n>[0-9]+) (?P<message>.*)$",
    re.M,
)
_DATA = bytes(range(256)) * 4096  # 1 MiB


def reference_seconds(tries: int = 5) -> list[float]:
    """CPU seconds of each of ``tries`` runs of the fixed workload (lower is faster)."""
    return [_once() for _ in range(tries)]


def _once() -> float:
    started = time.process_time()
    for _ in range(10):
        rows = [match.groups() for match in _PATTERN.finditer(_TEXT)]
        documents = [
            {"level": level, "line": int(n), "message": message} for level, _, _, n, message in rows
        ]
        json.dumps(documents)
    for _ in range(48):
        hashlib.sha256(_DATA).digest()
    return time.process_time() - started
