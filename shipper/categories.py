"""Categories found by a glob: one source entry that covers a folder per category.

A source whose ``path`` is a glob over category folders — ``/logs/*/*.log``, or
``/logs/{category}/{category}.log`` where the file is named as its folder — stands for
one concrete source per category folder under its root (``/logs``).  The folder's
name is the category.  Each concrete source is exactly what a hand-written entry with
that ``category`` and live ``path`` would be: its own stream (the group and stream
templates' ``{category}``) and its own checkpoints, keyed by its live path.

Which files are live: in a category folder, the names the file pattern matches,
except

- a rotated sibling of another (``app.log.20240101``, a namer's ``app.20240101.log``,
  by the entry's ``rotated``): it is that file's rotation, not a new source — also
  when the live file is missing at the moment (renamed away, not yet created again),
  as the name with its date or number taken out is tried as the live name;
- compressed files (``.gz``) and hidden names (``.``-prefixed): never live files.

A folder whose name would make a log group or stream name CloudWatch refuses is
skipped and reported (once, ``category.refused``); the other categories go on.
A category once found is followed until its folder disappears (``category.gone``) or
a reload removes its entry; its checkpoint is kept, as a removed source's, and it
resumes there if it comes back.  A glob that matches nothing yet is no error: the
folders may come later.

:func:`expand` is the pure part (an entry and a listing in, concrete sources out);
:class:`Discovery` lists the roots, at start, when a root changes (the watcher) and
on every rescan, and hands new categories to the shipper.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import functools
import glob
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipper import telemetry
from shipper.config import (
    CATEGORY_PLACEHOLDER,
    GLOB_CHARACTERS,
    Config,
    SourceConfig,
    is_glob,
    name_problems,
)
from shipper.discovery import RotatedNames
from shipper.follow import source_key
from shipper.waits import first_set, next_tick
from shipper.watcher import Watcher

# A date or number in a rotated name: a separator, then digits with separators between.
_STAMP = re.compile(r"[._\-]\d(?:[\d._\-:T]*\d)?")
# At most one look at the folders this often, however many changes wake it.
DISCOVER_EVERY = 0.5

# One folder listing: category folder name -> the names of the files in it.
Listing = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Refused:
    """A category folder whose name CloudWatch would refuse in a group or stream name."""

    entry: Path
    category: str
    problem: str


def root_of(entry: SourceConfig) -> Path:
    """The folder holding the category folders."""
    return entry.path.parent.parent


def category_folders(entry: SourceConfig, names: Iterable[str]) -> list[str]:
    """The folder names (of those in the root) that are categories of ``entry``."""
    pattern = entry.path.parent.name.replace(CATEGORY_PLACEHOLDER, "*")
    return sorted(n for n in names if not n.startswith(".") and fnmatch.fnmatchcase(n, pattern))


def file_pattern(entry: SourceConfig, category: str) -> str:
    """The file name pattern of ``entry`` in the folder ``category``."""
    return entry.path.name.replace(CATEGORY_PLACEHOLDER, glob.escape(category))


def live_names(entry: SourceConfig, category: str, names: Collection[str]) -> list[str]:
    """The live files among ``names`` (a category folder's files, and live names known
    from before) that the file pattern matches: rotated siblings and .gz excluded."""
    pattern = file_pattern(entry, category)
    if _fixed(pattern):
        return [pattern]  # a fixed name: the live file, whether or not it exists yet
    matched = {
        n
        for n in names
        if not n.startswith(".") and not n.endswith(".gz") and fnmatch.fnmatchcase(n, pattern)
    }
    return sorted(n for n in matched if not _is_rotated(entry, pattern, n, matched))


def _fixed(pattern: str) -> bool:
    return GLOB_CHARACTERS.isdisjoint(pattern)


def _is_rotated(entry: SourceConfig, pattern: str, name: str, matched: Collection[str]) -> bool:
    """Whether ``name`` is a rotated sibling of another matched name, or of the name it
    would have without one of its dates or numbers (its live file, renamed away now)."""
    candidates = {other for other in matched if other != name}
    for stamp in _STAMP.finditer(name):
        bare = name[: stamp.start()] + name[stamp.end() :]
        if bare and fnmatch.fnmatchcase(bare, pattern):
            candidates.add(bare)
    return any(_sibling(live, entry.rotated, name) for live in candidates)


@functools.lru_cache(maxsize=256)
def _rotated_names(live: str, rotated: str) -> RotatedNames:
    return RotatedNames(live, rotated)


def _sibling(live: str, rotated: str, name: str) -> bool:
    """Whether ``name`` is a rotated sibling of ``live``, as the follower reads it."""
    return _rotated_names(live, rotated).match(name) is not None


def expand(
    entry: SourceConfig, listing: Listing, known: Collection[Path] = ()
) -> list[SourceConfig]:
    """The concrete sources of the glob ``entry`` given its root's ``listing``: one per
    live file of each category folder.  ``known`` are live paths followed before: a
    rotated sibling of one of them is not a new live file, even while it is missing."""
    root = root_of(entry)
    found = []
    for category in category_folders(entry, listing):
        folder = root / category
        before = {p.name for p in known if p.parent == folder}
        for name in live_names(entry, category, [*listing[category], *before]):
            found.append(dataclasses.replace(entry, category=category, path=folder / name))
    return found


def list_root(entry: SourceConfig) -> dict[str, list[str]]:
    """The category folders in the root of ``entry`` and their file names (a folder
    that cannot be read: none); the root's other folders are not listed."""
    root = root_of(entry)
    listing: dict[str, list[str]] = {}
    try:
        folders = category_folders(entry, (e.name for e in os.scandir(root) if e.is_dir()))
    except OSError:
        return listing
    for folder in folders:
        try:
            listing[folder] = [e.name for e in os.scandir(root / folder) if not e.is_dir()]
        except OSError:
            listing[folder] = []
    return listing


def refused(config: Config, source: SourceConfig, values: Mapping[str, str]) -> list[str]:
    """What CloudWatch would refuse in the names a concrete source makes."""
    return name_problems(dataclasses.replace(config, sources=[source]), values)


def find(
    config: Config, values: Mapping[str, str], known: Collection[Path] = ()
) -> tuple[list[SourceConfig], list[Refused]]:
    """Every concrete source of ``config``: hand-written ones as written, glob entries
    expanded from their roots as they are now; and the category folders refused.

    A file both written by hand and found by a glob is the hand-written source; one
    found by two globs is the first's.
    """
    sources = [entry for entry in config.sources if not is_glob(entry.path)]
    taken = {source_key(s) for s in sources}
    refusals: list[Refused] = []
    for entry in config.sources:
        if not is_glob(entry.path):
            continue
        for source in expand(entry, list_root(entry), known):
            if source_key(source) in taken:
                continue
            taken.add(source_key(source))
            problems = refused(config, source, values)
            if problems:
                refusals.append(Refused(entry.path, source.category, "; ".join(problems)))
            else:
                sources.append(source)
    return sources, refusals


def concrete(config: Config, values: Mapping[str, str] | None = None) -> Config:
    """``config`` with its glob entries replaced by the categories found now."""
    return dataclasses.replace(config, sources=find(config, values or {})[0])


class Host(Protocol):
    """What discovery needs of the running shipper."""

    config: Config
    values: dict[str, str]
    watcher: Watcher | None
    stopping: asyncio.Event

    def followed(self) -> set[str]: ...

    def add_found(self, source: SourceConfig) -> None: ...

    async def remove_sources(self, keys: list[str]) -> object: ...


class Discovery:
    """Finds the categories of the glob entries, now and while running.

    ``lock`` is held while sources change (a pass here, a reload), so the two never
    add the same source twice.
    """

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()
        self.known: set[Path] = set()  # live paths followed, now or before
        self._reported: set[tuple[Path, str]] = set()
        self._found: set[Path] = set()
        self._empty_reported: set[Path] = set()

    def sources(
        self, config: Config, values: Mapping[str, str], saved: Iterable[str] = ()
    ) -> list[SourceConfig]:
        """Every concrete source of ``config`` now (``saved``: checkpoint keys, live
        paths followed before); refused categories are reported once each."""
        self.known.update(Path(key) for key in saved)
        sources, refusals = find(config, values, self.known)
        for refusal in refusals:
            if (refusal.entry, refusal.category) not in self._reported:
                self._reported.add((refusal.entry, refusal.category))
                telemetry.category_refused(str(refusal.entry), refusal.category, refusal.problem)
        listed = {entry.path for entry in config.sources}
        for source in sources:
            if source.path not in self._found and source.path not in listed:
                telemetry.category_found(source.category, str(source.path))
                self._found.add(source.path)
        for entry in config.sources:
            empty = is_glob(entry.path) and not any(
                s.path.parent.parent == root_of(entry) and category_folders(entry, [s.category])
                for s in sources
            )
            if empty and entry.path not in self._empty_reported:
                self._empty_reported.add(entry.path)  # once: the folders may come later
                telemetry.category_none_yet(str(entry.path))
        self.known.update(self._found)
        return sources

    def watch(self, config: Config, watcher: Watcher) -> None:
        """Wake a pass on changes in each glob's root (a folder created), and in each
        category folder without a live file yet (its file created)."""
        followed = {path.parent for path in self._found}
        for entry in config.sources:
            if is_glob(entry.path):
                root = root_of(entry)
                watcher.add(root, self.wake)
                for category in list_root(entry):
                    if root / category not in followed:
                        watcher.add(root / category, self.wake)

    async def look(self, host: Host) -> None:
        """One pass: follow every category found since the last; stop following those
        whose folder went (their checkpoints are kept: one that comes back resumes)."""
        followed = host.followed()
        gone = sorted(p for p in self._found if str(p) in followed and not p.parent.is_dir())
        if gone:
            for path in gone:
                telemetry.category_gone(path.parent.name, str(path))
                self._found.discard(path)
            await host.remove_sources([str(p) for p in gone])
            followed = host.followed()
        for source in self.sources(host.config, host.values):
            if source_key(source) not in followed:
                host.add_found(source)

    async def run(self, host: Host, interval: Callable[[], float]) -> None:
        """Look when a watched folder changes, and every ``interval()`` seconds while
        the config has glob entries (a reload wakes it: one may add them)."""
        while not host.stopping.is_set():
            started = time.monotonic()
            self.wake.clear()
            async with self.lock:
                await self.look(host)
                if host.watcher is not None:
                    self.watch(host.config, host.watcher)
            pause = max(0.0, DISCOVER_EVERY - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await host.stopping.wait()
            globs = any(is_glob(entry.path) for entry in host.config.sources)
            until = next_tick(interval()) if globs else None
            await first_set(self.wake, host.stopping, until=until)
