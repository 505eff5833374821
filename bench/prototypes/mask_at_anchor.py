"""Prototype: e-mail masking anchored on the separator instead of on every character.

``shipper.mask.EMAIL`` starts a match attempt at every character that may begin a
local part; in text full of words and JSON keys each attempt runs to the end of its
word before failing for want of an ``@``, so one event costs about 50 µs (half the
full mode's CPU).  Here the separators (``@``, ``%40``) are found with ``str.find``,
the domain is matched forwards from the separator with the same domain pattern, and
the local part is found by walking backwards over the characters it may hold (from
the separator back to the earliest start the original pattern would take, never
before the end of the previous match).  The result is the same text: checked below
against ``Masker.mask`` on the benchmark file and on random strings.  It follows the
e-mail rules of ``shipper/mask.py`` as of commit 4667f63; when those rules change, the
check fails and the walk-back rules here must follow them.

    python -m bench.prototypes.mask_at_anchor --lines 100000
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

from bench.generate import file_from_arguments
from shipper.mask import Masker, partial_email

LOCAL_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&'*+/=?^_`{|}~-"
)
DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])"
)


def local_start(text: str, at: int, floor: int) -> int:
    """Earliest start of a local part ending at ``at`` (== ``at`` when there is none)."""
    if at == floor or text[at - 1] not in LOCAL_CHARS:
        return at
    start = at - 1
    index = at - 2
    while index >= floor:
        char = text[index]
        if char in LOCAL_CHARS:
            start = index
        elif char != "." or index == floor or text[index - 1] not in LOCAL_CHARS:
            break  # a dot must sit between two local characters
        index -= 1
    return start


def mask(text: str, replace: Callable[[str, str], str] = partial_email) -> str:
    if "@" not in text and "%40" not in text:
        return text
    out: list[str] = []
    done = 0  # text before this is already in out
    floor = 0  # a match may not start before the end of the previous one
    search = 0
    length = len(text)
    while search < length:
        at = text.find("@", search)
        pct = text.find("%40", search)
        if at < 0 and pct < 0:
            break
        if at < 0 or (0 <= pct < at):
            at, width = pct, 3
        else:
            width = 1
        domain = DOMAIN.match(text, at + width)
        start = local_start(text, at, floor) if domain else at
        if domain is None or start == at:
            search = at + 1
            continue
        out.append(text[done:start])
        out.append(replace(text[start:at], domain.group()))
        done = floor = search = domain.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def random_text(rng: random.Random) -> str:
    pieces = ["a", "bc", ".", "..", "@", "%40", "x.io", "example.com", "-", "_", '"', " ", "é",
              "%", "4", "0", "+", "Z", "co", ".kr", "{", "}"]  # fmt: skip
    return "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30)))


def main() -> None:
    path = file_from_arguments(__doc__.split("\n\n")[0], 100_000)
    masker = Masker("partial")
    rng = random.Random(1)
    for _ in range(200_000):
        text = random_text(rng)
        assert mask(text) == masker.mask(text), (text, mask(text), masker.mask(text))
    lines = path.read_text().splitlines()
    timings = {}
    for name, function in (("shipper.mask (regex)", masker.mask), ("at-anchored", mask)):
        started = time.process_time()
        results = [function(line) for line in lines]
        timings[name] = (time.process_time() - started, results)
    (old, expected), (new, got) = timings.values()
    assert got == expected
    per_million = 1e6 / len(lines)
    print(
        f"same output on 200,000 random strings and {len(lines):,} lines; CPU-s per million "
        f"lines: regex {old * per_million:.1f}, at-anchored {new * per_million:.1f}"
    )


if __name__ == "__main__":
    main()
