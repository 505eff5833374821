"""Reading a gzipped rotated file as if it were the plain file it was made from.

Offsets are in uncompressed bytes, so a file compressed after (or while) it was read
carries its checkpoint over: its first bytes, decompressed, are the fingerprint of
the plain file, and reading goes on from the same offset.  A file still being
written by ``gzip`` has no end of stream yet: :meth:`GzipReader.size` says so, and
it is looked at again once it is complete.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib


class GzipReader:
    """Positional reads of a gzipped file's decompressed content, through ``fd``.

    Reading forward is streaming; reading before the current position decompresses
    from the start again (the followers read forward only).
    """

    def __init__(self, fd: int) -> None:
        self._raw = os.fdopen(fd, "rb", closefd=False)
        self._file = gzip.GzipFile(fileobj=self._raw, mode="rb")

    def pread(self, count: int, offset: int) -> bytes:
        """Up to ``count`` decompressed bytes from ``offset``; what is there, or less."""
        try:
            if self._file.tell() != offset:
                self._file.seek(offset)
            return self._file.read(count)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
            self._rewind()  # cut short or damaged: what follows is unknown, read nothing
            return b""

    def size(self) -> int | None:
        """The decompressed size; None while the stream has no end (being written) or
        cannot be read."""
        try:
            return self._file.seek(0, io.SEEK_END)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
            return None
        finally:
            self._rewind()

    def _rewind(self) -> None:
        self._raw.seek(0)
        self._file = gzip.GzipFile(fileobj=self._raw, mode="rb")

    def close(self) -> None:
        """Release the decompressor; the descriptor stays its owner's to close."""
        self._file.close()
        self._raw.close()
