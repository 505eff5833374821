"""Masking of personal data in text, before anything leaves the process.

A :class:`Masker` rewrites every match of its detectors in a string.  It is applied
to the final text of each event (so fields, nested JSON and tracebacks are all
covered by one pass) and to the shipper's own log lines.

E-mail strategies:

- ``partial``: the applications' own form, ``someone@example.com`` becomes
  ``**meon*@example.com`` (``"**" + local[2:-1] + "*@" + domain``).
- ``redact``: ``<email>``.
- ``hash``: ``<email:0123456789abcdef>``, a keyed BLAKE2b digest of the lower-cased
  address: stable across restarts for one key, so one user's events still correlate.
- ``off``: unchanged.

Replacements never contain ``"`` or ``\\``, so masking JSON text keeps it valid JSON.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Literal

EmailStrategy = Literal["partial", "redact", "hash", "off"]

# The local part stops at characters that cannot stand unquoted in an address, and
# never takes a quote or backslash (so JSON text stays valid when it is replaced).
# The domain needs at least one dot and a TLD of two or more letters; an address
# written URL-encoded (``%40``) is caught too.
EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+)*)"
    r"(?:@|%40)"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
    r"(?![A-Za-z0-9-])"
)


def partial_email(local: str, domain: str) -> str:
    """The applications' own partial form of an address."""
    return "**" + local[2:-1] + "*@" + domain


class Masker:
    """Rewrites the personal data its strategies cover in any string."""

    def __init__(self, email: EmailStrategy = "partial", hash_key: str | None = None) -> None:
        self.email = email
        if email == "hash" and not hash_key:
            raise ValueError("the hash strategy needs a key")
        self._key = (hash_key or "").encode()
        self._replace_email = self._email_replacer(email)

    def _email_replacer(self, strategy: EmailStrategy) -> Callable[[re.Match[str]], str] | None:
        if strategy == "off":
            return None
        if strategy == "partial":
            return lambda m: partial_email(m.group("local"), m.group("domain"))
        if strategy == "redact":
            return lambda m: "<email>"

        def hashed(match: re.Match[str]) -> str:
            address = f"{match.group('local')}@{match.group('domain')}".lower()
            digest = hashlib.blake2b(address.encode(), key=self._key, digest_size=8)
            return f"<email:{digest.hexdigest()}>"

        return hashed

    def mask(self, text: str) -> str:
        """The text with every covered item masked."""
        replace = self._replace_email
        if replace is None or ("@" not in text and "%40" not in text):
            return text
        return EMAIL.sub(replace, text)

    @property
    def enabled(self) -> bool:
        return self._replace_email is not None
