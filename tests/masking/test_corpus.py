"""Masking on the lines real Python apps write, family by family (issue 19; SPEC §3.4).

Each class holds one family of places a secret hides.  Inputs are made by the
libraries that write them in production where one exists (the logging module and
its tracebacks, ``json.dumps`` with and without ``ensure_ascii``,
``urllib.parse.urlencode``, requests' header dict); each is rendered through the
real parser and renderer, in JSON output (the default) and raw output, and every
JSON event must still parse.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import traceback
import urllib.parse
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict

from shipper import logs, telemetry
from shipper.config import MASK_DETECTORS, MaskingConfig, SourceConfig
from shipper.mask import Masker, masker_for, partial_email
from tests.masking.test_render import APP_FORMAT, _follow, render
from tests.support.cloudwatch import CREDENTIALS
from tests.support.logging_output import write_logs
from tests.support.probe import get
from tests.support.process import ShipperProcess, wait_until

DEFAULTS = masker_for(MaskingConfig(), env={})


def shipped(message: str, masker: Masker = DEFAULTS) -> tuple[str, str]:
    """(JSON event, raw event) of one app line logged with ``message``; the JSON
    event parses."""
    written = write_logs(logging.Formatter(APP_FORMAT), lambda log: log.warning(message))
    (as_json,) = render(written.lines, APP_FORMAT, masker)
    json.loads(as_json)
    (raw,) = render(written.lines, APP_FORMAT, masker, output="raw")
    return as_json, raw


def assert_gone(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
        assert urllib.parse.unquote(text).find(secret) == -1


class TestNeverCorruptAnEvent:
    """Masking keeps every JSON event valid JSON and every raw event intact apart
    from the masked spans."""

    @pytest.mark.parametrize(
        "message",
        [
            'kima,"@example.com',
            'a:x y"@example.com]}"',
            '"@example.com" is no address',
            'a,"@example.comx y@example.com',
        ],
    )
    def test_a_quote_before_an_at_sign_never_opens_a_local_part(self, message: str) -> None:
        """The quoted-local-part form needs the same quote on both sides: the JSON
        string's own quote is never taken for one."""
        as_json, _ = shipped(message)
        assert json.loads(as_json)["message"].startswith(message.split('"')[0])

    def test_raw_json_lines_keep_their_quotes(self) -> None:
        """A query string inside a raw JSON line loses only the value."""
        line = json.dumps({"url": "/cb?token=abc123&uid=42", "token": "abc123", "pin": 1234})
        masker = masker_for(MaskingConfig(keys=["token", "pin"]), env={})
        (raw,) = render([line], "json", masker, output="raw")
        assert json.loads(raw) == {
            "url": "/cb?token=<redacted>&uid=42",
            "token": "<redacted>",
            "pin": "<redacted>",
        }


# Where key rules' values are written by real code: (message, secret).
_KEY_TEXT = [
    ("login failed password=hunter2 user=kim", "hunter2"),
    (urllib.parse.urlencode({"user": "kim", "password": "hunter2", "next": "/"}), "hunter2"),
    (
        "GET /api/login?" + urllib.parse.urlencode({"access_token": "ya29.a0AfH6", "page": 2}),
        "ya29.a0AfH6",
    ),
    ("X-Api-Key: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("Cookie: sessionid=k2j3h4g5f6; csrftoken=zz99", "k2j3h4g5f6"),
    ("Cookie: sessionid=k2j3h4g5f6; csrftoken=zz99", "zz99"),
    ("UPDATE auth_user SET password = 'pbkdf2_sha256$600000$abc' WHERE id = 3", "pbkdf2"),
    (repr({"username": "kim", "password": "hunter2"}), "hunter2"),
    ("payload: " + repr({"user": {"api_key": "k-123456"}}), "k-123456"),
    ("User(name='kim', password='hunter2')", "hunter2"),
    ("<QueryDict: {'username': ['kim'], 'password': ['hunter2']}>", "hunter2"),
    ("body=" + json.dumps({"password": "hunter2", "pin": 1}), "hunter2"),
    ("headers " + repr(CaseInsensitiveDict({"X-Api-Key": "9f8e7d6c5b4a"})), "9f8e7d6c5b4a"),
    ("apiKey=abc123 password1=pw1 password_confirm=pw2", "abc123"),
    ("apiKey=abc123 password1=pw1 password_confirm=pw2", "pw1"),
    ("apiKey=abc123 password1=pw1 password_confirm=pw2", "pw2"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENG", "wJalrXUtnFEMIK7MDENG"),
    ("redirect to /cb%3Ftoken%3Dabc123%26state%3D1", "abc123"),
]


class TestKeyRulesEverywhere:
    """Family 1: one set of key rules for both outputs and every place text appears."""

    @pytest.mark.parametrize(("message", "secret"), _KEY_TEXT)
    def test_the_value_is_gone_from_both_outputs(self, message: str, secret: str) -> None:
        assert_gone(secret, *shipped(message))

    def test_what_surrounds_the_value_is_kept(self) -> None:
        as_json, raw = shipped(urllib.parse.urlencode({"user": "kim", "password": "x", "n": 2}))
        assert json.loads(as_json)["message"] == "user=kim&password=<redacted>&n=2"
        assert raw.endswith(" user=kim&password=<redacted>&n=2")

    def test_reprs_keep_their_quotes(self) -> None:
        as_json, _ = shipped(repr({"password": "hunter2", "n": 1}))
        assert json.loads(as_json)["message"] == "{'password': '<redacted>', 'n': 1}"

    def test_keys_that_only_contain_a_name_are_kept(self) -> None:
        """token_count and max_tokens count things; they are no secrets."""
        as_json, _ = shipped("token_count=3 max_tokens=100")
        assert json.loads(as_json)["message"] == "token_count=3 max_tokens=100"

    def test_a_key_named_in_camel_case_with_digits_or_a_suffix(self) -> None:
        masker = DEFAULTS
        for key in ("apiKey", "password1", "password_confirm", "AWS_SECRET_ACCESS_KEY"):
            assert masker.sensitive(key), key
        for key in ("token_count", "tokens_used", "secretary", "AWS_ACCESS_KEY_ID"):
            assert not masker.sensitive(key), key


# Authorization headers as clients send them: (header value, what must not survive).
_AUTHORIZATION = [
    ("Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b09199c62bcf"),
    ("Basic a2ltOnNlY3JldA==", "a2ltOnNlY3JldA"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "eyJzdWIiOiIxIn0"),
    (
        'Digest username="kim", realm="api", nonce="dcd98b7102dd2f0e", '
        'response="6629fae49393a05397450978507c4ef1"',
        "6629fae49393a05397450978507c4ef1",
    ),
    (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/eu-west-1/logs/"
        "aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        "fe5f80f77d5fa3beca038a248ff027d0",
    ),
]


class TestAuthorizationOfEveryScheme:
    """Family 2: the whole credential goes, whatever the scheme; the scheme stays."""

    @pytest.mark.parametrize(("value", "secret"), _AUTHORIZATION)
    @pytest.mark.parametrize(
        "written",
        [
            lambda v: f"Authorization: {v}",
            lambda v: "request headers " + repr({"Authorization": v}),
            lambda v: "headers " + repr(CaseInsensitiveDict({"authorization": v, "Accept": "*/*"})),
            lambda v: "sent " + json.dumps({"headers": {"Authorization": v}}),
        ],
        ids=["header line", "dict repr", "requests headers", "JSON"],
    )
    def test_the_credential_is_gone(self, value: str, secret: str, written) -> None:
        as_json, raw = shipped(written(value))
        assert_gone(secret, as_json, raw)
        scheme = value.split(" ", 1)[0]
        assert f"{scheme} <redacted>" in json.loads(as_json)["message"]

    @pytest.mark.parametrize("strategy", ["partial", "redact", "hash"])
    def test_with_the_bearer_detector_on(self, strategy: str) -> None:
        """The key rule keeps `Bearer`, and a bearer token outside a header is still
        the bearer detector's."""
        config = MaskingConfig(bearer=strategy, hash_key="k")  # type: ignore[arg-type]
        masker = masker_for(config, env={})
        as_json, _ = shipped("Authorization: Bearer abcdefghijklmnop1234", masker)
        assert json.loads(as_json)["message"] == "Authorization: Bearer <redacted>"
        as_json, _ = shipped("retrying with Bearer abcdefghijklmnop1234", masker)
        assert "abcdefghijklmnop1234" not in as_json


def _cn_id(body: str) -> str:
    """An 18-character Chinese ID number: 17 digits and their MOD 11-2 check."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


class TestNewDetectors:
    """Family 8: identifiers PIPA and PIPL name, and secrets with a shape of their own."""

    def test_korean_resident_numbers_on_by_default(self) -> None:
        as_json, raw = shipped("본인확인 실패 주민번호=900101-1234567 이름=홍길동")
        assert "900101-1******" in json.loads(as_json)["message"]
        assert_gone("1234567", as_json, raw)

    @pytest.mark.parametrize("number", ["901301-1234567", "900230-1234567", "12900101-1234567"])
    def test_a_number_that_is_no_date_is_kept(self, number: str) -> None:
        as_json, _ = shipped(f"order {number}")
        assert number in as_json

    def test_chinese_id_numbers_on_by_default(self) -> None:
        number = _cn_id("11010519491231002")
        as_json, raw = shipped(f"实名认证 身份证号:{number} 通过")
        assert f"110105********{number[-4:]}" in json.loads(as_json)["message"]
        assert_gone(number, as_json, raw)
        assert_gone("19491231", as_json, raw)

    def test_a_failed_check_is_kept(self) -> None:
        number = _cn_id("11010519491231002")
        wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
        as_json, _ = shipped(f"trace {wrong}")
        assert wrong in as_json

    def test_hangul_and_hanzi_may_touch_the_numbers(self) -> None:
        """주민번호900101-… and 身份证1101…, in text and in JSON with and without
        ensure_ascii (whose escape ends in hex digits right before the number)."""
        number = _cn_id("11010519491231002")
        for message in ("주민번호900101-1234567입니다", f"身份证{number}已验证"):
            events = list(shipped(message))
            for line in (
                json.dumps({"m": message}),
                json.dumps({"m": message}, ensure_ascii=False),
            ):
                events += render([line], "json", DEFAULTS)
            for event in events:
                assert "1234567" not in event
                assert "19491231" not in event

    def test_long_order_ids_are_no_id_numbers(self) -> None:
        """Runs of 17 digits and more that fail the date or the check are kept."""
        ids = "order 1234567890123456789 trace 99999999999999999999 ref 110105194913310021"
        as_json, _ = shipped(ids)
        assert json.loads(as_json)["message"] == ids

    @pytest.mark.parametrize("strategy", ["redact", "hash", "off"])
    def test_each_is_a_strategy(self, strategy: str) -> None:
        config = MaskingConfig(rrn=strategy, cn_id=strategy, hash_key="k")  # type: ignore[arg-type]
        masker = masker_for(config, env={})
        number = _cn_id("44030619900307123")
        as_json, _ = shipped(f"ids 900101-1234567 {number}", masker)
        assert ("900101-1234567" in as_json) == (strategy == "off")
        assert (number in as_json) == (strategy == "off")

    @pytest.mark.parametrize(
        "number",
        ["01012345678", "010-1234-5678", "13812345678", "139-1234-5678", "+86 138 1234 5678"],
    )
    def test_mobile_numbers_without_separators(self, number: str) -> None:
        masker = masker_for(MaskingConfig(phone="partial"), env={})
        as_json, raw = shipped(f"sms sent to {number}.", masker)
        assert_gone(number, as_json, raw)
        assert number[-2:] in as_json

    def test_timestamps_and_order_ids_are_no_mobile_numbers(self) -> None:
        masker = masker_for(MaskingConfig(phone="partial"), env={})
        as_json, _ = shipped("at 1712345678901 order 2024010112345", masker)
        assert "1712345678901" in as_json
        assert "2024010112345" in as_json

    @pytest.mark.parametrize(
        "url",
        [
            "postgres://app:s3cr3t-pw@db.internal:5432/app",
            "postgresql+psycopg://app:s3cr3t-pw@10.0.0.5/app",
            "redis://:s3cr3t-pw@cache.example.com:6379/0",
            "amqp://guest:s3cr3t-pw@rabbit/%2F",
        ],
    )
    def test_passwords_in_connection_urls(self, url: str) -> None:
        as_json, raw = shipped(f"connecting to {url} failed")
        assert_gone("s3cr3t-pw", as_json, raw)
        host = url.split("@", 1)[1]
        assert host in json.loads(as_json)["message"]  # the host is no address

    def test_pem_private_key_blocks(self) -> None:
        pem = (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98\nq+/Zm4xR0=\n"
            "-----END RSA PRIVATE KEY-----"
        )
        for message in (f"loaded key {pem}", "loaded " + json.dumps({"key": pem})):
            as_json, raw = shipped(message)
            assert_gone("MIIEpAIBAAKCAQEA7bq98", as_json, raw)
            assert "-----BEGIN RSA PRIVATE KEY-----<private_key>" in json.loads(as_json)["message"]

    def test_remotes_and_versions_are_no_addresses(self) -> None:
        """Over-masking avoided where cheap: scp-style remotes, pinned requirements."""
        as_json, _ = shipped("clone git@github.com:org/repo.git with requests@2.31.0")
        assert "git@github.com:org/repo.git" in as_json
        assert "requests@2.31.0" in as_json


class _LocalsFormatter(logging.Formatter):
    """A formatter that writes each frame's locals, as traceback's capture_locals does
    (and as Django's and Sentry's debug tooling print them)."""

    def formatException(self, ei) -> str:
        exc = ei[1]
        assert exc is not None
        lines = traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        return "".join(lines).rstrip("\n")


EVERY_DETECTOR = masker_for(
    MaskingConfig(**dict.fromkeys(MASK_DETECTORS, "partial")),  # type: ignore[arg-type]
    env={},
)
# What a frame's locals held, with what must not survive of each.
_LOCALS = {
    "password": ("hunter2-pw", "hunter2-pw"),
    "email": ("kim.minsu@example.co.kr", "kim.minsu@"),
    "card": ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    "phone": ("010-9876-5432", "9876"),
    "client_ip": ("203.0.113.77", "203.0.113.77"),
    "rrn": ("900101-1234567", "1234567"),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJzdWIiOiIxIn0"),
    "aws": ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
}


class TestTextWhereTheParserDidNotPutIt:
    """Family 3: JSON inside strings, JSON on continuation lines and a traceback's
    locals are masked with every rule, not only e-mail."""

    def test_json_logged_as_a_string_inside_json_lines(self) -> None:
        from pythonjsonlogger.json import JsonFormatter

        body = json.dumps({"user": "kim", "password": "hunter2", "card": "4111111111111111"})
        written = write_logs(JsonFormatter(), lambda log: log.info("request", extra={"body": body}))
        for output in ("json", "raw"):
            (event,) = render(written.lines, "json", EVERY_DETECTOR, output=output)
            assert_gone("hunter2", event)
            assert_gone("4111111111111111", event)
            inner = json.loads(json.loads(event)["body"])  # still JSON inside JSON
            assert inner["password"] == "<redacted>"

    def test_pretty_printed_json_on_continuation_lines(self) -> None:
        body = json.dumps({"user": "kim", "api_key": "k-998877", "rrn": "900101-1234567"}, indent=2)
        as_json, raw = shipped(f"payload {body}")
        assert_gone("k-998877", as_json, raw)
        assert_gone("1234567", as_json, raw)
        # The continuation lines went on the message (a message of several lines).
        assert '"api_key": "<redacted>"' in json.loads(as_json)["message"]

    def test_traceback_locals_with_every_detector(self) -> None:
        def handler(  # each value a local of its own, as the traceback prints it
            password: str,
            email: str,
            card: str,
            phone: str,
            client_ip: str,
            rrn: str,
            jwt: str,
            aws: str,
        ) -> None:
            raise RuntimeError("payment failed")

        def calls(log: logging.Logger) -> None:
            try:
                handler(**{name: value for name, (value, _) in _LOCALS.items()})
            except RuntimeError:
                log.exception("unhandled")

        written = write_logs(_LocalsFormatter(APP_FORMAT), calls)
        assert any(line.strip().startswith("password = ") for line in written.lines)
        for output in ("json", "raw"):
            (event,) = render(written.lines, APP_FORMAT, EVERY_DETECTOR, output=output)
            for name, (_, secret) in _LOCALS.items():
                assert secret not in event, (output, name)
            assert "RuntimeError: payment failed" in event


def _both_json_forms(message: str) -> list[str]:
    """A JSON line holding ``message``, as json.dumps writes it with and without
    ensure_ascii (the two ways apps' JSON formatters write non-ASCII text)."""
    return [json.dumps({"msg": message}), json.dumps({"msg": message}, ensure_ascii=False)]


def _rendered_everywhere(message: str) -> list[str]:
    """The message shipped from a text line (JSON and raw) and from both JSON lines."""
    events = list(shipped(message))
    for line in _both_json_forms(message):
        for output in ("json", "raw"):
            (event,) = render([line], "json", DEFAULTS, output=output)
            json.loads(event)
            events.append(event)
    return events


class TestAddressesBeyondAscii:
    """Family 5: the whole local part is masked, whatever the script or escape."""

    @pytest.mark.parametrize(
        ("address", "local"),
        [
            ("josé@example.com", "josé"),
            ("müller@example.de", "müller"),
            ("홍길동@회사.한국", "홍길동"),
            ("用户@例子.中国", "用户"),
            ("kim.minsu@bücher.de", "kim.minsu"),
            ("kim.minsu@xn--bcher-kva.de", "kim.minsu"),
            ("kim.minsu@example.xn--3e0b707e", "kim.minsu"),
            ("kim.minsu＠example.com", "kim.minsu"),
        ],
    )
    def test_the_local_part_is_gone(self, address: str, local: str) -> None:
        escaped = json.dumps(local)[1:-1]  # jos\u00e9 as ensure_ascii writes it
        for event in _rendered_everywhere(f"invite sent to {address} today"):
            assert local not in event
            assert escaped not in event
            assert local[-1:] + "@" not in event  # no letter of it left before the @

    def test_partial_keeps_the_domain_and_cuts_no_escape(self) -> None:
        (event,) = render(_both_json_forms("to müller@example.de")[:1], "json", DEFAULTS)
        assert json.loads(event)["msg"] == "to **lle*@example.de"

    @pytest.mark.parametrize(
        "message", ["연락처kim.minsu@example.com으로 발송", "用户kim.minsu@example.com已注册"]
    )
    def test_hangul_and_hanzi_neighbours_stay(self, message: str) -> None:
        """An address written against Korean or Chinese text with no space: only the
        address is masked, the words around it stay."""
        for event in _rendered_everywhere(message):
            assert "kim.minsu" not in event
            assert "example.com" in event
        as_json, _ = shipped(message)
        before, after = message.split("kim.minsu@example.com")
        assert json.loads(as_json)["message"] == f"{before}**m.mins*@example.com{after}"


class TestAddressesAfterAnEscape:
    """Family 6: a byte escape, a JSON escape or a Windows path right before an address."""

    @pytest.mark.parametrize(
        ("message", "kept"),
        [
            ("payload " + repr(b"\x00\x1ckim.minsu@example.com"), "\\x1c"),
            ("raw " + repr("\xc1\xa4kim.minsu@example.com".encode("latin-1")), "\\xa4"),
            ("saved C:\\Users\\kim\\kim.minsu@example.com.xlsx", "C:\\Users\\kim\\"),
            ("line\x1ckim.minsu@example.com", "line"),
        ],
    )
    def test_the_address_is_masked_and_the_escape_kept(self, message: str, kept: str) -> None:
        for event in _rendered_everywhere(message):
            assert "kim.minsu" not in event
        _, raw = shipped(message)
        assert kept in raw

    def test_text_decoded_with_backslash_escapes(self, tmp_path) -> None:
        """Bytes that are not UTF-8 (CP949 text in a UTF-8 source) are read as \\xNN
        escapes; the address after them is still found."""
        log_path = tmp_path / "app.log"
        log_path.write_bytes(
            "[ERROR] 2024-01-01 00:00:00 a.py:1 고객".encode("cp949") + b"kim.minsu@example.com\n"
        )
        source = SourceConfig(category="app", path=log_path, format=APP_FORMAT)
        for output in ("json", "raw"):
            (event,) = _follow(log_path, source, output)
            assert "kim.minsu" not in event
            assert "\\x" in event  # the undecodable bytes, escaped


class TestTokensGluedToEncodings:
    """Family 7: a token after an encoded "=" and an address with an "@" encoded twice."""

    def test_a_jwt_after_an_encoded_equals_sign(self) -> None:
        masker = masker_for(MaskingConfig(jwt="partial"), env={})
        token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
        next_url = urllib.parse.quote("/cb?" + urllib.parse.urlencode({"jwt": token}), safe="")
        as_json, raw = shipped(f"GET /login?next={next_url}", masker)
        assert_gone("eyJzdWIiOiIxIn0", as_json, raw)

    def test_an_address_encoded_twice(self) -> None:
        inner = urllib.parse.urlencode({"email": "kim.minsu@example.com"})
        twice = urllib.parse.urlencode({"next": "/invite?" + inner})
        assert "%2540" in twice
        for event in _rendered_everywhere(f"redirect {twice}"):
            assert "kim.minsu" not in event


class TestAddressesAtTheCut:
    """Family 4: a line longer than ``max_line_bytes`` is shipped in parts cut at a
    space, so no address is cut in two (and leaks from both parts)."""

    @pytest.mark.parametrize("shift", range(0, 40, 7))
    def test_no_address_is_cut_in_two(self, tmp_path, shift: int) -> None:
        addresses = [f"user{n:04d}.kim@example.com" for n in range(120)]
        line = "[INFO] 2024-01-01 00:00:00 a.py:1 to " + "x" * shift + " " + ", ".join(addresses)
        log_path = tmp_path / "app.log"
        log_path.write_text(line + "\n")
        source = SourceConfig(category="app", path=log_path, format=APP_FORMAT, max_line_bytes=1024)
        # Every address masked whole, nothing else changed: the parts put back together
        # are the line with each address in its partial form.
        expected = line
        for address in addresses:
            local, domain = address.split("@")
            expected = expected.replace(address, partial_email(local, domain))
        parts = [json.loads(e)["message"] for e in _follow(log_path, source, "json")]
        assert len(parts) > 2
        assert "".join(parts) == expected
        assert all(p.endswith(" ") for p in parts[:-1])  # each cut after a space
        for event in _follow(log_path, source, "raw"):
            assert not any(address.split("@")[0] in event for address in addresses)


class TestOurOwnOutput:
    """Family 9: what the shipper itself writes (its logs, the libraries' logs, /readyz,
    /metrics, `shipper check`) is masked with the same rules (SPEC §3.4)."""

    def test_key_rules_apply_to_our_own_logs(self) -> None:
        """A `record.time_unreadable` line quotes the record's text: its password goes."""
        out = io.StringIO()
        logs.configure("debug", stream=out)
        try:
            logs.set_masker(DEFAULTS)
            telemetry.time_unreadable("app", "/logs/app.log", 10, "??? login password=hunter2")
        finally:
            logs.set_masker(Masker("off"))  # back to the rules before a config is read
            logs.configure("info")
        (line,) = out.getvalue().splitlines()
        assert json.loads(line)["text"] == "??? login password=<redacted>"

    def test_library_loggers_write_masked_json_lines(self) -> None:
        """botocore's and aiohttp's stdlib loggers: one JSON line each, traceback
        included, masked; nothing in plain text."""
        out = io.StringIO()
        logs.configure("info", stream=out)
        try:
            logs.set_masker(DEFAULTS)
            try:
                raise ConnectionError("to kim.minsu@example.com with Authorization: Basic a2lt")
            except ConnectionError:
                logging.getLogger("aiohttp.server").exception("Error handling request")
            logging.getLogger("botocore.hooks").warning("retry; X-Api-Key: 9f8e7d6c5b4a")
            logging.getLogger("botocore.hooks").info("an info line is below the level")
        finally:
            logs.set_masker(Masker("off"))  # back to the rules before a config is read
            logs.configure("info")
        lines = out.getvalue().splitlines()
        events = [json.loads(line) for line in lines]
        assert [(e["event"], e["logger"], e["level"]) for e in events] == [
            ("library.log", "aiohttp.server", "error"),
            ("library.log", "botocore.hooks", "warning"),
        ]
        assert "ConnectionError" in events[0]["exception"]
        for secret in ("kim.minsu", "a2lt", "9f8e7d6c5b4a"):
            assert secret not in out.getvalue()

    def test_readyz_metrics_and_check_mask_paths(self, tmp_path: Path, make_config) -> None:
        """A folder named after a user's address: /readyz (a missing folder), /metrics
        (the lag gauge's path label) and `shipper check` never show it."""
        address = "kim.minsu@example.com"
        present = tmp_path / address / "app"
        present.mkdir(parents=True)
        (present / "app.log").write_text("[INFO] 2024-01-01 00:00:00,000 a.py:1 hello\n")
        missing = tmp_path / "late" / address
        config = make_config(
            [
                {"category": "app", "path": str(present / "app.log"), "format": APP_FORMAT},
                {"category": "late", "path": str(missing / "late.log")},
            ],
            health={"listen": "127.0.0.1:0"},
        )
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            status, ready = get(f"{url}/readyz")
            assert status == 503
            assert "folder does not exist" in ready
            _, exposition = wait_until(
                lambda: (found := get(f"{url}/metrics"))[1].count('path="') and found
            )
            assert shipper.stop() == 0
        assert 'path="' in exposition
        for text in (ready, exposition, shipper.output()):
            assert "kim.minsu" not in text
        assert "**m.mins*@example.com" in ready
        folder = tmp_path / address
        (folder / "shipper.yaml").write_text(config.read_text())
        result = subprocess.run(
            [sys.executable, "-m", "shipper", "check", "-c", str(folder / "shipper.yaml")],
            capture_output=True,
            text=True,
            env={**os.environ, **CREDENTIALS},
            timeout=60,
        )
        assert "kim.minsu" not in result.stdout + result.stderr
        assert "ok (2 sources)" in result.stdout, result.stdout + result.stderr
