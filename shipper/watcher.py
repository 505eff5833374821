"""Waking readers when their folder changes: watchdog's shared inotify reader on
Linux (see :class:`_InotifyWatch`), its observer elsewhere.

Each source's folder is watched; any change in it sets the source's wake event, from
watchdog's thread through the event loop, and notes the names of the files that
changed: :meth:`Watcher.take_changes` hands them to the reader, which then looks at
just those files rather than the whole folder (so a write costs the same however many
rotated files lie beside the live one).  When the watch cannot say which files
changed (a folder created or deleted, a watch placed anew, too many names at once) the
answer is None: look at everything.  The watch is a way to react fast,
not the only way: readers also rescan every ``rescan_interval`` (inotify queues
overflow, network filesystems send nothing), and a folder that does not exist yet
is watched through its nearest existing ancestor until it appears.  A watched
folder's parent is watched too, for the folder's own deletion and creation: a
folder deleted and created again (even on the same inode) is watched anew.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

try:  # Linux, with watchdog's shared inotify reader (watchdog 7)
    from watchdog.observers.inotify_c import (
        CallbackId,
        InotifyConstants,
        InotifyEvent,
        InotifyFD,
        Mask,
    )

    SHARED_INOTIFY = True
except ImportError:  # elsewhere: watchdog's observer for the platform
    SHARED_INOTIFY = False

_FOLDER_CHANGES = ("created", "deleted", "moved")
# Changed names noted for one reader before it looks; past this, it looks at everything.
MAX_NOTED = 1000
# What a reader needs to hear of: files written, created, renamed, deleted, and the
# folders themselves appearing or going.  Opening and closing unwritten (the
# shipper's own listings and reads, an operator's ``tail``) would wake the watch
# threads for nothing.  One filter for every watch: two watches on one path share
# inotify's single mask.
_WATCHED_EVENTS = [
    FileModifiedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


def _inotify_mask() -> Mask:
    """The inotify events of ``_WATCHED_EVENTS``: written, created, deleted, renamed in
    or out, and the folder itself deleted or renamed."""
    c = InotifyConstants
    return Mask(
        c.IN_MODIFY
        | c.IN_CREATE
        | c.IN_DELETE
        | c.IN_MOVED_FROM
        | c.IN_MOVED_TO
        | c.IN_DELETE_SELF
        | c.IN_MOVE_SELF
    )


@dataclass(frozen=True)
class _Change:
    """One change as the handlers read it (as watchdog's events name it)."""

    event_type: str  # "modified", "created", "deleted" or "moved"
    src_path: str
    dest_path: str = ""
    is_directory: bool = False


class _InotifyWatch:
    """A folder's watch on watchdog's shared inotify reader.

    watchdog's observer hands each change through three threads (the inotify reader's
    dispatcher, a thread per watched folder, the observer's own) before a handler sees
    it: with 40 folders, 40 threads, and for a quiet source's writes more CPU than its
    reading.  Here the dispatcher calls the handler itself, and the handler hands the
    wake to the event loop: one thread for every folder.
    """

    def __init__(self, handler: _Waker | _ParentGuard, path: str):
        self.handler = handler
        self.path = path
        self.id = CallbackId(id(self))
        self.wd = InotifyFD.get_instance().add_callback(
            os.fsencode(path), _inotify_mask(), self, self.id
        )

    def close(self) -> None:
        """Stop: the inotify watch goes with the last of its callbacks."""
        InotifyFD.get_instance().remove_callbacks([(self.wd, self.id)])

    # watchdog's WatchCallback, called on its dispatch thread

    def on_event(self, event: InotifyEvent) -> None:
        if event.is_delete_self or event.is_move_self:
            kind = "deleted" if event.is_delete_self else "moved"
            self.handler.on_any_event(_Change(kind, self.path, is_directory=True))
            return
        path = os.path.join(self.path, os.fsdecode(event.name))
        if event.is_moved_from:
            change = _Change("moved", path, "", event.is_directory)
        elif event.is_moved_to:
            change = _Change("moved", "", path, event.is_directory)
        elif event.is_create:
            change = _Change("created", path, "", event.is_directory)
        elif event.is_delete:
            change = _Change("deleted", path, "", event.is_directory)
        else:
            change = _Change("modified", path, "", event.is_directory)
        self.handler.on_any_event(change)

    def on_watch_deleted(self, wd: int) -> None:
        # The folder went (or its watch was removed): nothing more comes from it.
        self.handler.on_any_event(_Change("deleted", self.path, is_directory=True))

    def on_queue_overflow(self) -> None:
        # Changes were lost: only a look at everything can tell what they were.
        self.handler.on_any_event(_Change("modified", self.path, is_directory=True))

    def on_events_lost(self) -> None:
        pass  # said by on_queue_overflow


def _not_stop_race(record: logging.LogRecord) -> bool:
    # watchdog logs this at ERROR when a watch is removed (or the observer stopped)
    # while its thread waits for events: harmless, and not in the shipper's log form.
    return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_not_stop_race)


class _Waker(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, directory: Path) -> None:
        self.loop = loop
        self.directory = str(directory)
        self.wakes: list[asyncio.Event] = []
        # The folder itself was deleted, moved or created (seen from its parent): its
        # watch, if any, sees nothing more.  A folder created again in its place can
        # reuse the inode, so the inode alone cannot tell.
        self.lost = False
        # Per wake event: names changed since its reader last looked (None: anything).
        self.changes: dict[asyncio.Event, set[str] | None] = {}
        self.lock = threading.Lock()  # changes are noted on watchdog's thread

    def on_any_event(self, event: FileSystemEvent | _Change) -> None:
        self.wake(self._names(event))

    def _names(self, event: FileSystemEvent | _Change) -> list[str] | None:
        """The names of the folder's files an event is about; None when it is not
        about files directly in the folder."""
        if event.is_directory:
            return None
        names = []
        for path in (event.src_path, event.dest_path):
            if path:
                folder, name = os.path.split(os.fsdecode(path))
                if folder != self.directory:
                    return None
                names.append(name)
        return names

    def wake(self, names: list[str] | None = None) -> None:
        """Wake every reader of the folder; ``names`` changed (None: anything may have)."""
        with self.lock:
            for wake in self.wakes:
                noted = self.changes.setdefault(wake, set())
                if noted is not None and names is not None and len(noted) < MAX_NOTED:
                    noted.update(names)
                else:
                    self.changes[wake] = None
        for wake in self.wakes:
            # Reading is_set from this thread is a harmless race: at worst one extra wake.
            if not wake.is_set():
                self.loop.call_soon_threadsafe(wake.set)

    def take(self, wake: asyncio.Event) -> set[str] | None:
        with self.lock:
            return self.changes.pop(wake, set())


class _ParentGuard(FileSystemEventHandler):
    """On a folder's parent: tells the folder's waker when the folder itself changes."""

    def __init__(self, waker: _Waker) -> None:
        self.waker = waker

    def on_any_event(self, event: FileSystemEvent | _Change) -> None:
        if event.event_type in _FOLDER_CHANGES and self.waker.directory in (
            event.src_path,
            event.dest_path,
        ):
            self.waker.lost = True
            self.waker.wake()


class Watcher:
    """Watches folders and sets the wake events registered for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Without watchdog's shared inotify reader (not Linux): its observer.
        self.observer: Any = None
        if not SHARED_INOTIFY:
            self.observer = Observer()
            self.observer.daemon = True
        self._handlers: dict[Path, _Waker] = {}
        self._guarded: dict[Path, Any] = {}  # folder -> the watch on its parent
        # Folder -> (the path watched for it, with its device and inode; the watch).
        self._watched: dict[Path, tuple[tuple[Path, int, int], Any]] = {}
        self.started = False

    def start(self) -> None:
        if self.observer is not None:
            self.observer.start()
        self.started = True

    def _schedule(self, handler: _Waker | _ParentGuard, path: str) -> Any:
        """Watch ``path`` for ``handler``; the watch, to drop later.  Raises OSError."""
        if self.observer is None:
            return _InotifyWatch(handler, path)
        return self.observer.schedule(handler, path, recursive=False, event_filter=_WATCHED_EVENTS)

    def add(self, directory: Path, wake: asyncio.Event) -> bool:
        """Wake ``wake`` on changes in ``directory`` (see :meth:`ensure`)."""
        handler = self._handlers.setdefault(directory, _Waker(self.loop, directory))
        if wake not in handler.wakes:
            handler.wakes.append(wake)
        return self.ensure(directory)

    def take_changes(self, directory: Path, wake: asyncio.Event) -> set[str] | None:
        """The names in ``directory`` that changed since ``wake``'s reader last asked
        (empty: none); None when the watch cannot tell which (look at everything)."""
        return self._handlers[directory].take(wake)

    def ensure(self, directory: Path) -> bool:
        """Watch ``directory`` as it is now; True when a new watch was placed (changes
        made before it went unseen: the caller should look again).

        While it does not exist, its nearest existing ancestor is watched instead, so
        that its creation wakes the reader (which then calls this again).
        """
        target = directory
        st = _stat_of_folder(target)
        while st is None and target.parent != target:
            target = target.parent
            st = _stat_of_folder(target)
        if st is None:
            return False
        identity = (target, st.st_dev, st.st_ino)
        handler = self._handlers[directory]
        current = self._watched.get(directory)
        if current is not None:
            if current[0] == identity and not handler.lost:
                return False
            # Deleted (perhaps created again), or created at last: its old watch goes.
            del self._watched[directory]
            self._drop(directory, current[1])
        handler.lost = False
        handler.wake()  # what changed before this watch was placed went unnoted
        self._guard(directory)
        try:
            watch = self._schedule(handler, str(target))
        except OSError:
            return False
        self._watched[directory] = (identity, watch)
        return True

    def _guard(self, directory: Path) -> None:
        """Watch the folder's parent for the folder's own deletion and creation."""
        if directory in self._guarded or not directory.parent.is_dir():
            return
        try:
            guard = _ParentGuard(self._handlers[directory])
            self._guarded[directory] = self._schedule(guard, str(directory.parent))
        except OSError:
            return

    def _drop(self, directory: Path, watch: Any) -> None:
        if isinstance(watch, _InotifyWatch):
            watch.close()  # its own callback: another on the same path stays
            return
        guard_paths = {str(d.parent) for d in self._guarded}
        shared = watch.path in guard_paths or any(w == watch for _, w in self._watched.values())
        try:
            if shared:  # another watch on the same path (a guard): only our handler goes
                self.observer.remove_handler_for_watch(self._handlers[directory], watch)
            else:
                self.observer.unschedule(watch)
        except (KeyError, OSError):
            pass  # the observer already dropped the watch of a deleted folder

    def watching(self, directory: Path) -> bool:
        """Whether changes in ``directory`` are being watched (not only its ancestor's)."""
        current = self._watched.get(directory)
        return (
            current is not None
            and current[0][0] == directory
            and not self._handlers[directory].lost
        )

    def stop(self) -> None:
        if self.observer is None:
            watches = [w for _, w in self._watched.values()] + list(self._guarded.values())
            self._watched.clear()
            self._guarded.clear()
            for watch in watches:
                watch.close()
        elif self.started:
            self.observer.stop()
            self.observer.join(timeout=2)


def _stat_of_folder(path: Path) -> os.stat_result | None:
    """``path``'s status if it is a folder (one call: a reader asks before each wait)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None
