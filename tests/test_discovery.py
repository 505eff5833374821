"""Which names are a source's rotated files, and in which order they are read
(shipper/discovery.py).  The names come from the standard library's own handler
wherever it can write them, so ``rotated: auto`` is held to what Python ships
(SPEC §2; §3 promise 1: rotated files found, nothing lost; promise 5: oldest first).
"""

from __future__ import annotations

import logging.handlers
import time
from pathlib import Path

import pytest

from shipper.discovery import AUTO, NUMBERED, RotatedNames

WHENS = ["S", "M", "H", "D", "MIDNIGHT", *(f"W{day}" for day in range(7))]


def stdlib_name(tmp_path: Path, when: str, at: float, namer: bool = False) -> str:
    """The name ``TimedRotatingFileHandler(when=...)`` gives app.log rotated at ``at``,
    with the suffix Python sets (unchanged), as its doRollover computes it."""
    handler = logging.handlers.TimedRotatingFileHandler(tmp_path / "app.log", when=when, delay=True)
    if namer:
        handler.namer = lambda name: name.replace(".log.", ".") + ".log"
    try:
        suffix = time.strftime(handler.suffix, time.localtime(at))
        assert handler.extMatch.match(suffix), (when, suffix)  # what Python itself deletes
        return Path(handler.rotation_filename(f"{handler.baseFilename}.{suffix}")).name
    finally:
        handler.close()


class TestAutoNames:
    @pytest.mark.parametrize("when", WHENS)
    def test_every_suffix_python_writes_is_a_rotated_file(self, tmp_path: Path, when: str) -> None:
        """Each ``when`` names rotated files its own way (app.log.2026-12-05_13-04 for
        M ...); ``auto`` recognises each one, and reads the time it names."""
        at = time.mktime((2026, 12, 5, 13, 4, 5, 0, 0, -1))
        name = stdlib_name(tmp_path, when, at)
        sibling = RotatedNames("app.log", AUTO).match(name)
        assert sibling is not None, name
        assert not sibling.compressed
        assert at - 86_400 < sibling.stamp <= at

    @pytest.mark.parametrize("when", WHENS)
    def test_a_namers_name_is_a_rotated_file(self, tmp_path: Path, when: str) -> None:
        """A namer turning app.log.<stamp> into app.<stamp>.log is followed too."""
        name = stdlib_name(tmp_path, when, time.time(), namer=True)
        assert name.startswith("app.")
        assert name.endswith(".log")
        assert RotatedNames("app.log", AUTO).match(name) is not None

    @pytest.mark.parametrize(
        "name",
        [
            "app.log.20261205",  # handler.suffix = "%Y%m%d", as the apps set it
            "app.log-20261205",  # logrotate dateext
            "app.log-2026120513",  # dateformat -%Y%m%d%H
            "app.log-2026-12-05",  # dateformat -%Y-%m-%d
            "app.log-20261205-1796475845",  # dateformat -%Y%m%d-%s
            "app.log.1",  # logrotate, numbered
            "app.log.1.gz",  # ... with compress
            "app.log-20261205.gz",
            "app.log.2026-12-05.gz",
            "app.2026-12-05.log",
            "app.20261205.log.gz",
        ],
    )
    def test_logrotate_and_app_forms(self, name: str) -> None:
        sibling = RotatedNames("app.log", AUTO).match(name)
        assert sibling is not None, name
        assert sibling.compressed == name.endswith(".gz")

    @pytest.mark.parametrize(
        "name", ["app.log", "db.log", "app.log.bak", "app.log.x.gz", "app.log.1.bz2", "xapp.log.1"]
    )
    def test_other_names_are_not(self, name: str) -> None:
        assert RotatedNames("app.log", AUTO).match(name) is None

    def test_one_configured_form_finds_only_that_form(self) -> None:
        """A suffix or `number` set in the config narrows what is followed."""
        daily = RotatedNames("app.log", "%Y%m%d")
        assert daily.match("app.log.20261205") is not None
        assert daily.match("app.log.2026-12-05") is None
        assert daily.match("app.log.1") is None
        numbered = RotatedNames("app.log", NUMBERED)
        assert numbered.match("app.log.3") is not None
        assert numbered.match("app.log.20261205") is None


class TestOrder:
    def test_dated_files_are_ordered_by_the_time_they_name(self, tmp_path: Path) -> None:
        """Oldest first, whatever the form: by the stamp read from the name."""
        names = RotatedNames("app.log", AUTO)
        written = [
            "app.log.2026-11-30",
            "app.log.2026-12-01_09",
            "app.log.2026-12-01_10-30",
            "app.log.2026-12-01_10-30-15",
            "app.log-20261202.gz",
            "app.log.20261203",
        ]
        stamps = {}
        for name in written:
            sibling = names.match(name)
            assert sibling is not None, name
            stamps[name] = sibling.stamp
        assert sorted(written, key=stamps.__getitem__) == written

    def test_numbered_files_higher_is_older(self) -> None:
        names = RotatedNames("app.log", AUTO)
        order = ["app.log.10.gz", "app.log.9", "app.log.2.gz", "app.log.1"]
        stamps = [names.match(n) for n in order]
        assert all(s is not None for s in stamps)
        assert [s.stamp for s in stamps if s] == sorted(s.stamp for s in stamps if s)
