"""The collector's settings for a long run: garbage cycles are freed on a period even
when Python's own trigger for a full collection is out of reach."""

from __future__ import annotations

import asyncio
import gc
import weakref

from shipper import heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _garbage_cycle() -> weakref.ref[Node]:
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_a_full_collection_runs_on_its_period_while_the_heap_is_frozen() -> None:
    async def scenario() -> bool:
        stopping = asyncio.Event()
        collecting = asyncio.create_task(heap.collect_fully(stopping, every=0.05))
        cycle = _garbage_cycle()
        alive_before = cycle() is not None
        for _ in range(40):
            await asyncio.sleep(0.05)
            if cycle() is None:
                break
        stopping.set()
        await collecting
        return alive_before and cycle() is None

    threshold = gc.get_threshold()
    heap.settle_heap()
    gc.disable()  # only the period may collect: no young collection can do it by chance
    try:
        assert asyncio.run(scenario())
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_the_collector_stops_with_the_shipper() -> None:
    async def scenario() -> None:
        stopping = asyncio.Event()
        collecting = asyncio.create_task(heap.collect_fully(stopping, every=3600))
        await asyncio.sleep(0)
        stopping.set()
        async with asyncio.timeout(1):
            await collecting

    asyncio.run(scenario())
