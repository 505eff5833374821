"""A real CloudWatch Logs API for tests: moto's server on 127.0.0.1, and a reader."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    url: str
    server: ThreadedMotoServer

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "logs",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def events(self, group: str, stream: str | None = None) -> list[dict]:
        """Every event of a group (or one stream of it), stream by stream, oldest first."""
        client = self.client()
        streams = [stream] if stream else self.streams(group)
        found: list[dict] = []
        for name in streams:
            token = None
            while True:
                kwargs = {"logGroupName": group, "logStreamName": name, "startFromHead": True}
                if token:
                    kwargs["nextToken"] = token
                page = client.get_log_events(**kwargs)
                found.extend(dict(e, stream=name) for e in page["events"])
                if not page["events"] or page["nextForwardToken"] == token:
                    break
                token = page["nextForwardToken"]
        return found

    def streams(self, group: str) -> list[str]:
        client = self.client()
        try:
            pages = client.get_paginator("describe_log_streams").paginate(logGroupName=group)
            return [s["logStreamName"] for page in pages for s in page["logStreams"]]
        except client.exceptions.ResourceNotFoundException:
            return []

    def groups(self, prefix: str = "") -> dict[str, dict]:
        client = self.client()
        pages = client.get_paginator("describe_log_groups").paginate(
            **({"logGroupNamePrefix": prefix} if prefix else {})
        )
        return {g["logGroupName"]: g for page in pages for g in page["logGroups"]}


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    for key, value in CREDENTIALS.items():
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(f"http://{host}:{port}", server)
    finally:
        server.stop()
