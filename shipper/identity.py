"""Where the shipper runs: its AWS region, and the values of the stream-name placeholders.

The region is ``cloudwatch.region`` when set, else botocore's chain in the order the
AWS SDKs share: ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, the profile's ``region``,
then the instance's own region from the EC2 metadata service, asked through
botocore's own fetcher (which honours ``AWS_EC2_METADATA_DISABLED``, the IPv6
endpoint mode and ``AWS_EC2_METADATA_SERVICE_ENDPOINT``).

``{hostname}`` and ``{category}`` are always known.  ``{instance_id}`` comes from the
EC2 instance metadata service (IMDSv2: a session token first, then the id), and
``{task_id}`` / ``{container}`` from the ECS task metadata endpoint v4
(``$ECS_CONTAINER_METADATA_URI_V4``).  Each is fetched once at start, only when a
template uses it, with a short timeout; when it cannot be had the hostname stands in
and ``identity.fallback`` says so.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import aiohttp
import botocore.exceptions
import botocore.session
from botocore.utils import IMDSRegionProvider

from shipper import logs

REGION_HELP = (
    "set cloudwatch.region, $AWS_REGION or $AWS_DEFAULT_REGION, or a region in the AWS "
    "profile; on EC2 the instance's own region is used when its metadata service answers"
)


class RegionNotFound(LookupError):
    """No region is configured and none could be found where the shipper runs."""


def region(configured: str | None) -> tuple[str, str]:
    """The AWS region to use and where it was found; raises :class:`RegionNotFound`.

    Blocking (the metadata service is asked with botocore's timeout, 1 s by default).
    """
    if configured:
        return configured, "cloudwatch.region"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = os.environ.get(name)
        if value:
            return value, f"${name}"
    session = botocore.session.get_session()
    try:
        in_profile = session.get_scoped_config().get("region")
    except botocore.exceptions.ProfileNotFound:
        in_profile = None
    if in_profile:
        return str(in_profile), f"profile {session.profile or 'default'}"
    from_instance = IMDSRegionProvider(session).provide()
    if from_instance:
        return str(from_instance), "instance metadata"
    raise RegionNotFound(f"no AWS region found: {REGION_HELP}")


IMDS_DEFAULT = "http://169.254.169.254"
TIMEOUT = aiohttp.ClientTimeout(total=2.0)


async def _instance_id(session: aiohttp.ClientSession) -> str:
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", IMDS_DEFAULT).rstrip("/")
    async with session.put(
        f"{base}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    ) as response:
        response.raise_for_status()
        token = await response.text()
    async with session.get(
        f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
    ) as response:
        response.raise_for_status()
        return (await response.text()).strip()


async def _ecs(session: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    base = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        raise LookupError("ECS_CONTAINER_METADATA_URI_V4 is not set")
    async with session.get(base.rstrip("/") + path) as response:
        response.raise_for_status()
        data = await response.json(content_type=None)
        if not isinstance(data, dict):
            raise ValueError("unexpected metadata document")
        return data


async def _task_id(session: aiohttp.ClientSession) -> str:
    arn = (await _ecs(session, "/task"))["TaskARN"]
    return str(arn).rsplit("/", 1)[-1]


async def _container(session: aiohttp.ClientSession) -> str:
    return str((await _ecs(session, ""))["Name"])


_FETCHERS = {"instance_id": _instance_id, "task_id": _task_id, "container": _container}


async def resolve(needed: set[str]) -> dict[str, str]:
    """Values for the placeholders in ``needed`` (besides ``category``)."""
    hostname = socket.gethostname()
    values = {"hostname": hostname}
    wanted = [name for name in _FETCHERS if name in needed]
    if not wanted:
        return values
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        results = await asyncio.gather(
            *(_FETCHERS[name](session) for name in wanted), return_exceptions=True
        )
    for name, result in zip(wanted, results, strict=True):
        if isinstance(result, BaseException):
            logs.get().warning(
                "identity.fallback",
                placeholder=name,
                used=hostname,
                error=str(result) or type(result).__name__,
            )
            values[name] = hostname
        else:
            values[name] = result
    return values
