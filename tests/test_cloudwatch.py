"""The CloudWatch client: the service's answers become our errors at one boundary.

Runs :class:`shipper.cloudwatch.LogsClient` in this process against the strict
front (before moto), so every error is a real HTTP answer parsed by botocore.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from shipper import __version__, cloudwatch
from shipper.cloudwatch import LogsClient
from shipper.cloudwatch_errors import (
    DataAlreadyAccepted,
    ExpiredCredentials,
    InvalidSequenceToken,
    MissingCredentials,
    Rejected,
    ResourceNotFound,
    Retriable,
)
from shipper.config import CloudWatchConfig
from shipper.records import Event
from tests.support.loopback import serving
from tests.support.strict_front import StrictFront

SEED = "49590338271490256608559692538361571095921575989136588898"


def events(*messages: str) -> list[Event]:
    now = int(time.time() * 1000)
    return [Event(now, m) for m in messages]


def with_client(
    front: StrictFront, body: Callable[[LogsClient], Awaitable[Any]], **config: Any
) -> Any:
    async def run() -> Any:
        client = LogsClient(CloudWatchConfig(endpoint_url=front.url, request_timeout=5, **config))
        await client.open()
        try:
            return await body(client)
        finally:
            await client.close()

    return asyncio.run(run())


class TestErrors:
    def test_each_fault_becomes_its_error(self, front, group_prefix):
        """Throttling and 503 are retriable; an expired token asks for a refresh; an
        InvalidParameter is a refusal; a missing group is ResourceNotFound."""
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> dict[str, Exception]:
            await client.create_stream(group, "s", True)
            found: dict[str, Exception] = {}
            for kind in ("throttle", "unavailable", "invalid"):
                front.inject(kind, times=1)
                try:
                    await client.put_events(group, "s", events("x"), None)
                except Exception as exc:
                    found[kind] = exc
            try:
                await client.put_events(group + "/missing", "s", events("x"), None)
            except Exception as exc:
                found["missing"] = exc
            front.expire_key("testing")
            try:
                await client.put_events(group, "s", events("x"), None)
            except Exception as exc:
                found["expired"] = exc
            return found

        found = with_client(front, body)
        assert type(found["throttle"]) is Retriable
        assert found["throttle"].code == "ThrottlingException"
        assert type(found["unavailable"]) is Retriable
        assert found["unavailable"].code == "ServiceUnavailableException"
        assert type(found["invalid"]) is Rejected
        assert type(found["missing"]) is ResourceNotFound
        assert type(found["expired"]) is ExpiredCredentials

    def test_sequence_token_errors_carry_the_expected_token(self, front, group_prefix):
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> tuple[Exception, str | None, Exception]:
            await client.create_stream(group, "s", True)
            front.legacy_tokens(seed={(group, "s"): SEED})  # as if it held data already
            with pytest.raises(InvalidSequenceToken) as wrong:
                await client.put_events(group, "s", events("a"), None)
            batch = events("b")
            result = await client.put_events(group, "s", batch, wrong.value.expected)
            with pytest.raises(DataAlreadyAccepted) as again:
                await client.put_events(group, "s", batch, wrong.value.expected)
            return wrong.value, result.next_token, again.value

        wrong, next_token, again = with_client(front, body)
        assert wrong.expected == SEED
        assert next_token is not None
        assert next_token != SEED
        assert again.expected == next_token


class TestClientLifecycle:
    def test_a_refresh_does_not_cut_off_a_call_in_flight(self, front, group_prefix):
        """Another stream refreshes credentials while this call waits for a slow answer:
        the call completes on the old client, and the next one uses the new client."""
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> tuple[Any, int]:
            await client.create_stream(group, "s", True)
            front.inject("slow", times=1, delay=1.0)
            slow_put = asyncio.ensure_future(client.put_events(group, "s", events("slow"), None))
            await asyncio.sleep(0.3)
            await client.refresh(client.generation)
            await client.refresh(0)  # a stale refresh request is ignored
            result = await slow_put
            await client.put_events(group, "s", events("after"), None)
            return result, client.generation

        result, generation = with_client(front, body)
        assert result.rejected == {}
        assert generation == 1
        assert front.put_count("s") == 2

    def test_create_stream_creates_the_group_once(self, front, moto, group_prefix):
        """Only the first call creates the group (and says so); retention is a call of
        its own."""
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> list[bool]:
            first = await client.create_stream(group, "one", True)
            second = await client.create_stream(group, "two", True)
            again = await client.create_stream(group, "two", True)
            await client.put_retention(group, 14)
            return [first, second, again]

        assert with_client(front, body) == [True, False, False]
        assert moto.groups(group)[group]["retentionInDays"] == 14
        assert moto.streams(group) == ["one", "two"]

    def test_create_stream_leaves_a_missing_group_alone_when_not_allowed(self, front, group_prefix):
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> None:
            await client.create_stream(group, "one", False)

        with pytest.raises(ResourceNotFound):
            with_client(front, body)

    def test_a_refresh_says_when_it_found_no_credentials(
        self, front, group_prefix, monkeypatch, tmp_path
    ):
        """Issue 18/20: with no credentials anywhere a call fails as MissingCredentials
        and a refresh reports the problem (so ``credentials.refreshed`` is not logged);
        once a credentials file appears, a refresh finds it and calls are signed."""
        credentials = tmp_path / "credentials"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        group = group_prefix + "/app"

        async def body(client: LogsClient) -> tuple[str | None, str | None]:
            with pytest.raises(MissingCredentials):
                await client.create_stream(group, "s", True)
            nothing = await client.refresh(client.generation)
            credentials.write_text(
                "[default]\naws_access_key_id = AKIAFOUNDLATE\naws_secret_access_key = s\n"
            )
            found = await client.refresh(client.generation)
            await client.create_stream(group, "s", True)
            return nothing, found

        nothing, found = with_client(front, body)
        assert nothing == cloudwatch.NO_CREDENTIALS
        assert found is None
        assert front.keys_seen()["AKIAFOUNDLATE"] >= 1


class TestFailedCalls:
    @pytest.mark.parametrize("fault", ["reset", "unavailable"])
    def test_a_failed_call_lets_go_of_its_body(self, front, group_prefix, fault):
        """SPEC §3.3 (memory does not grow while CloudWatch is down): a failed try's
        request body is freed with the try, not kept until the garbage collector runs
        (while an outage pauses the reader, it seldom does)."""
        group = group_prefix + "/app"
        batch = events(*("x" * 100_000 for _ in range(8)))  # an 800 kB body
        bodies = [tracemalloc.Filter(True, cloudwatch.__file__)]  # where bodies are made

        async def body(client: LogsClient) -> int:
            await client.create_stream(group, "s", True)
            gc.collect()
            gc.disable()  # as in an outage: a paused reader gives the collector no reason to run
            tracemalloc.start()
            try:
                for _ in range(5):
                    front.inject(fault, times=1)
                    with pytest.raises(Retriable):
                        await client.put_events(group, "s", batch, None)
                held = tracemalloc.take_snapshot().filter_traces(bodies)
                return sum(stat.size for stat in held.statistics("filename"))
            finally:
                tracemalloc.stop()
                gc.enable()

        held = with_client(front, body)
        assert held < 100_000, f"{held:,} bytes of request bodies held after 5 failed tries"


class TestRequests:
    def test_every_call_names_the_shipper_and_is_signed(self, monkeypatch):
        """The User-Agent, made once per client, names the shipper and its version on
        every call (operators find the shipper's calls by it in proxy and endpoint
        logs), and every call still carries its own SigV4 signature."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "signer")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "signer-secret")
        seen: list[tuple[str, str, str]] = []

        async def api(request: web.Request) -> web.Response:
            await request.read()
            headers = request.headers
            seen.append((headers["User-Agent"], headers["Authorization"], headers["X-Amz-Date"]))
            token = {"nextSequenceToken": str(len(seen))}
            return web.json_response(token, content_type="application/x-amz-json-1.1")

        async def run() -> None:
            async with serving(api) as url:
                client = LogsClient(CloudWatchConfig(region="us-east-1", endpoint_url=url))
                await client.open()
                try:
                    await client.put_events("g", "s", events("one"), None)
                    await asyncio.sleep(1.1)  # the next request is of another second
                    await client.put_events("g", "s", events("two", "three"), "1")
                finally:
                    await client.close()

        asyncio.run(run())
        assert len(seen) == 2
        for agent, authorization, _ in seen:
            assert agent.startswith(f"shipper/{__version__} aiobotocore/")
            assert "botocore/" in agent
            assert authorization.startswith("AWS4-HMAC-SHA256 Credential=signer/")
        (_, first, first_date), (_, second, second_date) = seen
        assert first_date != second_date
        assert first.rpartition("Signature=")[2] != second.rpartition("Signature=")[2]
