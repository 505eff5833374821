"""The shipper's own logs: structlog, one JSON object per line on stdout.

Each line is masked with the same rules as the shipped events (detectors and key
rules) before it is written, so an address or a password that reaches an error
message does not leak through our own logs (:func:`mask` does the same for the
messages the command line prints, the /readyz reasons and the /metrics labels).
The standard library's loggers (botocore, aiohttp, asyncio) are routed through the
same masked lines, as ``library.log`` events at warning and above, instead of
writing plain-text tracebacks to stderr.
When stdout is a terminal (someone is watching, not a log collector) the lines are
rendered for people instead: aligned, coloured, still masked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import msgspec
import structlog

from shipper.config import DEFAULT_MASK_KEYS
from shipper.mask import Masker

# Until the configuration is read: e-mail and the default key rules.
_DEFAULT_MASKER = Masker("partial", keys=DEFAULT_MASK_KEYS)
_masker = _DEFAULT_MASKER
_stream: TextIO | None = None


def set_masker(masker: Masker) -> None:
    """Use the configured masking rules for our own logs too."""
    global _masker
    _masker = masker if masker.enabled else _DEFAULT_MASKER


def mask(text: str) -> str:
    """``text`` masked by the rules our own logs use (for messages printed directly)."""
    return _masker.mask(text)


def _render_masked_json(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    text = msgspec.json.encode(event_dict, enc_hook=str).decode()
    return _masker.mask(text)


class _MaskedConsole:
    """structlog's console renderer, fed masked values (masking the rendered line
    would take the colour codes around a value for part of an address)."""

    def __init__(self) -> None:
        self.render = structlog.dev.ConsoleRenderer(colors=True, timestamp_key="ts")

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        masked = {key: _mask_value(value) for key, value in event_dict.items()}
        return str(self.render(logger, method, masked))


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return _masker.mask(value)
    if isinstance(value, (list, tuple)):
        return [_mask_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _mask_value(item) for key, item in value.items()}
    return value


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


class _LibraryHandler(logging.Handler):
    """Writes the standard library loggers' records as our own masked lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                fields["exception"] = logging.Formatter().formatException(record.exc_info)
            level = "error" if record.levelno >= logging.ERROR else "warning"
            get().log(logging.getLevelNamesMapping()[level.upper()], "library.log", **fields)
        except Exception:
            self.handleError(record)


def _route_library_logs(level: str) -> None:
    """Send the standard library loggers' records at ``level`` (warning at least)
    through structlog; the one handler replaces any an earlier call added."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LibraryHandler)]:
        root.removeHandler(handler)
    handler = _LibraryHandler(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))
    root.addHandler(handler)
    if root.level > handler.level or root.level == logging.NOTSET:
        root.setLevel(handler.level)


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog to ``stream`` (stdout) at ``level``: masked JSON lines, or
    console lines for people when the stream is a terminal; the standard library's
    loggers go the same way."""
    global _stream
    _stream = stream or sys.stdout
    _route_library_logs(level)
    renderer: Any = _MaskedConsole() if _is_terminal(_stream) else _render_masked_json
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(_stream),
        cache_logger_on_first_use=False,
    )


def set_level(level: str) -> None:
    """Change the level, keeping the stream chosen by :func:`configure`."""
    configure(level, _stream)


def get() -> Any:
    return structlog.get_logger("shipper")
