"""CPU cost of e-mail masking per event, for each kind of ``@`` an event may hold.

    PYTHONPATH=. python -m bench.mask_cases [--events 300] [--rounds 20]

Each case is the JSON event of one app line (SPEC §2's ``client.email`` field) with a
different value in that field; ``Masker.mask_lines`` masks a chunk's worth of such
events at once, one event a line, as the renderer does.  The best of five timings is
printed per event.
"""

from __future__ import annotations

import argparse
import functools
import json
import timeit

from shipper.mask import Masker

CASES = {
    "an address": "cho.791@example.com",
    "a masked address": "**o.79*@example.com",
    "a quoted address": '"cho 791"@example.com',
    "a string starting with @": "@app.route",
    "user@host, no domain": "deploy@server1",
    "no @": "nobody",
}


def event(value: str) -> str:
    message = {
        "url": "/api/users/47932",
        "method": "PUT",
        "statusCode": 204,
        "client": {"email": value, "app": "ios"},
        "processedTime": 0.192,
    }
    return json.dumps({"level": "INFO", "message": message, "category": "app"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="events masked together")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    masker = Masker()
    chunks = {name: (event(value) + "\n") * args.events for name, value in CASES.items()}
    for text in chunks.values():
        masker.mask_lines(text)  # warm up: the first round of a process runs slower
    for name, value in CASES.items():
        text = chunks[name]
        work = functools.partial(masker.mask_lines, text)
        best = min(timeit.repeat(work, number=args.rounds, repeat=5))
        masked = masker.mask_lines(text)[0]
        json.loads(masked)  # the event is still JSON
        per_event = best / args.rounds / args.events * 1e6
        print(f"{name:<26} {per_event:6.2f} µs/event   {value!r} -> {_field(masked)!r}")


def _field(masked: str) -> str:
    return str(json.loads(masked)["message"]["client"]["email"])


if __name__ == "__main__":
    main()
