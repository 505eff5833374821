"""The shipper's own logs: structlog, one JSON object per line on stdout.

Each line is masked with the same rules as the shipped events before it is written,
so an address that reaches an error message does not leak through our own logs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import msgspec
import structlog

from shipper.mask import Masker

_masker = Masker("partial")


def set_masker(masker: Masker) -> None:
    """Use the configured masking rules for our own logs too."""
    global _masker
    _masker = masker if masker.enabled else Masker("partial")


def _render_masked_json(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    text = msgspec.json.encode(event_dict, enc_hook=str).decode()
    return _masker.mask(text)


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog to ``stream`` (stdout) as masked JSON lines at ``level``."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            _render_masked_json,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get() -> Any:
    return structlog.get_logger("shipper")
