"""Checkpoints: how far each file has been delivered, kept across restarts.

The state is one JSON document in ``state_dir``, versioned, and replaced atomically
(write a temporary file, fsync it, rename it over the old one, fsync the folder) so a
crash leaves either the old or the new state, never a mix.  Files are recorded by
identity (device, inode and a fingerprint of their first bytes), not by name.

A document that cannot be read is moved aside, reported, and replaced by an empty
state: the follower then falls back on what the files on disk tell it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from shipper import telemetry

VERSION = 1
FILENAME = "checkpoints.json"


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


class CheckpointStore:
    """Reads and atomically writes the checkpoint document of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / FILENAME

    def load(self) -> State:
        """The saved state; an empty one when there is none or it is unreadable."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return State()
        try:
            state = msgspec.json.decode(data, type=State)
        except msgspec.ValidationError as exc:
            return self._set_aside(f"unexpected content: {exc}")
        except msgspec.DecodeError as exc:
            return self._set_aside(f"not valid JSON: {exc}")
        if state.version != VERSION:
            return self._set_aside(f"version {state.version}, expected {VERSION}")
        return state

    def save(self, state: State) -> None:
        """Replace the saved state atomically."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILENAME}.tmp")
        data = msgspec.json.encode(state)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
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

    def _set_aside(self, reason: str) -> State:
        aside = self.path.with_name(f"{FILENAME}.corrupt-{int(time.time())}")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        telemetry.checkpoint_corrupt(path=str(self.path), reason=reason, moved_to=str(aside))
        return State()


def to_plain(state: State) -> Any:
    """The state as plain JSON-ready data (for tests and diagnostics)."""
    return msgspec.to_builtins(state)
