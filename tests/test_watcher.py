"""The folder watch wakes a reader for what changes its files, and only for that: an
operator's ``tail`` or the shipper's own listings and reads must not keep waking an
idle shipper (its idle cost is ``python -m bench.run --only idle``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from shipper import watcher as watcher_module
from shipper.watcher import Watcher


@pytest.fixture(autouse=True, params=["shared inotify", "observer"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test with both ways of watching: watchdog's shared inotify reader (Linux)
    and watchdog's observer (where that reader is not there)."""
    if request.param == "observer":
        monkeypatch.setattr(watcher_module, "SHARED_INOTIFY", False)
    elif not watcher_module.SHARED_INOTIFY:
        pytest.skip("watchdog's shared inotify reader is Linux's")
    return str(request.param)


# Long enough for inotify, watchdog's move-grouping delay and the loop hand-off.
SETTLE = 1.0


def _watching(tmp_path: Path, *changes: Callable[[Path], object]) -> list[bool]:
    """Make each change in turn in a watched folder; whether each woke the reader."""

    async def scenario() -> list[bool]:
        folder = tmp_path / "logs" / "app"
        folder.mkdir(parents=True)
        (folder / "app.log").write_text("first line\n")
        watcher = Watcher(asyncio.get_running_loop())
        watcher.start()
        wake = asyncio.Event()
        try:
            assert watcher.add(folder, wake)
            await asyncio.sleep(0.2)  # the watch is in place
            woken = []
            for change in changes:
                wake.clear()
                change(folder)
                try:
                    await asyncio.wait_for(wake.wait(), SETTLE)
                except TimeoutError:
                    woken.append(False)
                else:
                    woken.append(True)
            return woken
        finally:
            watcher.stop()

    return asyncio.run(scenario())


def _append(folder: Path) -> None:
    with (folder / "app.log").open("a") as f:
        f.write("another line\n")


def _look(folder: Path) -> None:
    """What the shipper's rescan and an operator's ``tail`` do."""
    os.listdir(folder)
    (folder / "app.log").read_text()
    fd = os.open(folder / "app.log", os.O_RDONLY)
    os.pread(fd, 512, 0)
    os.close(fd)


def test_a_write_wakes_the_reader(tmp_path: Path) -> None:
    assert _watching(tmp_path, _append) == [True]


def test_a_rotation_wakes_the_reader(tmp_path: Path) -> None:
    assert _watching(tmp_path, lambda f: os.rename(f / "app.log", f / "app.log.1")) == [True]


def test_a_new_file_wakes_the_reader(tmp_path: Path) -> None:
    assert _watching(tmp_path, lambda f: (f / "db.log").write_text("x\n")) == [True]


def test_reading_and_listing_do_not_wake_the_reader(tmp_path: Path) -> None:
    # The write after the reads shows the watch is still there.
    assert _watching(tmp_path, _look, _append) == [False, True]


def _changes(tmp_path: Path, change: Callable[[Path], object]) -> set[str] | None:
    """Make ``change`` in a watched folder; the names the watcher then hands the reader."""

    async def scenario() -> set[str] | None:
        folder = tmp_path / "logs" / "app"
        folder.mkdir(parents=True)
        (folder / "app.log").write_text("first line\n")
        watcher = Watcher(asyncio.get_running_loop())
        watcher.start()
        wake = asyncio.Event()
        try:
            watcher.add(folder, wake)
            await asyncio.sleep(0.2)  # the watch is in place
            assert watcher.take_changes(folder, wake) is None  # a new watch: look at all
            assert watcher.take_changes(folder, wake) == set()
            wake.clear()
            change(folder)
            await asyncio.wait_for(wake.wait(), SETTLE)
            await asyncio.sleep(0.2)  # a rename's two halves are both in
            return watcher.take_changes(folder, wake)
        finally:
            watcher.stop()

    return asyncio.run(scenario())


class TestChangedNames:
    """The watcher names the files that changed, so that a reader looks at those only
    (a write must not cost a look at every rotated file: issue 24)."""

    def test_a_write_names_its_file(self, tmp_path: Path) -> None:
        assert _changes(tmp_path, _append) == {"app.log"}

    def test_a_rename_names_both_names(self, tmp_path: Path) -> None:
        def rotate(folder: Path) -> None:
            os.rename(folder / "app.log", folder / "app.log.2026-12-05")

        assert _changes(tmp_path, rotate) == {"app.log", "app.log.2026-12-05"}

    def test_a_folder_change_asks_for_a_look_at_everything(self, tmp_path: Path) -> None:
        assert _changes(tmp_path, lambda f: (f / "archive").mkdir()) is None
