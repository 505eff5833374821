"""botocore's data read lean (shipper.aws_data): the same endpoints and service model
for the services the shipper calls, without what it never uses."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader
from botocore.regions import EndpointResolver

from shipper.aws_data import SERVICES, lean_loader


@pytest.fixture(scope="module")
def full_endpoints() -> Any:
    return Loader().load_data("endpoints")


@pytest.fixture(scope="module")
def lean_endpoints() -> Any:
    return lean_loader().load_data("endpoints")


def _without_documentation(model: Any) -> Any:
    return json.loads(
        json.dumps(model),
        object_hook=lambda d: {k: v for k, v in d.items() if k != "documentation"},
    )


def _resolved(resolver: EndpointResolver, args: tuple[Any, ...]) -> Any:
    """What the resolver answers, or the error it raises (some variants do not exist)."""
    try:
        return resolver.construct_endpoint(*args)
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def test_every_region_resolves_as_with_the_full_data(
    full_endpoints: Any, lean_endpoints: Any
) -> None:
    full, lean = EndpointResolver(full_endpoints), EndpointResolver(lean_endpoints)
    compared = 0
    for partition in full_endpoints["partitions"]:
        for region in partition["regions"]:
            for service in sorted(SERVICES):
                for fips in (False, True):
                    for dualstack in (False, True):
                        args = (service, region, None, dualstack, fips)
                        assert _resolved(lean, args) == _resolved(full, args), args
                        compared += 1
    assert compared > 100  # every partition's regions were walked


def test_clients_reach_the_same_endpoints() -> None:
    plain = botocore.session.get_session()
    lean = botocore.session.get_session()
    lean.register_component("data_loader", lean_loader())
    for region in ("us-east-1", "eu-west-2", "ap-northeast-2", "cn-north-1", "us-gov-west-1"):
        for service in ("logs", "sts"):
            expected = plain.create_client(service, region_name=region).meta
            got = lean.create_client(service, region_name=region).meta
            assert (got.endpoint_url, got.region_name) == (
                expected.endpoint_url,
                expected.region_name,
            )
            assert got.config.signature_version == expected.config.signature_version


def test_only_the_shippers_services_are_kept(full_endpoints: Any, lean_endpoints: Any) -> None:
    for full, lean in zip(full_endpoints["partitions"], lean_endpoints["partitions"], strict=True):
        assert set(lean["services"]) == SERVICES & set(full["services"])
        assert {k: v for k, v in lean.items() if k != "services"} == {
            k: v for k, v in full.items() if k != "services"
        }
    assert "logs" in lean_endpoints["partitions"][0]["services"]


def test_the_lean_endpoints_take_a_fraction_of_the_memory() -> None:
    def allocated(loader: Loader) -> int:
        tracemalloc.start()
        try:
            data = loader.load_data("endpoints")
            size, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert data["partitions"]
        return size

    assert allocated(lean_loader()) * 10 < allocated(Loader())


def test_the_service_model_is_botocores_without_its_documentation() -> None:
    full = Loader().load_service_model("logs", "service-2")
    lean = lean_loader().load_service_model("logs", "service-2")
    assert "documentation" not in json.dumps(lean)
    assert lean == _without_documentation(full)
    assert "PutLogEvents" in lean["operations"]


def test_aws_data_path_is_searched_first(tmp_path: Path) -> None:
    """A model placed in AWS_DATA_PATH (a patched or private one) wins, as in botocore."""
    version = lean_loader().determine_latest_version("logs", "service-2")
    model = Loader().load_service_model("logs", "service-2")
    model["metadata"]["serviceFullName"] = "Amazon CloudWatch Logs (local copy)"
    folder = tmp_path / "logs" / version
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    loaded = lean_loader(str(tmp_path)).load_service_model("logs", "service-2")
    assert loaded["metadata"]["serviceFullName"] == "Amazon CloudWatch Logs (local copy)"
