"""Property tests of every rule at once (issue 19 "How the tests must show it";
SPEC §3.4): generated secrets, written the ways real code writes them, in generated
surroundings, never survive in either output; JSON events always parse; masking an
event again changes nothing more.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.config import MaskingConfig
from shipper.mask import masker_for
from tests.masking.test_render import APP_FORMAT, render

MASKER = masker_for(MaskingConfig(), env={})

# Values: what passwords and tokens are made of, never a delimiter of the forms below.
_value = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/!$*",
    min_size=6,
    max_size=24,
).map(lambda v: "Zq" + v)  # a start no surrounding text is likely to hold
_key = st.sampled_from(
    [
        "password",
        "passwd",
        "Password",
        "new_password1",
        "password_confirm",
        "apiKey",
        "X-Api-Key",
        "api_key",
        "access_token",
        "csrftoken",
        "client_secret",
        "AWS_SECRET_ACCESS_KEY",
        "sessionid",
    ]
)


def _forms(key: str, value: str) -> list[str]:
    """The ways apps write a key and its value: free text, a form body, a query string,
    a header, a dict's and an object's repr, JSON, SQL."""
    return [
        f"{key}={value}",
        urllib.parse.urlencode({"user": "kim", key: value, "next": "/"}),
        "/login?" + urllib.parse.urlencode({key: value}),
        f"{key}: {value}",
        repr({key: value, "n": 1}),
        f"Form({key}={value!r}, user='kim')",
        json.dumps({"form": {key: value}}),
        f"UPDATE users SET {key} = '{value}' WHERE id = 7",
        f"Authorization: Bearer {value}",
        f"Authorization: Basic {value}",
    ]


@st.composite
def keyed_secrets(draw: st.DrawFn) -> tuple[str, str]:
    """(message, secret): one key rule's value in one of its written forms."""
    value = draw(_value)
    form = draw(st.sampled_from(_forms(draw(_key), value)))
    return form, value


def _rrn(born: date, digit: int, rest: str) -> str:
    return f"{born:%y%m%d}-{digit}{rest}"


def _cn_id(region: str, born: date, sequence: str) -> str:
    body = f"{region}{born:%Y%m%d}{sequence}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


_born = st.dates(date(1930, 1, 1), date(2024, 12, 31))
_digits = st.text("0123456789", min_size=6, max_size=6)


@st.composite
def identifiers(draw: st.DrawFn) -> tuple[str, str]:
    """(message, what must not survive): an ID number or an address."""
    kind = draw(st.sampled_from(["rrn", "cn_id", "email"]))
    if kind == "rrn":
        number = _rrn(draw(_born), draw(st.integers(1, 4)), draw(_digits))
        return number, number[7:]
    if kind == "cn_id":
        region = draw(st.sampled_from(["110105", "310104", "440305", "510107"]))
        number = _cn_id(region, draw(_born), draw(_digits)[:3])
        return number, number[6:14]
    local = draw(st.from_regex(r"[a-z][a-z0-9._+-]{2,12}[a-z0-9]", fullmatch=True))
    domain = draw(st.sampled_from(["example.com", "회사.한국", "bücher.de", "mail.example.co.kr"]))
    return f"{local}@{domain}", local


_surrounding = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(
    lambda text: text.replace("@", " ")
)


def _events(message: str) -> list[str]:
    """The JSON and raw events of one app line holding ``message``."""
    line = f"[WARNING] 2024-01-01 00:00:00 views.py:1 {message}"
    (as_json,) = render([line], APP_FORMAT, MASKER)
    (raw,) = render([line], APP_FORMAT, MASKER, output="raw")
    return [as_json, raw]


def _survives(secret: str, event: str) -> bool:
    """Whether ``secret`` is in the event's text (a JSON event's message: its keys are
    the shipper's own, and a secret such as ``ssag`` is found in ``"message"``)."""
    if event.startswith("{"):
        event = json.loads(event)["message"]
    forms = {secret, urllib.parse.quote_plus(secret), json.dumps(secret)[1:-1]}
    return any(form in event or form in urllib.parse.unquote_plus(event) for form in forms)


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestNoSecretSurvives:
    @_SETTINGS
    @given(keyed_secrets(), _surrounding, _surrounding)
    def test_key_rule_values(self, case: tuple[str, str], before: str, after: str) -> None:
        message, secret = case
        for event in _events(f"{before} {message} {after}"):
            assert not _survives(secret, event), event

    @_SETTINGS
    @given(identifiers(), _surrounding, _surrounding)
    def test_identifiers_and_addresses(
        self, case: tuple[str, str], before: str, after: str
    ) -> None:
        message, secret = case
        for event in _events(f"{before} {message} {after}"):
            assert not _survives(secret, event), event


class TestEventsStayWhole:
    @_SETTINGS
    @given(st.lists(st.one_of(keyed_secrets(), identifiers()), max_size=4), _surrounding)
    def test_json_parses_and_masking_again_changes_nothing(
        self, cases: list[tuple[str, str]], noise: str
    ) -> None:
        message = noise.join(text for text, _ in cases) or noise
        as_json, raw = _events(message)
        json.loads(as_json)
        assert MASKER.mask(as_json) == as_json
        assert MASKER.mask(raw) == raw

    @_SETTINGS
    @given(
        _surrounding,
        _key,
        st.sampled_from(["=", ": ", "='", '="', '": "', "%3D", ":", " = "]),
        _surrounding,
    )
    def test_a_key_anywhere_keeps_json_whole(
        self, before: str, key: str, separator: str, after: str
    ) -> None:
        """A key and separator where a string ends, a quote opens or nothing follows:
        JSON events, and JSON lines shipped raw, still parse."""
        message = f"{before}{key}{separator}{after}"
        as_json, _ = _events(message)
        json.loads(as_json)
        for line in (json.dumps({"m": message, "n": 1}), json.dumps({key: after, "m": message})):
            for output in ("json", "raw"):
                (event,) = render([line], "json", MASKER, output=output)
                json.loads(event)
                assert MASKER.mask(event) == event
