"""Text encodings of followed files: where their lines end, and how a line's bytes
become text.

Offsets stay byte offsets, so a line is found and cut on bytes, then decoded alone:

- In ASCII-compatible encodings (UTF-8, CP949/EUC-KR, GBK/GB18030, Big5, Shift_JIS,
  latin-1, …) a newline is the byte ``\\n``, which is never part of a multi-byte
  character there (their trail bytes are ``0x40`` and above), so bytes split on it.
  ASCII bytes decode to the same text as in ASCII: the reader's ASCII fast path holds.
- In UTF-16 and UTF-32 a newline is a code unit (``\\n\\x00`` in UTF-16-LE, ``\\x00\\n``
  in -BE); a line ends at such a unit only on a unit boundary of the line, never across
  two characters.  ``utf-16`` and ``utf-32`` read the byte order from the file's BOM
  (little-endian without one, as Python writes them on the usual hosts), and the BOM is
  not part of the first line's text.

A line's bytes that do not decode are kept visibly, as ``\\xNN`` escapes.  A line's
carriage return (CRLF files) is dropped from its text, not from its offsets.
"""

from __future__ import annotations

import codecs
import functools
import os

from shipper.compressed import GzipReader

# The byte-order marks of the encodings that take their order from one, longest first
# (a UTF-32-LE mark starts like a UTF-16-LE one).
_ORDERED = {
    "utf-16": ((codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF16_LE, "utf-16-le")),
    "utf-32": ((codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF32_LE, "utf-32-le")),
}
_ASCII = bytes(range(128))
_ASCII_TEXT = _ASCII.decode("ascii")


class TextEncoding:
    """One encoding's newline, line splitting and decoding."""

    def __init__(self, name: str) -> None:
        info = codecs.lookup(name)
        self.name = info.name
        encoder = info.incrementalencoder()
        encoder.encode("\n")  # a byte-order mark, if the encoding writes one, goes first
        self.newline = encoder.encode("\n")
        self.unit = len(self.newline)  # lines end on multiples of this
        self.space = encoder.encode(" ")  # where an overlong line's parts may end
        writes_ascii = encoder.encode(_ASCII_TEXT) == _ASCII
        self.ascii_compatible = writes_ascii and _ASCII.decode(self.name, "replace") == _ASCII_TEXT
        self._single = self.newline == b"\n"
        self._bom = self.name.startswith(("utf-16", "utf-32"))

    def for_file(self, fd: int | GzipReader | None) -> TextEncoding:
        """The encoding of the open file ``fd`` (a gzipped one: its decompressed content):
        with its byte order, for an encoding that takes it from the byte-order mark."""
        orders = _ORDERED.get(self.name)
        if orders is None:
            return self
        head = b""
        if isinstance(fd, int):
            head = os.pread(fd, 4, 0)
        elif fd is not None:
            head = fd.pread(4, 0)
        for mark, name in orders:
            if head.startswith(mark):
                return text_encoding(name)
        return text_encoding(orders[-1][1])  # no mark: little-endian

    def end_of_lines(self, data: bytes) -> int:
        """How many bytes of ``data`` (which starts on a character) are whole lines."""
        newline = self.newline
        if self._single:
            return data.rfind(newline) + 1
        unit = self.unit
        at = data.rfind(newline)
        while at > 0 and at % unit:
            at = data.rfind(newline, 0, at + unit - 1)
        return at + unit if at >= 0 else 0

    def lines(self, body: bytes) -> list[bytes]:
        """The lines of ``body``, whole lines from a character on, without newlines."""
        newline = self.newline
        if self._single:
            return body[: -len(newline)].split(newline)
        unit = self.unit
        lines = []
        start = 0
        size = len(body)
        while start < size:
            at = body.find(newline, start)
            while at % unit:
                at = body.find(newline, at + 1)
            lines.append(body[start:at])
            start = at + unit
        return lines

    def whole_units(self, size: int) -> int:
        """``size`` rounded down to whole code units (where a long line may be cut)."""
        return size - size % self.unit

    def decode(self, raw: bytes) -> str:
        """The text of one line's bytes."""
        text = raw.decode(self.name, "backslashreplace")
        if self._bom and text[:1] == "\ufeff":
            text = text[1:]  # the file's byte-order mark, before its first line
        return text[:-1] if text[-1:] == "\r" else text


@functools.cache
def text_encoding(name: str) -> TextEncoding:
    """The :class:`TextEncoding` of a codec name (``codecs.lookup`` accepts it)."""
    return TextEncoding(name)
