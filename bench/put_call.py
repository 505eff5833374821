"""CPU per PutLogEvents call, in one process: the shipper's own client, nothing else.

Starts the local CloudWatch Logs API of :mod:`bench.sink` (its own process, so its
CPU is not counted), opens :class:`shipper.cloudwatch.LogsClient` against it and
calls :meth:`~shipper.cloudwatch.LogsClient.put_events` ``--calls`` times, round-robin
over ``--streams`` streams, each with a small batch (1 to ``--max-events`` events of
~200 bytes, as a quiet source sends), one call at a time.  Each call's CPU is the
process's ``time.process_time`` across it: the request body, botocore's request
building and signing, the client side of the HTTP round trip and the response's
parsing.  The first ``--warmup`` calls (connections, the model's caches) are left out.

Prints the median and p90 CPU ms per call; ``--profile N`` also prints cProfile's
top N functions (by own time and by cumulative time) over the measured calls.  The
profile's clock is the wall clock (a CPU clock costs more than most functions it
would time): the socket's ``send`` and the selector's ``poll`` include waiting, the
rest is CPU, and the CPU figures printed with ``--profile`` include its overhead.

    python -m bench.put_call
    python -m bench.put_call --calls 2000 --profile 30
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import statistics
import time

from bench.run import CREDENTIALS, SinkProcess
from shipper.cloudwatch import LogsClient
from shipper.config import CloudWatchConfig
from shipper.records import Event

GROUP = "bench/put-call"
MESSAGE = '{"url": "/api/orders", "method": "GET", "statusCode": 200, "client": "*****@x.com"}'


def _batch(rng: random.Random, most: int) -> list[Event]:
    now = int(time.time() * 1000)
    return [Event(now, f"{MESSAGE} {i:06d}" * 2) for i in range(rng.randint(1, most))]


async def measure(
    url: str, calls: int, warmup: int, streams: int, most: int, profile: cProfile.Profile | None
) -> tuple[list[float], tuple[float, float]]:
    """CPU seconds of each measured call, and the user and system seconds of all of
    them (with the loop's own small work: making each batch)."""
    client = LogsClient(CloudWatchConfig(region="us-east-1", endpoint_url=url))
    await client.open()
    rng = random.Random(7)
    names = [f"s{i}" for i in range(streams)]
    tokens: dict[str, str | None] = {}
    try:
        await client.create_stream(GROUP, names[0], create_group=True)
        for name in names[1:]:
            await client.create_stream(GROUP, name, create_group=False)
        spent: list[float] = []
        for index in range(warmup + calls):
            name = names[index % streams]
            batch = _batch(rng, most)
            measured = index >= warmup
            if index == warmup:
                before = os.times()
            if measured and profile is not None:
                profile.enable()
            started = time.process_time()
            result = await client.put_events(GROUP, name, batch, tokens.get(name))
            used = time.process_time() - started
            if measured and profile is not None:
                profile.disable()
            tokens[name] = result.next_token
            if measured:
                spent.append(used)
        after = os.times()
        return spent, (after.user - before.user, after.system - before.system)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--max-events", type=int, default=20, help="events per call: 1 to this")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile's top N")
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    profile = cProfile.Profile() if args.profile else None
    sink = SinkProcess(expect=None)
    try:
        spent, (user, system) = asyncio.run(
            measure(sink.url, args.calls, args.warmup, args.streams, args.max_events, profile)
        )
    finally:
        final = sink.stop()
    if final.get("violations"):
        raise SystemExit(f"the sink refused calls: {final['violation_examples']}")
    ms = sorted(s * 1000 for s in spent)
    p90 = ms[int(len(ms) * 0.9)]
    print(
        f"PutLogEvents: {len(ms)} calls of 1-{args.max_events} events over {args.streams} "
        f"streams; CPU per call median {statistics.median(ms):.3f} ms, p90 {p90:.3f} ms, "
        f"mean {statistics.fmean(ms):.3f} ms (user {user / len(ms) * 1000:.3f}, "
        f"system {system / len(ms) * 1000:.3f})"
    )
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
