"""Parsing lines into fields: Python logging format strings and JSON lines.

A logging format string (``%``-, ``{``- or ``$``-style) such as
``[%(levelname)s] %(asctime)s %(message)s`` is compiled once into an anchored regular
expression with one named group per placeholder.  A line that does not match is not
the start of a record; whether it continues the record before it or stands alone is
:mod:`shipper.multiline`'s rule, which asks :meth:`FormatParser.looks_like_start`
whether the line looks like a record's first line all the same (the format read with
any time-like text for its time), which is what a format that does not fit the file
gives (a ``datefmt`` without the msecs written, say).

Compiling rejects, with a :class:`FormatError` naming the problem, what could not be
read back unambiguously: two placeholders with no literal text between them, a
format without ``message``, a ``datefmt`` directive ``strptime`` cannot read, or a
``datefmt`` without a date.  A free-text field ends at the first occurrence of the
literal text after it; ``message`` takes the rest.

Field types: numbers written with a numeric conversion (``%(lineno)d``,
``{relativeCreated:.3f}``) and the numeric ``LogRecord`` attributes (``lineno``,
``process``, ``created``, …) become numbers whatever their conversion; a message
that is a JSON object becomes that object.

Times are read with the source's ``datefmt`` (logging's default asctime,
``2020-10-01 16:27:53,065``, when there is none) and its IANA timezone.  A written
offset (``%z``) wins; otherwise the time is local to the source's timezone:

- in the hour repeated when DST ends, a time is read as its first occurrence, unless
  that would put it more than a minute before the previous time of the same file —
  then the clocks went back and it is the second occurrence.  A written zone name
  (``%Z``, e.g. ``EDT``/``EST``) settles it instead.
- a time in the hour skipped when DST starts (which a correct clock never writes) is
  read with the offset in force before the gap: ``02:30`` on a spring-forward night
  in New York is read as ``03:30`` EDT.
"""

from __future__ import annotations

import re
import string
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from operator import itemgetter
from typing import Any

import msgspec

# logging's default asctime: "%Y-%m-%d %H:%M:%S" then ",%03d" milliseconds.
DEFAULT_DATEFMT = "%Y-%m-%d %H:%M:%S"

# A parsed first line: its fields (a dict, or a format parser's row struct) and, when
# written and readable, its epoch-ms time.
Parsed = tuple[dict[str, Any] | msgspec.Struct, int | None]
Converter = Callable[[str], Any]

_PERCENT_PLACEHOLDER = re.compile(
    r"%\((?P<name>[^)]*)\)(?P<flags>[#0+ -]*)(?P<width>\d+)?(?:\.(?P<precision>\d+))?"
    r"(?P<kind>[diouxXeEfFgGcrsa%])"
    r"|%%"
)
_FORMAT_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?z?#?(?P<zero>0)?(?P<width>\d+)?"
    r"[_,]?(?:\.\d+)?(?P<kind>[bcdeEfFgGnosxX%])?"
)

# Digits are matched as [0-9], not \d: logging writes ASCII digits, and a set is one
# lookup per character where \d consults Unicode's tables.
_INT = r"-?[0-9]+"
_FLOAT = r"-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|-?inf|nan"
_ID = r"[0-9]+|None"  # process/thread ids are None when logging does not collect them

# LogRecord attributes: what their value looks like when written with ``s``.
_ATTRIBUTES: dict[str, tuple[str, Converter | None]] = {
    "args": (r".*?", None),
    "created": (_FLOAT, float),
    "exc_info": (r".*?", None),
    "exc_text": (r".*?", None),
    "filename": (r"\S+?", None),
    "funcName": (r"\S+?", None),
    "levelname": (r"[A-Z][A-Z0-9_]*|Level [0-9]+", None),
    "levelno": (_INT, int),
    "lineno": (_INT, int),
    "message": (r".*", None),
    "module": (r"\S+?", None),
    "msecs": (_FLOAT, float),
    "msg": (r".*?", None),
    "name": (r"\S+?", None),
    "pathname": (r".+?", None),
    "process": (_ID, int),
    "processName": (r".+?", None),
    "relativeCreated": (_FLOAT, float),
    "stack_info": (r".*?", None),
    "taskName": (r".+?", None),
    "thread": (_ID, int),
    "threadName": (r".+?", None),
}
# Numeric conversions: the pattern of what they write and how to read it back.
_NUMBERS: dict[str, tuple[str, Converter]] = {
    "d": (_INT, int),
    "i": (_INT, int),
    "u": (_INT, int),
    "n": (_INT, int),
    "f": (_FLOAT, float),
    "F": (r"-?[0-9]+(?:\.[0-9]*)?|-?INF|NAN", float),
    "e": (r"-?[0-9]+(?:\.[0-9]*)?e[-+][0-9]+|-?inf|nan", float),
    "E": (r"-?[0-9]+(?:\.[0-9]*)?E[-+][0-9]+|-?INF|NAN", float),
    "g": (_FLOAT, float),
    "G": (r"-?[0-9]+(?:\.[0-9]*)?(?:E[-+][0-9]+)?|-?INF|NAN", float),
    "%": (r"-?[0-9]+(?:\.[0-9]*)?%", lambda s: float(s[:-1]) / 100),
    "x": (r"-?[0-9a-f]+", lambda s: int(s, 16)),
    "X": (r"-?[0-9A-F]+", lambda s: int(s, 16)),
    "o": (r"-?[0-7]+", lambda s: int(s, 8)),
    "b": (r"-?[01]+", lambda s: int(s, 2)),
}

# strftime directives that strptime reads back, as patterns (C locale).
_DATE_DIRECTIVES = {
    "Y": r"[0-9]{4}", "y": r"[0-9]{2}", "m": r"[0-9]{2}", "d": r"[0-9]{2}", "H": r"[0-9]{2}",
    "I": r"[0-9]{2}", "M": r"[0-9]{2}", "S": r"[0-9]{2}", "f": r"[0-9]{6}", "j": r"[0-9]{3}",
    "p": r"(?:AM|PM|am|pm)", "b": r"[A-Za-z]{3}", "B": r"[A-Za-z]+",
    "a": r"[A-Za-z]{3}", "A": r"[A-Za-z]+", "z": r"(?:[-+][0-9]{2}:?[0-9]{2}(?::?[0-9]{2})?|Z)",
    "Z": r"[A-Za-z][A-Za-z0-9+-]{1,5}", "%": "%",
}  # fmt: skip
_DATE_NEEDS = "a date: %Y or %y, with %m/%b/%B and %d, or %j"


# The fields that hold a record's time, and what a time looks like when its exact form
# is not known: up to a few words around digits joined by - / : or . (10:00:00,123,
# 2024-01-01T10:00:00Z, 05/Dec/2024:10:00:00 +0000, Dec  5 10:00:00).
_TIME_FIELDS = frozenset({"asctime", "created"})
_LOOSE_TIME = r"[^\n]{0,16}?[0-9]{1,4}[-/:.][0-9]{1,2}[^\n]{0,24}?"


class FormatError(ValueError):
    """A format or datefmt the compiler cannot turn into an unambiguous parser."""


def datefmt_pattern(datefmt: str, zone_group: bool = False) -> str:
    """A regular expression matching what ``time.strftime(datefmt)`` writes.

    With ``zone_group`` the ``%Z`` zone name is captured as group ``zone``.
    """
    parts = []
    index = 0
    while index < len(datefmt):
        char = datefmt[index]
        if char == "%":
            directive = datefmt[index + 1 : index + 2]
            if directive not in _DATE_DIRECTIVES:
                raise FormatError(
                    f"datefmt directive %{directive} cannot be read back; "
                    f"use some of %{' %'.join(_DATE_DIRECTIVES)}"
                )
            pattern = _DATE_DIRECTIVES[directive]
            if directive == "Z" and zone_group:
                pattern = f"(?P<zone>{pattern})"
            parts.append(pattern)
            index += 2
        else:
            parts.append(re.escape(char))
            index += 1
    return "".join(parts)


def check_datefmt(datefmt: str) -> None:
    """Raise FormatError unless ``datefmt`` can be read back to one instant."""
    datefmt_pattern(datefmt)
    has = set(re.findall(r"%(.)", datefmt.replace("%%", "")))
    year = has & {"Y", "y"}
    day = ({"m", "b", "B"} & has and "d" in has) or "j" in has
    if not (year and day):
        raise FormatError(f"datefmt {datefmt!r} has no date; expected {_DATE_NEEDS}")


# Distinct written times a reader remembers.  A file's times go forward (give or take
# the workers of one app writing a moment apart), so a handful of recent seconds is
# all that is ever read again; a large cache only held every second of a long backlog
# (3,000 of them were ~0.7 MiB of resident memory a source, and it kept up to 4,096)
# and, for times written to the millisecond, entries never read again at all.  Every
# followed file has its own reader, rotated files read to their end included, so what
# one remembers is paid once per rotated file: 256 seconds were ~25 KiB each, and a
# shipper's memory crept with every midnight.
TIME_CACHE_ENTRIES = 16


class TimeReader:
    """Turns written times into epoch milliseconds, caching by distinct second.

    One reader serves one file: it remembers the last time it read, to tell the two
    occurrences of a repeated hour apart (see the module's docstring).
    """

    # How far back a time may go before a repeated hour is taken as its second pass.
    FOLD_SLACK_MS = 60_000

    def __init__(self, datefmt: str | None, timezone: str) -> None:
        self.datefmt = datefmt or DEFAULT_DATEFMT
        self.default_asctime = datefmt is None
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.last: int | None = None
        # text -> epoch ms, or (first, second) occurrence for a time in a repeated hour
        self._cache: dict[str, int | tuple[int, int]] = {}
        self._zone_name: re.Pattern[str] | None = None
        if "%Z" in self.datefmt:
            self._zone_name = re.compile(datefmt_pattern(self.datefmt, zone_group=True))

    def read(self, text: str) -> int:
        """Epoch milliseconds of ``text``; ValueError when it cannot be read."""
        millis = 0
        if self.default_asctime:
            # "2020-10-01 16:27:53,065": the seconds part is cached, msecs added.
            text, _, msecs = text.partition(",")
            millis = int(msecs) if msecs else 0
        cached = self._cache.get(text)
        if cached is None:
            cached = self._convert(text)
            self._remember(text, cached)
        if type(cached) is int:
            value = cached + millis
        else:
            first, second = cached  # type: ignore[misc]
            value = first + millis
            if self.last is not None and self.last > value + self.FOLD_SLACK_MS:
                value = second + millis
        self.last = value
        return value

    def _convert(self, text: str) -> int | tuple[int, int]:
        zone_name = None
        datefmt = self.datefmt
        if self._zone_name is not None:
            match = self._zone_name.fullmatch(text)
            if match is None:
                raise ValueError(f"{text!r} does not match {datefmt!r}")
            zone_name = match.group("zone")
            start, end = match.span("zone")
            text = text[:start] + text[end:]
            datefmt = datefmt.replace("%Z", "", 1)
        parsed = datetime.strptime(text, datefmt)
        if parsed.tzinfo is not None:
            return round(parsed.timestamp() * 1000)
        first = parsed.replace(tzinfo=self.zone)
        second = first.replace(fold=1)
        first_ms = round(first.timestamp() * 1000)
        second_ms = round(second.timestamp() * 1000)
        if second_ms <= first_ms:
            return first_ms  # an ordinary time, or one in a gap (offset before it)
        if zone_name is not None and zone_name == second.tzname() != first.tzname():
            return second_ms
        if zone_name is not None and zone_name == first.tzname():
            return first_ms
        return (first_ms, second_ms)

    def read_value(self, value: Any) -> int:
        """Epoch ms of a JSON time: a string (``datefmt``, else ISO 8601) or epoch number."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Seconds, unless the figure is too large to be seconds (ms, µs, ns).
            magnitude = abs(value)
            if magnitude > 1e17:
                return round(value / 1e6)
            if magnitude > 1e14:
                return round(value / 1e3)
            return round(value if magnitude > 1e11 else value * 1000)
        if not isinstance(value, str):
            raise ValueError(f"not a time: {value!r}")
        if not self.default_asctime:
            return self.read(value)
        cached = self._cache.get(value)
        if cached is None:
            text = value.replace(",", ".", 1) if "," in value else value
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.zone)
            cached = round(parsed.timestamp() * 1000)
            self._remember(value, cached)
        return cached  # type: ignore[return-value]

    def _remember(self, text: str, value: int | tuple[int, int]) -> None:
        if len(self._cache) >= TIME_CACHE_ENTRIES:
            self._cache.clear()  # the times read next are the ones after these
        self._cache[text] = value


# --------------------------------------------------------------------------- formats


class _Field:
    """One placeholder of a format: its name, the pattern of its value, its padding."""

    __slots__ = ("after", "before", "capture", "convert", "name", "pattern")

    def __init__(self, name: str, pattern: str, convert: Converter | None) -> None:
        self.name = name
        self.pattern = pattern
        self.convert = convert
        self.capture = name.isidentifier()
        self.before = ""  # padding written before the value (right-justified)
        self.after = ""  # padding written after it (left-justified)

    def pad(self, align: str, fill: str = " ") -> None:
        padding = f"(?:{re.escape(fill)})*"
        if align in "<^":
            self.after = padding
        if align in ">=^":
            self.before = padding


Token = str | _Field  # a literal text, or a placeholder


def _attribute_field(name: str, kind: str | None) -> _Field:
    """A placeholder for ``name`` written with conversion ``kind`` (None: plain str)."""
    if kind in _NUMBERS:
        pattern, convert = _NUMBERS[kind]
        return _Field(name, pattern, convert)
    if kind in ("r", "a"):
        return _Field(name, r".*?", None)
    if kind == "c":
        return _Field(name, r".", None)
    pattern, maybe_convert = _ATTRIBUTES.get(name, (r".*?", None))
    return _Field(name, pattern, maybe_convert)


def _percent_tokens(fmt: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in _PERCENT_PLACEHOLDER.finditer(fmt):
        tokens.append(fmt[position : match.start()])
        position = match.end()
        if match.group(0) == "%%":
            tokens.append("%")
            continue
        kind = match.group("kind")
        if kind == "%":
            raise FormatError(f"{match.group(0)!r} is not a valid placeholder")
        item = _attribute_field(match.group("name"), None if kind == "s" else kind)
        if match.group("width"):
            flags = match.group("flags")
            if "-" in flags:
                item.pad("<")
            else:
                item.pad(">", "0" if "0" in flags and kind in _NUMBERS else " ")
        tokens.append(item)
    tail = fmt[position:]
    if "%(" in tail:
        raise FormatError(f"cannot read the placeholder in {tail!r}")
    tokens.append(tail)
    return tokens


def _brace_tokens(fmt: str) -> list[Token]:
    tokens: list[Token] = []
    try:
        pieces = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise FormatError(f"not a valid {{-style format: {exc}") from None
    for literal, name, spec, conversion in pieces:
        tokens.append(literal)
        if name is None:
            continue
        if not name:
            raise FormatError("a {}-placeholder needs a LogRecord attribute name")
        if conversion not in (None, "r", "s", "a"):
            raise FormatError(f"{{{name}!{conversion}}} is not a valid conversion (!r, !s, !a)")
        found = _FORMAT_SPEC.fullmatch(spec or "")
        if found is None or "{" in (spec or ""):
            raise FormatError(f"cannot read back the format spec {spec!r} of {{{name}}}")
        kind = found.group("kind")
        if conversion in ("r", "a"):
            kind = conversion
        item = _attribute_field(name, None if kind in (None, "s") else kind)
        if found.group("width"):
            numeric = kind in _NUMBERS
            align = found.group("align") or (">" if numeric else "<")
            fill = found.group("fill") or ("0" if found.group("zero") and numeric else " ")
            item.pad(align, fill)
        tokens.append(item)
    return tokens


def _dollar_tokens(fmt: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in string.Template.pattern.finditer(fmt):
        tokens.append(fmt[position : match.start()])
        position = match.end()
        if match.group("escaped") is not None:
            tokens.append("$")
        elif match.group("invalid") is not None:
            raise FormatError(f"a lone $ at position {match.start()}; write $$ for a dollar")
        else:
            tokens.append(_attribute_field(match.group("named") or match.group("braced"), None))
    tokens.append(fmt[position:])
    return tokens


_TOKENIZERS = {"%": _percent_tokens, "{": _brace_tokens, "$": _dollar_tokens}


def _show(name: str, style: str) -> str:
    """A placeholder as the user wrote it, for error messages."""
    return {"%": f"%({name})s", "{": f"{{{name}}}", "$": f"${{{name}}}"}[style]


class FormatParser:
    """Matches lines written by one logging format string."""

    def __init__(
        self,
        fmt: str,
        datefmt: str | None,
        timezone: str,
        style: str = "%",
        types: dict[str, tuple[str, Converter | None]] | None = None,
        need_message: bool = True,
        fields: bool = True,
        rows: type[msgspec.Struct] | None = None,
    ) -> None:
        if style not in _TOKENIZERS:
            raise FormatError(f"style {style!r}: expected %, {{ or $")
        if datefmt is not None:
            check_datefmt(datefmt)
        self.fmt = fmt
        self.times = TimeReader(datefmt, timezone)
        tokens = _TOKENIZERS[style](fmt)
        if types:
            for item in tokens:
                if isinstance(item, _Field) and item.name in types:
                    item.pattern, item.convert = types[item.name]
        pattern, converters = self._compile(tokens, style)
        self._regex = re.compile(pattern)
        # What a record's first line looks like, whatever its time looks like (see
        # :meth:`looks_like_start`): the format with its time fields read loosely.
        loose = self._compile(tokens, style, loose_time=True)[0]
        self._start_shape = re.compile(loose)
        # The same pattern for a text of many lines: each match is a whole line that
        # starts a record (``finditer`` over a chunk finds them in one pass).
        self.line_regex = re.compile(f"^(?:{pattern})$", re.MULTILINE)
        # Whether such a match may run on across a line end: only through a newline in
        # the format's text or a value pattern that takes one (\s, \D, \W, a negated
        # set).  Read conservatively from the pattern; the LogRecord attributes' patterns
        # never take one, so for most formats a match is one line without looking.
        self.spans_lines = re.search(r"\n|\\[sDW]|\[\^", pattern) is not None
        # Every group is named, so match.groups() gives the values in this order.
        names = tuple(self._regex.groupindex)
        assert self._regex.groups == len(names)
        if need_message and "message" not in names:
            raise FormatError(f"the format has no {_show('message', style)}")
        self._names = names
        # Every key this parser may put in a record's fields.
        self.field_names = (*names, "time_unreadable")
        # The fields of a record whose time was read (its asctime became the time).
        self.record_names = tuple(name for name in names if name != "asctime")
        at = {name: index for index, name in enumerate(names)}
        self._time_at = at.get("asctime")
        self._created_at = at.get("created") if self._time_at is None else None
        has_msecs = self._time_at is not None and datefmt is not None
        self._msecs_at = at.get("msecs") if has_msecs else None
        # Raw output needs only where records start and their time: without fields,
        # parse() converts just the groups that make the time (no field dict, no
        # number conversions, no JSON decode of the message).
        self.fields = fields
        self._message_at = at.get("message") if fields else None
        times = {"asctime", "msecs", "created"}
        self._converters = [
            (at[name], convert) for name, convert in converters if fields or name in times
        ]
        # Raw output of a format whose time is just its asctime: the time is all there is.
        self._asctime_only = not fields and times.intersection(names) == {"asctime"}
        # A struct type to give the fields of a record as (see :meth:`parse_match`):
        # filled by position with the values of those of its fields this format has.
        self.rows = rows if fields else None
        if self.rows is not None:
            self._row_values = _picker(
                [at[name] for name in self.rows.__struct_fields__ if name in at]
            )

    def _compile(
        self, tokens: list[Token], style: str, loose_time: bool = False
    ) -> tuple[str, list[tuple[str, Converter]]]:
        """The format's pattern, and the conversion of each captured field that has one;
        ``loose_time``: with any time-like text where the time fields are."""
        parts = []
        converters: list[tuple[str, Converter]] = []
        seen: set[str] = set()
        previous: _Field | None = None
        for item in tokens:
            if isinstance(item, str):
                if item:
                    parts.append(re.escape(item))
                    previous = None
                continue
            if previous is not None:
                touching = f"{_show(previous.name, style)} and {_show(item.name, style)}"
                raise FormatError(
                    f"{touching} touch, so where one ends cannot be told; "
                    "put literal text (a space) between them"
                )
            previous = item
            pattern = item.pattern
            if item.name == "asctime":
                pattern = datefmt_pattern(self.times.datefmt)
                if self.times.default_asctime:
                    pattern += r",[0-9]{3}"
                item.convert = None
            if loose_time and item.name in _TIME_FIELDS:
                pattern = _LOOSE_TIME
            if not item.capture or item.name in seen:
                # A repeated or oddly named placeholder is matched but not captured.
                parts.append(f"{item.before}(?:{pattern}){item.after}")
                continue
            seen.add(item.name)
            if item.convert is not None:
                converters.append((item.name, item.convert))
            parts.append(f"{item.before}(?P<{item.name}>{pattern}){item.after}")
        if not seen and previous is None:
            raise FormatError("the format has no placeholders")
        return "".join(parts), converters

    def looks_like_start(self, line: str) -> bool:
        """Whether a line the format does not match still looks like a record's first
        line: it matches the format with its time fields read loosely (a time written
        with or without msecs, another date order, a zone).  Such a line means the
        format does not fit what the file holds; any other line may continue a message.
        """
        return self._start_shape.match(line) is not None

    def parse(self, line: str) -> Parsed | None:
        """The fields of a line that starts a record; None for a continuation line."""
        match = self._regex.fullmatch(line)
        if match is None:
            return None
        return self.parse_match(match)

    def parse_match(self, match: re.Match[str]) -> Parsed:
        """The fields of a line the format matched (by ``parse`` or ``line_regex``).

        With ``rows`` the fields of a record whose time was read are given as that struct
        (the renderer's event object, made without a dict for every line); otherwise,
        and for a time that could not be read, as a dict.
        """
        if self._asctime_only:
            try:
                return {}, self.times.read(match["asctime"])
            except ValueError:
                pass  # the general case below keeps what could not be read
        values: list[Any] = list(match.groups())
        for index, convert in self._converters:
            try:
                values[index] = convert(values[index])
            except ValueError:
                pass  # kept as written ("None", "-")
        timestamp = None
        readable = True
        if self._time_at is not None:
            try:
                timestamp = self.times.read(values[self._time_at])
            except ValueError:
                readable = False
            else:
                if self._msecs_at is not None:
                    msecs = values[self._msecs_at]
                    if isinstance(msecs, (int, float)):
                        timestamp += int(msecs)
        elif self._created_at is not None:
            created = values[self._created_at]
            if isinstance(created, float):
                timestamp = round(created * 1000)
        at = self._message_at
        if at is not None:
            message = values[at]
            if message and message[0] == "{":
                try:
                    values[at] = json_object(message)
                except msgspec.DecodeError:
                    pass
        if self.rows is not None and readable:
            return self.rows(*self._row_values(values)), timestamp
        fields = dict(zip(self._names, values, strict=True)) if self.fields else {}
        if self._time_at is not None:
            asctime = values[self._time_at]
            fields.pop("asctime", None)
            if not readable:
                fields["asctime"] = asctime  # kept, so nothing written is lost
                fields["time_unreadable"] = True
        return fields, timestamp


def _picker(indexes: list[int]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """``values -> tuple(values[i] for i in indexes)`` (by ``itemgetter``, in C, for more
    than one index)."""
    if len(indexes) == 1:
        index = indexes[0]
        return lambda values: (values[index],)
    return itemgetter(*indexes)


_as_written = msgspec.json.Decoder(msgspec.Raw).decode


def json_object(text: str) -> Any:
    """The JSON object ``text`` (which starts with ``{``), for an event to carry.

    Written without escapes, it is checked and kept as written (a :class:`msgspec.Raw`
    the encoder copies): rebuilding it as Python objects costs more than anything else
    done to a record.  With escapes it is decoded, so that masking sees the characters
    they stand for (``\\u0040`` is an ``@``).  Raises ``msgspec.DecodeError`` when
    ``text`` is not one JSON value.
    """
    if "\\" in text:
        return msgspec.json.decode(text)
    return _as_written(text)


# --------------------------------------------------------------------------- presets

_STATUS: tuple[str, Converter | None] = (r"[0-9]{3}", int)
_SECONDS: tuple[str, Converter | None] = (r"[0-9]+(?:\.[0-9]+)?", float)
_BYTES: tuple[str, Converter | None] = (r"[0-9]+|-", int)


class Preset:
    """A known line format: its format string and the types of its own fields."""

    def __init__(
        self, fmt: str, datefmt: str | None, types: dict[str, tuple[str, Converter | None]]
    ) -> None:
        self.fmt = fmt
        self.datefmt = datefmt
        self.types = types


PRESETS = {
    # An access log line with request id and duration, as apps configure uvicorn's or
    # gunicorn's access logger to write it.
    "uvicorn_access": Preset(
        "[%(asctime)s] %(request_id)s %(status_code)s %(request_time)ss %(client_addr)s"
        ' - "%(request_line)s"',
        None,
        {
            "request_id": (r"\S+", None),
            "status_code": _STATUS,
            "request_time": _SECONDS,
            "client_addr": (r"\S+", None),
            "request_line": (r".*", None),
        },
    ),
    # uvicorn's default access line (colours off): "INFO:     1.2.3.4:5 - "GET / HTTP/1.1" 200"
    "uvicorn": Preset(
        '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        None,
        {
            "levelprefix": (r"[A-Z]+:\s*", str.strip),
            "client_addr": (r"\S+", None),
            "request_line": (r".*", None),
            "status_code": (r"[0-9]{3}(?: .*)?", lambda s: int(s[:3])),
        },
    ),
    # gunicorn's default access_log_format:
    # '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    "gunicorn_access": Preset(
        '%(client_addr)s %(ident)s %(user)s [%(asctime)s] "%(request_line)s" '
        '%(status_code)s %(response_bytes)s "%(referer)s" "%(user_agent)s"',
        "%d/%b/%Y:%H:%M:%S %z",
        {
            "client_addr": (r"\S+", None),
            "ident": (r"\S+", None),
            "user": (r"\S+", None),
            "request_line": (r".*?", None),
            "status_code": _STATUS,
            "response_bytes": _BYTES,
            "referer": (r".*?", None),
            "user_agent": (r".*", None),
        },
    ),
}


# --------------------------------------------------------------------------- JSON lines

# Keys JSON loggers write the time under, in the order they are looked for.
JSON_TIME_KEYS = ("timestamp", "time", "@timestamp", "ts", "asctime", "created")


class JsonParser:
    """Matches JSON-object lines (python-json-logger, structlog's JSONRenderer)."""

    def __init__(
        self, timezone: str, time_key: str | None = None, datefmt: str | None = None
    ) -> None:
        self.times = TimeReader(datefmt, timezone)
        self.time_keys = (time_key,) if time_key else JSON_TIME_KEYS
        # Keys of its own in a record's fields (the rest are the line's).
        self.field_names = ("time_unreadable",)

    def looks_like_start(self, line: str) -> bool:
        """Any line: a JSON record is one line, so no other line continues its message."""
        return True

    def parse(self, line: str) -> Parsed | None:
        if not line.startswith("{"):
            return None
        try:
            fields = msgspec.json.decode(line)
        except msgspec.DecodeError:
            return None
        if not isinstance(fields, dict):
            return None
        for key in self.time_keys:
            if key in fields:
                try:
                    return fields, self.times.read_value(fields[key])
                except (ValueError, OverflowError):
                    fields["time_unreadable"] = True
                    break
        return fields, None


Parser = FormatParser | JsonParser


def build_parser(
    fmt: str,
    datefmt: str | None,
    timezone: str,
    style: str = "%",
    time_key: str | None = None,
    fields: bool = True,
    rows: type[msgspec.Struct] | None = None,
) -> Parser:
    """The parser for a source's ``format``: ``json``, a preset name, or a format string.

    ``fields=False`` (raw output) asks only where records start and their time;
    ``rows`` is the struct a format parser gives fields as (see ``parse_match``).
    """
    if fmt == "json":
        return JsonParser(timezone, time_key, datefmt)
    preset = PRESETS.get(fmt)
    if preset is not None:
        return FormatParser(
            preset.fmt, datefmt or preset.datefmt, timezone, "%", preset.types, False, fields, rows
        )
    return FormatParser(fmt, datefmt, timezone, style, fields=fields, rows=rows)
