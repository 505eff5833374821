"""Checkpoint saves on a disk that fills up or turns read-only (issue 18 item 5).

The state folder is a real tmpfs of a few pages, mounted for the test: a document
that does not fit is written short by the kernel, as on any full disk.  SPEC §3
promises 1 and 2: a failed save leaves the good document (and its good previous copy)
in place, so a restart resumes where the last good save said, never at a cut-off
document's idea of it nor from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipper.checkpoints import (
    FILENAME,
    PREVIOUS,
    CheckpointStore,
    FileCheckpoint,
    LostState,
    SourceCheckpoint,
    State,
)
from tests.support.tmpfs import PAGE, fill, remount, tmpfs


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for this test only."""
    with tmpfs(tmp_path / "tiny") as folder:
        yield folder


def state(sources: int, offset: int) -> State:
    """A document of ``sources`` sources (each ~150 bytes) at ``offset``."""
    return State(
        sources={
            f"/logs/c{n}/c{n}.log": SourceCheckpoint(
                since=1.0, files=[FileCheckpoint(1, n, 512, "ab" * 16, offset, f"/logs/c{n}")]
            )
            for n in range(sources)
        }
    )


class TestFullDisk:
    def test_a_document_that_does_not_fit_never_replaces_the_saved_one(self, tiny_fs: Path) -> None:
        """The disk has room for part of the new document only: ``os.write`` writes
        that part and returns.  The save fails (OSError) instead of renaming the cut
        document over the good one; the good one is what loads; the partial copy is
        removed; once there is room again the next save succeeds."""
        store = CheckpointStore(tiny_fs / "state")
        good = state(3, offset=100)
        store.save(good)
        filler = fill(tiny_fs, leave=2 * PAGE)
        big = state(200, offset=200)  # ~30 KiB
        with pytest.raises(OSError, match="No space left"):
            store.save(big)
        assert store.load() == good
        assert sorted(p.name for p in (tiny_fs / "state").iterdir()) == [FILENAME]
        filler.unlink()
        store.save(big)
        assert store.load() == big
        assert store.path.with_name(PREVIOUS).read_bytes() != b""
        assert CheckpointStore(tiny_fs / "state")._read(store.path.with_name(PREVIOUS))[0] == good

    def test_a_damaged_document_never_pushes_the_good_previous_copy_out(
        self, tiny_fs: Path
    ) -> None:
        """A document found damaged when the next save replaces it (a disk that lied
        about fsync) is not kept as the previous copy: the good copy stays, so when
        the newest document is damaged as well, loading recovers from it rather than
        treating the state as lost."""
        store = CheckpointStore(tiny_fs / "state")
        first, second, third = state(2, 10), state(2, 20), state(2, 30)
        store.save(first)
        store.save(second)  # previous copy: first
        store.path.write_bytes(store.path.read_bytes()[:40])  # second, cut short
        store.save(third)
        store.path.write_bytes(store.path.read_bytes()[:40])  # third, cut short too
        loaded = store.load()
        assert not isinstance(loaded, LostState)
        assert loaded == first


class TestReadOnlyFolder:
    def test_a_read_only_state_folder_fails_the_save_and_keeps_the_document(
        self, tiny_fs: Path
    ) -> None:
        """Remounted read-only (as a failing disk is), the save raises; the saved
        document is untouched, and saves succeed again once it is writable."""
        store = CheckpointStore(tiny_fs / "state")
        good = state(2, 50)
        store.save(good)
        remount(tiny_fs, "ro")
        try:
            with pytest.raises(OSError, match="Read-only file system"):
                store.save(state(2, 60))
            assert store.load() == good
        finally:
            remount(tiny_fs, "rw")
        store.save(state(2, 70))
        assert store.load() == state(2, 70)


class TestUnreadableWithoutCopy:
    def test_a_corrupt_document_without_a_copy_ships_the_files_again(self, tmp_path: Path) -> None:
        """Promise 1: a document that exists but cannot be read, with no previous copy
        (the first save was cut short), is no first run: the files on disk are read
        again from their start (a lost state), never taken for history."""
        store = CheckpointStore(tmp_path)
        (tmp_path / FILENAME).write_bytes(b'{"version": 1, "sour')
        assert not (tmp_path / PREVIOUS).exists()
        assert isinstance(store.load(), LostState)

    def test_no_document_and_no_copy_is_a_first_run(self, tmp_path: Path) -> None:
        loaded = CheckpointStore(tmp_path).load()
        assert not isinstance(loaded, LostState)
        assert loaded.sources == {}
