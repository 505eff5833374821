"""Sums up py-spy's collapsed stacks (``-f raw``) per function: self and inclusive share.

python -m bench.stacks /tmp/spy/full.txt --top 20
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "Masker.mask (/work/.../shipper/mask.py:75)" -> "Masker.mask (shipper/mask.py)"
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>.*?)(?::\d+)?\)$")
_PREFIX = re.compile(r"^.*/(?:site-packages|lib/python3\.\d+)/|^.*/(?=shipper/)")


def function(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['name']} ({_PREFIX.sub('', match['file'])})"


def summarize(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [function(f) for f in stack.split(";")]
        own[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    total, own, inclusive = summarize(args.stacks)
    print(f"{total} samples\n  self  incl.  function")
    for name, samples in own.most_common(args.top):
        print(f"{100 * samples / total:5.1f}% {100 * inclusive[name] / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
