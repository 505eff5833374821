"""Property tests of e-mail masking (issue 5 "How the tests must show it"; SPEC §3.4).

Addresses are generated in the RFC 5322 shapes real apps log — dotted and plus-tagged
local parts, subdomains, quoted local parts, quotes and punctuation around them,
JSON-escaped, URL-encoded (``%40``) — and embedded in random text and JSON.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shipper.config import MASK_DETECTORS
from shipper.mask import (
    _AT_DOMAIN,
    _AT_OR_PERCENT_DOMAIN,
    EMAIL,
    GLUED_DOMAIN,
    Masker,
    _email_sub,
    _scp_remote,
)

KEY = "property-key"
STRATEGIES = ("partial", "redact", "hash")

_atom = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=10
)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_tld = st.from_regex(r"[a-z]{2,6}", fullmatch=True)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """One address: dotted atoms, maybe a +tag, maybe quoted; subdomains; any case."""
    if draw(st.integers(0, 9)) == 0:
        local = '"' + draw(st.from_regex(r"[a-z][a-z .]{1,14}[a-z]", fullmatch=True)) + '"'
    else:
        local = ".".join(draw(st.lists(_atom, min_size=1, max_size=3)))
        if draw(st.booleans()):
            local += "+" + draw(_atom)
    domain = ".".join([*draw(st.lists(_label, min_size=1, max_size=3)), draw(_tld)])
    address = f"{local}@{domain}"
    return address.upper() if draw(st.integers(0, 5)) == 0 else address


# What stands right before and after an address in real lines.
_BEFORE = st.sampled_from(
    ["", " ", "\n", "\t", "(", "<", "[", "'", '"', ":", "=", ",", "mailto:", "|", "/"]
)
_AFTER = st.sampled_from(
    ["", " ", "\n", ")", ">", "]", "'", '"', ",", ".", ";", ":", "!", "?", "|", "&x=1"]
)
_noise = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="@%"), max_size=40
)


@st.composite
def embedded(draw: st.DrawFn) -> tuple[str, str]:
    """(text, address): an address in random text, with adjacent punctuation."""
    address = draw(addresses())
    text = draw(_noise) + " " + draw(_BEFORE) + address + draw(_AFTER) + " " + draw(_noise)
    return text, address


def maskers() -> st.SearchStrategy[Masker]:
    return st.sampled_from(STRATEGIES).map(lambda s: Masker(s, KEY))  # type: ignore[arg-type]


def survives(address: str, masked: str) -> bool:
    """Whether the address can still be read in the masked text, in any written form."""
    forms = {address, address.lower(), address.replace('"', '\\"')}
    plain = urllib.parse.unquote(masked)
    return any(form in masked or form in plain for form in forms)


class TestAddressesNeverSurvive:
    @settings(max_examples=300, deadline=None)
    @given(embedded(), maskers())
    def test_in_random_text(self, case: tuple[str, str], masker: Masker) -> None:
        text, address = case
        assert not survives(address, masker.mask(text))

    @settings(max_examples=200, deadline=None)
    @given(embedded(), maskers())
    def test_in_json_which_stays_valid(self, case: tuple[str, str], masker: Masker) -> None:
        text, address = case
        document = json.dumps({"msg": text, "client": {"email": address, "list": [address]}})
        masked = masker.mask(document)
        decoded = json.loads(masked)
        assert not survives(address, masked)
        assert not survives(address, json.dumps(decoded, ensure_ascii=False))

    @settings(max_examples=200, deadline=None)
    @given(embedded(), maskers())
    def test_json_escaped_twice(self, case: tuple[str, str], masker: Masker) -> None:
        """A JSON message that was itself JSON-encoded into a string (escaped quotes)."""
        text, address = case
        inner = json.dumps({"errorDetail": text, "to": address})
        masked = masker.mask(json.dumps({"message": inner}))
        assert not survives(address, masked)
        json.loads(json.loads(masked)["message"])

    @settings(max_examples=200, deadline=None)
    @given(embedded(), maskers())
    def test_url_encoded(self, case: tuple[str, str], masker: Masker) -> None:
        """?email=someone%40example.com (and %2B for plus tags)."""
        _, address = case
        url = "GET /v1/users?email=" + urllib.parse.quote(address, safe="") + "&page=2"
        assert not survives(address, masker.mask(url))

    @settings(max_examples=300, deadline=None)
    @given(addresses(), addresses(), maskers())
    @example("a000@example.com", "a.aa@example.com", Masker("partial", KEY))
    @example("k@x.io", "b@y.io", Masker("partial", KEY))
    def test_two_run_together(self, first: str, second: str, masker: Masker) -> None:
        """Two addresses with nothing between them (a list joined without a
        separator): where the first's domain ends is a guess, and neither can be read."""
        masked = masker.mask(f"to: {first}{second} .")
        assert not survives(first, masked)
        assert not survives(second, masked)


class TestIdempotent:
    @settings(max_examples=200, deadline=None)
    @given(embedded(), maskers())
    def test_masking_twice_is_masking_once(self, case: tuple[str, str], masker: Masker) -> None:
        once = masker.mask(case[0])
        assert masker.mask(once) == once

    @settings(max_examples=100, deadline=None)
    @given(embedded(), st.sampled_from(STRATEGIES))
    def test_with_every_detector_on(self, case: tuple[str, str], strategy: str) -> None:
        masker = Masker(strategy, KEY, detectors=dict.fromkeys(MASK_DETECTORS, strategy))  # type: ignore[arg-type]
        once = masker.mask(case[0])
        assert masker.mask(once) == once


# Text without personal data: words, small numbers, times, versions, decorators,
# @mentions, hosts without a dot, punctuation.
_word = st.from_regex(r"[A-Za-z][a-z]{0,11}", fullmatch=True)
_token = st.one_of(
    _word,
    st.integers(0, 999_999).map(str),
    st.from_regex(r"[01]\d:[0-5]\d:[0-5]\d", fullmatch=True),
    st.from_regex(r"v?\d\.\d{1,2}\.\d{1,2}", fullmatch=True),
    _word.map(lambda w: "@" + w),
    _word.map(lambda w: f"{w.lower()}@localhost"),
    st.sampled_from([".", ",", ";", "-", "(", ")", "{", "}", '"', "=", "/", "::", "->"]),
)
clean_text = st.lists(_token, max_size=30).map(" ".join)


class TestTextWithoutPersonalData:
    @settings(max_examples=300, deadline=None)
    @given(clean_text, st.sampled_from(STRATEGIES))
    @example("00:00:00 100 1000", "partial")  # no phone: 00 is no area code
    def test_is_unchanged(self, text: str, strategy: str) -> None:
        masker = Masker(strategy, KEY, detectors=dict.fromkeys(MASK_DETECTORS, strategy))  # type: ignore[arg-type]
        assert masker.mask(text) == text


class TestMaskingManyAtOnce:
    """``Masker.mask_all`` (a chunk's events masked together) gives what masking each
    event on its own gives: JSON events, raw texts with newlines, any detectors."""

    @settings(max_examples=200, deadline=None)
    @given(st.lists(embedded(), min_size=1, max_size=8), maskers())
    def test_json_events(self, cases: list[tuple[str, str]], masker: Masker) -> None:
        texts = [json.dumps({"message": text, "n": n}) for n, (text, _) in enumerate(cases)]
        assert masker.mask_all(texts) == [masker.mask(text) for text in texts]

    @settings(max_examples=200, deadline=None)
    @given(st.lists(embedded(), min_size=1, max_size=8), maskers())
    def test_raw_texts(self, cases: list[tuple[str, str]], masker: Masker) -> None:
        texts = [text for text, _ in cases]
        assert masker.mask_all(texts) == [masker.mask(text) for text in texts]

    @settings(max_examples=100, deadline=None)
    @given(st.lists(embedded(), min_size=2, max_size=6), st.sampled_from(STRATEGIES))
    def test_with_the_detectors_after_email_on(
        self, cases: list[tuple[str, str]], strategy: str
    ) -> None:
        """E-mail first (the joined pass), then card, phone, IPv6 and IPv4 on each text;
        bearer, jwt and aws_key, which run before e-mail, would make every text go
        alone."""
        before_email = {"bearer", "jwt", "aws_key"}
        after_email = [name for name in MASK_DETECTORS if name not in before_email]
        masker = Masker(
            strategy,  # type: ignore[arg-type]
            KEY,
            detectors=dict.fromkeys(after_email, strategy),  # type: ignore[arg-type]
        )
        texts = [json.dumps({"message": f"{text} 10.1.2.3 +82 10-1234-5678"}) for text, _ in cases]
        assert masker.mask_all(texts) == [masker.mask(text) for text in texts]


_email_fragment = st.one_of(
    addresses(),
    st.sampled_from(["@", "%40", "%2B", "%", ".", "..", '"', "-", "*"]),
    st.sampled_from(
        [" ", "\n", "(", ":", "=", "x", "a.b", "q_1", "ex-ample.com", "co", ": ", ", "]
    ),
)


class TestSearchNearEachAt:
    @settings(max_examples=500, deadline=None)
    @given(st.lists(_email_fragment, max_size=12).map("".join))
    @example("a.b@x.io .kim@x.io a..b@x.io ab.@x.io %2Bk@x.io")
    @example('"john doe"@x.io \\"jo\\"@x.io x@y@z.io k@x.io-1 k@x.i0')
    @example("to=kim%40x.io&cc=a.b%2Bc%40y.io %40x.io k%4")
    @example('**o.79*@x.io "@x.io" @app.route k@localhost k@x.io@y.io "k"@"x".io')
    @example('{"k": "@app.route", "l": ["to:", "@kim.lee"]} "kim@x.io"@y.io "a%40b"@x.io')
    def test_finds_what_the_whole_regex_finds(self, text: str) -> None:
        """The search near each ``@`` (plain addresses read without the full regex)
        finds and rewrites exactly what ``EMAIL`` finds scanning the whole text, in ASCII
        text without backslashes (after a letter beyond ASCII or an escape the local
        part is read back letter by letter instead: see test_corpus.py's families 5
        and 6).  An address may begin right where the one before it ended
        (``a@x.coma+1@x.com``: the ``+1`` is a local part, even after a letter)."""

        def write(local: str, domain: str) -> str:
            return f"<{local}|{domain}>"

        assert _email_sub(write, text) == _whole_regex(text, write)


# "@" and a domain after a "*" (the end of a masked local part); "%40" counts as an
# "@" in text with a "%", as it does for the search
_MASKED_ADDRESS = re.compile(r"\*" + _AT_DOMAIN.pattern)
_MASKED_ADDRESS_OR_PERCENT = re.compile(r"\*" + _AT_OR_PERCENT_DOMAIN.pattern)
# Every form of "@" an address may have
_AT_FORM = re.compile(r"@|\uff20|\\u[fF][fF]20|%40|%2540")


def _whole_regex(text: str, write: Callable[[str, str], str]) -> str:
    """``EMAIL.sub`` over ``text``, except that a masked address (``**o.79*@x.io``)
    keeps its domain, and right after an address a plain local part (no ``%`` escapes,
    before a plain ``@``) may begin at once, even after a character that would
    otherwise forbid its start (``a@x.coma+1@x.com``: ``+1``), when it ends no later
    than what the regex reads next."""
    pieces = []
    done = 0
    while True:
        match = EMAIL.search(text, done)
        while match is not None and _scp_remote(text, match.end()):
            match = EMAIL.search(text, match.end())  # git@github.com:org/repo is kept
        start = match.start() if match is not None else len(text)
        end = match.end() if match is not None else len(text)
        masked = (_MASKED_ADDRESS_OR_PERCENT if "%" in text else _MASKED_ADDRESS).search(text, done)
        if masked is not None and masked.start() < start:
            # A masked address (**o.79*@x.io) keeps its domain: nothing begins in it.
            pieces.append(text[done : masked.end()])
            done = masked.end()
            continue
        glued = EMAIL.match(text[done:]) if pieces else None  # no character before it
        if (
            glued is not None
            and glued["local"]
            and "%" not in glued["local"]
            and glued.string[glued.end("local")] == "@"
            and done + glued.end() <= end
            and not _scp_remote(text, done + glued.end())
        ):
            match, start, end = glued, done, done + glued.end()
        if match is None:
            break
        pieces.append(text[done:start])
        # A domain another "@" follows at once may end in the next local part: not shown.
        domain = GLUED_DOMAIN if _AT_FORM.match(text, end) else match["domain"]
        pieces.append(write(match["local"] or match["quoted"], domain))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _mentions_by_hand(text: str, names: tuple[str, ...]) -> bool:
    """A key rule's name (``_``, ``-`` or nothing between its words), any case, the
    rest of a key, an optional quote, spaces and ``:``, ``=`` or ``%3D``: what the
    pre-check must find."""
    lower = text.lower()
    spellings = {
        spelled
        for name in names
        for spelled in (name, name.replace("_", "-"), name.replace("_", ""))
    }
    return any(
        re.match(r"[\w.-]*(?:\\{0,2}[\"'])?[ \t]*(?:[:=]|%3d)", lower[at + len(spelled) :])
        for spelled in spellings
        for at in range(len(lower))
        if lower.startswith(spelled, at)
    )


_KEY_NAMES = ("password", "passwd", "token", "api_key", "secret")
_key_fragment = st.one_of(
    st.sampled_from([*_KEY_NAMES, "api-key", "PassWord", "TOKEN", "pass", "api", "tok"]),
    st.sampled_from(['"', ":", "=", " ", '": ', " = ", "x", "_", "-", "\n", "{", "}"]),
    _word,
)


class TestKeyRulePreCheck:
    @settings(max_examples=400, deadline=None)
    @given(st.lists(_key_fragment, max_size=12).map("".join))
    def test_finds_every_name_before_a_colon_or_equals(self, text: str) -> None:
        """``Masker.mentions_key`` (one search per group of the names' words sharing
        their first letters) says yes whenever a key holding a name stands before
        ``:`` or ``=``, and no when no word of a name is there."""
        masker = Masker("off", keys=_KEY_NAMES)
        if _mentions_by_hand(text, _KEY_NAMES):
            assert masker.mentions_key(text)
        if not any(
            word in text.lower() for word in ("password", "passwd", "token", "key", "secret")
        ):
            assert not masker.mentions_key(text)
