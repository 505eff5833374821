"""A format's fields given as the renderer's row struct (how the reader parses) make the
same events, byte for byte, as the same fields given as dicts: the same keys in the
same order, the same values, masking, key rules, tracebacks and unreadable times.

Each file is written through a real ``logging`` formatter and read by a real
:class:`Follower` twice: as it reads (rows), and with rows turned off (dicts).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import msgspec
import pytest

from shipper.config import DEFAULT_MASK_KEYS, SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker
from shipper.render import Renderer
from tests.support.events import Seen, seen
from tests.support.logging_output import write_logs

FORMATS = {
    "app": "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s",
    "basic": logging.BASIC_FORMAT,  # no time: the read time
    "msecs": "%(asctime)s.%(msecs)03d %(levelname)-8s [%(process)d] %(name)s: %(message)s",
    "created": "%(created)f %(levelname)s %(funcName)s %(message)s",
    "no level": "%(asctime)s %(threadName)s %(message)s",
}
DATEFMT = {"msecs": "%Y-%m-%d %H:%M:%S"}


def _calls(log: logging.Logger) -> None:
    log.info("signup of jane.doe@example.com from 10.1.2.3")
    log.warning(json.dumps({"client": {"email": "kim.7@example.org"}, "code": 7}))
    log.info(json.dumps({"note": "caf\u00e9 \u2603", "who": "a@b.example"}))  # escapes
    log.info(json.dumps({"user": "lee", "password": "hunter2"}))  # a key rule's key
    log.info("retry with token=abc123secret for lee@example.net")
    log.error("{not json at all")
    try:
        raise LookupError("no account for jane.doe@example.com")
    except LookupError:
        log.exception("lookup failed")
    log.info("after the traceback")


def _not_ascii(log: logging.Logger) -> None:
    log.info("한국어 메시지 park@example.kr")


def _write(path: Path, fmt: str, datefmt: str | None) -> None:
    """Read steps of ASCII text (parsed in one pass, one-line records as tuples), then
    one with a line that is not (parsed line by line, records as objects), then more."""
    formatter = logging.Formatter(fmt, datefmt)
    text = write_logs(formatter, _calls).text
    if fmt.startswith("[%(levelname)s] %(asctime)s"):
        # A time the format's pattern matches but no calendar has.
        text += "[INFO] 2024-13-45 25:61:61,000 app.py:9 an unreadable time\n"
    other = write_logs(formatter, _not_ascii).text
    path.write_text(text * 80 + other + text * 80)


def _events(path: Path, fmt: str, datefmt: str | None, masker: Masker, rows: bool) -> list[Seen]:
    source = SourceConfig(category="app", path=path, format=fmt, datefmt=datefmt, timezone="UTC")
    renderer = Renderer("app", "json", masker, json_lines=False)
    follower = Follower(source, None, renderer, time.time())
    if not rows:
        follower.rows = None
    (cursor,) = follower.scan()
    steps = []
    while (more := follower.read(cursor, 1_700_000_000_000)) is not None:
        steps.append(more)
    steps.append(follower.flush_quiet(cursor, 0.0))
    follower.close()
    return seen(steps)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("keys", [(), DEFAULT_MASK_KEYS], ids=["no key rules", "key rules"])
def test_rows_make_the_events_dicts_make(tmp_path: Path, name: str, keys: tuple[str, ...]) -> None:
    fmt, datefmt = FORMATS[name], DATEFMT.get(name)
    path = tmp_path / "app.log"
    _write(path, fmt, datefmt)
    masker = Masker(keys=keys)
    with_rows = _events(path, fmt, datefmt, masker, rows=True)
    with_dicts = _events(path, fmt, datefmt, masker, rows=False)
    assert len(with_rows) >= 160 * 8
    assert with_rows == with_dicts  # times, messages, sizes and offsets
    # The events are what a reader of CloudWatch expects, not merely alike.
    first = msgspec.json.decode(with_rows[0][1])
    assert list(first)[-1] == "category"
    assert first["category"] == "app"
    assert "message" in first
    assert "asctime" not in first
    assert all("jane.doe@example.com" not in message for _, message, _, _ in with_rows)
    if keys:  # in JSON output key rules apply to structure: the JSON message's password
        assert all("hunter2" not in message for _, message, _, _ in with_rows)


def test_the_reader_uses_rows_for_a_format_it_can_lay_out(tmp_path: Path) -> None:
    """Not a vacuous comparison: the follower really reads with rows."""
    path = tmp_path / "app.log"
    source = SourceConfig(category="app", path=path, format=FORMATS["app"])
    renderer = Renderer("app", "json", Masker(), json_lines=False)
    assert Follower(source, None, renderer, time.time()).rows is not None


@pytest.mark.parametrize(
    ("fmt", "output"),
    [
        ("%(asctime)s %(level)s %(message)s", "json"),  # a field named like the renderer's
        ("%(asctime)s %(category)s %(message)s", "json"),
        ("uvicorn_access", "json"),  # no message field
        (FORMATS["app"], "raw"),
    ],
)
def test_no_rows_where_a_dict_lays_the_event_out_differently(fmt: str, output: str) -> None:
    renderer = Renderer("app", output, Masker(), json_lines=False)  # type: ignore[arg-type]
    source = SourceConfig(category="app", path=Path("/logs/app.log"), format=fmt)
    assert Follower(source, None, renderer, time.time()).rows is None
