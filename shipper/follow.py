"""Following one source's files: the live file, its rotated siblings, and files that
were renamed or deleted while being read.

Files are known by identity — device, inode and a fingerprint of their first bytes —
never by name.  When ``app.log`` is renamed to ``app.log.20240101`` the file keeps its
identity, so the shipper reads the rest of it (stale writers included) before the new
``app.log``, and a checkpoint finds it again under its new name after a restart.

Where a file starts being read:

- known from the checkpoint (same inode and fingerprint): at its delivered offset;
- its device and inode match nothing known (a container restart can change the
  device number; ``copytruncate`` makes a copy with a new inode) but its first
  bytes match a saved file or an earlier content generation: at that offset;
- the source was never covered before: the live file at ``start_at``, rotated
  siblings not at all (they are history from before the shipper);
- otherwise a file not seen before is new and read from its first byte — except a
  rotated sibling last written before the shipper first covered the source (history).
  A source whose checkpoint was lost counts as covered since ever: nothing is history.

A file that shrinks below the read offset, or whose first bytes changed, was truncated
(``copytruncate``) or rewritten: reading restarts at 0 under a new :class:`Cursor`, so
acknowledgements of the old content cannot move the new content's offset.  A copy of
a file that is still being followed intact (``cp app.log app.log.1``) is not read
again; when the original is then truncated, the copy is read from where the original
stopped, so lines written between the last read and the truncation are not lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shipper import telemetry
from shipper.checkpoints import FileCheckpoint, SourceCheckpoint
from shipper.config import SourceConfig
from shipper.multiline import Assembler, assembler_for, whole_lines
from shipper.parse import FormatParser, datefmt_pattern
from shipper.records import FileEvents, Line, Record
from shipper.render import Renderer

FINGERPRINT_BYTES = 512
# Bytes read per step: the reader returns to the event loop after each step, so a
# small step keeps deliveries going while a backlog is read.
READ_CHUNK = 64 << 10
# A file that is no longer the live one is closed after this long without growth.
ROTATE_WAIT = 30.0
# A record with no line after it for this long is complete (its traceback is over).
MULTILINE_WAIT = 0.5
# Content generations remembered by fingerprint, to place copies made by copytruncate.
RETIRED_KEPT = 64
# The `rotated` value for logrotate's numbered siblings (app.log.1 newest, app.log.2, ...).
NUMBERED = "number"


@dataclass(frozen=True)
class Identity:
    dev: int
    ino: int
    fp_len: int
    fp: str


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint(fd: int) -> tuple[int, str]:
    """Length and digest of a file's first bytes: ``FINGERPRINT_BYTES`` of them, or its
    complete first lines while it is shorter (a partial line is no identity: ``{`` or a
    timestamp's first digits start many files)."""
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    if len(head) < FINGERPRINT_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    return len(head), _digest(head)


def same_start(fd: int, fp_len: int, fp: str) -> bool:
    """Whether the file behind ``fd`` starts with the fingerprinted bytes."""
    head = os.pread(fd, fp_len, 0)
    return len(head) == fp_len and _digest(head) == fp


def rotated_pattern(live_name: str, suffix: str) -> re.Pattern[str]:
    """Names of rotated siblings: ``app.log.<suffix>`` (``-`` or ``_`` also separate it,
    as logrotate's ``dateext`` writes) or a namer's ``app.<suffix>.log``."""
    stamp = r"[1-9][0-9]*" if suffix == NUMBERED else datefmt_pattern(suffix)
    stem, dot, ext = live_name.rpartition(".")
    forms = [re.escape(live_name) + r"[.\-_]" + f"({stamp})"]
    if dot and stem:
        forms.append(re.escape(stem) + r"[.\-_]" + f"({stamp})" + re.escape(dot + ext))
    return re.compile("|".join(forms))


class Cursor:
    """One followed file (one content generation of it) and how far it was read."""

    def __init__(self, category: str, identity: Identity, path: str, offset: int, fd: int | None):
        self.category = category
        self.identity = identity
        self.path = path
        self.fd = fd
        self.read_offset = offset
        self.delivered_offset = offset
        self.size = offset
        self.live = False
        self.gone = False  # no longer under any watched name
        self.order = (0.0, 0.0)  # rotation time, mtime: older files are read first
        self.last_growth = time.monotonic()
        # Since when the reader has been at the end of the file with nothing new (None:
        # not at the end). A record pending there is complete once this lasts a moment;
        # time spent waiting on a full stream does not count.
        self.quiet_since: float | None = None
        self.part = 0  # parts already emitted of a line longer than the limit
        self.assembler: Assembler | None = None
        self.seen: tuple[int, int] = (-1, -1)  # size and mtime at the last scan
        # The followed file this one is a copy of, while that one is intact: this copy is
        # read only if the original is truncated (copytruncate), from where it stopped.
        self.copy_of: Cursor | None = None

    def pending_record(self) -> bool:
        return self.assembler is not None and self.assembler.pending is not None

    def delivered(self, offset: int) -> None:
        if offset > self.delivered_offset:
            self.delivered_offset = offset

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def checkpoint(self) -> FileCheckpoint:
        ident = self.identity
        return FileCheckpoint(
            ident.dev, ident.ino, ident.fp_len, ident.fp, self.delivered_offset, self.path
        )

    def __repr__(self) -> str:
        return f"Cursor({self.path!r}, read={self.read_offset}, delivered={self.delivered_offset})"


class Follower:
    """Finds, orders and reads the files of one source; turns their lines into events."""

    def __init__(
        self,
        source: SourceConfig,
        saved: SourceCheckpoint | None,
        renderer: Renderer,
        now: float,
    ) -> None:
        self.source = source
        self.category = source.category
        self.directory = source.path.parent
        self.live_name = source.path.name
        self.rotated = rotated_pattern(self.live_name, source.rotated)
        self.renderer = renderer
        # Whether a chunk of text holding no key-rule key can skip the key rules for the
        # records read wholly from it (see :meth:`_ascii_records`).
        parser = assembler_for(source).parser
        self.keys_from_text_only = renderer.masker.keys != () and renderer.keys_only_from_text(
            parser.field_names
        )
        # The struct the renderer would have a format's fields as (None: dicts).
        self.rows = (
            renderer.row_type(parser.record_names) if isinstance(parser, FormatParser) else None
        )
        self.first_run = saved is None
        self.since = saved.since if saved else now
        self.saved = {(f.dev, f.ino): f for f in saved.files} if saved else {}
        self.cursors: dict[tuple[int, int], Cursor] = {}
        # Fingerprint -> offset of content no longer found at its device and inode
        # (truncated, rewritten, or saved under an inode that is gone).
        self.retired: dict[tuple[int, str], int] = {}
        # Content generations ended by a truncation while a record was still open.
        self.orphans: list[Cursor] = []
        self._reported: set[str] = set()  # problems already logged, not to repeat each scan

    # ------------------------------------------------------------------ discovery

    def scan(self) -> list[Cursor]:
        """Look at the folder; return the cursors to read, oldest file first."""
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            self._report(str(self.directory), exc)
            names = None
        found: dict[tuple[int, int], tuple[str, bool, float, os.stat_result]] = {}
        for name in names or ():
            if name == self.live_name:
                live, stamp = True, float("inf")
            else:
                match = self.rotated.fullmatch(name)
                if match is None:
                    continue
                live, stamp = False, self._stamp(match)
            path = os.path.join(self.directory, name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished between listing and stat, or a dangling link
            if stat.S_ISREG(st.st_mode):
                # A second name of a file already listed (a link) keeps the first.
                found.setdefault((st.st_dev, st.st_ino), (path, live, stamp, st))
        # Files known by device and inode first: what they no longer hold is retired
        # before new files (copies) are matched against it by fingerprint.
        order = sorted(found, key=lambda k: k not in self.cursors and k not in self.saved)
        for key in order:
            path, live, stamp, st = found[key]
            cursor = self.cursors.get(key)
            if cursor is not None:
                cursor = self._recheck(key, cursor, path, live, st)
            if cursor is None:
                cursor = self._open(key, path, live, st)
                if cursor is None:
                    continue
            cursor.live = live
            cursor.gone = False
            cursor.order = (stamp, st.st_mtime)
            if st.st_size != cursor.size:
                cursor.quiet_since = None  # it changed: more may be coming for its record
            cursor.size = st.st_size
        if names is not None:
            self.first_run = False
            for entry in self.saved.values():  # files that no longer exist where saved
                self._retire(entry.fp_len, entry.fp, entry.offset)
            self.saved.clear()
        return self._arrange(set(found))

    def _recheck(
        self, key: tuple[int, int], cursor: Cursor, path: str, live: bool, st: os.stat_result
    ) -> Cursor | None:
        """The cursor of a known file after a look at it; None when it is another file now."""
        if cursor.path != path:
            if cursor.live and not live:
                telemetry.file_rotated(self.category, cursor.path, path)
            cursor.path = path
        seen = (st.st_size, st.st_mtime_ns)
        if seen == cursor.seen and cursor.fd is None:
            return cursor  # unchanged: not worth opening it to look
        cursor.seen = seen
        # Check that its first bytes are still the ones it started with (a pread of an
        # open file is cheap; a truncation and rewrite can leave the same size).
        ident = cursor.identity
        fd = cursor.fd
        try:
            if fd is None:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            same = os.fstat(fd).st_ino == key[1] and same_start(fd, ident.fp_len, ident.fp)
        except OSError as exc:
            self._report(path, exc)
            return cursor
        finally:
            if cursor.fd is None and fd is not None:
                os.close(fd)
        if cursor.fd is None and (not same or ident.fp_len == 0):
            # Closed, then deleted and its inode reused, or rewritten: another file now
            # (or perhaps: nothing told an empty file apart; opened anew, it is placed
            # like any file never seen).
            self._forget(key, cursor)
            return None
        if same and st.st_size >= cursor.read_offset:
            return cursor
        return self._restart_truncated(key, cursor, st.st_size)

    def _stamp(self, match: re.Match[str]) -> float:
        text = next(g for g in match.groups() if g is not None)
        if self.source.rotated == NUMBERED:
            return -float(text)  # app.log.1 is the newest rotated file
        try:
            return time.mktime(time.strptime(text, self.source.rotated))
        except (ValueError, OverflowError):
            return 0.0

    def _arrange(self, seen: set[tuple[int, int]]) -> list[Cursor]:
        now = time.monotonic()
        for key, cursor in list(self.cursors.items()):
            if key not in seen:
                cursor.gone = True
                cursor.live = False
                if cursor.fd is not None:
                    cursor = self._recheck_gone(key, cursor)
            idle = now - cursor.last_growth >= ROTATE_WAIT
            drained = cursor.read_offset >= cursor.size and not cursor.pending_record()
            if not cursor.live and idle and drained and cursor.fd is not None:
                telemetry.file_closed(self.category, cursor.path, cursor.read_offset, "idle")
                cursor.close()
            if cursor.gone and cursor.fd is None:
                # Deleted, or renamed while the folder was listed (seen under no name
                # this time): kept by fingerprint, so that found again under another
                # name it goes on from where it was read to instead of from 0.
                self._forget(key, cursor)
                self._copies_of(cursor)  # read to its end: its copies hold nothing more
        # Files that stopped being live (gone first, then by rotation time), then live.
        return sorted(self.cursors.values(), key=lambda c: (c.live, not c.gone, c.order))

    def _recheck_gone(self, key: tuple[int, int], cursor: Cursor) -> Cursor:
        """A file under no watched name, read through its descriptor: truncated or
        rewritten before it went away, its new content is read from 0."""
        assert cursor.fd is not None
        ident = cursor.identity
        try:
            size = os.fstat(cursor.fd).st_size
            same = same_start(cursor.fd, ident.fp_len, ident.fp)
        except OSError:
            return cursor
        cursor.size = size
        if same and size >= cursor.read_offset:
            return cursor
        cursor = self._restart_truncated(key, cursor, size)
        cursor.gone = True
        return cursor

    def _open(
        self, key: tuple[int, int], path: str, live: bool, st: os.stat_result
    ) -> Cursor | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._report(path, exc)
            return None
        self._reported.discard(path)
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != key:  # replaced between stat and open
                os.close(fd)
                return None
            fp_len, fp = fingerprint(fd)
        except OSError as exc:
            os.close(fd)
            self._report(path, exc)
            return None
        identity = Identity(key[0], key[1], fp_len, fp)
        original = None if live else self._original(key, fd)
        if original is not None:
            offset, reason = fst.st_size, f"copy of {original.path}"
        else:
            offset, reason = self._start_offset(key, fd, fst, live)
        cursor = Cursor(self.category, identity, path, offset, fd)
        cursor.live = live
        cursor.size = fst.st_size
        cursor.seen = (fst.st_size, fst.st_mtime_ns)
        cursor.assembler = assembler_for(self.source, self.rows)
        self.cursors[key] = cursor
        cursor.copy_of = original
        if offset >= fst.st_size and not live:
            cursor.close()  # nothing to read now; reopened if it grows
            telemetry.file_skipped(self.category, path, reason)
        else:
            telemetry.file_opened(self.category, path, offset, reason)
        return cursor

    def _original(self, key: tuple[int, int], fd: int) -> Cursor | None:
        """The intact open followed file that ``fd``'s file is a copy of.

        An original that was truncated since (a deleted one is not rechecked by a scan)
        restarts at 0 here, so the copy is placed by the content it retired.
        """
        for okey, cursor in self.cursors.items():
            ident = cursor.identity
            if cursor.fd is None or ident.fp_len == 0 or okey == key:
                continue
            if same_start(fd, ident.fp_len, ident.fp):
                if same_start(cursor.fd, ident.fp_len, ident.fp):
                    return cursor
                self._restart_truncated(okey, cursor, os.fstat(cursor.fd).st_size)
                return None
        return None

    def _start_offset(
        self, key: tuple[int, int], fd: int, st: os.stat_result, live: bool
    ) -> tuple[int, str]:
        saved = self.saved.pop(key, None)
        # An entry without a fingerprint (no complete line yet) cannot tell its file from
        # another that reused the inode; its offset was 0 anyway.
        if saved is not None and saved.fp_len > 0:
            if same_start(fd, saved.fp_len, saved.fp):
                if saved.offset <= st.st_size:
                    return saved.offset, "checkpoint"
                return 0, "truncated while stopped"
            # Same inode, other content: reused for a new file, or rewritten in place.
            self._retire(saved.fp_len, saved.fp, saved.offset)
        known = self._by_fingerprint(fd, st.st_size, copies=not live)
        if known is not None:
            return known
        if self.first_run:
            if live:
                at_end = self.source.start_at == "end"
                return (st.st_size if at_end else 0), f"start_at {self.source.start_at}"
            return st.st_size, "history"
        if live or st.st_mtime >= self.since:
            return 0, "new file"
        return st.st_size, "history"

    def _by_fingerprint(self, fd: int, size: int, copies: bool) -> tuple[int, str] | None:
        """Where to start a file whose first bytes match a saved entry (the device
        number changed) or, for a possible copy, retired content."""
        candidates = [((f.fp_len, f.fp), f.offset, "fingerprint") for f in self.saved.values()]
        if copies:  # a new live file is never a copy: it is new content
            candidates += [(fp, offset, "copy") for fp, offset in self.retired.items()]
        for (fp_len, fp), offset, reason in candidates:
            if fp_len > 0 and offset <= size and same_start(fd, fp_len, fp):
                self.saved = {
                    k: f for k, f in self.saved.items() if (f.fp_len, f.fp) != (fp_len, fp)
                }
                self.retired.pop((fp_len, fp), None)
                return offset, reason
        return None

    def _copies_of(self, original: Cursor) -> list[Cursor]:
        """Release and return the copies of ``original``."""
        copies = [c for c in self.cursors.values() if c.copy_of is original]
        for copy in copies:
            copy.copy_of = None
        return copies

    def _retire(self, fp_len: int, fp: str, offset: int) -> None:
        if fp_len == 0 or offset == 0:
            return
        self.retired[(fp_len, fp)] = offset
        while len(self.retired) > RETIRED_KEPT:
            del self.retired[next(iter(self.retired))]

    def _forget(self, key: tuple[int, int], cursor: Cursor) -> None:
        cursor.close()
        del self.cursors[key]
        self._retire(cursor.identity.fp_len, cursor.identity.fp, cursor.read_offset)

    def _restart_truncated(self, key: tuple[int, int], old: Cursor, size: int) -> Cursor:
        telemetry.file_truncated(self.category, old.path, size, old.read_offset)
        if old.pending_record():
            self.orphans.append(old)  # its last record is complete: nothing follows it
        ident = old.identity
        self._retire(ident.fp_len, ident.fp, old.read_offset)
        # Copies made before the truncation hold what was written after the last read.
        for copy in self._copies_of(old):
            copy.read_offset = copy.delivered_offset = min(old.read_offset, copy.read_offset)
            telemetry.file_opened(self.category, copy.path, copy.read_offset, "copy")
        fd, old.fd = old.fd, None
        if fd is None:
            try:
                fd = os.open(old.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                self._report(old.path, exc)
                del self.cursors[key]
                return old
        fp_len, fp = fingerprint(fd)
        cursor = Cursor(self.category, Identity(key[0], key[1], fp_len, fp), old.path, 0, fd)
        cursor.live, cursor.order, cursor.size = old.live, old.order, size
        cursor.seen = old.seen
        cursor.assembler = assembler_for(self.source, self.rows)
        self.cursors[key] = cursor
        return cursor

    def _report(self, path: str, exc: OSError) -> None:
        if path not in self._reported:
            self._reported.add(path)
            telemetry.file_error(self.category, path, exc.strerror or str(exc))

    # ------------------------------------------------------------------ reading

    def read(self, cursor: Cursor, now_ms: int) -> FileEvents | None:
        """Read the next chunk of complete lines; None at the end of the file."""
        events = self._read(cursor, now_ms)
        if events is not None:
            cursor.quiet_since = None
        elif cursor.quiet_since is None:
            cursor.quiet_since = time.monotonic()
        return events

    def _read(self, cursor: Cursor, now_ms: int) -> FileEvents | None:
        if cursor.fd is None:
            if cursor.read_offset >= cursor.size:
                return None
            if not self._reopen(cursor):
                return None
        assert cursor.fd is not None
        try:
            data = os.pread(cursor.fd, READ_CHUNK, cursor.read_offset)
            if len(data) == READ_CHUNK and b"\n" not in data:
                # A line longer than a step: read up to the line limit at once.
                limit = self.source.max_line_bytes
                data = os.pread(cursor.fd, max(limit, READ_CHUNK), cursor.read_offset)
        except OSError as exc:
            self._report(cursor.path, exc)
            return None
        if not data:
            return None
        key_free_from = None
        records: Sequence[Record | Line] | None
        if cursor.part == 0 and len(data) < self.source.max_line_bytes and data.isascii():
            read = self._ascii_records(cursor, data, now_ms)
            records, key_free_from = read if read is not None else (None, None)
        else:
            records = self._records(cursor, data, now_ms)
        if records is None:
            return None  # a partial last line waits for its newline
        cursor.last_growth = time.monotonic()
        if (
            cursor.identity.fp_len < FINGERPRINT_BYTES
            and cursor.read_offset > cursor.identity.fp_len
        ):
            fp_len, fp = fingerprint(cursor.fd)
            cursor.identity = Identity(cursor.identity.dev, cursor.identity.ino, fp_len, fp)
        return self.renderer.events(records, cursor, key_free_from)

    def _ascii_records(
        self, cursor: Cursor, data: bytes, now_ms: int
    ) -> tuple[Sequence[Record | Line], int | None] | None:
        """The records of a chunk of ASCII lines, none of them over the line limit: the
        usual case, decoded and split once per chunk rather than line by line (in ASCII
        a character is a byte, so offsets are counted on the text).

        With them, the index from which the records need no key rules, or None: when
        the chunk holds no key-rule key (nor a JSON ``\\u`` escape, which could spell
        one), neither do the records that began in it.  A record carried over from the
        previous chunk (the first one, if one was pending) is checked as usual.
        """
        cut = data.rfind(b"\n") + 1
        if not cut:
            return None
        assert cursor.assembler is not None
        text = data[:cut].decode("ascii")
        key_free_from = None
        masker = self.renderer.masker
        # A backslash is looked for before "\\u": one character is found at memchr's
        # speed, while "\\u" costs as much as a key's search; most chunks hold no backslash.
        if (
            self.keys_from_text_only
            and not ("\\" in text and "\\u" in text)
            and not masker.mentions_key(text)
        ):
            key_free_from = 0 if cursor.assembler.pending is None else 1
        start = cursor.read_offset
        cursor.read_offset = start + cut
        telemetry.lines_read(self.category, text.count("\n"), cut)
        if b"\r" in data:  # CRLF lines: each line's "\r" dropped, its offsets kept
            lines = [(line.removesuffix("\r"), end) for line, end in whole_lines(text, start)]
            return cursor.assembler.feed(lines, now_ms), key_free_from
        return cursor.assembler.feed_text(text, start, now_ms), key_free_from

    def _records(self, cursor: Cursor, data: bytes, now_ms: int) -> list[Record] | None:
        """The records of any chunk, line by line: lines over the limit become parts."""
        start = cursor.read_offset
        lines = self._split(cursor, data)
        if not lines:
            return None
        telemetry.lines_read(self.category, len(lines), cursor.read_offset - start)
        return self._events(cursor, lines, now_ms)

    def _reopen(self, cursor: Cursor) -> bool:
        try:
            fd = os.open(cursor.path, os.O_RDONLY | os.O_CLOEXEC)
            st = os.fstat(fd)
        except OSError as exc:
            self._report(cursor.path, exc)
            return False
        ident = cursor.identity
        if (st.st_dev, st.st_ino) != (ident.dev, ident.ino) or not same_start(
            fd, ident.fp_len, ident.fp
        ):
            os.close(fd)  # another file now; the next scan opens it as one
            return False
        cursor.fd = fd
        telemetry.file_opened(self.category, cursor.path, cursor.read_offset, "grew")
        return True

    def _split(self, cursor: Cursor, data: bytes) -> list[tuple[bytes, bool, int]]:
        """Complete lines of ``data`` as (bytes, ends_with_newline, start offset)."""
        limit = self.source.max_line_bytes
        start = cursor.read_offset
        cut = data.rfind(b"\n") + 1
        body = data[:cut]
        tail = data[cut:]
        lines: list[tuple[bytes, bool, int]] = []
        position = start
        if body:
            for raw in body[:-1].split(b"\n"):
                while len(raw) > limit:
                    cut = _part_end(raw, limit)
                    lines.append((raw[:cut], False, position))
                    position += cut
                    raw = raw[cut:]
                lines.append((raw, True, position))
                position += len(raw) + 1
        if len(tail) >= limit:  # a line longer than the limit: ship a part of it now
            while len(tail) >= limit:
                cut = _part_end(tail, limit)
                lines.append((tail[:cut], False, position))
                position += cut
                tail = tail[cut:]
        cursor.read_offset = position
        return lines

    def _events(
        self, cursor: Cursor, lines: list[tuple[bytes, bool, int]], now_ms: int
    ) -> list[Record]:
        assert cursor.assembler is not None
        records: list[Record] = []
        whole: list[tuple[str, int]] = []
        limit = self.source.max_line_bytes
        for raw, complete, begin in lines:
            end = begin + len(raw) + (1 if complete else 0)
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            text = raw.decode("utf-8", "backslashreplace")
            if complete and not cursor.part:
                whole.append((text, end))
                continue
            # Part of an overlong line: flush what came before, then ship the part alone.
            records.extend(cursor.assembler.feed(whole, now_ms))
            whole = []
            pending = cursor.assembler.flush()
            if pending is not None:
                records.append(pending)
            cursor.part += 1
            if cursor.part == 1:
                telemetry.line_split(self.category, cursor.path, begin, limit)
            part = Record(text, None, now_ms, end, part=cursor.part, last_part=complete)
            records.append(part)
            if complete:
                cursor.part = 0
        records.extend(cursor.assembler.feed(whole, now_ms))
        return records

    def take_orphaned(self) -> list[FileEvents]:
        """The last records of content generations that a truncation ended."""
        events = [self.flush_quiet(cursor, 0.0) for cursor in self.orphans]
        self.orphans.clear()
        return [each for each in events if each]

    def flush_quiet(self, cursor: Cursor, quiet_for: float) -> FileEvents:
        """The pending record of a file quiet for ``quiet_for`` seconds, as events."""
        assembler = cursor.assembler
        if assembler is None or assembler.pending is None:
            return FileEvents(cursor)
        if quiet_for > 0 and (
            cursor.quiet_since is None or time.monotonic() - cursor.quiet_since < quiet_for
        ):
            return FileEvents(cursor)  # not read to its end yet, or not quiet there long enough
        record = assembler.flush()
        return self.renderer.events([record] if record else [], cursor)

    # ------------------------------------------------------------------ state

    def checkpoint(self) -> SourceCheckpoint:
        # A copy of an intact file is left out: after a restart it is matched again.
        files = [c.checkpoint() for c in self.cursors.values() if not c.gone and c.copy_of is None]
        # Entries not yet matched to a file (the folder could not be listed yet).
        files.extend(self.saved.values())
        return SourceCheckpoint(self.since, files)

    def lag_bytes(self) -> dict[str, int]:
        return {c.path: max(c.size - c.delivered_offset, 0) for c in self.cursors.values()}

    def close(self) -> None:
        for cursor in self.cursors.values():
            cursor.close()


def source_key(source: SourceConfig) -> str:
    """The key of a source's checkpoints: its live path."""
    return str(Path(source.path))


# How far back from the limit a part may end at a space instead.
_CUT_WINDOW = 1024


def _part_end(line: bytes, limit: int) -> int:
    """Where the first part of an overlong line ends: after the last space in the
    bytes before the limit (no address, token or number the masking rules find spans
    a space, so none is cut in two and leaks from both parts), else at the limit."""
    space = line.rfind(b" ", max(1, limit - _CUT_WINDOW), limit)
    return space + 1 if space != -1 else limit
