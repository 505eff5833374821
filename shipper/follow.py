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
- last modified longer than ``ignore_older`` ago: at its end (skipped, and logged);
- ``start_at: beginning``: from its first byte, whether the source is new (a first
  install ships everything still on disk, oldest first) or not;
- ``start_at: end``: a source never covered before starts the live file at its end
  and skips its rotated files (history); later, a file not seen before is new and read
  from its first byte — except a rotated sibling last written before the shipper first
  covered the source.  A source whose checkpoint was lost counts as covered since
  ever: nothing is history.

Which names are rotated siblings, and how old each is, is :mod:`shipper.discovery`'s
concern.  A gzipped sibling is read through :class:`~shipper.compressed.GzipReader`,
its offsets in decompressed bytes; one compressed from a file followed now is not
read again.  A look after a write looks only at the files the watcher named
(:meth:`Follower.scan`): files read to their end cost nothing until they change.

Reading a file is reading a chunk of bytes at its read offset (more at once while a
line is longer than a chunk, up to the line limit).  What the chunk holds as lines and
records (where lines end in the file's encoding, CRLF, a partial last line that
waits, overlong lines in parts, the ASCII fast path) is :mod:`shipper.lines`'s
concern: the source's :class:`~shipper.lines.LineReader` takes the chunk and moves the
file's read offset past the lines it took.

What a file holds from its first byte until it is truncated or rewritten is one
content :class:`Generation`: events are acknowledged to it, so its delivered offset goes
where its bytes go — along with a rename, and to a copy.  A file that shrinks below
the read offset, or whose first bytes changed, was truncated (``copytruncate``) or
rewritten: reading restarts at 0 under a new generation, so acknowledgements of the
old content cannot move the new content's offset.

A new rotated file whose bytes repeat the start of a followed intact file is a copy
of it (``cp app.log app.log.1``, perhaps still being written): it is not read while
the original is intact.  When the original's content ends (truncated, or read to its
end and gone), the copy takes over its generation and is read from where the
original was read, capped at the copy's size: the lines written between the last
read and the truncation arrive once, and a checkpoint claims for the copy only what
was delivered (acknowledgements still in flight land on it when they come).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from shipper import telemetry
from shipper.checkpoints import FileCheckpoint, SourceCheckpoint
from shipper.compressed import GzipReader
from shipper.config import SourceConfig
from shipper.discovery import RotatedNames, Sibling
from shipper.encoding import text_encoding
from shipper.filters import FileFilter, Kept, parse_duration, render_kept, source_filters
from shipper.lines import LineReader
from shipper.mismatch import MismatchWatch
from shipper.multiline import Assembler, assembler_for
from shipper.parse import FormatParser
from shipper.records import FileEvents
from shipper.render import Renderer

FINGERPRINT_BYTES = 512
# Bytes read per step: the reader returns to the event loop after each step, so a
# small step keeps deliveries going while a backlog is read.
READ_CHUNK = 64 << 10
# A file that is no longer the live one is closed after this long without growth.
ROTATE_WAIT = 30.0
# A record with no line after it for this long is complete (its traceback is over).
MULTILINE_WAIT = 0.5
# A gzipped file written this recently while the shipper runs may still be being
# written (gzip gives it the original's time when done): it is looked at by a later
# scan rather than decompressed again on every write.  At start-up it is tried at
# once, so that what was on disk is read in order.
GZIP_SETTLE = 2.0
# A folder or file changed less than this long before a look may change again with
# the same times (file times are coarse: a clock tick, up to 2 s on some file
# systems); only what is older counts as unchanged by its times and size.
TIMESTAMP_DOUBT_NS = 2_000_000_000
# Content generations remembered by fingerprint, to place copies made by copytruncate.
RETIRED_KEPT = 64
# The live file's place in the order of a source's files: after every rotated one.
LIVE = Sibling(float("inf"), compressed=False)
# A file is either a descriptor or, gzipped, a reader of its decompressed content.
Readable = int | GzipReader


@dataclass(frozen=True)
class Identity:
    dev: int
    ino: int
    fp_len: int
    fp: str


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_at(fd: Readable, count: int, offset: int) -> bytes:
    """``os.pread``, of a gzipped file's decompressed content where it is one."""
    return fd.pread(count, offset) if isinstance(fd, GzipReader) else os.pread(fd, count, offset)


def fingerprint(fd: Readable) -> tuple[int, str]:
    """Length and digest of a file's first bytes: ``FINGERPRINT_BYTES`` of them, or its
    complete first lines while it is shorter (a partial line is no identity: ``{`` or a
    timestamp's first digits start many files)."""
    head = read_at(fd, FINGERPRINT_BYTES, 0)
    if len(head) < FINGERPRINT_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    return len(head), _digest(head)


def same_start(fd: Readable, fp_len: int, fp: str) -> bool:
    """Whether the file behind ``fd`` starts with the fingerprinted bytes."""
    head = read_at(fd, fp_len, 0)
    return len(head) == fp_len and _digest(head) == fp


class Generation:
    """One content generation: the bytes a file held from its first byte until it was
    truncated or rewritten, wherever they are now.

    It is what delivered events are acknowledged to (their :class:`Position`), so how
    far it was delivered goes where its bytes go: along with a renamed file, and to
    the copy that copytruncate leaves (acknowledgements still in flight included).
    """

    __slots__ = ("category", "delivered_offset", "path", "read_to")

    def __init__(self, category: str, path: str, offset: int) -> None:
        self.category = category
        self.path = path  # where its bytes are now, for reports
        self.delivered_offset = offset
        # How far its bytes were read where they were before (set when they moved): a
        # copy of them goes on from there.
        self.read_to = offset

    def delivered(self, offset: int) -> None:
        if offset > self.delivered_offset:
            self.delivered_offset = offset

    def __repr__(self) -> str:
        return f"Generation({self.path!r}, delivered={self.delivered_offset})"


class Cursor:
    """One followed file, the content generation it holds, and how far it was read."""

    def __init__(
        self,
        category: str,
        identity: Identity,
        path: str,
        offset: int,
        fd: int | None,
        generation: Generation | None = None,
    ):
        self.category = category
        self.identity = identity
        self.generation = generation or Generation(category, path, offset)
        self.path = path
        self.fd = fd
        self.read_offset = offset
        self.size = offset
        self.live = False
        self.gone = False  # no longer under any watched name
        self.order = (0.0, 0.0)  # rotation time, mtime: older files are read first
        self.last_growth = time.monotonic()
        # Since when the reader has been at the end of the file with nothing new (None:
        # not at the end). A record pending there is complete once this lasts a moment;
        # time spent waiting on a full stream does not count.
        self.quiet_since: float | None = None
        self.at_end = False  # the last read reached the end the file had then
        self.partial_end = -1  # where the file ended, in a partial line, when last read
        self.part = 0  # parts already emitted of a line longer than the limit
        self.assembler: Assembler | None = None
        self.seen: tuple[int, int] = (-1, -1)  # size and mtime at the last scan
        # The followed file this one is a copy of, while that one is intact: this copy is
        # not read (its bytes are the original's); when the original's content ends
        # (truncated, or read to its end and gone), this copy takes its generation and
        # goes on from where the original was read.
        self.copy_of: Cursor | None = None
        self.filtering: FileFilter | None = None  # the source's filters, with a held repeat
        self.unpacked: GzipReader | None = None  # set for a gzipped file: read through it
        self.copy_checked = -1  # the copy's size when last found to be the original's prefix

    @property
    def path(self) -> str:
        return self._path

    @path.setter
    def path(self, path: str) -> None:
        self._path = path
        self.generation.path = path

    @property
    def delivered_offset(self) -> int:
        return self.generation.delivered_offset

    def pending_record(self) -> bool:
        if self.filtering is not None and self.filtering.holding:
            return True
        return self.assembler is not None and self.assembler.pending is not None

    def delivered(self, offset: int) -> None:
        self.generation.delivered(offset)

    def close(self) -> None:
        if self.unpacked is not None:
            self.unpacked.close()
            self.unpacked = None
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def checkpoint(self) -> FileCheckpoint:
        ident = self.identity
        # A copy shorter than its generation (taken early) was delivered to its end at most.
        offset = min(self.delivered_offset, max(self.size, self.read_offset))
        return FileCheckpoint(ident.dev, ident.ino, ident.fp_len, ident.fp, offset, self.path)

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
        self.key = source_key(source)  # of its checkpoints; asked after every look
        self.category = source.category
        self.directory = source.path.parent
        # The folder's path with a separator: a file's path is this and its name (a
        # look at a year of rotated files joins a path per file).
        self._folder_prefix = os.path.join(self.directory, "")
        self.live_name = source.path.name
        self.names = RotatedNames(self.live_name, source.rotated)
        self.renderer = renderer
        self.mismatches = MismatchWatch(source.category, renderer.masker)
        parser = assembler_for(source).parser
        # A chunk of text holding no key-rule key can skip the key rules for the records
        # read wholly from it when their keys come from their text alone.
        keys_from_text_only = renderer.masker.keys != () and renderer.keys_only_from_text(
            parser.field_names
        )
        self.lines = LineReader(
            source.category,
            text_encoding(source.encoding),
            source.max_line_bytes,
            renderer.masker.mentions_key if keys_from_text_only else None,
        )
        # The struct the renderer would have a format's fields as (None: dicts).
        self.rows = (
            renderer.row_type(parser.record_names) if isinstance(parser, FormatParser) else None
        )
        self.first_run = saved is None
        self.since = saved.since if saved else now
        self.saved = {(f.dev, f.ino): f for f in saved.files} if saved else {}
        self.cursors: dict[tuple[int, int], Cursor] = {}
        # Fingerprint -> content generations no longer found at their device and inode
        # (truncated, rewritten, deleted, or saved under an inode that is gone), for a
        # copy of them to take over.
        self.retired: dict[tuple[int, str], Generation] = {}
        # Content generations ended by a truncation while a record was still open.
        self.orphans: list[Cursor] = []
        self._reported: set[str] = set()  # problems already logged, not to repeat each scan
        self.filters = source_filters(source)  # None: no filters, nothing to pay per record
        self.listed = False  # whether the folder was listed yet: until then, nothing is known
        self.looked_at_folder = False  # whether the last scan looked at the whole folder
        # A read found a file's first bytes changed (truncated, rewritten) since the last
        # look: the reader looks at the whole folder next, at once.
        self.look_needed = False
        # What the last look at the whole folder found (by path, the folder's own too),
        # when a look that finds the same needs to do nothing (see _note_quiet_listing).
        self._quiet_listing: dict[str, tuple[int, int, int, int]] | None = None
        # The cursors worth reading (see :meth:`scan`), and their keys.
        self.active: list[Cursor] = []
        self._active_keys: set[tuple[int, int]] = set()
        # Gzipped files without an end of stream, by the size and mtime they had then.
        self._incomplete: dict[tuple[int, int], tuple[int, int]] = {}
        ignore_older = source.ignore_older
        self.ignore_older = None if ignore_older is None else parse_duration(ignore_older)

    # ------------------------------------------------------------------ discovery

    def scan(self, changed: Collection[str] | None = None) -> list[Cursor]:
        """Look at the source's files; return the cursors with something to read (or a
        record to finish), oldest file first.

        With ``changed`` (the names the watcher reported), only the files under those
        names are looked at, so a write costs the same however many rotated files lie
        beside the live one.  When that cannot tell what happened (a name new or gone,
        another file under a name, a file that rejoins the reading), the whole folder
        is looked at instead, as it is without ``changed``.
        A look at the whole folder of a quiet source, when neither the folder nor any
        file in it changed since the last, stops at a stat of each (the safety-net
        rescan of a quiet host).
        """
        if self.look_needed:
            self.look_needed, changed = False, None  # a file changed under the reader
        elif changed is None and self._unchanged_since_listing():
            changed = ()
        self.looked_at_folder = not (changed is not None and self.listed and self._look_at(changed))
        if self.looked_at_folder:
            return self._look_at_folder()
        if any(_settled(c) for c in self.active):  # read to their end since the last look
            self.active = [c for c in self.active if not _settled(c)]
            self._active_keys = {(c.identity.dev, c.identity.ino) for c in self.active}
        return self.active

    def _look_at(self, names: Collection[str]) -> bool:
        """Look at the followed files under ``names``; False when only a look at the
        whole folder can tell what changed."""
        if self.orphans or any(c.copy_of is not None for c in self.active):
            return False  # a copytruncate under way: its files are placed together
        for name in names:
            sibling = LIVE if name == self.live_name else self.names.match(name)
            if sibling is None:
                continue  # another source's file, or none at all
            path = self._folder_prefix + name
            try:
                st = os.stat(path)
            except OSError:
                return False  # renamed or deleted
            key = (st.st_dev, st.st_ino)
            cursor = self.cursors.get(key)
            if cursor is None or cursor.path != path or key not in self._active_keys:
                return False  # new here, renamed, or a file read to its end grew
            if sibling.compressed:
                if (st.st_size, st.st_mtime_ns) != cursor.seen:
                    return False  # rewritten: placed anew by what it holds
                continue
            if self._recheck(key, cursor, path, sibling is LIVE, st) is not cursor:
                return False  # truncated or replaced
            self._note(cursor, sibling, st)
        return True

    def _unchanged_since_listing(self) -> bool:
        """Whether the folder and every file in it are as the last look at all of them
        found them (inode, size, modification and change times): that look, made
        again, would find nothing new."""
        if self._quiet_listing is None:
            return False
        try:
            return all(_looks(os.stat(path)) == seen for path, seen in self._quiet_listing.items())
        except OSError:
            return False

    def _note_quiet_listing(
        self,
        folder: os.stat_result | None,
        files: list[tuple[str, os.stat_result]],
        began_ns: int,
    ) -> None:
        """Keep what a look at the whole folder found, when the next look may trust it
        unchanged: nothing waits on time alone (a rotated file still open, a copy), and
        nothing changed within TIMESTAMP_DOUBT_NS before the look began."""
        self._quiet_listing = None
        if folder is None or self.orphans or self._incomplete:
            return
        # First what rules out most looks: a folder being written to.
        doubt = began_ns - TIMESTAMP_DOUBT_NS
        if folder.st_ctime_ns > doubt or any(st.st_ctime_ns > doubt for _, st in files):
            return
        for cursor in self.cursors.values():
            if cursor.gone or cursor.copy_of is not None:
                return
            if cursor.fd is not None and not cursor.live:
                return  # a look closes it once idle for ROTATE_WAIT, changed or not
        listing = {str(self.directory): _looks(folder)}
        listing.update((path, _looks(st)) for path, st in files)
        self._quiet_listing = listing

    def _look_at_folder(self) -> list[Cursor]:
        began_ns = time.time_ns()
        try:
            folder: os.stat_result | None = os.stat(self.directory)
        except OSError:
            folder = None
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            self._report(str(self.directory), exc)
            names = None
        found: dict[tuple[int, int], tuple[str, Sibling, os.stat_result]] = {}
        for name in names or ():
            sibling = LIVE if name == self.live_name else self.names.match(name)
            if sibling is None:
                continue
            path = self._folder_prefix + name
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished between listing and stat, or a dangling link
            if stat.S_ISREG(st.st_mode):
                # A second name of a file already listed (a link) keeps the first.
                found.setdefault((st.st_dev, st.st_ino), (path, sibling, st))
        if names is not None:
            self.names.forget_except(set(names))
            self._incomplete = {k: v for k, v in self._incomplete.items() if k in found}
        order = sorted(found, key=lambda k: self._look_order(k, found[k][1]))
        for key in order:
            path, sibling, st = found[key]
            live = sibling is LIVE
            cursor = self.cursors.get(key)
            if cursor is not None and sibling.compressed:
                cursor = self._recheck_compressed(key, cursor, path, st)
            elif cursor is not None:
                cursor = self._recheck(key, cursor, path, live, st)
            if cursor is None and sibling.compressed:
                cursor = self._open_compressed(key, path, st)
            elif cursor is None:
                cursor = self._open(key, path, live, st)
            if cursor is None:
                continue
            self._note(cursor, sibling, st)
        if names is not None:
            self.first_run = False
            self.listed = True
            for entry in self.saved.values():  # files that no longer exist where saved
                self._retire(entry.fp_len, entry.fp, entry.offset)
            self.saved.clear()
        active = self._arrange(set(found))
        if names is not None and len(found) == len(self.cursors):
            files = [(path, st) for path, _, st in found.values()]
            self._note_quiet_listing(folder, files, began_ns)
        else:
            self._quiet_listing = None
        return active

    def _look_order(self, key: tuple[int, int], sibling: Sibling) -> tuple[int, bool, bool]:
        """Where a file found in a look at the folder comes in it.

        Files known by device and inode first (followed now, then held by the
        checkpoint): what they no longer hold is retired before new files (copies) are
        matched against it by fingerprint.  But the live file before those the
        checkpoint holds, so that a copy of it is recognised as one: a copy begun on a
        deleted file's inode (reused) was otherwise matched before the live file was
        known, against any followed file its first bytes (none yet) repeat, and read
        again as a file of its own.  Gzipped files after plain ones, so one compressed
        from a plain file still here is recognised as its twin.
        """
        if key in self.cursors:
            rank = 0
        elif sibling is LIVE:
            rank = 1
        else:
            rank = 2 if key in self.saved else 3
        return rank, sibling.compressed, sibling is not LIVE

    def _note(self, cursor: Cursor, sibling: Sibling, st: os.stat_result) -> None:
        """What a look at a followed file found: its name's role, its place, its size."""
        cursor.live = sibling is LIVE
        cursor.gone = False
        cursor.order = (sibling.stamp, st.st_mtime)
        if sibling.compressed:
            return  # its size is the decompressed one, fixed when it was opened
        if st.st_size != cursor.size:
            cursor.quiet_since = None  # it changed: more may be coming for its record
        cursor.size = st.st_size

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

    def _arrange(self, seen: set[tuple[int, int]]) -> list[Cursor]:
        now = time.monotonic()
        for key, cursor in list(self.cursors.items()):
            if cursor.fd is None and key in seen:
                continue  # closed and still there: nothing to close or retire
            if key not in seen:
                cursor.gone = True
                cursor.live = False
                if cursor.fd is not None and cursor.unpacked is None:
                    cursor = self._recheck_gone(key, cursor)
            idle = now - cursor.last_growth >= ROTATE_WAIT
            drained = cursor.read_offset >= cursor.size and not cursor.pending_record()
            if not cursor.live and idle and drained and cursor.fd is not None:
                telemetry.file_closed(self.category, cursor.path, cursor.read_offset, "idle")
                cursor.close()
                # Rotated and read out: of its record assembly nothing is pending, and a
                # year of such files should not each keep a parser (made again if one
                # grows).
                cursor.assembler = None
            if cursor.gone and cursor.fd is None:
                # Deleted, or renamed while the folder was listed (seen under no name
                # this time): kept by fingerprint, so that found again under another
                # name it goes on from where it was read to instead of from 0.
                self._forget(key, cursor)
                self._copies_of(cursor)  # read to its end: its copies hold nothing more
        # Files that stopped being live (gone first, then by rotation time), then live.
        # Files read to their end and closed are left out: they cost nothing per look.
        active = {key: c for key, c in self.cursors.items() if not _settled(c)}
        self.active = sorted(active.values(), key=lambda c: (c.live, not c.gone, c.order))
        self._active_keys = set(active)
        return self.active

    def _recheck_compressed(
        self, key: tuple[int, int], cursor: Cursor, path: str, st: os.stat_result
    ) -> Cursor | None:
        """A known gzipped file after a look at it; None when it changed (it is then
        opened anew and placed by its decompressed first bytes)."""
        cursor.path = path  # app.log.1.gz renamed to app.log.2.gz is the same file
        if (st.st_size, st.st_mtime_ns) == cursor.seen:
            return cursor
        self._forget(key, cursor)
        return None

    def _open_compressed(
        self, key: tuple[int, int], path: str, st: os.stat_result
    ) -> Cursor | None:
        """Follow a gzipped rotated file through its decompressed content.

        One compressed from a file followed now (logrotate's ``compress`` of a file
        being read) is not read again; one whose first bytes match a saved or retired
        file goes on from that file's offset; otherwise it is placed like any rotated
        file never seen.  One still being written (no end of stream yet) is looked at
        again when it changes.
        """
        seen = (st.st_size, st.st_mtime_ns)
        settling = self.listed and time.time() - st.st_mtime < GZIP_SETTLE
        if settling or self._incomplete.get(key) == seen:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._report(path, exc)
            return None
        unpacked = GzipReader(fd)
        size = unpacked.size()
        if size is None:
            unpacked.close()
            os.close(fd)
            self._incomplete[key] = seen
            telemetry.file_skipped(self.category, path, "not a complete gzip file (yet)")
            return None
        self._incomplete.pop(key, None)
        fp_len, fp = fingerprint(unpacked)
        twin = self._twin(unpacked)
        generation = None
        if twin is not None:
            offset, reason = size, f"compressed copy of {twin.path}"
        elif self._saved_here(key, unpacked):
            offset, reason = self._start_offset(key, unpacked, _sized(st, size), live=False)
        else:
            # Content that left its file (its inode reused by a new live file, say) goes
            # on here from where it was read, as a plain copy of it would.
            generation = self._retired_generation(unpacked)
            if generation is not None:
                offset, reason = min(generation.read_to, size), "compressed"
            else:
                offset, reason = self._start_offset(key, unpacked, _sized(st, size), live=False)
        identity = Identity(key[0], key[1], fp_len, fp)
        cursor = Cursor(self.category, identity, path, offset, fd, generation)
        cursor.unpacked = unpacked
        cursor.size = size
        cursor.seen = seen  # of the compressed file: a change means it was rewritten
        cursor.assembler = assembler_for(self.source, self.rows)
        self.cursors[key] = cursor
        if offset >= size:
            cursor.close()
            telemetry.file_skipped(self.category, path, reason)
        else:
            telemetry.file_opened(self.category, path, offset, reason)
        return cursor

    def _twin(self, unpacked: GzipReader) -> Cursor | None:
        """The followed file that a gzipped file was compressed from, if any."""
        head = unpacked.pread(FINGERPRINT_BYTES, 0)
        for cursor in self.cursors.values():
            fp_len, fp = cursor.identity.fp_len, cursor.identity.fp
            if 0 < fp_len <= len(head) and _digest(head[:fp_len]) == fp:
                return cursor
        return None

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
        # A rotated file never seen is perhaps a copy (copytruncate): of a followed file
        # (not read while that one is intact), or of content that has since left its
        # file (read on from where that content was read).  Its checkpoint comes first.
        original = generation = None
        if not live and not self._saved_here(key, fd):
            original = self._original(key, fd)
            if original is None:
                generation = self._retired_generation(fd)
        if original is not None:
            offset, reason = 0, f"copy of {original.path}"
        elif generation is not None:
            offset, reason = min(generation.read_to, fst.st_size), "copy"
        else:
            offset, reason = self._start_offset(key, fd, fst, live)
        cursor = Cursor(self.category, identity, path, offset, fd, generation)
        cursor.live = live
        cursor.size = fst.st_size
        cursor.seen = (fst.st_size, fst.st_mtime_ns)
        cursor.filtering = self.filters.for_file() if self.filters else None
        self.cursors[key] = cursor
        cursor.copy_of = original
        if offset >= fst.st_size and not live and original is None:
            cursor.close()  # nothing to read now; reopened (with a parser) if it grows
            telemetry.file_skipped(self.category, path, reason)
        else:
            cursor.assembler = assembler_for(self.source, self.rows)
            telemetry.file_opened(self.category, path, offset, reason)
        return cursor

    def _original(self, key: tuple[int, int], fd: int) -> Cursor | None:
        """The intact open followed file that ``fd``'s file is a copy of: its first bytes
        repeat that file's, all of them while it is shorter than a fingerprint (``cp``
        may still be writing it, racing the app).  The live file is tried first.

        An original that was truncated since (a deleted one is not rechecked by a scan)
        restarts at 0 here, so the copy is placed by the content it retired.
        """
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        followed = sorted(self.cursors.items(), key=lambda item: not item[1].live)
        for okey, cursor in followed:
            ident = cursor.identity
            if cursor.fd is None or okey == key or cursor.copy_of is not None:
                continue
            original = cursor.unpacked or cursor.fd
            if len(head) >= ident.fp_len > 0:
                repeats = _digest(head[: ident.fp_len]) == ident.fp
            else:
                repeats = read_at(original, len(head), 0) == head
            if not repeats:
                continue
            if ident.fp_len > 0 and not same_start(original, ident.fp_len, ident.fp):
                self._restart_truncated(okey, cursor, os.fstat(cursor.fd).st_size)
                return None
            return cursor
        return None

    def _saved_here(self, key: tuple[int, int], fd: Readable) -> bool:
        """Whether the checkpoint has this very file: its inode, with its first bytes."""
        saved = self.saved.get(key)
        return saved is not None and saved.fp_len > 0 and same_start(fd, saved.fp_len, saved.fp)

    def _retired_generation(self, fd: Readable) -> Generation | None:
        """The retired content generation whose first bytes ``fd``'s file starts with
        (taken out of the retired ones: it lives in this file now)."""
        for (fp_len, fp), generation in self.retired.items():
            if fp_len > 0 and same_start(fd, fp_len, fp):
                del self.retired[(fp_len, fp)]
                return generation
        return None

    def _start_offset(
        self, key: tuple[int, int], fd: Readable, st: os.stat_result, live: bool
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
        known = self._by_fingerprint(fd, st.st_size)
        if known is not None:
            return known
        if self.ignore_older is not None and st.st_mtime < time.time() - self.ignore_older:
            return st.st_size, f"last modified over ignore_older ({self.source.ignore_older}) ago"
        if self.source.start_at == "beginning":
            # Everything still on disk, oldest first: the files are read in that order.
            return 0, "start_at beginning" if self.first_run else "new file"
        if self.first_run:
            return st.st_size, "start_at end" if live else "history"
        if live or st.st_mtime >= self.since:
            return 0, "new file"
        return st.st_size, "history"

    def _by_fingerprint(self, fd: Readable, size: int) -> tuple[int, str] | None:
        """Where to start a file whose first bytes match a saved entry (the device
        number changed)."""
        for f in self.saved.values():
            if f.fp_len > 0 and f.offset <= size and same_start(fd, f.fp_len, f.fp):
                fp_len, fp = f.fp_len, f.fp
                self.saved = {
                    k: f for k, f in self.saved.items() if (f.fp_len, f.fp) != (fp_len, fp)
                }
                return f.offset, "fingerprint"
        return None

    def _copies_of(self, original: Cursor) -> list[Cursor]:
        """Release and return the copies of ``original``."""
        copies = [c for c in self.cursors.values() if c.copy_of is original]
        for copy in copies:
            copy.copy_of = None
        return copies

    def _retire(self, fp_len: int, fp: str, offset: int) -> None:
        """Keep saved content no longer at its inode, delivered up to ``offset``."""
        self._keep_retired(fp_len, fp, Generation(self.category, "", offset))

    def _keep_retired(self, fp_len: int, fp: str, generation: Generation) -> None:
        if fp_len == 0 or generation.read_to == 0:
            return
        self.retired[(fp_len, fp)] = generation
        while len(self.retired) > RETIRED_KEPT:
            del self.retired[next(iter(self.retired))]

    def _forget(self, key: tuple[int, int], cursor: Cursor) -> None:
        cursor.close()
        del self.cursors[key]
        self._hand_on(cursor)

    def _hand_on(self, old: Cursor) -> None:
        """``old``'s content ends in its file (truncated, rewritten, or read to its end
        and gone).  Its copies held back take its generation and read on from where
        ``old`` was read (what was written after that and copied before the
        truncation); it is also retired, for a copy found only later."""
        generation = old.generation
        generation.read_to = old.read_offset
        ident = old.identity
        self._keep_retired(ident.fp_len, ident.fp, generation)
        for copy in self._copies_of(old):
            self._adopt(copy, generation)

    def _adopt(self, copy: Cursor, generation: Generation) -> None:
        """``copy`` holds ``generation``'s bytes now: it is read from where they were
        read, and acknowledgements still in flight for them count for it."""
        if copy.fd is None:
            self._reopen(copy)
        if copy.fd is not None:
            try:
                copy.size = os.fstat(copy.fd).st_size
                fp_len, fp = fingerprint(copy.fd)
            except OSError as exc:
                self._report(copy.path, exc)
            else:
                copy.identity = Identity(copy.identity.dev, copy.identity.ino, fp_len, fp)
        copy.generation = generation
        generation.path = copy.path
        copy.read_offset = min(generation.read_to, copy.size)
        telemetry.file_opened(self.category, copy.path, copy.read_offset, "copy")

    def _restart_truncated(self, key: tuple[int, int], old: Cursor, size: int) -> Cursor:
        telemetry.file_truncated(self.category, old.path, size, old.read_offset)
        if old.pending_record():
            self.orphans.append(old)  # its last record is complete: nothing follows it
        self._hand_on(old)
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
        cursor.filtering = self.filters.for_file() if self.filters else None
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
        if cursor.copy_of is not None and self._still_a_copy(cursor):
            return None  # its bytes are read from the original
        if cursor.fd is None:
            if cursor.read_offset >= cursor.size:
                return None
            if not self._reopen(cursor):
                return None
        if cursor.assembler is None:
            cursor.assembler = assembler_for(self.source, self.rows)
        assert cursor.fd is not None
        content = cursor.unpacked or cursor.fd
        try:
            asked = READ_CHUNK
            data = read_at(content, asked, cursor.read_offset)
            if len(data) == READ_CHUNK and not self.lines.holds_a_line_end(data, content):
                # A line longer than a step: read up to the line limit at once.
                asked = max(self.source.max_line_bytes, READ_CHUNK)
                data = read_at(content, asked, cursor.read_offset)
        except OSError as exc:
            self._report(cursor.path, exc)
            return None
        cursor.at_end = len(data) < asked
        if not data:
            return None
        if cursor.unpacked is None and not self._starts_as_before(cursor):
            return None  # truncated or rewritten: what was read may be another content's
        read = self.lines.read(cursor, data, content, now_ms)
        if read is None:
            if not (cursor.at_end and self._writer_gone(cursor, len(data))):
                return None  # a partial last line waits for its newline
            # Its newline will never come (the rest was cut off by a truncation, or
            # the app died mid-line): what the file holds of it is shipped.
            read = self.lines.read_last(cursor, data, content, now_ms), None
            now = time.monotonic()
        else:
            now = cursor.last_growth = time.monotonic()
        records, key_free_from = read
        if (
            cursor.identity.fp_len < FINGERPRINT_BYTES
            and cursor.read_offset > cursor.identity.fp_len
        ):
            fp_len, fp = fingerprint(content)
            cursor.identity = Identity(cursor.identity.dev, cursor.identity.ino, fp_len, fp)
        assert cursor.assembler is not None
        taken = cursor.assembler.take_unmatched()
        self.mismatches.seen(cursor.path, taken, len(records), now)
        if cursor.filtering is not None:
            kept = cursor.filtering.apply(records, now, key_free_from)
            return self._filtered(cursor, kept)
        return self.renderer.events(records, cursor.generation, key_free_from)

    def _starts_as_before(self, cursor: Cursor) -> bool:
        """Whether ``cursor``'s file, just read, still starts with the bytes it started
        with.  A truncation (``copytruncate``) and new writes past the read offset
        between two looks would otherwise be read as the old content's next bytes: torn
        lines, and the copy's rest taken as read.  When it does not, the read is
        dropped and :attr:`look_needed` set: the next look hands the old content on."""
        ident = cursor.identity
        assert cursor.fd is not None
        try:
            if ident.fp_len == 0 or same_start(cursor.fd, ident.fp_len, ident.fp):
                return True
        except OSError as exc:
            # Nothing says the file changed (and a look would meet the same error).
            self._report(cursor.path, exc)
            return True
        self.look_needed = True
        return False

    @staticmethod
    def _writer_gone(cursor: Cursor, partial: int) -> bool:
        """Whether nothing more will be written to ``cursor``'s file, which ends in a
        ``partial`` line (bytes): it is no longer the live file, and has not grown for
        ROTATE_WAIT (that line included: a long line may be written slowly).  Notes
        where the line ends, to tell its growth next time."""
        if cursor.live:
            return False
        now = time.monotonic()
        if cursor.read_offset + partial != cursor.partial_end:
            cursor.partial_end = cursor.read_offset + partial  # it grew: wait from now
            cursor.last_growth = now
        return now - cursor.last_growth >= ROTATE_WAIT

    def _still_a_copy(self, copy: Cursor) -> bool:
        """Whether a copy held back is still the start of its original.  One that has
        grown other bytes while the original is intact is a file of its own (it was
        only empty, or short, when first seen): it is read from its start."""
        original = copy.copy_of
        assert original is not None
        if copy.size == copy.copy_checked or copy.fd is None or original.fd is None:
            return True
        try:
            head = os.pread(copy.fd, FINGERPRINT_BYTES, 0)
            if os.pread(original.fd, len(head), 0) == head:
                copy.copy_checked = copy.size
                return True
            ident = original.identity
            if ident.fp_len > 0 and not same_start(original.fd, ident.fp_len, ident.fp):
                return True  # the original changed: the next scan hands its bytes on
        except OSError:
            return True
        copy.copy_of = None
        copy.read_offset = 0
        fp_len, fp = fingerprint(copy.fd)
        copy.identity = Identity(copy.identity.dev, copy.identity.ino, fp_len, fp)
        telemetry.file_opened(self.category, copy.path, 0, "new file")
        return False

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

    def take_orphaned(self) -> list[FileEvents]:
        """The last records of content generations that a truncation ended."""
        events = [self.flush_pending(cursor) for cursor in self.orphans]
        self.orphans.clear()
        return [each for each in events if each]

    def reached_end(self, cursor: Cursor) -> None:
        """The reader read ``cursor``'s file to its end and hands it nothing more until
        it grows: the file is quiet from now, as if a read had found nothing."""
        if cursor.quiet_since is None:
            cursor.quiet_since = time.monotonic()

    def flush_quiet(self, cursor: Cursor, quiet_for: float) -> FileEvents:
        """The pending record of a file quiet for ``quiet_for`` seconds, as events (and
        a repeat held by the filters whose window passed)."""
        if cursor.filtering is not None:
            return self._flush_filtered(cursor, cursor.filtering, quiet_for)
        if quiet_for > 0 and (
            cursor.quiet_since is None or time.monotonic() - cursor.quiet_since < quiet_for
        ):
            return FileEvents(cursor.generation)  # not at its end yet, or not quiet long enough
        return self.flush_pending(cursor)

    def flush_pending(self, cursor: Cursor) -> FileEvents:
        """The record of ``cursor``'s file still waiting for continuation lines, as
        events: complete now (its file ended, or the reader is stopping), with a
        repeat the filters hold."""
        if cursor.filtering is not None:
            return self._flush_filtered(cursor, cursor.filtering, 0.0)
        assembler = cursor.assembler
        if assembler is None or assembler.pending is None:
            return FileEvents(cursor.generation)
        record = assembler.flush()
        return self.renderer.events([record] if record else [], cursor.generation)

    def _flush_filtered(
        self, cursor: Cursor, filtering: FileFilter, quiet_for: float
    ) -> FileEvents:
        """:meth:`flush_quiet` of a file with filters: the pending record (when complete)
        goes through them first, then a held repeat is shipped if it may go now."""
        now = time.monotonic()
        assembler = cursor.assembler
        quiet = cursor.quiet_since is not None and now - cursor.quiet_since >= quiet_for
        pending = None
        if assembler is not None and assembler.pending is not None:
            pending = assembler.flush() if quiet_for <= 0 or quiet else None
        if pending is None and not filtering.holding:
            return FileEvents(cursor.generation)
        return self._filtered(cursor, filtering.flush(now, quiet_for <= 0, pending, quiet))

    def _filtered(self, cursor: Cursor, kept: Kept) -> FileEvents:
        for reason, count in kept.dropped.items():
            telemetry.records_dropped(self.category, reason, count)
        return render_kept(self.renderer, kept, cursor.generation)

    # ------------------------------------------------------------------ state

    def checkpoint(self) -> SourceCheckpoint:
        # A copy of an intact file is left out: after a restart it is matched again.
        files = [c.checkpoint() for c in self.cursors.values() if not c.gone and c.copy_of is None]
        # Entries not yet matched to a file (the folder could not be listed yet).
        files.extend(self.saved.values())
        return SourceCheckpoint(self.since, files)

    def lag_bytes(self, cursors: Collection[Cursor] | None = None) -> dict[str, int]:
        """Bytes not yet delivered, per file: of ``cursors``, or of every file followed.
        A copy held back owes nothing: its bytes are counted at its original."""
        chosen = self.cursors.values() if cursors is None else cursors
        return {c.path: max(c.size - c.delivered_offset, 0) for c in chosen if c.copy_of is None}

    def close(self) -> None:
        for cursor in self.cursors.values():
            cursor.close()


def _looks(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a file changed at a look: its inode, size, and modification and change
    times (the change time moves with every write, and no one can set it back)."""
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _settled(cursor: Cursor) -> bool:
    """Whether a file needs nothing until it changes: rotated and read to its end.

    Its growth (a stale writer) is an event in the folder, and the look that follows
    brings it back.  A file under no name any more is the exception while it is open:
    what is written to it is seen only through its descriptor.
    """
    return (
        not cursor.live
        and cursor.read_offset >= cursor.size
        and not cursor.pending_record()
        and (cursor.fd is None or not cursor.gone)
    )


def _sized(st: os.stat_result, size: int) -> os.stat_result:
    """``st`` with another size: a gzipped file's, decompressed."""
    fields = list(st)
    fields[stat.ST_SIZE] = size
    times = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
    return os.stat_result(fields, {name: getattr(st, name) for name in times})


def source_key(source: SourceConfig) -> str:
    """The key of a source's checkpoints: its live path."""
    return str(Path(source.path))
