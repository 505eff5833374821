"""AWS Signature Version 4 for the one request a stream repeats: a POST of a body.

botocore's ``SigV4Auth`` is general: on every request it parses the URL, builds its
headers as ``email.message`` objects, and derives the signing key with four HMACs.
For a quiet host's PutLogEvents, about 40 calls a second, that was the largest part
of a call's CPU after the round trip.  Here the URL, the fixed headers and their
canonical form are worked out once per client; per request there are the date, the
credentials' session token, two SHA-256 hashes and one HMAC, with the signing key
kept for as long as its day and secret stay the same.

It signs as ``SigV4Auth`` does (header-based signing, the body's hash in the
canonical request): the same headers (all but ``User-Agent`` and the hop-by-hop
ones, with ``Host``), the same canonical path and query.  ``tests/test_signing.py``
holds its signatures equal to botocore's across URLs, tokens, days and secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST
from botocore.utils import normalize_url_path

_ALGORITHM = "AWS4-HMAC-SHA256"
# Headers sent but not signed, as botocore leaves them out (a proxy may change them).
_UNSIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RequestSigner:
    """Signs POSTs to one URL with fixed headers, for one service in one region."""

    def __init__(self, url: str, headers: Mapping[str, str], service: str, region: str) -> None:
        parts = urlsplit(url)
        self._path = quote(normalize_url_path(parts.path), safe="/~")
        pairs = sorted(pair.partition("=")[::2] for pair in parts.query.split("&") if parts.query)
        self._query = "&".join(f"{key}={value}" for key, value in pairs)
        self._headers = dict(headers)  # sent as given
        self._signed = {
            name.lower(): " ".join(value.split())
            for name, value in headers.items()
            if name.lower() not in _UNSIGNED
        }
        self._signed["host"] = _host(url)
        self._service = service
        self._region = region
        self._key: tuple[str, str, bytes] | None = None  # (secret, day, signing key)

    def headers(
        self,
        body: bytes,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: float | None = None,
    ) -> dict[str, str]:
        """The headers to send ``body`` with: the fixed ones, the date, the session
        token (with temporary credentials) and the ``Authorization``."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = amz_date[:8]
        signed = dict(self._signed)
        signed["x-amz-date"] = amz_date
        if token:
            signed["x-amz-security-token"] = token
        names = sorted(signed)
        signed_names = ";".join(names)
        canonical = "\n".join(
            (
                "POST",
                self._path,
                self._query,
                "".join(f"{name}:{signed[name]}\n" for name in names),
                signed_names,
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        to_sign = "\n".join(
            (_ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        signature = hmac.new(
            self._signing_key(secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        sent = dict(self._headers)
        sent["X-Amz-Date"] = amz_date
        if token:
            sent["X-Amz-Security-Token"] = token
        sent["Authorization"] = (
            f"{_ALGORITHM} Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
        return sent

    def _signing_key(self, secret_key: str, day: str) -> bytes:
        """The day's key for this region and service: derived again when the day or
        the secret (rotated credentials) changes."""
        if self._key is not None and self._key[:2] == (secret_key, day):
            return self._key[2]
        key = ("AWS4" + secret_key).encode()
        for part in (day, self._region, self._service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._key = (secret_key, day, key)
        return key


def _host(url: str) -> str:
    """The ``Host`` header botocore signs: the host in lower case, bracketed if IPv6,
    with its port unless it is the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host
