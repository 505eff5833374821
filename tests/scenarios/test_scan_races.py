"""A folder listing races with renames: a file listed under one name may be gone by
the time it is looked at, so one scan can miss a file that still exists.  The
follower, driven in-process here, must not take such a file for new when the next
scan finds it under its new name (SPEC §3 promise 2: no duplicates).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from shipper.config import SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker
from shipper.render import Renderer

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def _lines(tag: str, count: int) -> str:
    return "".join(f"2024-01-02 03:04:05,000 INFO {tag}-{n:03d}\n" for n in range(count))


def _read_all(follower: Follower) -> list[str]:
    messages = []
    for cursor in follower.scan():
        while (events := follower.read(cursor, 0)) is not None:
            messages.extend(event.message for event in events)
        messages.extend(event.message for event in follower.flush_quiet(cursor, 0.0))
    return messages


def test_a_copy_missed_by_one_scan_is_not_read_again(tmp_path: Path) -> None:
    """copytruncate's copy, already placed at the end of what was read, is renamed
    out of sight for one scan (as ``mv app.log.1 app.log.2`` can look to a listing
    taken mid-rename) and then found as app.log.2: nothing of it is read again."""
    live = tmp_path / "app.log"
    live.write_text(_lines("first", 20))
    source = SourceConfig(category="app", path=live, format=FORMAT, rotated="number")
    follower = Follower(source, None, Renderer("app", "raw", Masker("off"), False), time.time())
    assert len(_read_all(follower)) == 20

    shutil.copyfile(live, tmp_path / "app.log.1")  # logrotate's copytruncate
    os.truncate(live, 0)
    with live.open("a") as f:
        f.write(_lines("second", 5))
    assert [m.split()[-1] for m in _read_all(follower)] == [f"second-{n:03d}" for n in range(5)]

    (tmp_path / "app.log.1").rename(tmp_path / "moving")  # not a name the source matches
    assert _read_all(follower) == []
    (tmp_path / "moving").rename(tmp_path / "app.log.2")
    assert _read_all(follower) == [], "the copy was read again from its first line"
    follower.close()
