"""Prototype: what a one-line record costs on the raw read path, and what it could.

Over the benchmark file's 64 KiB chunks, with the collector frozen as the shipper
does, this times three ways of going from a chunk's text to raw events:

- ``shipper``: ``Assembler.feed_text`` then ``Renderer.events``, as the reader does;
- ``record, no renderer``: the same regex pass, ``parse_match`` and ``_new_record``
  for each record, then an ``Event`` straight from each ``Record``;
- ``match to event``: from each match straight to an ``Event``, with the time read
  inline: no ``Record``, no per-record method call.

It prints microseconds per event for each (CPU time, this process).

    python -m bench.prototypes.one_line_records --lines 200000
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

from bench.generate import file_from_arguments
from bench.profile import follower_for
from shipper.records import Event, Record

CHUNK = 64 << 10
TRACEBACK_HEAD = "(most recent call last):"


def chunks_of(path: Path) -> list[str]:
    data = path.read_bytes()
    texts = []
    position = 0
    while position < len(data):
        piece = data[position : position + CHUNK]
        cut = piece.rfind(b"\n") + 1
        texts.append(piece[:cut].decode("ascii"))
        position += cut
    return texts


def main() -> None:
    path = file_from_arguments(__doc__.split("\n\n")[0], 200_000)
    texts = chunks_of(path)
    follower = follower_for(path, "raw")
    cursor = follower.scan()[0]
    assembler = cursor.assembler
    line_regex = assembler.parser.line_regex
    parse_match = assembler.parser.parse_match
    read_time = assembler.parser.times.read
    gc.collect()
    gc.freeze()

    def shipper() -> int:
        count = 0
        for text in texts:
            count += len(follower.renderer.events(assembler.feed_text(text, 0, 0), cursor, 0))
        return count

    def record_no_renderer() -> int:
        count = 0
        for text in texts:
            records: list[Record] = []
            pending = None
            for match in line_regex.finditer(text):
                begin, end = match.span()
                if begin == len(text):
                    break
                fields, timestamp = parse_match(match)
                if pending is not None:
                    records.append(pending)
                pending = assembler._new_record(match.group(), fields, timestamp, end + 1, 0)
            events = [Event(r.timestamp, r.text) for r in records]
            count += len(events) + 1
        return count

    def match_to_event() -> int:
        count = 0
        for text in texts:
            events = []
            pending = None
            for match in line_regex.finditer(text):
                begin, end = match.span()
                if begin == len(text):
                    break
                # The checks the assembler makes before taking the fast way.
                if text.find("\n", begin, end) != -1 or text.endswith(TRACEBACK_HEAD, begin, end):
                    raise SystemExit("the benchmark file has no tracebacks")
                line = match.group()
                timestamp = read_time(match["asctime"])
                if pending is not None:
                    events.append(pending)
                pending = Event(timestamp, line)
            count += len(events) + 1
        return count

    ways: dict[str, Callable[[], int]] = {
        "shipper": shipper,
        "record, no renderer": record_no_renderer,
        "match to event": match_to_event,
    }
    for _ in range(2):
        for name, way in ways.items():
            started = time.process_time()
            count = way()
            took = time.process_time() - started
            print(f"{name:<22} {took / count * 1e6:5.2f} µs per event", flush=True)


if __name__ == "__main__":
    main()
