"""A tiny real filesystem for tests of full and read-only disks: a tmpfs mounted on a
folder for one test (root only; a test without it is skipped, saying why)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "64k") -> Iterator[Path]:
    """``folder`` as a tmpfs of ``size`` while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    done = mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder))
    if done.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``folder`` until only ``leave`` bytes (whole pages) are
    free; deleting the file returned frees it again."""
    filler = folder / "filler"
    with pytest.raises(OSError, match="No space left"):
        filler.write_bytes(b"\0" * (1 << 20))  # more than the whole filesystem
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


def remount(folder: Path, mode: str) -> None:
    """Remount the tmpfs on ``folder`` ``ro`` or ``rw``."""
    done = mount("-o", f"remount,{mode}", str(folder))
    assert done.returncode == 0, done.stderr
