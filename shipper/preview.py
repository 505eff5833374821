"""``shipper preview``: the next events exactly as they would be shipped.

It reads from the saved checkpoints (or ``start_at``) like ``run`` does, renders and
masks the events, and prints them with their group, stream and timestamp — without
calling CloudWatch or saving any checkpoint.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TextIO

from shipper.app import build_follower, placeholder_values, stream_names
from shipper.checkpoints import CheckpointStore
from shipper.config import Config
from shipper.follow import Follower
from shipper.mask import masker_for
from shipper.records import Event


def collect(follower: Follower, limit: int) -> list[Event]:
    """Up to ``limit`` events from the follower's files, oldest file first."""
    events: list[Event] = []
    now_ms = int(time.time() * 1000)
    for cursor in follower.scan():
        while len(events) < limit:
            chunk = follower.read(cursor, now_ms)
            if chunk is None:
                events.extend(follower.flush_quiet(cursor, 0.0))
                break
            events.extend(chunk)
        if len(events) >= limit:
            break
    return events[:limit]


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
            for event in collect(follower, limit):
                when = datetime.fromtimestamp(event.timestamp / 1000, UTC)
                stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                out.write(f"{group}\t{stream}\t{stamp}\t{event.message}\n")
                shown += 1
        finally:
            follower.close()
    return shown
