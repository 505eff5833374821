"""Masking of personal data and secrets, before anything leaves the process.

A :class:`Masker` rewrites, in any string, the values under its key rules' keys and
then every match of its detectors.  It is applied to the final text of each event
(so fields, nested JSON and tracebacks are all covered by one pass), in JSON and raw
output alike, and to everything the shipper writes itself.  Each detector runs only
when a cheap test (a substring, the shape of the text's digits) says it could match.

Detectors, each ``off`` or with its own strategy:

============  ===================================  ================================
detector      finds                                ``partial`` writes
============  ===================================  ================================
email         ``someone@example.com``, ``%40``/    ``**meon*@example.com`` (an
              ``%2540``-encoded, quoted local      escape in the local part counts
              parts, any script (``홍길동@회사.     as one character)
              한국``), JSON escapes, U+FF20
ipv4          ``192.168.10.23``                    ``192.168.10.*``
ipv6          ``2001:db8:85a3::8a2e:370:7334``     ``2001:db8:85a3::*`` (the /48)
phone         ``+82 10-1234-5678``, ``(555) 123-   every digit but the last two
              4567``, ``010-1234-5678``,           as ``*``
              ``01012345678``, ``13812345678``
card          13-19 digits from 2-6 (contiguous    every digit but the last four
              or grouped) that pass the Luhn       as ``*``
              check (order ids mostly fail it)
jwt           ``eyJ….eyJ….sig``                    the header, then ``.*.*``
bearer        ``Bearer <token of 16+ chars>``      ``Bearer abcd***``
aws_key       ``AKIA…``/``ASIA…`` access key ids   ``AKIA************MPLE``
rrn           ``900101-1234567`` (a real date)     ``900101-1******``
cn_id         18 characters, a real date and a     ``110105********002X``
              valid MOD 11-2 check character
url_password  ``postgres://app:secret@db``         ``postgres://app:***@db``
private_key   PEM ``PRIVATE KEY`` blocks           the body as ``<private_key>``
============  ===================================  ================================

``redact`` writes ``<name>`` (``<email>``); ``hash`` writes ``<name:0123456789abcdef>``,
a keyed BLAKE2b digest of the matched text (the address lower-cased): stable across
restarts for one key, so one user's events still correlate without revealing them.
Custom rules (a name, a regular expression, ``redact`` with an optional replacement
text, or ``hash``) run after the detectors.

Key rules: the value under a key whose words (``apiKey``, ``X-Api-Key``: api, key),
run together without trailing digits or a suffix such as ``confirm``, end with one
of the configured names (``password``, ``token``, ``api_key``, …) becomes
``<redacted>``: in a JSON message or the fields, at any depth
(:meth:`Masker.redact_keys`), and wherever text holds one
(:meth:`Masker.redact_key_text`): ``"key": value``, JSON inside a JSON string, ``key=value`` (also
``%3D``), ``'key': 'value'``, ``key='value'``, SQL, and ``Key: value`` headers, whose
whole value goes (an Authorization scheme kept: ``Bearer <redacted>``).

Replacements never contain ``"`` or ``\\`` nor split a JSON escape, and a custom
rule's match is cut before the first of them, so masking JSON text keeps it valid
JSON (a key rule writes ``"<redacted>"`` where a JSON value that is no string stood).
Every strategy's output is left alone by its own detector, so masking twice changes
nothing more.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shipper.config import MaskingConfig

Strategy = Literal["partial", "redact", "hash", "off"]
Replace = Callable[[re.Match[str]], str]

REDACTED = "<redacted>"

# Detectors that may not start inside a word may still start right after a JSON
# escape (``\n``, ``\t``…, ``\u00e9``); none starts inside one, so a replacement never
# splits an escape.
_AFTER_ESCAPE = r"(?<=\\[nrtbf])"

# The local part: the characters apps put in addresses, never a quote, backslash or
# ``*`` (so JSON stays valid and a partial mask is not masked again), nor the
# delimiters of URLs and key=value text (``= ? & / ' |``); URL escapes (``%2B``) but
# not ``%40``, the URL-encoded ``@``.  It starts where a run of such characters starts
# (or after a JSON escape), and its quantifiers are possessive, so a long word costs
# one pass, not one per character.  Or a quoted local part, JSON-escaped or not, with
# no ``@`` in it (so it never holds another address), which never starts with what
# follows a JSON string (``:`` ``,`` ``]`` ``}``): in ``{"k": "@app.route"}`` the text
# between two strings is no local part.  The domain needs a dot and a TLD of two or
# more letters; its labels (1-63 letters, digits and inner hyphens) are read
# possessively: the text between two dots is the label, so there is nothing to try
# again, and not trying halves the cost of a match.
#
# Beyond ASCII: a label's letters may be any script's (bücher.de, 회사.한국) or JSON
# escapes of them (b\u00fccher.de); a TLD is ASCII letters, punycode (xn--3e0b707e) or
# letters of another script (한국, 中国).  The "@" may be full-width (＠, \uff20) and,
# URL-encoded, %40 or %2540 (encoded twice).
_LOCAL_CHAR = r"(?:[A-Za-z0-9!#$+^_~-]|%(?!40|2540)[0-9A-Fa-f]{2})"
_LABEL_CHAR = r"(?:[^\W_]|\\u[0-9A-Fa-f]{4})"
_DOMAIN = (
    r"(?:" + _LABEL_CHAR + r"(?:" + _LABEL_CHAR + r"|-){0,62}+(?<!-)\.)+"
    r"(?:(?:xn--[a-z0-9-]{2,59}+|[A-Za-z]{2,63}+)(?![A-Za-z0-9-])"
    r"|(?:[^\W\d_A-Za-z]|\\u[0-9A-Fa-f]{4}){2,63}+)"
)
_AT = r"(?:@|\uff20|\\u[fF][fF]20)"
_AT_OR_PERCENT = r"(?:@|\uff20|\\u[fF][fF]20|%40|%2540)"
EMAIL = re.compile(
    r"(?:(?:" + _AFTER_ESCAPE + r"|(?<=\\u[0-9A-Fa-f]{4})|(?<![A-Za-z0-9!#$+^_~\\-]))"
    r"(?P<local>" + _LOCAL_CHAR + r"++(?:\." + _LOCAL_CHAR + r"++)*+)"
    r"|(?P<q>(?<!\\)\\?)\"(?P<quoted>(?!\s*[,:\]}])(?:[^\"\\\r\n@%]|%(?!40)){1,64}+)(?P=q)\")"
    + _AT_OR_PERCENT
    + r"(?P<domain>"
    + _DOMAIN
    + ")"
)
# Each "@" (or "%40") with the domain after it: where an address could end (see _email_sub).
_AT_DOMAIN = re.compile(_AT + "(?P<domain>" + _DOMAIN + ")")
_AT_OR_PERCENT_DOMAIN = re.compile(_AT_OR_PERCENT + "(?P<domain>" + _DOMAIN + ")")
# An "@" in any form, where a domain ends (see _shown_domain), and the characters
# such an "@" starts with.
_AT_OR_PERCENT_HERE = re.compile(_AT_OR_PERCENT)
_AT_FIRST_CHARS = frozenset("@\uff20\\%")
# The domain written for an address glued to the next one (see _shown_domain).
GLUED_DOMAIN = "*"
# The same for text of ASCII without a \u escape (nearly every line), whose domains
# are ASCII: searched several times faster.
_ASCII_DOMAIN = (
    r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,62}+(?<!-)\.)+"
    r"(?:xn--[a-z0-9-]{2,59}+|[A-Za-z]{2,63}+)(?![A-Za-z0-9-])"
)
_ASCII_AT_DOMAIN = re.compile("@(?P<domain>" + _ASCII_DOMAIN + ")")
_ASCII_AT_OR_PERCENT_DOMAIN = re.compile("(?:@|%40|%2540)(?P<domain>" + _ASCII_DOMAIN + ")")


def _may_hold_address(text: str) -> bool:
    """Whether ``text`` holds an "@" in any form: one character is found at memchr's
    speed, so the rarer forms are looked for only after theirs."""
    if "@" in text:
        return True
    if "%" in text and ("%40" in text or "%2540" in text):
        return True
    if "\\u" in text and ("\\uff20" in text or "\\uFF20" in text):
        return True
    return not text.isascii() and "\uff20" in text


def _starting(first: str, not_after: str) -> str:
    """One character of class ``first`` that does not follow one of ``not_after``
    (unless that ends a JSON escape such as ``\n``).

    Each pattern below begins with its first character rather than a lookbehind, so
    the regex engine skips quickly to the positions where a match could start.
    """
    return rf"{first}(?:(?<=\\[nrtbf]{first})|(?<!{not_after}{first}))"


# Dotted quads; each number is checked to be at most 255 when found.
IPV4 = re.compile(_starting(r"\d", r"[\w.]") + r"\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)")
# Candidates only: each is confirmed by the ipaddress module.
IPV6 = re.compile(
    _starting("[0-9A-Fa-f:]", r"[\w:.]") + r"(?:(?<=:)|[0-9A-Fa-f]{0,3}:)"
    r"(?:[0-9A-Fa-f]{0,4}:){1,6}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?![\w:*]|\.\d)"
)
PHONE = re.compile(
    _starting(r"[+(\d]", r"[\w+*]") + r"(?:"
    r"(?<=\+)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,3}"  # +82 10-1234-5678
    r"|(?<=\()\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"  # (555) 123-4567
    r"|(?<=0)[1-9]\d?[ .-]\d{3,4}[ .-]\d{4}"  # 010-1234-5678 (00 is no area code)
    r"|(?<=\d)\d{2}[.-]\d{3}[.-]\d{4}"  # 555-123-4567
    r"|(?<=0)1[016-9]\d{7,8}"  # 01012345678 (Korean mobile)
    r"|(?<=1)[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})"  # 13812345678, 139-1234-5678 (China)
    r")(?![\w*])"
)
# Card numbers as written: contiguous, in groups of four, or Amex's 4-6-5.
CARD = re.compile(
    _starting("[2-6]", r"[\w*.-]") + r"(?:\d{12,18}"
    r"|\d{3}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,7}"
    r"|\d{3}(?P<amex>[ -])\d{6}(?P=amex)\d{5})(?![\w*])"
)
# After a word character only when that ends a JSON escape (\n) or a URL escape
# (jwt%3DeyJ…: an encoded "=").
JWT = re.compile(
    r"eyJ(?:(?<=\\[nrtbf]eyJ)|(?<=%[0-9A-Fa-f]{2}eyJ)|(?<![\w-]eyJ))"
    r"[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
)
BEARER = re.compile(
    r"(?P<scheme>" + _starting("[Bb]", r"\w") + r"(?:earer|EARER))\s+"
    r"(?P<token>[A-Za-z0-9._~+/-]{16,}=*)(?![\w*~+/=.-])"
)
AWS_KEY = re.compile(
    r"A(?<![A-Z0-9]A)(?:KI|SI|ID|RO|GP|NP|NV|IP|PK|BI|CC|SC)A[A-Z0-9]{16}(?![A-Z0-9])"
)

# Korean resident registration numbers: YYMMDD-GXXXXXX, found at the hyphen (a literal
# is searched for at str.find's speed) with the birth date just before it, which must
# be a real day.  Hangul or Hanzi may touch an ID number (주민번호900101-…), ASCII
# letters and digits may not.
RRN = re.compile(
    r"-(?<=(?:(?<=\\u[0-9A-Fa-f]{4})|(?<![A-Za-z0-9_-]))\d{6}-)[0-9]\d{6}(?![A-Za-z0-9_-])"
)
# Chinese resident identity numbers: region, YYYYMMDD, sequence, a MOD 11-2 check
# character (X for 10).  Found by their 17 digits; the check and the date confirm.
CN_ID = re.compile(
    r"(?:(?<=\\u[0-9A-Fa-f]{4})|(?<![A-Za-z0-9_-]))"
    r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![A-Za-z0-9_-])"
)
# A password in a connection URL: scheme://user:password@host.
URL_PASSWORD = re.compile(r"://(?P<user>[^:/@\s\"\\]*):(?P<password>[^@/\s\"\\]+)@(?=[\w\[])")
# A PEM private key block, to its END line (or, cut off, to the end of the text or
# JSON string); or the lines of one that end with its END line (the BEGIN line was a
# record's message, the rest its continuation lines: another JSON field).
PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----"
    r"(?:[^\"\-]|-(?!----END))*+(?P<end>-----END (?P=kind)PRIVATE KEY-----)?"
    r"|(?:[A-Za-z0-9+/=]++(?:\\r)?+(?:\\n|\r?\n))++-----END (?P<tail>[A-Z0-9 ]*)PRIVATE KEY-----"
)


# A character of a local part as written: an escape counts as one.
_LOCAL_UNIT = re.compile(r"\\+(?:u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|.)|.", re.DOTALL)


def partial_email(local: str, domain: str) -> str:
    """The applications' own partial form of an address (an escape in the local part,
    jos\u00e9, counts as one character, so none is cut in two)."""
    if "\\" in local:
        units = _LOCAL_UNIT.findall(local)
        return f"**{''.join(units[2:-1])}*@{domain}"
    return f"**{local[2:-1]}*@{domain}"


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _star_digits(text: str, keep: int) -> str:
    """``text`` with every digit but the last ``keep`` written as ``*``."""
    seen = sum(c.isdigit() for c in text)
    out = []
    for char in text:
        if char.isdigit():
            seen -= 1
            out.append(char if seen < keep else "*")
        else:
            out.append(char)
    return "".join(out)


def _ipv6_prefix(text: str) -> str:
    network = ipaddress.IPv6Network(f"{text}/48", strict=False)
    return f"{network.network_address.compressed.rstrip(':')}::*"


def _cut_at_quote(text: str) -> int:
    """Length of ``text`` before its first ``"`` or ``\\`` (JSON structure)."""
    cut = len(text)
    for char in ('"', "\\"):
        found = text.find(char)
        if found != -1 and found < cut:
            cut = found
    return cut


# What follows a key's name in "key": value and key=value.
_AFTER_KEY = r'"?\s*[:=]'

# Characters that may continue a local part, to find where a long one starts.
_LOCAL_RUN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$+^_~-%."
# How far before its "@" a quoted local part may open: 64 characters, quotes, escapes.
_QUOTED_BEFORE = 70


def _run_start(text: str, at: int, done: int) -> int:
    """Where the run of local-part characters that ends at ``at`` starts (not before
    ``done``): rstrip walks it in C, a short window at a time, so a long text need not
    be copied per ``@``."""
    start = at
    while start > done:
        window = text[max(done, start - 64) : start]
        kept = len(window.rstrip(_LOCAL_RUN))
        start -= len(window) - kept
        if kept:
            break
    return start


# An escape that ends where a local part could start: JSON's and Python's (\u00e9,
# \x1c, \n), maybe with its backslash escaped again (\\x1c: JSON text of a bytes repr).
_ESCAPE_BEFORE = re.compile(
    r"\\+(?:u(?P<code>[0-9A-Fa-f]{4})|x[0-9A-Fa-f]{2}|U[0-9A-Fa-f]{8}|[nrtbfav])\Z"
)


def _latin_letter(char: str) -> bool:
    """A letter of the Latin alphabets beyond ASCII (é, ü, ł): part of a word."""
    return "\u00c0" <= char <= "\u024f" and char not in "\u00d7\u00f7"


def _wide_local_start(text: str, at: int, done: int) -> int:
    """Where the local part that ends at ``at`` starts (``at``: there is none), read
    back one character or escape at a time: ASCII local-part characters and Latin
    letters (josé, müller, jos\u00e9), or else only letters of another script (홍길동,
    \ud64d\uae38); an escape that is no letter (\x1c, \n) or another script's letter
    after ASCII (고객kim@) ends it, as does a backslash of a Windows path."""
    start = at
    other = False  # reading another script's letters
    low = max(done, at - 128)
    while start > low:
        escape = _ESCAPE_BEFORE.search(text, max(low, start - 12), start)
        if escape is not None:
            code = escape["code"]
            char = chr(int(code, 16)) if code else ""
            if _latin_letter(char) and not other:
                start = escape.start() + len(escape.group()) - 6  # the escape's own "\"
                continue
            if char.isalpha() and not char.isascii() and (other or start == at):
                other = True
                start = escape.start() + len(escape.group()) - 6
                continue
            break
        char = text[start - 1]
        if other:
            if not (char.isalpha() and not char.isascii() and not _latin_letter(char)):
                break
        elif char in _LOCAL_RUN or _latin_letter(char):
            pass
        elif char.isalpha() and not char.isascii() and start == at:
            other = True
        else:
            break
        start -= 1
    while start < at and text[start] == ".":
        start += 1
    return at if text[at - 1 : at] == "." else start


def _scp_remote(text: str, end: int) -> bool:
    """Whether the address-like text ending at ``end`` is an scp-style remote
    (``git@github.com:org/repo.git``): a path follows a colon right after it."""
    return text[end : end + 1] == ":" and text[end + 1 : end + 2].isalpha()


def _shown_domain(text: str, domain: str, end: int) -> str:
    """The domain to write for an address whose domain ends at ``end``: its own, unless
    another "@" follows at once.  Then its last labels may be the next address's local
    part (``ann@x.comb.cd@y.com`` is ``ann@x.com`` and ``b.cd@y.com`` run together,
    or ``ann@x.comb.cd`` and a stray ``@y.com``: nothing tells), and the partial form,
    which shows the domain, would show that local part: none of it is shown."""
    if text[end : end + 1] not in _AT_FIRST_CHARS or not _AT_OR_PERCENT_HERE.match(text, end):
        return domain
    return GLUED_DOMAIN


def _email_sub(write: Callable[[str, str], str], text: str) -> str:
    """``EMAIL.sub``, each address written by ``write(local part, domain)``, but searching
    only near each ``@`` / ``%40``.

    Scanning a whole line position by position costs far more than finding the few
    ``@`` in it and matching around each; the result is the same.  Every address has a
    domain right after its ``@``, so each ``@`` is found with its domain, in one search,
    and one without (an ``@app.route``, a handle) is never found.  The usual address
    (a local part of plain characters and single dots, after a character that cannot
    continue it) is read without ``EMAIL``: its local part is the run of local-part
    characters before the ``@``.  Anything else (a quoted local part, ``%`` escapes, a
    JSON escape before it) goes through ``EMAIL``, over just the stretch an address with
    this ``@`` could cover.
    """
    percent = "%" in text
    pieces: list[str] = []
    done = 0  # the text before this offset is final
    # A "%" test first: the search for "@" alone runs several times faster.
    if text.isascii() and "\\u" not in text:
        search = _ASCII_AT_OR_PERCENT_DOMAIN if percent else _ASCII_AT_DOMAIN
    else:
        search = _AT_OR_PERCENT_DOMAIN if percent else _AT_DOMAIN
    for found in search.finditer(text):
        at, end = found.span()
        if text[end : end + 1] == ":" and _scp_remote(text, end):
            continue  # git@github.com:org/repo.git is a remote, not an address
        # The usual address: its local part is the run of local-part characters before
        # the "@" (rstrip finds where it starts, in C), shorter than 64 characters,
        # after one that cannot continue it nor start a JSON escape, or right after the
        # address before it (a+1@x.coma+2@x.com: the run is the second local part).
        low = at - 64 if at - 64 > done else done
        window = text[low:at]
        start = low + len(window.rstrip(_LOCAL_RUN))
        after_address = start == done and bool(pieces)
        # (Not after a backslash nor a character beyond ASCII: see below.)
        if (
            (low < start or after_address)
            and start < at
            and text[start - 1] < "\x80"
            and text[start - 1] != "\\"
        ):
            local = text[start:at]
            if (
                local[0] != "."
                and local[-1] != "."
                and ".." not in local
                and not (percent and ("%" in local or text[at] != "@"))
            ):
                pieces.append(text[done:start])
                domain = found["domain"]
                if text[end : end + 1] in _AT_FIRST_CHARS:
                    domain = _shown_domain(text, domain, end)
                pieces.append(write(local, domain))
                done = end
                continue
        # After a letter beyond ASCII or a backslash: read back letter by letter.
        before = text[start - 1] if start > done else ""
        if before and (before == "\\" or not before.isascii()):
            start = _wide_local_start(text, at, done)
            if start < at:
                pieces.append(text[done:start])
                pieces.append(write(text[start:at], _shown_domain(text, found["domain"], end)))
                done = end
            continue
        # An address with this "@" ends where its domain does.
        start = _run_start(text, at, done)
        if start < at:
            match = EMAIL.search(text, start, found.end())
        elif text[at - 1 : at] == '"':
            # A quoted local part ("john doe"@) holds no quote: it opens at the last one
            # before its closing quote, maybe escaped (\"john doe\"@ in JSON text).
            start = text.rfind('"', max(done, at - _QUOTED_BEFORE), at - 1)
            if start > done and text[start - 1] == "\\":
                start -= 1
            match = EMAIL.match(text, start, found.end()) if start != -1 else None
        else:
            if text[at - 1 : at] == "*":
                # A masked address (**o.79*@x.io): its domain is its own, never the
                # local part of an address glued after it, so masking twice changes
                # nothing.
                pieces.append(text[done:end])
                done = end
            continue  # no local part ends here
        if match is None:
            continue
        pieces.append(text[done : match.start()])
        domain = _shown_domain(text, match["domain"], match.end())
        pieces.append(write(match["local"] or match["quoted"], domain))
        done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


# Words of a key's name: lower-case runs, capitalised words (camelCase), digits.
_KEY_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Words that may follow a key rule's name and still name the same secret
# (password_confirm, new_password1, password_hash).
_KEY_SUFFIXES = frozenset(
    ("confirm", "confirmation", "again", "repeat", "old", "new", "current", "hash", "plain")
)
# Keys whose value runs on past spaces: an HTTP header's whole value.
_HEADER_NAMES = ("authorization", "cookie")
# Authorization schemes kept before a redacted credential ("Bearer <redacted>").
_AUTH_SCHEMES = frozenset(
    {
        "basic",
        "bearer",
        "digest",
        "token",
        "negotiate",
        "ntlm",
        "apikey",
        "dpop",
        "hoba",
        "aws4-hmac-sha256",
        "hawk",
        "mutual",
        "oauth",
        "jwt",
    }
)
# Where an unquoted value (password=hunter2&next=/) ends.
_VALUE_END = re.compile(r"[\s&,;\"'\\)}\]]|%2[6Cc0]")
# Characters of a key's name.
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
# Where a header's unquoted value ends: the end of the line, or, in JSON text, the end
# of the string (an unescaped quote) or an escaped line break.
_HEADER_END_RAW = re.compile(r"[\r\n]")
_HEADER_END_JSON = re.compile(r'(?<!\\)(?:\\\\)*+(?:"|\\[rn])')


def _after_scheme(text: str, start: int, end: int) -> int:
    """Where an Authorization value's credentials start: after its scheme, if it has one."""
    space = text.find(" ", start, end)
    if space != -1 and text[start:space].lower() in _AUTH_SCHEMES:
        return len(text) - len(text[space:].lstrip(" ")) if space < end else end
    return start


def _stem(name: str) -> str:
    """The word of a key rule's name that every spelling of it holds."""
    words = key_words(name) or [name]
    return words[-1] if len(words[-1]) >= 3 else max(words, key=len)


def key_words(name: str) -> list[str]:
    """The words of a key's name, lower-cased: ``apiKey`` and ``API_KEY`` → api, key."""
    return [word.lower() for word in _KEY_WORDS.findall(name)]


def _closing(text: str, at: int, quote: str) -> int:
    """Where the string opened by ``quote`` before ``at`` closes: the index of its
    closing quote (with its backslash for ``\\"``), or -1."""
    escaped = len(quote) - 1  # backslashes right before the closing quote
    while True:
        end = text.find(quote[-1], at)
        if end == -1:
            return -1
        before = text[max(0, end - 9) : end]
        slashes = len(before) - len(before.rstrip("\\"))
        if slashes == 1 if escaped else slashes % 2 == 0:
            return end - escaped
        at = end + 1


class _Detector:
    """One kind of data: where to look, how to find it, what to write instead."""

    __slots__ = ("hints", "name", "precheck", "sub")

    def __init__(
        self,
        name: str,
        sub: Callable[[str], str],
        hints: tuple[str, ...] = (),
        precheck: Callable[[str], bool] | None = None,
    ) -> None:
        self.name = name
        self.sub = sub  # the text with every match rewritten
        self.hints = hints  # substrings one of which every match contains; () = always look
        self.precheck = precheck  # a cheap test every text with a match passes

    def may_match(self, text: str) -> bool:
        """Whether ``text`` passes the detector's cheap tests (so it must be searched)."""
        hints = self.hints
        if hints and not any(hint in text for hint in hints):
            return False
        return self.precheck is None or self.precheck(text)

    @property
    def within_lines(self) -> bool:
        """Whether no match can span or touch a newline (so the detector may run over
        many one-line texts at once)."""
        return self.name in _WITHIN_LINES


def _regex_detector(
    name: str, regex: re.Pattern[str], replace: Replace, hints: tuple[str, ...] = ()
) -> _Detector:
    """A detector that rewrites each match of ``regex`` with ``replace(match)``."""
    return _Detector(name, functools.partial(regex.sub, replace), hints)


def _apply(detectors: list[_Detector], text: str) -> str:
    """``text`` with every match of each detector, in order, rewritten."""
    for detector in detectors:
        hints = detector.hints
        if hints:
            for hint in hints:
                if hint in text:
                    break
            else:
                continue
        if detector.precheck is None or detector.precheck(text):
            text = detector.sub(text)
    return text


# Each byte of a text's UTF-8 as "0" (a digit), "-" or " " (anything else): runs of
# digits are then found by bytes.find, far faster than a regex tries each position.
_DIGIT_SHAPES = bytes(48 if 48 <= b <= 57 else 45 if b == 45 else 32 for b in range(256))
_shape_of: tuple[str, bytes] = ("", b"")


def _digit_shape(text: str) -> bytes:
    """``text`` with digits as ``0``, ``-`` kept, the rest as spaces (the last one is
    kept: the ID detectors test the same text in turn)."""
    global _shape_of
    if _shape_of[0] is not text:
        encoded = text.encode("utf-8", "surrogatepass")
        _shape_of = (text, encoded.translate(_DIGIT_SHAPES))
    return _shape_of[1]


def _may_hold_cn_id(text: str) -> bool:
    return b"00000000000000000" in _digit_shape(text)


def _may_hold_rrn(text: str) -> bool:
    return b"000000-0000000" in _digit_shape(text)


class Masker:
    """Rewrites the personal data and secrets its rules cover in any string."""

    def __init__(
        self,
        email: Strategy = "partial",
        hash_key: str | None = None,
        *,
        detectors: Mapping[str, Strategy] | None = None,
        rules: Iterable[tuple[str, str, Literal["redact", "hash"], str | None]] = (),
        keys: Iterable[str] = (),
    ) -> None:
        chosen: dict[str, Strategy] = {"email": email, **(detectors or {})}
        rules = list(rules)
        hashing = "hash" in chosen.values() or any(rule[2] == "hash" for rule in rules)
        if hashing and not hash_key:
            raise ValueError("the hash strategy needs a key")
        self._key = (hash_key or "").encode()
        self._detectors: list[_Detector] = []
        for name, build in _BUILDERS.items():
            strategy = chosen.get(name, "off")
            if strategy != "off":
                self._detectors.append(build(self, strategy))
        for name, pattern, strategy, replacement in rules:
            self._detectors.append(self._rule(name, pattern, strategy, replacement))
        self.keys = tuple(k.lower().replace("-", "_") for k in keys)
        # Each name as its words run together (api_key: apikey): a key is sensitive when
        # its own words, run together, end with one (see :meth:`sensitive`).
        self._key_ends = tuple({"".join(key_words(k)) or k for k in self.keys})
        self._sensitive: dict[str, bool] = {}
        self._key_find: re.Pattern[str] | None = None
        # A word of each name (its last, unless that is shorter than three letters:
        # key of api_key, session of session_id), then the rest of a key, an optional
        # closing quote, and ":", "=" or "%3D": one is in any text a key rule applies
        # to, however its words are joined (api_key, X-Api-Key, apiKey lower-cased).
        # A pattern that starts with a literal is found at the speed of str.find, while
        # an alternation of different words is tried at every character: one search per
        # group of words that share their first letters (password and passwd; the regex
        # compiler moves the shared part out in front).
        stems = sorted({_stem(k) for k in self.keys})
        after = r"[\w.-]*(?P<close>\\{0,2}[\"'])?[ \t]*(?P<sep>[:=]|%3[dD])[ \t]*"
        # The words, to be found by str.find first: for a short text, a regex call
        # costs more than looking for a few words.
        self._key_stems = tuple(stems)
        self._key_mentions = [
            (group, re.compile(f"(?:{'|'.join(map(re.escape, group))}){after}"))
            for group in (
                tuple(words) for _, words in itertools.groupby(stems, key=lambda stem: stem[:2])
            )
        ]
        if stems:
            words = "|".join(map(re.escape, sorted(stems, key=len, reverse=True)))
            self._key_find = re.compile(f"(?:{words}){after}", re.IGNORECASE)

    @property
    def enabled(self) -> bool:
        return bool(self._detectors) or self._key_find is not None

    # ------------------------------------------------------------------ text

    def mask(self, text: str, key_rules: bool = True) -> str:
        """The text with its key rules' values redacted (unless ``key_rules`` is False:
        the caller knows it holds no key), then every match of every detector and rule
        masked."""
        if key_rules and self._key_find is not None:
            text = self.redact_key_text(text)
        return _apply(self._detectors, text)

    def mask_lines(self, text: str, key_lines: int | None = None) -> list[str]:
        """The lines of ``text`` (each ended by a newline), each masked as :meth:`mask`
        masks it alone; the key rules apply to the first ``key_lines`` lines (None: all;
        the caller knows the others hold no key).

        The key rules and the detectors at the front whose matches cannot span or touch
        a newline (url_password, e-mail, cn_id, rrn: while none of bearer, jwt and
        aws_key is on) run over the whole text at once: each line is masked exactly as
        on its own, and the cost per line of looking is gone.
        """
        text, detectors = self._mask_chunk(text, key_lines)
        lines = text.split("\n")
        lines.pop()  # the empty text after the last newline
        return [_apply(detectors, line) for line in lines] if detectors else lines

    def _mask_chunk(self, text: str, key_lines: int | None) -> tuple[str, list[_Detector]]:
        """``text`` with the key rules and the detectors that may run over many lines
        at once applied; and the others, those that could match in it."""
        detectors = self._detectors
        if self._key_find is not None and key_lines != 0:
            if key_lines is None:
                text = self.redact_key_text(text)  # no key's value runs past its line
            else:
                end = -1
                for _ in range(key_lines):
                    end = text.find("\n", end + 1)
                    if end == -1:
                        end = len(text)
                        break
                text = self.redact_key_text(text[:end]) + text[end:]
        while detectors and detectors[0].within_lines:
            text = _apply(detectors[:1], text)
            detectors = detectors[1:]
        # The others line by line, those that could match somewhere in the chunk.
        return text, [detector for detector in detectors if detector.may_match(text)]

    def mask_all(self, texts: list[str], key_texts: int | None = None) -> list[str]:
        """``[mask(text) for text in texts]``, the key rules applied to the first
        ``key_texts`` (None: all): as lines (:meth:`mask_lines`) when no text holds a
        newline."""
        if not self._detectors and (self._key_find is None or key_texts == 0):
            return texts
        joined = "\n".join(texts) + "\n"
        if joined.count("\n") != len(texts):
            return self._mask_mixed(texts, key_texts)
        masked, detectors = self._mask_chunk(joined, key_texts)
        if masked is joined and not detectors:
            return texts  # nothing to mask: no need to split the chunk again
        lines = masked.split("\n")
        lines.pop()
        return [_apply(detectors, line) for line in lines] if detectors else lines

    def _mask_mixed(self, texts: list[str], key_texts: int | None) -> list[str]:
        """:meth:`mask_all` of texts some of which hold a newline (a traceback): those
        one at a time, the others together."""
        limit = len(texts) if key_texts is None else key_texts
        several = [index for index, text in enumerate(texts) if "\n" in text]
        masked = list(texts)
        for index in several:
            masked[index] = self.mask(texts[index], index < limit)
        apart = set(several)
        single = [index for index in range(len(texts)) if index not in apart]
        if single:
            keyed = sum(1 for index in single if index < limit)
            lines = self.mask_all([texts[index] for index in single], keyed)
            for index, line in zip(single, lines, strict=True):
                masked[index] = line
        return masked

    def digest(self, kind: str, text: str) -> str:
        """The keyed, stable token that ``hash`` writes for ``text``."""
        value = hashlib.blake2b(text.encode(), key=self._key, digest_size=8).hexdigest()
        return f"<{kind}:{value}>"

    # ------------------------------------------------------------------ key rules

    def mentions_key(self, text: str) -> bool:
        """Whether ``text`` may hold a value under a key rule (a cheap pre-check).

        A key rule's key holds one of the names and is followed by ``:``, ``=`` or
        ``%3D`` (after an optional quote and spaces), so a name found elsewhere
        (``"token expired"``) does not send the text through the key rules.
        """
        if not self._key_mentions:
            return False
        lower = text.lower()
        present = {word for word in self._key_stems if word in lower}
        return any(
            mention.search(lower) is not None
            for words, mention in self._key_mentions
            if not present.isdisjoint(words)
        )

    def sensitive(self, key: str) -> bool:
        """Whether values under ``key`` are redacted: its words run together (digits and
        a suffix such as ``confirm`` left out) end with a key rule's name, so
        ``password``, ``apiKey``, ``X-Api-Key``, ``password1``, ``password_confirm``,
        ``csrftoken`` and ``AWS_SECRET_ACCESS_KEY`` (with ``access_key``) are, and
        ``token_count`` is not."""
        known = self._sensitive.get(key)
        if known is None:
            words = key_words(key)
            while words and (words[-1].isdigit() or words[-1] in _KEY_SUFFIXES):
                words.pop()
            known = "".join(words).endswith(self._key_ends) if words else False
            if len(self._sensitive) < 4096:
                self._sensitive[key] = known
        return known

    def redact_keys(self, value: Any) -> None:
        """Redact, in place, values under sensitive keys in dicts and lists at any depth."""
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and self.sensitive(key):
                    value[key] = REDACTED
                elif isinstance(item, (dict, list)):
                    self.redact_keys(item)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (dict, list)):
                    self.redact_keys(item)

    def redact_key_text(self, text: str) -> str:
        """``text`` with the value after each sensitive key redacted, wherever the text
        holds one: ``"key": value`` (JSON, JSON inside a JSON string), ``key=value``
        (free text, form bodies, query strings, ``%3D``), ``'key': 'value'`` and
        ``key='value'`` (Python reprs, SQL), ``Key: value`` (headers: the whole value,
        an Authorization scheme kept).  A JSON value that is not a string becomes the
        string ``"<redacted>"``, so JSON text stays JSON."""
        if self._key_find is None or not self.mentions_key(text):
            return text
        lower = text.lower()
        if len(lower) == len(text):  # each character lower-cased in place: search that
            candidates = [
                found
                for words, regex in self._key_mentions
                if any(word in lower for word in words)
                for found in regex.finditer(lower)
            ]
            if not candidates:
                return text
            candidates.sort(key=lambda found: found.start())
        else:
            candidates = list(self._key_find.finditer(text))
        pieces: list[str] = []
        done = 0
        for found in candidates:
            begin = found.start()
            if begin < done:
                continue
            # The key is the run of name characters around the name found.
            head = text[max(done, begin - 64) : begin]
            key_start = begin - (len(head) - len(head.rstrip(_KEY_CHARS)))
            close = found["close"] or ""
            key = text[key_start : found.end("close") - len(close) if close else found.start("sep")]
            if not self.sensitive(key.strip()):
                continue
            span = self._value_span(text, found.end(), key, close)
            if span is None:
                continue
            value_start, value_end, written = span
            pieces.append(text[done:value_start])
            pieces.append(written)
            done = value_end
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def _value_span(self, text: str, at: int, key: str, close: str) -> tuple[int, int, str] | None:
        """(start, end, replacement) of the value that starts at ``at``; None when there
        is nothing to redact (already redacted, empty, an object)."""
        if text.startswith(REDACTED, at):
            return None
        header = key.lower().replace("-", "_").endswith(_HEADER_NAMES)
        line_start = text.rfind("\n", 0, at) + 1
        json_line = text.startswith("{", line_start)
        for quote in ('\\"', '"', "'"):
            if text.startswith(quote, at):
                if quote == '"' and json_line and close != '"':
                    return None  # in JSON text the string ends here ("token=")
                end = _closing(text, at + len(quote), quote)
                if end == -1:
                    break  # no closing quote: read it as an unquoted value
                start = at + len(quote)
                if header:
                    start = _after_scheme(text, start, end)
                if start == end or text.startswith(REDACTED, start):
                    return None
                return start, end, REDACTED
        char = text[at : at + 1]
        if char == "{" or not char:
            return None  # an object: redacted on the structure (JSON output)
        if char == "[":  # a list (Django's QueryDict: 'password': ['hunter2'])
            end = text.find("]", at)
            if end == -1 or end == at + 1:
                return None
            inner = text[at + 1 : end].lstrip()
            quote = next((q for q in ('\\"', '"', "'") if inner.startswith(q)), close)
            written = quote + REDACTED + quote
            return None if text[at + 1 : end] == written else (at + 1, end, written)
        if header:
            ends = _HEADER_END_JSON if json_line else _HEADER_END_RAW
            stop = ends.search(text, at)
            end = stop.start() if stop else len(text)
            if stop and ends is _HEADER_END_JSON:
                end = stop.end() - (1 if stop.group().endswith('"') else 2)
            end = len(text[at:end].rstrip()) + at
            start = _after_scheme(text, at, end)
            if start >= end or text.startswith(REDACTED, start):
                return None
            return start, end, REDACTED
        stop = _VALUE_END.search(text, at)
        end = stop.start() if stop else len(text)
        if end == at:
            return None
        # A JSON key with a value that is no string ("pin": 1234): a string is written.
        written = close + REDACTED + close if close in ('"', '\\"') else REDACTED
        return at, end, written

    # ------------------------------------------------------------------ builders

    def _strategy(
        self, kind: str, strategy: Strategy, partial: Callable[[str], str]
    ) -> Callable[[str], str]:
        if strategy == "partial":
            return partial
        if strategy == "redact":
            token = f"<{kind}>"
            return lambda _text: token
        return lambda text: self.digest(kind, text)

    def _email(self, strategy: Strategy) -> _Detector:
        def redacted(_local: str, _domain: str) -> str:
            return "<email>"

        def hashed(local: str, domain: str) -> str:
            return self.digest("email", f"{local}@{domain}".lower())

        writers = {"partial": partial_email, "redact": redacted, "hash": hashed}
        write = writers[strategy]
        return _Detector("email", functools.partial(_email_sub, write), (), _may_hold_address)

    def _simple(
        self,
        name: str,
        regex: re.Pattern[str],
        strategy: Strategy,
        partial: Callable[[str], str],
        hints: tuple[str, ...] = (),
        valid: Callable[[str], bool] | None = None,
    ) -> _Detector:
        write = self._strategy(name, strategy, partial)
        if valid is None:
            return _regex_detector(name, regex, lambda m: write(m.group(0)), hints)

        def replace(match: re.Match[str]) -> str:
            text = match.group(0)
            return write(text) if valid(text) else text

        return _regex_detector(name, regex, replace, hints)

    def _cn_id(self, strategy: Strategy) -> _Detector:
        """Chinese ID numbers, looked for only where a run of 17 digits starts (found in
        the digits' shape: long order ids would make a search of every digit costly)."""
        write = self._strategy("cn_id", strategy, _partial_cn_id)
        run = b"0" * 17

        def sub(text: str) -> str:
            shape = _digit_shape(text)
            if len(shape) != len(text):  # not ASCII: offsets differ; search it all
                return CN_ID.sub(lambda m: write(m[0]) if _is_cn_id(m[0]) else m[0], text)
            pieces: list[str] = []
            done = at = 0
            while (at := shape.find(run, at)) != -1:
                # The digits may begin with a JSON escape's (\u8bc1 before the number).
                escape = text.rfind("\\u", max(0, at - 5), at + 1)
                start = escape + 6 if escape != -1 and escape + 6 > at else at
                found = CN_ID.match(text, start)
                if found is not None and _is_cn_id(found[0]):
                    pieces += (text[done:start], write(found[0]))
                    done = found.end()
                # On past this run of digits.
                at = shape.find(b" ", at + 17)
                if at == -1:
                    break
            if not pieces:
                return text
            pieces.append(text[done:])
            return "".join(pieces)

        return _Detector("cn_id", sub, (), _may_hold_cn_id)

    def _rule(
        self, name: str, pattern: str, strategy: Literal["redact", "hash"], text: str | None
    ) -> _Detector:
        token = text if text is not None else f"<{name}>"

        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            cut = _cut_at_quote(found)
            if cut == 0:
                return found
            masked = token if strategy == "redact" else self.digest(name, found[:cut])
            return masked + found[cut:]

        return _regex_detector(name, re.compile(pattern), replace)


def _is_ipv6(text: str) -> bool:
    # Words of hex letters only (a::b, dead::beef) are names far more often than addresses.
    if not any(char.isdigit() for char in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_ipv4(text: str) -> bool:
    return all(int(part) <= 255 for part in text.split("."))


def _is_card(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _partial_ipv4(text: str) -> str:
    return text[: text.rfind(".")] + ".*"


def _partial_jwt(text: str) -> str:
    return text.split(".", 1)[0] + ".*.*"


def _partial_aws(text: str) -> str:
    return text[:4] + "*" * 12 + text[-4:]


def _bearer(masker: Masker, strategy: Strategy) -> _Detector:
    def replace(match: re.Match[str]) -> str:
        token = match.group("token")
        if strategy == "partial":
            written = token[:4] + "***"
        elif strategy == "redact":
            written = "<bearer>"
        else:
            written = masker.digest("bearer", token)
        return f"{match.group('scheme')} {written}"

    return _regex_detector("bearer", BEARER, replace, ("earer", "EARER"))


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _real_day(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month - 1]


def _rrn(masker: Masker, strategy: Strategy) -> _Detector:
    """Korean resident registration numbers; ``partial`` keeps the birth date and the
    digit after the hyphen (900101-1******), as Korean services print them."""

    def sub(text: str) -> str:
        pieces: list[str] = []
        done = 0
        for found in RRN.finditer(text):
            start = found.start() - 6
            if start < done or not _real_day(
                int(text[start + 2 : start + 4]), int(text[start + 4 : start + 6])
            ):
                continue
            number = text[start : found.end()]
            if strategy == "partial":
                written = number[:8] + "******"
            elif strategy == "redact":
                written = "<rrn>"
            else:
                written = masker.digest("rrn", number)
            pieces += (text[done:start], written)
            done = found.end()
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    return _Detector("rrn", sub, ("-",), _may_hold_rrn)


_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _is_cn_id(text: str) -> bool:
    total = sum(int(digit) * weight for digit, weight in zip(text, _CN_WEIGHTS, strict=False))
    return "10X98765432"[total % 11] == text[17].upper() and _real_day(
        int(text[10:12]), int(text[12:14])
    )


def _partial_cn_id(text: str) -> str:
    """Region kept, birth date and sequence hidden, the last four kept."""
    return text[:6] + "*" * 8 + text[14:]


def _url_password(masker: Masker, strategy: Strategy) -> _Detector:
    def replace(match: re.Match[str]) -> str:
        password = match.group("password")
        if strategy == "partial":
            written = "***"
        elif strategy == "redact":
            written = "<url_password>"
        else:
            written = masker.digest("url_password", password)
        return f"://{match.group('user')}:{written}@"

    return _regex_detector("url_password", URL_PASSWORD, replace, ("://",))


def _private_key(masker: Masker, strategy: Strategy) -> _Detector:
    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if "<private_key" in found:
            return found  # masked already
        body = masker.digest("private_key", found) if strategy == "hash" else "<private_key>"
        tail = match.group("tail")
        if tail is not None:
            return f"{body}-----END {tail}PRIVATE KEY-----"
        kind = match.group("kind")
        end = match.group("end") or ""
        return f"-----BEGIN {kind}PRIVATE KEY-----{body}{end}"

    return _regex_detector("private_key", PRIVATE_KEY, replace, ("PRIVATE KEY-----",))


# Detectors whose matches never span or touch a newline.
_WITHIN_LINES = frozenset({"email", "url_password", "cn_id", "rrn"})

_BUILDERS: dict[str, Callable[[Masker, Strategy], _Detector]] = {
    # Before e-mail: in postgres://app:secret@db.example.com "secret@db…" is no address.
    "url_password": _url_password,
    # Bearer before jwt: "Bearer eyJ…" is masked as the bearer token it is.
    "bearer": _bearer,
    "jwt": lambda m, s: m._simple("jwt", JWT, s, _partial_jwt, ("eyJ",)),
    "aws_key": lambda m, s: m._simple("aws_key", AWS_KEY, s, _partial_aws),
    "email": lambda m, s: m._email(s),
    # Before card and phone, which could read part of an ID number.
    "cn_id": lambda m, s: m._cn_id(s),
    "rrn": _rrn,
    # A key's body holds no "@": after e-mail, which may then run over many lines at once.
    "private_key": _private_key,
    "card": lambda m, s: m._simple("card", CARD, s, lambda t: _star_digits(t, 4), (), _is_card),
    "phone": lambda m, s: m._simple("phone", PHONE, s, lambda t: _star_digits(t, 2)),
    "ipv6": lambda m, s: m._simple("ipv6", IPV6, s, _ipv6_prefix, (":",), _is_ipv6),
    "ipv4": lambda m, s: m._simple("ipv4", IPV4, s, _partial_ipv4, (".",), _is_ipv4),
}


def masker_for(masking: MaskingConfig, env: Mapping[str, str] | None = None) -> Masker:
    """The masker a configuration's ``masking`` section describes."""
    environ = os.environ if env is None else env
    key = masking.hash_key or environ.get("SHIPPER_HASH_KEY")
    detectors: dict[str, Strategy] = {name: getattr(masking, name) for name in _BUILDERS}
    rules = [(r.name, r.pattern, r.strategy, r.replacement) for r in masking.rules]
    return Masker(masking.email, key, detectors=detectors, rules=rules, keys=masking.keys)
