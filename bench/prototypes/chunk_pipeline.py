"""Prototype: the full mode's read → events path working on chunks, not lines.

Today each 1 MiB chunk is split into lines (a tuple per line), each line decoded,
matched with ``fullmatch``, its fields put in a dict, converted, its JSON message
decoded to Python objects, a document dict built, encoded again, masked, and its
UTF-8 size counted.  This prototype does, per chunk:

1. one ``decode`` of the whole complete-lines part (CPython's ASCII fast path);
2. one ``finditer`` of the format's pattern compiled with ``re.M`` (``^…$``) over
   that text: the text between two matches is continuation lines (a traceback);
3. per record, the time from a per-second cache, and the event text built by
   string joins: the JSON message is checked with ``msgspec.json.decode`` and then
   spliced in as written (``compact``: decoded and re-encoded, as today, so the
   output is byte-identical);
4. masking with the separator-anchored masker of :mod:`bench.prototypes.mask_at_anchor`;
5. the size as ``len`` when the text is ASCII.

It checks that every event equals the shipper's (same timestamp, same JSON value),
then prints CPU-seconds per million events for the shipper's ``Follower.read`` and
for each variant.

    python -m bench.prototypes.chunk_pipeline --lines 200000
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from bench.generate import DATEFMT, ZONE, file_from_arguments
from bench.profile import follower_for
from bench.prototypes.mask_at_anchor import mask as anchored_mask
from shipper.mask import Masker

CHUNK = 1 << 20
RECORD = re.compile(
    r"^\[(?P<level>[A-Za-z]+(?: \d+)?)\] (?P<asctime>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) "
    r"(?P<filename>\S+?):(?P<lineno>-?\d+) (?P<message>.*)$",
    re.M,
)
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class ChunkReader:
    def __init__(self, category: str, splice: bool, mask: Callable[[str], str]) -> None:
        self.zone = ZoneInfo(ZONE)
        self.times: dict[str, int] = {}
        self.tail = ',"category":' + _encode(category).decode() + "}"
        self.splice = splice
        self.mask = mask

    def millis(self, asctime: str) -> int:
        cached = self.times.get(asctime)
        if cached is None:
            parsed = datetime.strptime(asctime, DATEFMT).replace(tzinfo=self.zone)
            cached = self.times[asctime] = round(parsed.timestamp() * 1000)
        return cached

    def events(self, path: Path) -> list[tuple[int, str, int]]:
        out: list[tuple[int, str, int]] = []
        with path.open("rb") as file:
            offset = 0
            while True:
                data = file.read(CHUNK)
                if not data:
                    break
                cut = data.rfind(b"\n") + 1
                file.seek(offset + cut)
                offset += cut
                self.chunk(data[:cut].decode("utf-8", "backslashreplace"), out)
        return out

    def chunk(self, text: str, out: list[tuple[int, str, int]]) -> None:
        # A record's traceback ends at the next match; the last record of the file is
        # complete here only because the prototype reads a finished file.
        matches = list(RECORD.finditer(text))
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            extra = text[match.end() + 1 : end].rstrip("\n")
            out.append(self.event(match, extra))

    def raw_events(self, path: Path) -> list[tuple[int, str, int]]:
        """``output: raw``, masking off: only where records start and their time."""
        out: list[tuple[int, str, int]] = []
        with path.open("rb") as file:
            while data := file.read(CHUNK):
                cut = data.rfind(b"\n") + 1
                file.seek(cut - len(data), 1)
                text = data[:cut].decode("utf-8", "backslashreplace")
                starts = [(m.start(), m.group("asctime")) for m in RECORD.finditer(text)]
                ends = [start for start, _ in starts[1:]] + [len(text)]
                millis = self.millis
                for (start, asctime), end in zip(starts, ends, strict=True):
                    message = text[start : end - 1]
                    size = len(message) if message.isascii() else len(message.encode())
                    out.append((millis(asctime), message, size + 26))
        return out

    def event(self, match: re.Match[str], extra: str) -> tuple[int, str, int]:
        level, asctime, filename, lineno, message = match.groups()
        body = None
        if message[:1] == "{":
            try:
                value = _decode(message)
            except msgspec.DecodeError:
                pass
            else:
                body = message if self.splice else _encode(value).decode()
        if body is None:
            body = _encode(message).decode()
        parts = ['{"level":"', level, '","message":', body, ',"filename":',
                 _encode(filename).decode(), ',"lineno":', lineno]  # fmt: skip
        if extra:
            parts += [self.tail[:-1], ',"exception":', _encode(extra).decode(), "}"]
        else:
            parts.append(self.tail)
        text = self.mask("".join(parts))
        size = len(text) if text.isascii() else len(text.encode())
        return self.millis(asctime), text, size + 26


def shipper_events(
    path: Path, anchored: bool = False, mode: str = "full"
) -> list[tuple[int, str, int]]:
    follower = follower_for(path, mode)
    if anchored:  # the shipper's path with only the masker swapped, in this process
        follower.renderer.masker.mask = anchored_mask
    cursor = follower.scan()[0]
    now_ms = int(time.time() * 1000)
    found = []
    while True:
        events = follower.read(cursor, now_ms)
        if events is None:
            events = follower.flush_quiet(cursor, 0.0)
            if not events:
                break
        found.extend(
            (e.timestamp, e.message, size) for e, size in zip(events, events.sizes, strict=True)
        )
    return found


def main() -> None:
    path = file_from_arguments(__doc__.split("\n\n")[0], 200_000)
    regex_mask = Masker("partial").mask
    variants: dict[str, Callable[[], list[tuple[int, str, int]]]] = {
        "shipper Follower.read": lambda: shipper_events(path),
        "Follower.read, anchored mask": lambda: shipper_events(path, anchored=True),
        "chunk, re-encode, regex mask": lambda: ChunkReader("app", False, regex_mask).events(path),
        "chunk, re-encode, anchored mask": lambda: ChunkReader("app", False, anchored_mask).events(
            path
        ),
        "chunk, splice, anchored mask": lambda: ChunkReader("app", True, anchored_mask).events(
            path
        ),
    }
    compare(variants)
    compare(
        {
            "raw: shipper Follower.read": lambda: shipper_events(path, mode="raw"),
            "raw: chunk, start and time only": lambda: ChunkReader(
                "app", False, regex_mask
            ).raw_events(path),
        }
    )


def compare(variants: dict[str, Callable[[], list[tuple[int, str, int]]]]) -> None:
    """Run each variant; check each against the first; print CPU per million events."""
    reference: list[tuple[int, str, int]] = []
    for name, run in variants.items():
        started = time.process_time()
        events = run()
        took = time.process_time() - started
        if not reference:
            reference = events
        else:
            assert len(events) == len(reference), (name, len(events), len(reference))
            for mine, theirs in zip(events, reference, strict=True):
                assert mine[0] == theirs[0], (name, mine, theirs)
                if mine[1] != theirs[1]:
                    assert _decode(mine[1]) == _decode(theirs[1]), (name, mine, theirs)
        identical = sum(m[1] == t[1] for m, t in zip(events, reference, strict=True))
        print(
            f"{name:<34} {took / len(events) * 1e6:5.1f} CPU-s per million events "
            f"({identical / len(events):.0%} byte-identical to the shipper's)",
            flush=True,
        )


if __name__ == "__main__":
    main()
