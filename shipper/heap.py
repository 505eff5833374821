"""The garbage collector's settings for a long-running shipper.

Start-up leaves a couple of hundred thousand long-lived objects (the imported
modules, botocore's service model).  They are collected once and frozen out of the
collector's sight (:func:`settle_heap`), so that young collections stay cheap while a
backlog is read.  A frozen heap has a cost over months: Python starts a full
collection only when the objects that survived younger ones reach a quarter of the
long-lived ones it tracks, and with the start-up heap frozen that trigger is out of
reach for hours: garbage cycles that outlived two young collections stayed in the
oldest generation, and resident memory crept some 0.6 to 0.8 MiB per 10 minutes
while Python's own allocations stayed flat.  :func:`collect_fully` runs a full
collection on a fixed period instead; with the start-up heap frozen it walks only
what the pipeline holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

# Allocations between two young-generation collections (Python's default is 700).
# Reading a backlog allocates a few objects per event, nearly all freed by reference
# counting within the chunk; at 700 the collector ran some 6,000 times per 2 million
# events and kept moving live in-flight events to older generations.
YOUNG_COLLECTION_EVERY = 20_000

# Seconds between two full collections of what is not frozen.
FULL_COLLECTION_EVERY = 60.0


def settle_heap() -> None:
    """Collect start-up's garbage, then take what is left out of the collector's sight.

    Each full collection walked all of start-up's objects, and while a backlog was
    read the collector took a sixth of the CPU of raw shipping.  Frozen, they are not
    scanned again; the pipeline's records and events still are, less often.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


def resettle_heap() -> None:
    """Give the frozen objects back to the collector (what removed sources held is
    garbage after a reload), then settle again."""
    gc.unfreeze()
    settle_heap()


async def collect_fully(stopping: asyncio.Event, every: float = FULL_COLLECTION_EVERY) -> None:
    """Run a full collection of the unfrozen heap every ``every`` seconds until
    ``stopping`` is set."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await stopping.wait()
        if not stopping.is_set():
            gc.collect()
