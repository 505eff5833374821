"""PutLogEvents sent directly (after botocore's first request on a client) is the same
request botocore would send, signed as AWS checks it, and its errors are the ones
botocore's path gives for the same answer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shipper.cloudwatch import LogsClient
from shipper.cloudwatch_errors import CloudWatchError
from shipper.config import CloudWatchConfig
from shipper.records import Event
from tests.support.loopback import serving

REGION = "eu-west-1"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@asynccontextmanager
async def api(answer: tuple[int, dict[str, Any] | str]) -> AsyncIterator[tuple[str, list[Seen]]]:
    """A loopback API that records every request and gives each the same answer."""
    seen: list[Seen] = []
    status, body = answer

    async def handle(request: web.Request) -> web.Response:
        seen.append(Seen(request.path_qs, dict(request.headers), await request.read()))
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/x-amz-json-1.1")

    async with serving(handle) as url:
        yield url, seen


def batch(*messages: str) -> list[Event]:
    now = int(time.time() * 1000)
    return [Event(now, m) for m in messages]


async def _put_twice(url: str, token: str | None) -> list[Any]:
    """Two calls on one client: botocore's (which shows the way), then the direct one.
    Each call's result, or the error it raised."""
    client = LogsClient(CloudWatchConfig(region=REGION, endpoint_url=url, request_timeout=5))
    await client.open()
    outcomes: list[Any] = []
    events = batch("é ü", "two")
    try:
        for _ in range(2):
            try:
                outcomes.append(await client.put_events("g", "s", events, token))
            except CloudWatchError as exc:
                outcomes.append(exc)
    finally:
        await client.close()
    return outcomes


def _signature_checks(seen: Seen, secret: str, token: str | None) -> bool:
    """Recompute the request's SigV4 signature as the service does, from what arrived."""
    authorization = seen.headers["Authorization"]
    scope = authorization.split("Credential=")[1].split(",")[0]
    access_key, _date, region, service, _ = scope.split("/")
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {name: seen.headers[name] for name in seen.headers if name.lower() in signed}
    request = AWSRequest("POST", "http://" + seen.headers["Host"] + seen.path, headers, seen.body)
    request.context["timestamp"] = seen.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(access_key, secret, token), service, region)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return authorization.endswith("Signature=" + expected)


class TestTheDirectRequest:
    @pytest.mark.parametrize("session_token", [None, "a-session-token"])
    def test_it_is_botocores_request_signed_as_aws_checks_it(self, monkeypatch, session_token):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "direct")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "direct-secret")
        if session_token is None:
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        else:
            monkeypatch.setenv("AWS_SESSION_TOKEN", session_token)

        async def run() -> tuple[list[Any], list[Seen]]:
            async with api((200, {"nextSequenceToken": "next"})) as (url, seen):
                return await _put_twice(url, "t-1"), seen

        outcomes, seen = asyncio.run(run())
        assert [o.next_token for o in outcomes] == ["next", "next"]
        botocores, direct = seen
        # The second went directly: botocore numbers each of its own requests.
        assert "amz-sdk-invocation-id" in botocores.headers
        assert "amz-sdk-invocation-id" not in direct.headers
        assert direct.path == botocores.path
        for name in ("Content-Type", "X-Amz-Target", "User-Agent"):
            assert direct.headers[name] == botocores.headers[name]
        assert json.loads(direct.body) == json.loads(botocores.body)
        assert json.loads(direct.body)["sequenceToken"] == "t-1"
        assert direct.headers.get("X-Amz-Security-Token") == session_token
        for request in seen:
            assert f"/{REGION}/logs/aws4_request" in request.headers["Authorization"]
            assert _signature_checks(request, "direct-secret", session_token)


ANSWERS = {
    "wrong token": (
        400,
        {
            "__type": "InvalidSequenceTokenException",
            "message": "The given sequenceToken is invalid.",
            "expectedSequenceToken": "495903",
        },
    ),
    "already accepted": (
        400,
        {
            "__type": "DataAlreadyAcceptedException",
            "message": "The given batch of log events has already been accepted. "
            "The next batch can be sent with sequenceToken: 777",
        },
    ),
    "throttled, with a namespace": (
        400,
        {"__type": "com.amazonaws.logs#ThrottlingException", "message": "Rate exceeded"},
    ),
    "expired": (400, {"__type": "ExpiredTokenException", "Message": "The token has expired"}),
    "missing": (
        400,
        {
            "__type": "ResourceNotFoundException",
            "message": "The specified log group does not exist.",
        },
    ),
    "invalid": (400, {"__type": "InvalidParameterException", "message": "bad event"}),
    "denied": (400, {"__type": "AccessDeniedException", "message": "not allowed"}),
    "a proxy's page": (502, "<html>Bad Gateway</html>"),
    "no body": (503, ""),
}


class TestErrors:
    @pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
    def test_the_same_answer_gives_the_same_error_on_both_paths(self, monkeypatch, answer):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "direct")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "direct-secret")

        async def run() -> tuple[list[Any], list[Seen]]:
            async with api(answer) as (url, seen):
                return await _put_twice(url, None), seen

        (botocores, direct), requests = asyncio.run(run())
        assert ["amz-sdk-invocation-id" in r.headers for r in requests] == [True, False]
        assert isinstance(botocores, CloudWatchError)
        assert type(direct) is type(botocores)
        assert (direct.code, direct.detail) == (botocores.code, botocores.detail)
        assert getattr(direct, "expected", None) == getattr(botocores, "expected", None)
