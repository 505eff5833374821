"""The shipper's hot path in one process, without the network, for profiling.

Runs what a reader task and a delivery task do per event — ``Follower.read``
(read, split, assemble, parse, render, mask) then ``Batcher.add`` / ``seal`` — over
the benchmark file, and optionally what is done per batch before the request
leaves: the PutLogEvents JSON body (msgspec, as :mod:`shipper.cloudwatch` builds
it) and botocore's SigV4 signing.  Prints CPU-seconds per million events for each stage and, with
``--cprofile``, the top entries of a cProfile of the whole.

    python -m bench.profile --lines 200000 --mode full --request --cprofile 25
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import ensure
from bench.run import masking_for, source
from shipper import config as config_module
from shipper.app import build_follower
from shipper.batcher import Batch, Batcher
from shipper.checkpoints import State
from shipper.heap import settle_heap
from shipper.mask import masker_for


def follower_for(path: Path, mode: str) -> Any:
    import yaml

    text = yaml.safe_dump(
        {
            "state_dir": tempfile.gettempdir(),
            "sources": [source("app", path, mode)],
            "masking": masking_for(mode),
            "health": {"listen": None},
        }
    )
    config = config_module.parse(text, path.parent)
    masker = masker_for(config.masking)
    return build_follower(config.sources[0], State(), masker, time.time())


def read_and_batch(path: Path, mode: str) -> tuple[int, list[Batch]]:
    """Every event of the file through the follower and the batcher."""
    follower = follower_for(path, mode)
    settle_heap()  # as the shipper does once started
    batcher = Batcher()
    batches: list[Batch] = []
    count = 0
    cursors = follower.scan()
    cursor = cursors[0]
    now_ms = int(time.time() * 1000)
    while True:
        events = follower.read(cursor, now_ms)
        if events is None:
            events = follower.flush_quiet(cursor, 0.0)
            if not events:
                break
        batches.extend(batcher.add_all(events, now_ms, time.monotonic()))
        count += len(events)
    last = batcher.seal()
    if last is not None:
        batches.append(last)
    return count, batches


def build_requests(batches: list[Batch]) -> None:
    """What the shipper does to a PutLogEvents call before sending: the body encoded
    by msgspec (as :mod:`shipper.cloudwatch` does), then botocore's SigV4 signing."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from shipper.cloudwatch import _put_body

    signer = SigV4Auth(Credentials("bench", "bench"), "logs", "us-east-1")
    for batch in batches:
        body = _put_body("/bench/app", "bench", batch.events, None)
        aws = AWSRequest(
            method="POST",
            url="https://logs.us-east-1.amazonaws.com/",
            data=body,
            headers={"X-Amz-Target": "Logs_20140328.PutLogEvents"},
        )
        signer.add_auth(aws)


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--mode", choices=("full", "raw", "raw+keys"), default="full")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "shipper-bench")
    parser.add_argument("--request", action="store_true", help="also build and sign the requests")
    parser.add_argument("--cprofile", type=int, metavar="N", help="print the top N entries")
    args = parser.parse_args()
    path = args.data / f"app-{args.lines}.log"
    meta = ensure(path, args.lines)
    profiler = cProfile.Profile() if args.cprofile else None
    if profiler:
        profiler.enable()
    started = cpu()
    count, batches = read_and_batch(path, args.mode)
    read_cpu = cpu() - started
    if args.request:
        started = cpu()
        build_requests(batches)
        request_cpu = cpu() - started
    if profiler:
        profiler.disable()
    assert count == meta["records"], (count, meta["records"])
    per_million = 1e6 / count
    print(
        f"{args.mode}: {count:,} events, {len(batches)} batches; "
        f"read+batch {read_cpu * per_million:.1f} CPU-s per million events"
        + (f", body+sign {request_cpu * per_million:.1f}" if args.request else "")
        + (" (under cProfile: slower than real)" if profiler else "")
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)


if __name__ == "__main__":
    main()
