"""``shipper preview``: the next events exactly as they would be shipped.

It reads from the saved checkpoints (or ``start_at``) like ``run`` does, renders and
masks the events, and prints them with their group, stream and timestamp — without
calling CloudWatch or saving any checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TextIO

from shipper.app import build_follower, placeholder_values, stream_names
from shipper.checkpoints import CheckpointStore
from shipper.config import Config
from shipper.follow import Follower
from shipper.mask import masker_for
from shipper.records import Event, FileEvents
from shipper.source_reader import SourceReader


class _Collected:
    """A sink that keeps what it is handed and says when it has ``limit`` events."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.events: list[Event] = []
        self.enough = asyncio.Event()

    async def put(self, events: FileEvents) -> None:
        self.events.extend(events)
        if len(self.events) >= self.limit:
            self.enough.set()


async def collect(follower: Follower, limit: int) -> list[Event]:
    """Up to ``limit`` events from the follower's files, oldest file first, read by the
    same :class:`SourceReader` that ``run`` reads with (one pass, nothing waited for)."""
    collected = _Collected(limit)
    await SourceReader(follower, collected).read_available(collected.enough)
    return collected.events[:limit]


async def preview(config: Config, category: str | None, limit: int, out: TextIO) -> int:
    """Print the next events; the number of events printed."""
    masker = masker_for(config.masking)
    values = await placeholder_values(config)
    state = CheckpointStore(config.state_dir).load()
    shown = 0
    for source in config.sources:
        if category is not None and source.category != category:
            continue
        group, stream = stream_names(config, source, values)
        follower = build_follower(source, state, masker, time.time())
        try:
            for event in await collect(follower, limit):
                when = datetime.fromtimestamp(event.timestamp / 1000, UTC)
                stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                out.write(f"{group}\t{stream}\t{stamp}\t{event.message}\n")
                shown += 1
        finally:
            follower.close()
    return shown
