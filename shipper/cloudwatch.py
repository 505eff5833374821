"""The CloudWatch Logs API, through aiobotocore: the only module that imports it.

Calls are made once each (botocore's own retries are off: :mod:`shipper.stream`
retries, per stream, without ever giving up) and every failure is translated here,
at this one boundary, into the errors of :mod:`shipper.cloudwatch_errors`.
Parameter validation is off: the batcher already guarantees every PutLogEvents rule,
and validating 10,000 events per call costs real CPU.

The region is ``cloudwatch.region``, else botocore's chain (:func:`identity.region`).
Credentials are botocore's chain; with ``role_arn`` they are the role's, assumed with
the chain's through botocore's own assume-role fetcher (STS's endpoint resolved by
botocore, regional) and assumed again by botocore before they expire.

PutLogEvents bodies are encoded here, once, with msgspec: botocore's serializer walks
the operation's shape for every member of every event and then ``json.dumps`` the
~1 MB result, which costs several times more than the rest of the request.  A
client's first PutLogEvents goes through botocore (two event handlers encode the
body and swap it into the built request); every later one is sent by
:mod:`shipper.put_request` as one signed request on the client's own HTTP session,
to where botocore sent the first, and its errors become botocore's before they are
translated here like any other.

The User-Agent is made once per client (:func:`_user_agent`): botocore otherwise
builds its own twice for every request, sanitizing some twenty components character
by character, a sixth of a small PutLogEvents call's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import platform
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import msgspec
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioCredentialResolver,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession, get_session
from botocore.credentials import CredentialProvider

from shipper import __version__, identity, telemetry
from shipper.aws_data import shared_loader
from shipper.cloudwatch_errors import (
    CloudWatchError,
    DataAlreadyAccepted,
    ExpiredCredentials,
    InvalidSequenceToken,
    MissingCredentials,
    Rejected,
    ResourceNotFound,
    Retriable,
)
from shipper.config import CloudWatchConfig
from shipper.put_request import PutRequest
from shipper.records import Event

_RETRIABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "OperationAbortedException",
        "RequestLimitExceeded",
    }
)
_EXPIRED_CODES = frozenset(
    {
        "ExpiredTokenException",
        "ExpiredToken",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)
_REJECTED_CODES = frozenset({"InvalidParameterException", "SerializationException"})
NO_CREDENTIALS = "no AWS credentials found (environment, shared files, container or instance role)"
_EXPECTED_TOKEN = re.compile(r"sequenceToken(?: is)?:\s*(\S+)")


class _PutLogEventsBody(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    log_group_name: str
    log_stream_name: str
    log_events: list[Event]  # encoded as they are: an Event is a PutLogEvents event
    sequence_token: str | None = None


_encode_body = msgspec.json.Encoder().encode
_BODY = "shipper_body"  # where the prebuilt body waits in botocore's request context


def _put_body(group: str, stream: str, events: list[Event], token: str | None) -> bytes | None:
    """The PutLogEvents JSON body; None when msgspec cannot encode a message (a lone
    surrogate), which botocore's serializer then escapes as before."""
    try:
        return _encode_body(_PutLogEventsBody(group, stream, events, token))
    except UnicodeEncodeError:
        return None


def _encode_events(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``before-parameter-build`` handler: encode the body from the :class:`Event` list
    that :meth:`LogsClient.put_events` passes, and leave botocore no events to walk.

    The body travels in the call's own request context, so nothing outlives the call.
    """
    events: list[Event] = params["logEvents"]
    body = _put_body(
        params["logGroupName"], params["logStreamName"], events, params.get("sequenceToken")
    )
    if body is None:
        params["logEvents"] = [{"timestamp": e.timestamp, "message": e.message} for e in events]
    else:
        params["logEvents"] = []
        context[_BODY] = body


def _swap_in_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``before-call`` handler: the serialized request gets the prebuilt body."""
    body = context.pop(_BODY, None)
    if body is not None:
        params["body"] = body


def _user_agent(session: AioSession) -> str:
    """The User-Agent of every request: the shipper, then the SDK as botocore's legacy
    form names it (botocore appends the session's ``botocore/VERSION``).

    A fixed string set in the client's config, so botocore does not rebuild its own
    for every request; it loses only botocore's per-request list of SDK features.
    """
    return (
        f"shipper/{__version__} {session.user_agent_name}/{session.user_agent_version} "
        f"Python/{platform.python_version()} {platform.system()}/{platform.release()}"
    )


@dataclass
class PutResult:
    next_token: str | None
    rejected: dict[str, int] = field(default_factory=dict)  # rejectedLogEventsInfo


def _drop_tracebacks(exc: BaseException) -> None:
    """Drop the tracebacks of a failed call's exception and of those it came from.

    When a connection fails, aiobotocore's request loop (botocore's, made async) holds
    the exception in a local of the frame that raises it: the exception's traceback
    holds that frame and the frame the exception, a reference cycle that keeps the
    request and its body (up to 1 MB) until the garbage collector runs.  While
    CloudWatch is down the reader is paused and the collector seldom runs, so every
    failed try kept its body (eight, 11 MB, in ten seconds of an outage).  Without
    their tracebacks the frames go at once.  Nothing needs them: a failed call is
    reported by its error's code and message.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = None
        pending += (error.__cause__, error.__context__)


def translate(exc: BaseException) -> CloudWatchError:
    """Our error for whatever botocore, aiohttp or asyncio raised."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        detail = str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("InvalidSequenceTokenException", "DataAlreadyAcceptedException"):
            expected = exc.response.get("expectedSequenceToken") or error.get(
                "expectedSequenceToken"
            )
            if expected is None:
                found = _EXPECTED_TOKEN.search(detail)
                expected = found.group(1) if found else None
            if expected == "null":
                expected = None
            kind = DataAlreadyAccepted if code.startswith("DataAlready") else InvalidSequenceToken
            return kind(code, detail, expected)
        if code == "ResourceNotFoundException":
            return ResourceNotFound(code, detail)
        if code in _EXPIRED_CODES:
            return ExpiredCredentials(code, detail)
        if code in _REJECTED_CODES:
            return Rejected(code, detail)
        if code in _RETRIABLE_CODES or status >= 500 or status == 429:
            return Retriable(code, detail)
        # Anything else (AccessDenied, an unknown code) is retried too: the files hold
        # the backlog until the operator fixes it, which beats dropping.
        return Retriable(code, detail)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return MissingCredentials("NoCredentials", NO_CREDENTIALS)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return Retriable(type(exc).__name__, str(exc))
    # aiohttp and socket errors, timeouts, and anything unforeseen: retried with backoff
    # (and logged each time) rather than ending the stream's delivery.
    return Retriable(type(exc).__name__, str(exc))


class _Handle:
    """One open aiobotocore client, its direct PutLogEvents, and the calls still using
    it."""

    def __init__(self, client: Any, put: PutRequest, stack: contextlib.AsyncExitStack) -> None:
        self.client = client
        self.put = put
        self.stack = stack
        self.in_flight = 0
        self.retired = False

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.stack.aclose()


class _AssumedRole(CredentialProvider):  # type: ignore[misc]
    """A credential provider of the role's credentials: a session's whole chain."""

    METHOD = "assume-role"

    def __init__(self, credentials: AioDeferredRefreshableCredentials) -> None:
        super().__init__()
        self.credentials = credentials

    async def load(self) -> AioDeferredRefreshableCredentials:
        return self.credentials


class LogsClient:
    """One aiobotocore CloudWatch Logs client, replaced when credentials expire.

    Streams share the client and call concurrently.  :meth:`refresh` opens a new
    client (a new session asks the credential chain again: environment, files,
    container or instance role) and retires the old one, which is closed once the
    calls still using it have ended, so no stream's call is cut off.
    """

    def __init__(self, config: CloudWatchConfig) -> None:
        self.config = config
        self._handle: _Handle | None = None
        self.generation = 0  # counts refreshes; see :meth:`refresh`
        self.region = config.region or ""  # resolved by :meth:`open`

    def _session(self) -> AioSession:
        # A new session asks the credential chain afresh; its data comes through the
        # shared lean loader (see shipper.aws_data).
        session = get_session()
        session.register_component(
            "data_loader", shared_loader(session.get_config_variable("data_path"))
        )
        return session

    async def _open_handle(self) -> tuple[_Handle, bool]:
        """A new client, and whether the credential chain found credentials for it."""
        cfg = self.config
        session = self._session()
        aio_config = AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=min(cfg.request_timeout, 10.0),
            read_timeout=cfg.request_timeout,
            parameter_validation=False,
            max_pool_connections=32,
            user_agent=_user_agent(session),
        )
        stack = contextlib.AsyncExitStack()
        if cfg.role_arn is None:
            found = await session.get_credentials() is not None
        else:
            # The role's credentials are the session's only ones: without them (no
            # source credentials yet) calls fail as unsigned, never signed by the
            # source account in the role's stead.
            role = await self._role_credentials()
            found = role is not None
            providers = [_AssumedRole(role)] if role is not None else []
            session.register_component("credential_provider", AioCredentialResolver(providers))
        client = await stack.enter_async_context(
            session.create_client(
                "logs", region_name=self.region, endpoint_url=cfg.endpoint_url, config=aio_config
            )
        )
        events = client.meta.events
        events.register("before-parameter-build.cloudwatch-logs.PutLogEvents", _encode_events)
        events.register("before-call.cloudwatch-logs.PutLogEvents", _swap_in_body)
        # The session's credentials are the client's (the session keeps the ones it
        # found); the direct PutLogEvents signs with them.
        put = PutRequest(client, await session.get_credentials(), self.region)
        return _Handle(client, put, stack), found

    async def _role_credentials(self) -> AioDeferredRefreshableCredentials | None:
        """The role's credentials, assumed (and assumed again before they expire) with
        the chain's, through botocore's own fetcher; STS is botocore's regional one.
        None when the chain has no credentials to assume it with."""
        cfg = self.config
        assert cfg.role_arn is not None
        source = self._session()
        source_credentials = await source.get_credentials()
        if source_credentials is None:
            return None
        extra = {"RoleSessionName": cfg.role_session_name}
        if cfg.external_id is not None:
            extra["ExternalId"] = cfg.external_id
        fetcher = AioAssumeRoleCredentialFetcher(
            client_creator=functools.partial(source.create_client, region_name=self.region),
            source_credentials=source_credentials,
            role_arn=cfg.role_arn,
            extra_args=extra,
        )
        return AioDeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")

    async def open(self) -> None:
        """Resolve the region (raises :class:`identity.RegionNotFound`), open the client."""
        self.region, found_in = await asyncio.to_thread(identity.region, self.config.region)
        telemetry.region_resolved(self.region, found_in)
        self._handle, found = await self._open_handle()
        if not found:
            telemetry.credentials_missing(NO_CREDENTIALS)

    async def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await handle.close()

    async def refresh(self, seen_generation: int) -> str | None:
        """A new client, unless another stream refreshed since ``seen_generation``.

        Returns None when there is a new client, or why there is none (then the old
        one stays, and the next failed call asks again).  Never raises.
        """
        if seen_generation != self.generation:
            return None
        self.generation += 1
        try:
            new, found = await self._open_handle()
        except Exception as exc:
            self.generation -= 1
            return f"{type(exc).__name__}: {exc}"
        old, self._handle = self._handle, new
        if old is not None:
            old.retired = True
            if not old.in_flight:
                await old.close()
        return None if found else NO_CREDENTIALS

    async def _call(self, operation: str, **params: Any) -> Any:
        """Call ``operation`` through botocore."""
        return await self._using(lambda handle: getattr(handle.client, operation)(**params))

    async def _using(self, call: Callable[[_Handle], Awaitable[Any]]) -> Any:
        """``call`` on the current client, its failure translated."""
        handle = self._handle
        if handle is None:
            raise Retriable("ClientClosed", "the CloudWatch client is closed")
        handle.in_flight += 1
        try:
            return await call(handle)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _drop_tracebacks(exc)
            raise translate(exc) from exc
        finally:
            handle.in_flight -= 1
            if handle.retired and not handle.in_flight:
                await handle.close()

    async def put_events(
        self, group: str, stream: str, events: list[Event], token: str | None
    ) -> PutResult:
        handle = self._handle
        body = _put_body(group, stream, events, token or None)
        if handle is not None and handle.put.ready and body is not None:
            response = await self._using(lambda handle: handle.put.put(body))
        else:
            # Events, not the API's dicts: `_encode_events` turns them into the body.
            params: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream,
                "logEvents": events,
            }
            if token:
                params["sequenceToken"] = token
            response = await self._call("put_log_events", **params)
        return PutResult(
            response.get("nextSequenceToken"), response.get("rejectedLogEventsInfo") or {}
        )

    async def create_stream(self, group: str, stream: str, create_group: bool) -> bool:
        """Create the stream (and the group when allowed); True when the group was created.

        A group is created with the configured class, tags and KMS key; its retention
        is :meth:`put_retention`'s (a call of its own, retried on its own).
        """
        try:
            await self._call("create_log_stream", logGroupName=group, logStreamName=stream)
            return False
        except ResourceNotFound:
            if not create_group:
                raise
        except CloudWatchError as exc:
            if exc.code == "ResourceAlreadyExistsException":
                return False
            raise
        created_group = False
        try:
            await self._call("create_log_group", **self._group_params(group))
            created_group = True
        except CloudWatchError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
        try:
            await self._call("create_log_stream", logGroupName=group, logStreamName=stream)
        except CloudWatchError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
        return created_group

    def _group_params(self, group: str) -> dict[str, Any]:
        cfg = self.config
        params: dict[str, Any] = {"logGroupName": group, "logGroupClass": cfg.log_group_class}
        if cfg.log_group_tags:
            params["tags"] = dict(cfg.log_group_tags)
        if cfg.kms_key_id is not None:
            params["kmsKeyId"] = cfg.kms_key_id
        return params

    async def put_retention(self, group: str, days: int) -> None:
        await self._call("put_retention_policy", logGroupName=group, retentionInDays=days)


__all__ = [
    "DataAlreadyAccepted",
    "ExpiredCredentials",
    "InvalidSequenceToken",
    "LogsClient",
    "MissingCredentials",
    "PutResult",
    "Rejected",
    "ResourceNotFound",
    "Retriable",
    "translate",
]
