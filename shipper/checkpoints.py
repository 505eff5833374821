"""Checkpoints: how far each file has been delivered, kept across restarts.

The state is one JSON document in ``state_dir``, versioned, and replaced atomically
(write a temporary file, fsync it, rename it over the old one, fsync the folder) so a
crash leaves either the old or the new state, never a mix.  Files are recorded by
identity (device, inode and a fingerprint of their first bytes), not by name.

A save that cannot complete (a full disk, a read-only folder) raises and leaves the
saved document as it was.  Each save keeps the document it replaces, when that reads
back whole, as ``checkpoints.json.prev``.  A document that cannot be read (corrupt,
cut short by a disk that lied about fsync) is moved aside and reported, and the
previous copy is used instead: at worst the batches delivered since that copy are
sent again.  When no copy can be read either, the
state is marked lost: every source is then treated as covered from the start of
time, so the files on disk (found by identity) are shipped again rather than
skipped — duplicates, but nothing lost.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

import msgspec

from shipper import telemetry

VERSION = 1
FILENAME = "checkpoints.json"
PREVIOUS = FILENAME + ".prev"


class FileCheckpoint(msgspec.Struct, frozen=True):
    """One file's delivered offset, with what identifies the file."""

    dev: int
    ino: int
    fp_len: int
    fp: str
    offset: int
    path: str = ""


class SourceCheckpoint(msgspec.Struct, frozen=True):
    """One source's files, and since when the shipper has covered the source."""

    since: float
    files: list[FileCheckpoint] = []


class State(msgspec.Struct, frozen=True):
    version: int = VERSION
    sources: dict[str, SourceCheckpoint] = {}

    def source(self, key: str) -> SourceCheckpoint | None:
        """The checkpoint of one source; None when the source was never covered."""
        return self.sources.get(key)


class LostState(State, frozen=True):
    """Stands for a state that could not be read: every source counts as covered since
    ever, so each file on disk is read from its start (duplicates, nothing lost)."""

    def source(self, key: str) -> SourceCheckpoint | None:
        return SourceCheckpoint(since=0.0)


class CheckpointStore:
    """Reads and atomically writes the checkpoint document of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / FILENAME

    def load(self) -> State:
        """The saved state: the document, else its previous copy, else a lost state.

        No document at all (and no copy) is a first run: an empty state.
        """
        previous = self.path.with_name(PREVIOUS)
        state, problem = self._read(self.path)
        if problem is None:
            return state if state is not None else self._recover(previous, "missing")
        self._set_aside(self.path, problem)
        return self._recover(previous, problem)

    def _recover(self, previous: Path, problem: str) -> State:
        state, previous_problem = self._read(previous)
        if state is not None:
            if problem != "missing":
                telemetry.checkpoint_recovered(str(self.path), "previous copy", str(previous))
            return state
        if previous_problem is None and problem == "missing":
            return State()  # neither exists: a first run
        if previous_problem is not None:
            self._set_aside(previous, previous_problem)
        # A document that existed but cannot be read, and no good copy: the files on
        # disk are shipped again (duplicates) rather than taken for history (loss).
        telemetry.checkpoint_recovered(str(self.path), "files on disk", "")
        return LostState()

    def _read(self, path: Path) -> tuple[State | None, str | None]:
        """The state in ``path`` (None when there is no such file), or a problem."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"unreadable: {exc.strerror or exc}"
        try:
            state = msgspec.json.decode(data, type=State)
        except msgspec.ValidationError as exc:
            return None, f"unexpected content: {exc}"
        except msgspec.DecodeError as exc:
            return None, f"not valid JSON: {exc}"
        if state.version != VERSION:
            return None, f"version {state.version}, expected {VERSION}"
        return state, None

    def save(self, state: State) -> None:
        """Replace the saved state atomically; raise OSError when it cannot be saved.

        The new document replaces the old only once all of it is written and fsynced:
        a full disk (a short write, ENOSPC) or a read-only folder leaves the saved
        state as it was.  The document replaced becomes the previous copy only if it
        reads back whole, so a damaged document never pushes a good copy out.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILENAME}.tmp")
        data = msgspec.json.encode(state)
        try:
            _write_file(tmp, data)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()  # a partial copy: it would only take the space it lacked
            raise
        current, problem = self._read(self.path)
        if current is not None and problem is None:
            # The fallback if the new document turns out damaged after all.
            os.replace(self.path, self.path.with_name(PREVIOUS))
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):  # some filesystems cannot fsync a folder
            dir_fd = os.open(self.state_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def check_writable(self) -> str | None:
        """A problem that would stop checkpoints from being saved, or None."""
        probe = self.state_dir
        while not probe.exists():
            probe = probe.parent
        if not os.access(probe, os.W_OK | os.X_OK):
            return f"{probe} is not writable"
        return None

    def _set_aside(self, path: Path, reason: str) -> None:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        telemetry.checkpoint_corrupt(path=str(path), reason=reason, moved_to=str(aside))


def _write_file(path: Path, data: bytes) -> None:
    """Write all of ``data`` to ``path`` and fsync it.

    ``os.write`` may write less than asked (a disk filling up) without an error; the
    rest is written by further calls, the next of which reports what went wrong.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
