"""Events as a reader hands them over, flattened for comparisons."""

from __future__ import annotations

from collections.abc import Iterable

from shipper.records import FileEvents

# One event and what comes with it: timestamp, message, size, end offset in its file.
Seen = tuple[int, str, int, int]


def seen(steps: Iterable[FileEvents]) -> list[Seen]:
    """Every event of ``steps``, in order, with its size and end offset."""
    return [
        (event.timestamp, event.message, size, end)
        for step in steps
        for event, size, end in zip(step.events, step.sizes, step.ends, strict=True)
    ]
