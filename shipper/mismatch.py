"""Noticing a format that does not fit its files.

Lines the format does not match, and that are neither a traceback's nor a message's
further lines, stand alone as events (see :mod:`shipper.multiline`).  A source's watch
counts them (``shipper_format_mismatches_total{category}``), logs ``format.mismatch``
with the first one as an example (values under key-rule keys redacted here, the rest
masked as all our logs are) at most once every ``LOG_EVERY`` seconds, and gives /readyz
a reason until the source's lines have matched again, with no mismatch, for
``CLEAR_AFTER`` seconds.

:func:`sample_file` tells the same before a run (``shipper check``): what the format
makes of the first ``SAMPLE_LINES`` lines of a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shipper import telemetry
from shipper.config import SourceConfig
from shipper.encoding import text_encoding
from shipper.mask import Masker
from shipper.multiline import assembler_for

LOG_EVERY = 60.0
CLEAR_AFTER = 60.0
EXAMPLE_CHARS = 200
SAMPLE_LINES = 20
_SAMPLE_BYTES = 256 << 10


class MismatchWatch:
    """One source's lines that its format did not match."""

    def __init__(self, category: str, masker: Masker) -> None:
        self.category = category
        self.masker = masker
        self.last_mismatch: float | None = None  # monotonic seconds; None: none yet
        self.last_match = 0.0
        self.logged_at: float | None = None
        self.since_logged = 0  # lines not matched since the last log

    def seen(
        self, path: str, taken: tuple[int, tuple[str, int] | None], records: int, now: float
    ) -> None:
        """What one read of ``path`` gave at ``now`` (monotonic seconds): ``records``
        records, of which ``unmatched`` were lines the format did not match (``example``:
        the first, and its end offset), as ``Assembler.take_unmatched`` gives them."""
        unmatched, example = taken
        if records > unmatched:
            self.last_match = now
        if not unmatched or example is None:
            return
        self.last_mismatch = now
        self.since_logged += unmatched
        text, end = example
        if self.logged_at is None or now - self.logged_at >= LOG_EVERY:
            shown = self.masker.redact_key_text(text[:EXAMPLE_CHARS])
            telemetry.format_mismatch(self.category, unmatched, path, end, shown, self.since_logged)
            self.logged_at = now
            self.since_logged = 0
        else:
            telemetry.format_mismatch(self.category, unmatched, path, end, None, 0)

    def reason(self, now: float) -> str | None:
        """Why /readyz should not say ready at ``now``, while lines do not match the
        format."""
        if self.last_mismatch is None:
            return None
        if self.last_match > self.last_mismatch and now - self.last_mismatch >= CLEAR_AFTER:
            return None  # they match again, and have for a while
        return f"{self.category}: lines do not match the source's format (see format.mismatch)"


@dataclass(frozen=True)
class Sample:
    """What a source's format made of the first lines of one file."""

    lines: int  # complete lines read
    matched: int  # records whose first line the format matched
    first_unmatched: tuple[int, str] | None  # line number (from 1) and text of the first
    # line that stood alone unmatched


def sample_file(source: SourceConfig, path: Path, lines: int = SAMPLE_LINES) -> Sample:
    """Read the first ``lines`` lines of ``path`` as the source would (its encoding,
    its format and the rules of :mod:`shipper.multiline`).  Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        encoding = text_encoding(source.encoding).for_file(fd)
        data = os.pread(fd, _SAMPLE_BYTES, 0)
    finally:
        os.close(fd)
    raws = encoding.lines(data[: encoding.end_of_lines(data)])[:lines]
    texts = [(encoding.decode(raw), number) for number, raw in enumerate(raws, 1)]
    assembler = assembler_for(source)
    records = assembler.feed(texts, 0)
    last = assembler.flush()
    records.extend([last] if last is not None else [])
    matched = sum(record.fields is not None for record in records)
    _, example = assembler.take_unmatched()
    first = (example[1], example[0]) if example is not None else None
    return Sample(len(texts), matched, first)
