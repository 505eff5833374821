"""Parsing lines into fields: Python logging format strings and JSON lines.

A logging format string such as ``[%(levelname)s] %(asctime)s %(message)s`` is
compiled once into an anchored regular expression with one named group per
placeholder; a line that does not match is not the start of a record (it continues
the record before it, as traceback lines do).

Times are read with the source's ``datefmt`` (logging's default asctime,
``2020-10-01 16:27:53,065``, when there is none) and its IANA timezone.  Times
written without an offset are local: an ambiguous time (the repeated hour when DST
ends) is read as its first occurrence, and a time in the gap when DST starts is read
with the offset in force before the gap, as :mod:`zoneinfo` does with ``fold=0``.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

# logging's default asctime: "%Y-%m-%d %H:%M:%S" then ",%03d" milliseconds.
DEFAULT_DATEFMT = "%Y-%m-%d %H:%M:%S"

_PLACEHOLDER = re.compile(
    r"%\((?P<name>[^)]+)\)(?P<flags>[#0+ -]*)(?P<width>\d+)?(?:\.(?P<precision>\d+))?"
    r"(?P<kind>[diouxXeEfFgGcrsa])"
    r"|%%"
)

# Patterns for LogRecord attributes whose shape is known; other names take any text.
_ATTRIBUTE_PATTERNS = {
    "levelname": r"[A-Za-z]+(?: \d+)?",
    "name": r"\S+?",
    "filename": r"\S+?",
    "module": r"\S+?",
    "funcName": r"\S+?",
    "pathname": r".+?",
    "message": r".*",
}
_NUMBER_PATTERNS = {
    "d": r"-?\d+",
    "i": r"-?\d+",
    "u": r"-?\d+",
    "f": r"-?\d+(?:\.\d*)?|-?inf|nan",
    "F": r"-?\d+(?:\.\d*)?|-?INF|NAN",
    "e": r"-?\d+(?:\.\d*)?e[+-]\d+",
    "E": r"-?\d+(?:\.\d*)?E[+-]\d+",
    "g": r"-?[\d.]+(?:e[+-]\d+)?|-?inf|nan",
    "G": r"-?[\d.]+(?:E[+-]\d+)?|-?INF|NAN",
    "x": r"-?[0-9a-f]+",
    "X": r"-?[0-9A-F]+",
    "o": r"-?[0-7]+",
}
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "d": int, "i": int, "u": int,
    "f": float, "F": float, "e": float, "E": float, "g": float, "G": float,
    "x": lambda s: int(s, 16), "X": lambda s: int(s, 16), "o": lambda s: int(s, 8),
}  # fmt: skip

# strftime directives that time.strptime reads back, as patterns.
_DATE_DIRECTIVES = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}",
    "I": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}", "f": r"\d{6}", "j": r"\d{3}",
    "p": r"(?:AM|PM|am|pm)", "b": r"[A-Za-z]{3}", "B": r"[A-Za-z]+",
    "a": r"[A-Za-z]{3}", "A": r"[A-Za-z]+", "z": r"(?:[+-]\d{2}:?\d{2}|Z)",
    "Z": r"[A-Za-z][A-Za-z0-9+-]{1,5}", "%": "%",
}  # fmt: skip


class FormatError(ValueError):
    """A format or datefmt the compiler cannot turn into a parser."""


def datefmt_pattern(datefmt: str) -> str:
    """A regular expression matching what ``time.strftime(datefmt)`` writes."""
    parts = []
    index = 0
    while index < len(datefmt):
        char = datefmt[index]
        if char == "%":
            directive = datefmt[index + 1 : index + 2]
            if directive not in _DATE_DIRECTIVES:
                raise FormatError(f"datefmt directive %{directive} cannot be read back")
            parts.append(_DATE_DIRECTIVES[directive])
            index += 2
        else:
            parts.append(re.escape(char))
            index += 1
    return "".join(parts)


class TimeReader:
    """Turns written times into epoch milliseconds, caching by distinct second."""

    def __init__(self, datefmt: str | None, timezone: str) -> None:
        self.datefmt = datefmt or DEFAULT_DATEFMT
        self.default_asctime = datefmt is None
        self.zone = zoneinfo.ZoneInfo(timezone)
        self._cache: dict[str, int] = {}

    def read(self, text: str) -> int:
        """Epoch milliseconds of ``text``; ValueError when it cannot be read."""
        millis = 0
        if self.default_asctime:
            # "2020-10-01 16:27:53,065": the seconds part is cached, msecs added.
            text, _, msecs = text.partition(",")
            millis = int(msecs) if msecs else 0
        cached = self._cache.get(text)
        if cached is None:
            parsed = datetime.strptime(text, self.datefmt)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.zone)
            cached = round(parsed.timestamp() * 1000)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[text] = cached
        return cached + millis

    def read_iso(self, value: Any) -> int:
        """Epoch milliseconds of an ISO 8601 string or an epoch number (JSON lines)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Seconds, unless the figure is too large to be seconds.
            return round(value if value > 1e11 else value * 1000)
        if not isinstance(value, str):
            raise ValueError(f"not a time: {value!r}")
        cached = self._cache.get(value)
        if cached is None:
            text = value.replace(",", ".", 1) if "," in value else value
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.zone)
            cached = round(parsed.timestamp() * 1000)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[value] = cached
        return cached


@dataclass(frozen=True)
class Parsed:
    """What a record's first line says: its fields and, when written, its time."""

    fields: dict[str, Any]
    timestamp: int | None


class FormatParser:
    """Matches lines written by one logging format string."""

    def __init__(self, fmt: str, datefmt: str | None, timezone: str) -> None:
        self.fmt = fmt
        self.times = TimeReader(datefmt, timezone)
        self._converters: dict[str, Callable[[str], Any]] = {}
        self._regex = re.compile(self._compile(fmt))
        if "message" not in self._regex.groupindex:
            raise FormatError("the format has no %(message)s")

    def _compile(self, fmt: str) -> str:
        parts = []
        position = 0
        seen: set[str] = set()
        for match in _PLACEHOLDER.finditer(fmt):
            parts.append(re.escape(fmt[position : match.start()]))
            position = match.end()
            if match.group(0) == "%%":
                parts.append("%")
                continue
            name, kind = match.group("name"), match.group("kind")
            if name == "asctime":
                pattern = datefmt_pattern(self.times.datefmt)
                if self.times.default_asctime:
                    pattern += r",\d{3}"
            elif kind in _NUMBER_PATTERNS:
                pattern = _NUMBER_PATTERNS[kind]
                self._converters[name] = _CONVERTERS[kind]
            else:
                pattern = _ATTRIBUTE_PATTERNS.get(name, r".*?")
            if name in seen or not name.isidentifier():
                # A repeated or oddly named placeholder is matched but not captured.
                parts.append(f"(?:{pattern})")
                continue
            seen.add(name)
            group = f"(?P<{name}>{pattern})"
            if match.group("width"):
                # Padding: spaces after a left-justified value, before a right-justified one.
                group = group + r"\s*" if "-" in match.group("flags") else r"\s*" + group
            parts.append(group)
        parts.append(re.escape(fmt[position:]))
        if position == 0 and not parts[0]:
            raise FormatError("the format has no placeholders")
        return "".join(parts)

    def parse(self, line: str) -> Parsed | None:
        """The fields of a line that starts a record; None for a continuation line."""
        match = self._regex.fullmatch(line)
        if match is None:
            return None
        fields: dict[str, Any] = match.groupdict()
        for name, convert in self._converters.items():
            value = fields.get(name)
            if value is not None:
                try:
                    fields[name] = convert(value)
                except ValueError:
                    pass
        timestamp = None
        asctime = fields.pop("asctime", None)
        if asctime is not None:
            try:
                timestamp = self.times.read(asctime)
            except ValueError:
                fields["asctime"] = asctime  # kept, so nothing written is lost
            else:
                msecs = fields.get("msecs")
                if not self.times.default_asctime and isinstance(msecs, (int, float)):
                    timestamp += int(msecs)
        message = fields.get("message")
        if message and message[0] == "{":
            try:
                fields["message"] = msgspec.json.decode(message)
            except msgspec.DecodeError:
                pass
        return Parsed(fields, timestamp)


# Keys JSON loggers write the time under, in the order they are looked for.
JSON_TIME_KEYS = ("timestamp", "time", "@timestamp", "ts", "asctime")


class JsonParser:
    """Matches JSON-object lines (python-json-logger, structlog's JSONRenderer)."""

    def __init__(self, timezone: str, time_keys: tuple[str, ...] = JSON_TIME_KEYS) -> None:
        self.times = TimeReader(None, timezone)
        self.time_keys = time_keys

    def parse(self, line: str) -> Parsed | None:
        if not line.startswith("{"):
            return None
        try:
            fields = msgspec.json.decode(line)
        except msgspec.DecodeError:
            return None
        if not isinstance(fields, dict):
            return None
        timestamp = None
        for key in self.time_keys:
            if key in fields:
                try:
                    timestamp = self.times.read_iso(fields[key])
                except (ValueError, OverflowError):
                    continue
                break
        return Parsed(fields, timestamp)


Parser = FormatParser | JsonParser


def build_parser(fmt: str, datefmt: str | None, timezone: str) -> Parser:
    """The parser for a source's ``format`` (``json`` or a logging format string)."""
    if fmt == "json":
        return JsonParser(timezone)
    return FormatParser(fmt, datefmt, timezone)
