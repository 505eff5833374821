"""Which names in a folder are a source's rotated files, and how old each one is.

A rotated sibling of ``app.log`` is named ``app.log<sep><stamp>`` (``.``, ``-`` or
``_`` separate it, as the stdlib and logrotate's ``dateext`` write) or, from a
handler's ``namer``, ``app<sep><stamp>.log``; either may end in ``.gz`` (logrotate's
``compress``, or a namer that compresses).  The stamp is what ``rotated`` names:

- ``auto`` (the default): every form the standard library's
  ``TimedRotatingFileHandler`` writes for each ``when`` (``%Y-%m-%d_%H-%M-%S`` for
  ``S``, ``%Y-%m-%d_%H-%M`` for ``M``, ``%Y-%m-%d_%H`` for ``H``, ``%Y-%m-%d`` for
  ``D``, ``midnight`` and ``W0``-``W6``), the compact ``%Y%m%d`` (to the second) that
  apps and logrotate's ``dateformat`` write, logrotate's ``%Y%m%d-<epoch>``, and
  logrotate's numbered files (``app.log.1``);
- a strftime suffix: only that form;
- ``number``: only numbered files.

:meth:`RotatedNames.match` reads an age from the stamp: the time it names, or for a
numbered file minus its number (``app.log.1`` is the newest).  Files are read oldest
first by that age; the file's modification time breaks ties.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

from shipper.parse import datefmt_pattern

AUTO = "auto"
NUMBERED = "number"
COMPRESSED = ".gz"

# The stamps ``auto`` knows, longest first where one is the start of another.
AUTO_SUFFIXES = (
    "%Y-%m-%d_%H-%M-%S",  # TimedRotatingFileHandler, when="S"
    "%Y-%m-%d_%H-%M",  # when="M"
    "%Y-%m-%d_%H",  # when="H"
    "%Y-%m-%d",  # when="D", "midnight", "W0"-"W6"
    "%Y%m%d%H%M%S",  # the compact forms apps and logrotate's dateformat write
    "%Y%m%d%H%M",
    "%Y%m%d%H",
    "%Y%m%d",
)
_EPOCH = "epoch"  # logrotate's dateformat -%Y%m%d-%s: the date, then seconds since 1970
_NUMBER = "number"
_SEPARATOR = r"[.\-_]"


class Sibling(NamedTuple):
    """A rotated file's name, read: its age (higher is newer) and whether it is gzipped."""

    stamp: float
    compressed: bool


class RotatedNames:
    """Recognises the rotated siblings of one live file (see the module docstring)."""

    def __init__(self, live_name: str, rotated: str) -> None:
        self.rotated = rotated
        self._formats: dict[str, str] = {}  # group name -> strftime form
        stamps = []
        if rotated == AUTO:
            suffixes: tuple[str, ...] = AUTO_SUFFIXES
        elif rotated == NUMBERED:
            suffixes = ()
        else:
            suffixes = (rotated,)
        for index, suffix in enumerate(suffixes):
            group = f"d{index}"
            self._formats[group] = suffix
            stamps.append(f"(?P<{group}>{datefmt_pattern(suffix)})")
        if rotated == AUTO:
            stamps.append(rf"(?P<{_EPOCH}>[0-9]{{8}}-[0-9]{{9,11}})")
        if rotated in (AUTO, NUMBERED):
            stamps.append(rf"(?P<{_NUMBER}>[1-9][0-9]{{0,5}})")
        stamp = "(?:" + "|".join(stamps) + ")"
        stem, dot, ext = live_name.rpartition(".")
        forms = [re.escape(live_name) + _SEPARATOR + stamp]
        if dot and stem:
            forms.append(re.escape(stem) + _SEPARATOR + stamp + re.escape(dot + ext))
        gz = re.escape(COMPRESSED)
        self._patterns = [re.compile(f"{form}(?P<gz>{gz})?") for form in forms]
        # Names already read: a folder's names are looked at again on every full scan.
        self._known: dict[str, Sibling | None] = {}

    def match(self, name: str) -> Sibling | None:
        """The sibling ``name`` names, or None when it is no rotated file of this source."""
        if name in self._known:
            return self._known[name]
        sibling = None
        for pattern in self._patterns:
            found = pattern.fullmatch(name)
            if found is not None:
                sibling = Sibling(self._stamp(found), found["gz"] is not None)
                break
        self._known[name] = sibling
        return sibling

    def forget_except(self, names: set[str]) -> None:
        """Drop what is remembered of names no longer in the folder."""
        if len(self._known) > len(names):
            self._known = {n: s for n, s in self._known.items() if n in names}

    def _stamp(self, found: re.Match[str]) -> float:
        groups = found.groupdict()
        number = groups.get(_NUMBER)
        if number is not None:
            return -float(number)  # app.log.1 is the newest rotated file
        epoch = groups.get(_EPOCH)
        if epoch is not None:
            return float(epoch.partition("-")[2])
        for group, suffix in self._formats.items():
            text = groups[group]
            if text is not None:
                try:
                    return time.mktime(time.strptime(text, suffix))
                except (ValueError, OverflowError):
                    return 0.0  # digits that name no time: oldest, then by mtime
        return 0.0
