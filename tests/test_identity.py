"""Stream-name placeholders from where the shipper runs: IMDSv2 and ECS task metadata v4.

SPEC §1 (the task id from ``$ECS_CONTAINER_METADATA_URI_V4/task``; the instance id
from IMDSv2) and §5 (``{instance_id}``, ``{task_id}``, ``{container}`` in templates;
the region from botocore's chain when ``cloudwatch.region`` is omitted),
against small metadata servers on loopback found through the same environment
variables the real endpoints are found through.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import boto3
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


@pytest.fixture
def clean_region(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """No region in the environment or the profile: each test sets the one it means."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed_port_url())


class TestRegion:
    """Issue 20: the region comes from botocore's chain when the file names none."""

    def test_the_file_overrides_the_environment(self, clean_region, monkeypatch):
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        assert identity.region("ap-northeast-2") == ("ap-northeast-2", "cloudwatch.region")

    def test_aws_region_comes_before_aws_default_region(self, clean_region, monkeypatch):
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
        assert identity.region(None) == ("us-west-2", "$AWS_DEFAULT_REGION")
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        assert identity.region(None) == ("eu-west-1", "$AWS_REGION")

    def test_the_profile_region_is_used(self, clean_region, monkeypatch, tmp_path):
        profile = tmp_path / "config"
        profile.write_text("[default]\nregion = ap-south-1\n[profile shop]\nregion = sa-east-1\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(profile))
        assert identity.region(None) == ("ap-south-1", "profile default")
        monkeypatch.setenv("AWS_PROFILE", "shop")
        assert identity.region(None) == ("sa-east-1", "profile shop")

    def test_on_ec2_the_instance_region_comes_from_imdsv2(self, clean_region, monkeypatch):
        """botocore's own fetcher asks for a token first, then the availability zone."""
        with running(FakeImds(INSTANCE_ID, zone="eu-central-1b")) as imds:
            monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
            assert identity.region(None) == ("eu-central-1", "instance metadata")
            assert imds.requests == [
                ("PUT", "/latest/api/token"),
                ("GET", "/latest/meta-data/placement/availability-zone/"),
            ]

    def test_metadata_disabled_is_honoured(self, clean_region, monkeypatch):
        with running(FakeImds(INSTANCE_ID, zone="eu-central-1b")) as imds:
            monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
            monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
            with pytest.raises(identity.RegionNotFound):
                identity.region(None)
            assert imds.requests == []

    def test_no_region_anywhere_says_how_to_set_one(self, clean_region):
        with pytest.raises(identity.RegionNotFound) as error:
            identity.region(None)
        assert "cloudwatch.region" in str(error.value)
        assert "$AWS_REGION" in str(error.value)


def eu_events(moto, group: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    """The events moto holds for ``group`` in eu-central-1 / eu-west-1 (moto keeps each
    region apart, as CloudWatch does)."""
    found = []
    for region in ("eu-west-1", "eu-central-1"):
        client = boto3.client(
            "logs",
            region_name=region,
            endpoint_url=moto.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        groups = client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        if groups:
            streams = client.describe_log_streams(logGroupName=group)["logStreams"]
            for stream in streams:
                page = client.get_log_events(
                    logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
                )
                found += [dict(e, region=region) for e in page["events"]]
    return found


class TestRunningRegion:
    @pytest.mark.parametrize("source", ["environment", "metadata"])
    def test_the_running_shipper_ships_to_the_region_it_finds(
        self, source, make_config, moto, group_prefix, tmp_path
    ):
        """Without cloudwatch.region, a process ships to $AWS_REGION's region, or on EC2
        to the instance's (from a metadata server on loopback), never to us-east-1."""
        log = tmp_path / "logs" / "app" / "app.log"
        log.parent.mkdir(parents=True)
        log.write_text('{"message": "where am I"}\n')
        config = make_config([{"category": "app", "path": str(log)}], cloudwatch={"region": None})
        env = {
            "AWS_REGION": "",
            "AWS_DEFAULT_REGION": "",
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": closed_port_url(),
        }
        expected = {"environment": "eu-west-1", "metadata": "eu-central-1"}[source]
        with running(FakeImds(INSTANCE_ID, zone="eu-central-1c")) as imds:
            if source == "environment":
                env["AWS_REGION"] = "eu-west-1"
            else:
                env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url
            with ShipperProcess(config, env=env) as shipper:
                group = f"{group_prefix}/app"
                wait_until(lambda: eu_events(moto, group))
                assert shipper.stop() == 0
                (resolved,) = shipper.find("region.resolved")
        assert resolved["region"] == expected
        assert [(e["region"], e["message"]) for e in eu_events(moto, group)] == [
            (expected, '{"message":"where am I","category":"app"}')
        ]
        assert moto.events(group) == []  # nothing in us-east-1

    def test_no_region_anywhere_stops_the_shipper_saying_how_to_set_one(
        self, make_config, tmp_path
    ):
        log = tmp_path / "logs" / "app" / "app.log"
        log.parent.mkdir(parents=True)
        config = make_config([{"category": "app", "path": str(log)}], cloudwatch={"region": None})
        env = {
            "AWS_REGION": "",
            "AWS_DEFAULT_REGION": "",
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        shipper = ShipperProcess(config, env=env).start(wait_started=False)
        assert shipper.proc is not None
        assert shipper.proc.wait(timeout=30) == 1
        (fatal,) = shipper.find("shipper.fatal")
        assert "no AWS region found: set cloudwatch.region, $AWS_REGION" in fatal["error"]


class TestNamesAtStart:
    def test_a_placeholder_value_the_api_refuses_stops_the_start(
        self, make_config, moto, group_prefix, tmp_path
    ):
        """Issue 18: a stream name CloudWatch would refuse, known only once {container}
        is fetched, is a clear fatal error naming the key and the value, not a start
        that refuses everything later."""
        log = tmp_path / "logs" / "app" / "app.log"
        log.parent.mkdir(parents=True)
        log.write_text('{"message": "never shipped"}\n')
        config = make_config(
            [{"category": "app", "path": str(log)}],
            cloudwatch={"log_stream": "{category}/{container}"},
        )
        with running(FakeEcsMetadata(TASK_ARN, "web:blue")) as ecs:
            assert isinstance(ecs, FakeEcsMetadata)
            env = {"ECS_CONTAINER_METADATA_URI_V4": ecs.base}
            shipper = ShipperProcess(config, env=env).start(wait_started=False)
            assert shipper.proc is not None
            assert shipper.proc.wait(timeout=30) == 1
        (fatal,) = shipper.find("shipper.fatal")
        assert "cloudwatch.log_stream: '{category}/{container}' gives log stream" in fatal["error"]
        assert "{container}='web:blue'" in fatal["error"]
        assert moto.groups(group_prefix) == {}
