"""PutLogEvents as one signed HTTP request, without botocore's per-call machinery.

A quiet source's stream calls PutLogEvents about once a second with a few events, so
the cost of a call is what botocore does around it: some ten event hooks, the
endpoint rules, serializing, a request object built and prepared twice, the answer
parsed against the operation's model.  That was about half of a small call's CPU.
What a long-lived stream needs per call is less:

- the body, encoded by :mod:`shipper.cloudwatch` with msgspec as before;
- a SigV4 signature with the current credentials (:mod:`shipper.signing`, which
  signs as botocore's ``SigV4Auth`` does at a fraction of the cost), and the
  credentials of the client's own session (the chain, or the assumed role), which
  botocore refreshes before they expire;
- the HTTP round trip through the client's own HTTP session: its connection pool,
  proxies, TLS settings and timeouts;
- the answer's JSON, or the service's error as botocore would have raised it
  (:func:`service_error`), so that :func:`shipper.cloudwatch.translate` treats both
  paths alike.

Where to send and the fixed headers (the target, the content type, the User-Agent)
are learned from botocore's own first PutLogEvents request on each client, at
``before-send``: endpoint resolution (region, FIPS, dual-stack, ``endpoint_url``)
stays botocore's.  Until then, and for a body msgspec cannot encode, calls go
through botocore.
"""

from __future__ import annotations

import http.client
import inspect
from typing import Any

import msgspec
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, NoCredentialsError

from shipper.signing import RequestSigner

# The headers of botocore's request that every later request repeats as they were;
# the rest (date, signature, token, invocation ids) are made per request.
_KEPT_HEADERS = ("Content-Type", "X-Amz-Target", "User-Agent")
_SIGNING_NAME = "logs"
_OPERATION = "PutLogEvents"

_decode = msgspec.json.decode


class PutRequest:
    """PutLogEvents on one aiobotocore client, once botocore has shown the way."""

    def __init__(self, client: Any, credentials: Any, region: str) -> None:
        """``credentials``: the client's (its session's ``get_credentials()``)."""
        self._http = client._endpoint.http_session  # the client's pool, proxies and TLS
        self._credentials = credentials
        self._region = region
        self._url: str | None = None
        self._signer: RequestSigner | None = None
        client.meta.events.register(f"before-send.cloudwatch-logs.{_OPERATION}", self._learn)

    @property
    def ready(self) -> bool:
        return self._url is not None and self._credentials is not None

    def _learn(self, request: Any, **_: Any) -> None:
        """``before-send`` handler: note where botocore sends PutLogEvents and how."""
        headers = {
            name: _text(request.headers[name]) for name in _KEPT_HEADERS if name in request.headers
        }
        self._signer = RequestSigner(request.url, headers, _SIGNING_NAME, self._region)
        self._url = request.url

    async def put(self, body: bytes) -> dict[str, Any]:
        """Send one PutLogEvents body; the service's answer.  Raises botocore's errors:
        :class:`ClientError` for the service's, the HTTP session's own for the rest."""
        assert self._url is not None
        assert self._signer is not None
        frozen = self._credentials.get_frozen_credentials()
        if inspect.isawaitable(frozen):  # refreshable credentials refresh here
            frozen = await frozen
        if frozen is None or frozen.access_key is None:
            raise NoCredentialsError()
        headers = self._signer.headers(body, frozen.access_key, frozen.secret_key, frozen.token)
        request = AWSPreparedRequest("POST", self._url, headers, body, stream_output=False)
        response = await self._http.send(request)
        content = await response.content
        if response.status_code == 200:
            answer = _decode(content) if content else {}
            return answer if isinstance(answer, dict) else {}
        raise service_error(response.status_code, content)


def service_error(status: int, content: bytes) -> ClientError:
    """The error botocore raises for an AWS JSON protocol answer that is not a
    success: the code from the body's ``__type`` (after any ``#``, before any ``:``),
    else the HTTP status; the body's message; the body's other fields beside them, as
    botocore puts an error's modeled fields (``expectedSequenceToken``).  A server
    error with no body or a page of HTML (a proxy's, a load balancer's) is the status
    and its reason phrase."""
    text = content.strip()
    if status >= 500 and (not text or text.startswith(b"<html>")):
        code, message, fields = str(status), http.client.responses.get(status, ""), {}
    else:
        try:
            body = _decode(content) if content else {}
        except msgspec.DecodeError:
            body = {}
        fields = body if isinstance(body, dict) else {}
        code = str(fields.get("__type") or status).partition(":")[0].rpartition("#")[2]
        message = str(fields.get("message", fields.get("Message", "")))
    response: dict[str, Any] = {
        key: value for key, value in fields.items() if key not in ("__type", "message", "Message")
    }
    response["Error"] = {"Code": code, "Message": message}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, _OPERATION)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
