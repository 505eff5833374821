"""Stream-name placeholders from where the shipper runs: IMDSv2 and ECS task metadata v4.

SPEC §1 (the task id from ``$ECS_CONTAINER_METADATA_URI_V4/task``; the instance id
from IMDSv2) and §5 (``{instance_id}``, ``{task_id}``, ``{container}`` in templates),
against small metadata servers on loopback found through the same environment
variables the real endpoints are found through.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from shipper import identity
from tests.support.metadata import FakeEcsMetadata, FakeImds, running
from tests.support.process import ShipperProcess, wait_until

INSTANCE_ID = "i-0abc123def4567890"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod-cluster/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TASK_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    with running(FakeImds(INSTANCE_ID)) as server:
        assert isinstance(server, FakeImds)
        yield server


@pytest.fixture
def ecs() -> Iterator[FakeEcsMetadata]:
    with running(FakeEcsMetadata(TASK_ARN, "log-shipper")) as server:
        assert isinstance(server, FakeEcsMetadata)
        yield server


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class TestResolve:
    def test_instance_id_comes_from_imdsv2_token_first(self, imds, monkeypatch):
        """A session token is asked for first (PUT), then sent with the instance-id GET."""
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
        values = asyncio.run(identity.resolve({"instance_id"}))
        assert values["instance_id"] == INSTANCE_ID
        assert imds.requests == [
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/instance-id"),
        ]

    def test_task_id_and_container_come_from_the_ecs_v4_endpoint(self, ecs, monkeypatch):
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", ecs.base)
        values = asyncio.run(identity.resolve({"task_id", "container"}))
        assert values["task_id"] == TASK_ID
        assert values["container"] == "log-shipper"

    def test_nothing_is_fetched_when_no_template_needs_it(self, imds, ecs, monkeypatch):
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", ecs.base)
        values = asyncio.run(identity.resolve({"hostname", "category"}))
        assert values == {"hostname": socket.gethostname()}
        assert imds.requests == []
        assert ecs.requests == []

    def test_absent_endpoints_fall_back_to_the_hostname_quickly(self, monkeypatch):
        """Off EC2 and ECS the placeholders take the hostname, within the short timeout."""
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed_port_url())
        monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
        started = time.monotonic()
        values = asyncio.run(identity.resolve({"instance_id", "task_id", "container"}))
        assert time.monotonic() - started < 3
        hostname = socket.gethostname()
        assert values == {
            "hostname": hostname,
            "instance_id": hostname,
            "task_id": hostname,
            "container": hostname,
        }


class TestStreamNames:
    def test_the_running_shipper_names_its_stream_from_the_metadata(
        self, imds, ecs, make_config, moto, group_prefix, tmp_path
    ):
        """A real process, given both endpoints, ships to ``<instance>/<task>/<container>``."""
        log = tmp_path / "logs" / "app" / "app.log"
        log.parent.mkdir(parents=True)
        log.write_text('{"message": "hello from the task"}\n')
        config = make_config(
            [{"category": "app", "path": str(log)}],
            cloudwatch={"log_stream": "{instance_id}/{task_id}/{container}"},
        )
        env = {
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
            "ECS_CONTAINER_METADATA_URI_V4": ecs.base,
        }
        with ShipperProcess(config, env=env) as shipper:
            group = f"{group_prefix}/app"
            wait_until(lambda: moto.events(group))
            assert shipper.stop() == 0
            assert shipper.find("identity.fallback") == []
        assert moto.streams(group) == [f"{INSTANCE_ID}/{TASK_ID}/log-shipper"]

    def test_without_metadata_the_shipper_says_it_fell_back(
        self, make_config, moto, group_prefix, tmp_path
    ):
        log = tmp_path / "logs" / "app" / "app.log"
        log.parent.mkdir(parents=True)
        log.write_text('{"message": "hello from a laptop"}\n')
        config = make_config(
            [{"category": "app", "path": str(log)}],
            cloudwatch={"log_stream": "{category}-{instance_id}"},
        )
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": closed_port_url()}
        with ShipperProcess(config, env=env) as shipper:
            group = f"{group_prefix}/app"
            wait_until(lambda: moto.events(group))
            assert shipper.stop() == 0
            (fallback,) = shipper.find("identity.fallback")
        assert fallback["placeholder"] == "instance_id"
        assert moto.streams(group) == [f"app-{socket.gethostname()}"]
