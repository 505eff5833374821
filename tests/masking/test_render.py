"""Masking where it is applied: the rendered event (message, every field, tracebacks,
values under sensitive keys), the shipper's own logs and its error messages
(issue 5 §5, §7, §8; SPEC §3.4 and §3.6)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from shipper import logs, telemetry
from shipper.config import MaskingConfig, SourceConfig
from shipper.follow import Follower
from shipper.mask import Masker, masker_for
from shipper.multiline import Assembler
from shipper.parse import build_parser
from shipper.render import Renderer
from tests.support.logging_output import write_logs

ADDRESS = "jane.doe+billing@mail.example.co.kr"
APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"


class _Where:
    category = "app"
    path = "/logs/app/app.log"

    def delivered(self, offset: int) -> None:
        pass


def render(lines: list[str], fmt: str, masker: Masker, output: str = "json") -> list[str]:
    assembler = Assembler(build_parser(fmt, None, "UTC"), 1000)
    records = assembler.feed([(line, n) for n, line in enumerate(lines)], 0)
    last = assembler.flush()
    records += [last] if last else []
    renderer = Renderer("app", output, masker, json_lines=fmt == "json")  # type: ignore[arg-type]
    events = [renderer.event(r, _Where()) for r in records]
    return [e.message for e in events if e is not None]


def _fail_for(address: str) -> None:
    raise LookupError(f"no account for {address}")


class TestEveryPartOfTheEvent:
    def test_message_fields_and_traceback(self) -> None:
        """An address in the message, a custom field, a JSON message and a traceback."""
        fmt = "%(asctime)s [%(request_id)s] %(levelname)s %(message)s"

        def calls(log: logging.Logger) -> None:
            log.info("signup %s", ADDRESS, extra={"request_id": ADDRESS})
            log.info(json.dumps({"client": {"email": ADDRESS}}), extra={"request_id": "r2"})
            try:
                _fail_for(ADDRESS)
            except LookupError:
                log.exception("lookup", extra={"request_id": "r3"})

        written = write_logs(logging.Formatter(fmt), calls)
        assert written.text.count(ADDRESS) == 4
        messages = render(written.lines, fmt, Masker())
        assert len(messages) == 3
        for message in messages:
            assert ADDRESS not in message
            json.loads(message)
        first, second, third = (json.loads(m) for m in messages)
        assert first["request_id"] == "**ne.doe+billin*@mail.example.co.kr"
        assert second["message"]["client"]["email"].startswith("**ne.doe")
        assert "LookupError: no account for **ne.doe+billin*@" in third["exception"]

    def test_level_and_message_lead_then_the_format_order(self) -> None:
        """What a reader scans for comes first in the console: level, message, then the
        format's own fields as written, then the category."""
        fmt = "%(asctime)s %(name)s [%(levelname)s] %(lineno)d %(message)s"
        written = write_logs(logging.Formatter(fmt), lambda log: log.warning("disk at 91%%"))
        (message,) = render(written.lines, fmt, Masker())
        assert list(json.loads(message)) == ["level", "message", "name", "lineno", "category"]
        assert json.loads(message)["level"] == "WARNING"

    def test_json_message_as_written_or_decoded_when_escaped(self) -> None:
        """A JSON message is carried as the app wrote it (its spacing kept); one with
        escapes is decoded first, so an address spelled with ``\\u0040`` is masked."""
        payload = {"client": {"email": ADDRESS}, "n": 1}

        def calls(log: logging.Logger) -> None:
            log.info(json.dumps(payload))
            log.info(json.dumps(payload).replace("@", "\\u0040"))

        written = write_logs(logging.Formatter(APP_FORMAT), calls)
        plain, escaped = render(written.lines, APP_FORMAT, Masker())
        masked = {"client": {"email": "**ne.doe+billin*@mail.example.co.kr"}, "n": 1}
        assert json.loads(plain)["message"] == masked
        assert '"message":{"client": {"email": "**ne.doe+billin*@' in plain  # as written
        assert json.loads(escaped)["message"] == masked
        assert "u0040" not in escaped

    def test_raw_output_is_masked_too(self) -> None:
        written = write_logs(logging.Formatter(APP_FORMAT), lambda log: log.info(ADDRESS))
        (message,) = render(written.lines, APP_FORMAT, Masker(), output="raw")
        assert ADDRESS not in message
        assert message.endswith("**ne.doe+billin*@mail.example.co.kr")


class TestKeyRules:
    masker = masker_for(MaskingConfig(), env={})

    def test_json_lines_at_any_depth(self) -> None:
        """password/token/authorization/secret/cookie values are redacted wherever they are."""
        from pythonjsonlogger.json import JsonFormatter

        extra = {
            "user": "u1",
            "password": "hunter2",
            "request": {
                "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "*/*"},
                "cookies": [{"Set-Cookie": "sid=abc"}],
                "body": {"client_secret": {"nested": "s3cr3t"}, "accessToken": 12345},
            },
        }
        written = write_logs(JsonFormatter(), lambda log: log.info("login", extra=extra))
        (message,) = render(written.lines, "json", self.masker)
        event = json.loads(message)
        assert event["password"] == "<redacted>"
        headers = event["request"]["headers"]
        assert headers == {"Authorization": "<redacted>", "Accept": "*/*"}
        assert event["request"]["cookies"] == [{"Set-Cookie": "<redacted>"}]
        assert event["request"]["body"] == {
            "client_secret": "<redacted>",
            "accessToken": "<redacted>",
        }
        assert event["user"] == "u1"
        for secret in ("hunter2", "dXNlcjpwYXNz", "sid=abc", "s3cr3t", "12345"):
            assert secret not in message

    def test_format_fields_and_json_messages(self) -> None:
        """A format's own field named like a secret, and keys inside a JSON message."""
        fmt = "%(asctime)s [%(session_token)s] %(message)s"

        def calls(log: logging.Logger) -> None:
            body = {"url": "/login", "form": {"username": "jane", "password": "hunter2"}}
            log.info(json.dumps(body), extra={"session_token": "tok-123"})

        written = write_logs(logging.Formatter(fmt), calls)
        (message,) = render(written.lines, fmt, self.masker)
        event = json.loads(message)
        assert event["session_token"] == "<redacted>"
        assert event["message"]["form"] == {"username": "jane", "password": "<redacted>"}

    def test_raw_output_redacts_key_value_text(self) -> None:
        """Raw text: "key": value pairs (JSON stays valid) and key=value pairs."""
        from pythonjsonlogger.json import JsonFormatter

        written = write_logs(
            JsonFormatter(),
            lambda log: log.info("db password=hunter2 ok", extra={"api_key": 991, "n": 1}),
        )
        (message,) = render(written.lines, "json", self.masker, output="raw")
        event = json.loads(message)
        assert event["api_key"] == "<redacted>"
        assert event["message"] == "db password=<redacted> ok"
        assert event["n"] == 1

    def test_other_keys_are_kept(self) -> None:
        """Keys that merely contain a word (tokens_used, token_count) are not secrets."""
        line = json.dumps({"tokens_used": 10, "token_count": 3, "msg": "ok"})
        (message,) = render([line], "json", self.masker)
        assert json.loads(message)["tokens_used"] == 10
        assert json.loads(message)["token_count"] == 3


def _follow(path: Path, source: SourceConfig, output: str) -> list[str]:
    """Every event of a file as the shipper's follower reads it, chunk by chunk."""
    renderer = Renderer("app", output, masker_for(MaskingConfig()), False)  # type: ignore[arg-type]
    follower = Follower(source, None, renderer, time.time())
    messages = []
    for cursor in follower.scan():
        while (events := follower.read(cursor, 0)) is not None:
            messages += [e.message for e in events]
        messages += [e.message for e in follower.flush_quiet(cursor, 0.0)]
    follower.close()
    return messages


class TestKeyRulesAcrossChunks:
    """Files are read in chunks and a chunk without any key-rule key skips the key
    rules; a secret must still never leave, whichever chunk its record ends in."""

    def test_a_record_carried_into_a_chunk_without_keys(self, tmp_path: Path) -> None:
        """A record whose first line holds a secret and whose traceback runs into the
        next chunks (which hold no key) is redacted, in JSON and raw output."""
        log_path = tmp_path / "app.log"
        folder = "/srv/" + "service/" * 8  # frames long enough to fill several chunks
        frames = "".join(f'  File "{folder}app.py", line {n}, in handler\n' for n in range(900))
        log_path.write_text(
            '[ERROR] 2024-01-01 00:00:00 app.py:1 {"user": "jane", "password": "hunter2"}\n'
            "Traceback (most recent call last):\n"
            + frames
            + "ValueError: boom\n"
            + "[INFO] 2024-01-01 00:00:01 app.py:2 fine\n" * 2000
        )
        source = SourceConfig(
            category="app", path=log_path, format=APP_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"
        )
        for output in ("json", "raw"):
            messages = _follow(log_path, source, output)
            assert len(messages) == 2001
            assert "hunter2" not in messages[0]
            assert "<redacted>" in messages[0]

    def test_a_key_spelled_with_json_escapes(self, tmp_path: Path) -> None:
        """A JSON message's key written with \\u escapes is still a key."""
        log_path = tmp_path / "app.log"
        log_path.write_text(
            '[INFO] 2024-01-01 00:00:00 app.py:1 {"\\u0074oken": "s3cr3t", "n": 1}\n'
        )
        source = SourceConfig(
            category="app", path=log_path, format=APP_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"
        )
        (message,) = _follow(log_path, source, "json")
        assert json.loads(message)["message"] == {"token": "<redacted>", "n": 1}

    def test_a_format_field_named_like_a_key(self, tmp_path: Path) -> None:
        """A field the format itself names (%(auth_token)s) is redacted though the
        name never appears in the file."""
        log_path = tmp_path / "app.log"
        log_path.write_text("abc123 hello\n")
        source = SourceConfig(category="app", path=log_path, format="%(auth_token)s %(message)s")
        (message,) = _follow(log_path, source, "json")
        assert json.loads(message)["auth_token"] == "<redacted>"


class TestAnyBytes:
    def test_events_stay_valid_json_whatever_the_line_held(self, tmp_path: Path) -> None:
        """Invalid UTF-8, NUL and control bytes appended to a logging-written file."""
        log_path = tmp_path / "app.log"
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter(APP_FORMAT))
        logger = logging.getLogger("shipper.tests.bytes")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning('quote " backslash \\ tab \t bell \x07 nul \x00 for %s', ADDRESS)
        finally:
            logger.removeHandler(handler)
            handler.close()
        with log_path.open("ab") as out:
            out.write(b"\xff\xfe broken \xc3( bytes " + ADDRESS.encode() + b"\n")
        source = SourceConfig(category="app", path=log_path, format=APP_FORMAT)
        renderer = Renderer("app", "json", Masker(), json_lines=False)
        follower = Follower(source, None, renderer, time.time())
        events = []
        for cursor in follower.scan():
            events += follower.read(cursor, 0) or []
            events += follower.flush_quiet(cursor, 0.0)
        follower.close()
        assert len(events) == 1  # the appended line continues the record's message
        event = json.loads(events[0].message)
        assert "\x00" in event["message"]
        assert "\\xff\\xfe" in event["message"]
        assert ADDRESS not in events[0].message


class TestOwnLogsAndErrors:
    def test_own_log_lines_are_masked_with_the_configured_rules(self) -> None:
        out = io.StringIO()
        logs.configure("debug", stream=out)
        try:
            logs.set_masker(masker_for(MaskingConfig(ipv4="redact"), env={}))
            telemetry.file_error("app", f"/logs/{ADDRESS}/app.log", "refused by 10.1.2.3")
        finally:
            logs.set_masker(Masker())
            logs.configure("info")
        line = out.getvalue()
        assert "file.error" in line
        assert ADDRESS not in line
        assert "10.1.2.3" not in line
        assert "<ipv4>" in line

    def test_config_error_messages_are_masked(self, tmp_path: Path) -> None:
        """`shipper check` prints the bad value masked (exit 2, no traceback)."""
        config = tmp_path / "shipper.yaml"
        config.write_text(
            json.dumps({"sources": [{"category": "app", "path": "a.log", "timezone": ADDRESS}]})
        )
        result = subprocess.run(
            [sys.executable, "-m", "shipper", "check", "-c", str(config)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        assert result.returncode == 2
        assert "sources[0].timezone" in result.stderr
        assert ADDRESS not in result.stderr
        assert "**ne.doe+billin*@mail.example.co.kr" in result.stderr
        assert "Traceback" not in result.stderr
