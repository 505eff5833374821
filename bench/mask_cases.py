"""CPU cost of masking per event, for each kind of ``@`` (and other personal data) an
event may hold.

    PYTHONPATH=. python -m bench.mask_cases [--events 300] [--rounds 20] [--all-detectors]

Each case is the JSON event of one app line (SPEC §2's ``client.email`` field) with a
different value in that field; ``Masker.mask_lines`` masks a chunk's worth of such
events at once, one event a line, as the renderer does, with the default rules
(e-mail, the ID numbers, URL passwords, private keys and the key rules) or every
detector on.  The best of five timings is printed per event.
"""

from __future__ import annotations

import argparse
import functools
import json
import timeit

from shipper.config import MASK_DETECTORS, MaskingConfig
from shipper.mask import masker_for

CASES = {
    "an address": "cho.791@example.com",
    "a masked address": "**o.79*@example.com",
    "a quoted address": '"cho 791"@example.com',
    "a string starting with @": "@app.route",
    "user@host, no domain": "deploy@server1",
    "no @": "nobody",
    "an address beyond ASCII": "홍길동@회사.한국",
    "a key rule's value": "password=hunter2&next=/",
    "a resident number": "900101-1234567",
    "a Chinese ID number": "11010519491231002X",
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
    parser.add_argument("--all-detectors", action="store_true", help="every detector on (partial)")
    args = parser.parse_args()
    config = MaskingConfig()
    if args.all_detectors:
        config = MaskingConfig(**dict.fromkeys(MASK_DETECTORS, "partial"))  # type: ignore[arg-type]
    masker = masker_for(config, env={})
    print(f"masking: {'every detector' if args.all_detectors else 'the defaults'}")
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
