"""Detectors, each with its strategies; custom rules; keyed hashes (issue 5 §6, §8;
SPEC §3.4: no personal data leaves in a form the masking rules cover)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shipper.config import MASK_DETECTORS, MaskingConfig, MaskRule
from shipper.mask import Masker, luhn_valid, masker_for

KEY = "test-key"

# detector, text found in a log line, its partial form
SAMPLES = [
    ("email", "someone@example.com", "**meon*@example.com"),
    ("ipv4", "192.168.10.23", "192.168.10.*"),
    ("ipv6", "2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::*"),
    ("ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::*"),
    ("ipv6", "::ffff:192.0.2.1", "::*"),
    ("phone", "+82 10-1234-5678", "+** **-****-**78"),
    ("phone", "(555) 123-4567", "(***) ***-**67"),
    ("phone", "010-1234-5678", "***-****-**78"),
    ("card", "4111 1111 1111 1111", "**** **** **** 1111"),
    ("card", "5500-0000-0000-0004", "****-****-****-0004"),
    ("card", "378282246310005", "***********0005"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyJhbGciOiJIUzI1NiJ9.*.*",
    ),
    ("bearer", "Bearer abcdefghijklmnop0123456789", "Bearer abcd***"),
    ("aws_key", "AKIAIOSFODNN7EXAMPLE", "AKIA************MPLE"),
    ("phone", "01012345678", "*********78"),
    ("phone", "13812345678", "*********78"),
    ("phone", "139-1234-5678", "***-****-**78"),
    ("rrn", "900101-1234567", "900101-1******"),
    ("cn_id", "11010519491231002X", "110105********002X"),
]
IDS = [f"{d}-{n}" for n, (d, _, _) in enumerate(SAMPLES)]


def only(detector: str, strategy: str) -> Masker:
    """A masker with just one detector on."""
    email = strategy if detector == "email" else "off"
    return Masker(email, KEY, detectors={detector: strategy})  # type: ignore[arg-type, dict-item]


def line(found: str) -> str:
    return f'2024-01-01 INFO login from {found}, retrying; {{"value": "{found}"}}'


class TestStrategies:
    @pytest.mark.parametrize(("detector", "found", "partial"), SAMPLES, ids=IDS)
    def test_partial(self, detector: str, found: str, partial: str) -> None:
        assert only(detector, "partial").mask(line(found)) == line(partial)

    @pytest.mark.parametrize(("detector", "found", "partial"), SAMPLES, ids=IDS)
    def test_redact(self, detector: str, found: str, partial: str) -> None:
        expected = f"Bearer <{detector}>" if detector == "bearer" else f"<{detector}>"
        assert only(detector, "redact").mask(line(found)) == line(expected)

    @pytest.mark.parametrize(("detector", "found", "partial"), SAMPLES, ids=IDS)
    def test_hash_is_keyed_and_stable(self, detector: str, found: str, partial: str) -> None:
        """Same key: the same token every time; another key: another token."""
        first = only(detector, "hash").mask(line(found))
        assert found not in first
        assert first == only(detector, "hash").mask(line(found))
        other = Masker(
            "hash" if detector == "email" else "off",
            "another-key",
            detectors={detector: "hash"},  # type: ignore[dict-item]
        )
        assert other.mask(line(found)) != first

    @pytest.mark.parametrize(("detector", "found", "partial"), SAMPLES, ids=IDS)
    def test_off_leaves_it(self, detector: str, found: str, partial: str) -> None:
        masker = Masker("off") if detector == "email" else only("email", "partial")
        assert masker.mask(line(found)) == line(found)

    @pytest.mark.parametrize(("detector", "found", "partial"), SAMPLES, ids=IDS)
    @pytest.mark.parametrize("strategy", ["partial", "redact", "hash"])
    def test_masking_twice_changes_nothing_more(
        self, detector: str, found: str, partial: str, strategy: str
    ) -> None:
        masker = only(detector, strategy)
        once = masker.mask(line(found))
        assert masker.mask(once) == once

    @pytest.mark.parametrize(("detector", "found", "partial"), SAMPLES, ids=IDS)
    def test_json_stays_valid(self, detector: str, found: str, partial: str) -> None:
        text = json.dumps({"msg": f"from {found}", "nested": [found, {"k": f'"{found}"'}]})
        for strategy in ("partial", "redact", "hash"):
            masked = only(detector, strategy).mask(text)
            assert found not in masked
            json.loads(masked)


class TestNoFalseAlarms:
    @pytest.mark.parametrize(
        "text",
        [
            "order 4111111111111112 shipped",  # 16 digits failing the Luhn check
            "epoch 1700000000123 ms",
            "took 12:34:56 at 2024-01-01T10:00:00+09:00",
            "std::vector<int> and a::b",
            "mac 00:1a:2b:3c:4d:5e",
            "version 1.2.3 and 1.2.3.4.5 and 999.1.1.1",
            "@app.route('/x') and user@localhost",
            "Bearer token missing",
            "id 2024-000123-45",
        ],
    )
    def test_lookalikes_are_kept(self, text: str) -> None:
        masker = Masker("partial", KEY, detectors=dict.fromkeys(MASK_DETECTORS, "partial"))  # type: ignore[arg-type]
        assert masker.mask(text) == text

    def test_json_strings_that_start_with_an_at_sign(self) -> None:
        """Between two JSON strings (``": "``, ``", "``) is no quoted local part: a value
        such as ``"@app.route"`` is kept, and the event stays the JSON it was."""
        text = json.dumps(
            {
                "decorator": "@app.route",
                "domain": "@corp.example.com",
                "handles": ["to:", "@kim.lee", " ", "@lee.park"],
                "nested": json.dumps({"who": "@kim.lee"}),
            }
        )
        masker = Masker("partial", KEY, detectors=dict.fromkeys(MASK_DETECTORS, "partial"))  # type: ignore[arg-type]
        assert masker.mask(text) == text

    @pytest.mark.parametrize(
        ("after_at", "domain"),
        [
            ("example.com", "example.com"),
            ("mail.a-b.example.co.kr", "mail.a-b.example.co.kr"),
            ("x" * 63 + ".io", "x" * 63 + ".io"),  # the longest label
            ("x" * 64 + ".io", None),
            ("example-.com", None),  # a label neither ends
            ("-example.com", None),  # nor starts with a hyphen
            ("example..com", None),
            ("example.c", None),  # a TLD has two letters or more
            ("example.com1", None),
            ("mail.example.com1", "mail.example"),  # the address ends before ".com1"
            ("example.com.", "example.com"),  # a full stop after it
        ],
    )
    def test_what_makes_a_domain(self, after_at: str, domain: str | None) -> None:
        """An address needs a domain: labels of 1-63 letters, digits and inner hyphens,
        each followed by a dot, then a TLD of letters that no domain character follows."""
        text = f"sent to someone@{after_at} today"
        masked = Masker("partial").mask(text)
        if domain is None:
            assert masked == text
        else:
            assert masked == text.replace(f"someone@{domain}", f"**meon*@{domain}")

    def test_luhn(self) -> None:
        assert luhn_valid("4111111111111111")
        assert not luhn_valid("4111111111111112")


class TestCustomRules:
    def test_named_rule_with_replacement_and_hash(self) -> None:
        masker = Masker(
            "off",
            KEY,
            rules=[
                ("order_secret", r"osk_[A-Za-z0-9]+", "redact", "<order-secret>"),
                ("employee", r"EMP-\d{6}", "hash", None),
            ],
        )
        masked = masker.mask("paid with osk_Zx81 by EMP-004211")
        assert masked.startswith("paid with <order-secret> by <employee:")
        assert "EMP-004211" not in masked

    def test_a_greedy_rule_cannot_break_json(self) -> None:
        """A match is cut before JSON's quotes and backslashes."""
        masker = Masker("off", rules=[("secret", r"secret=\S+", "redact", None)])
        text = json.dumps({"q": "a secret=hunter2", "r": 'x secret=a"b'})
        masked = masker.mask(text)
        decoded = json.loads(masked)
        assert decoded["q"] == "a <secret>"
        assert "hunter2" not in masked


class TestConfigured:
    def test_every_detector_is_a_masking_key(self) -> None:
        config = MaskingConfig(**dict.fromkeys(MASK_DETECTORS, "redact"))  # type: ignore[arg-type]
        masker = masker_for(config, env={})
        for detector, found, _ in SAMPLES:
            assert found not in masker.mask(line(found)), detector

    def test_hash_is_stable_across_restarts(self, tmp_path) -> None:
        """Two processes with the same $SHIPPER_HASH_KEY write the same token."""
        program = (
            "from shipper.config import MaskingConfig\n"
            "from shipper.mask import masker_for\n"
            "print(masker_for(MaskingConfig(email='hash')).mask('to Someone@Example.com'))\n"
        )
        env = {**os.environ, "SHIPPER_HASH_KEY": "k1"}
        runs = [
            subprocess.run(
                [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
            ).stdout
            for _ in range(2)
        ]
        assert runs[0] == runs[1]
        assert runs[0].startswith("to <email:")
        in_process = masker_for(MaskingConfig(email="hash"), env={"SHIPPER_HASH_KEY": "k1"})
        assert runs[0] == in_process.mask("to someone@example.com") + "\n"

    def test_rules_from_config(self) -> None:
        config = MaskingConfig(rules=[MaskRule("ticket", r"TCK-\d+")])
        assert masker_for(config, env={}).mask("see TCK-991") == "see <ticket>"
