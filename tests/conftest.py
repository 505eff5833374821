from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudwatch import MotoServer, moto_server
from tests.support.process import write_config
from tests.support.strict_front import StrictFront, strict_front

_group_ids = itertools.count()

# The moto server logs every request; keep test output readable.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """A real CloudWatch Logs API (moto's server) on loopback, for the whole run."""
    with moto_server() as server:
        yield server


@pytest.fixture
def front(moto: MotoServer) -> Iterator[StrictFront]:
    """A strict CloudWatch Logs front on loopback, before the moto server (SPEC §8)."""
    with strict_front(moto.url) as server:
        yield server


@pytest.fixture
def group_prefix(request: pytest.FixtureRequest) -> str:
    """A log group prefix no other test uses (the moto server is shared), of the
    characters a group name may hold (a parametrized test's name has brackets)."""
    name = re.sub(r"[^.\-_/#A-Za-z0-9]", "_", request.node.name[:40])
    return f"/test/{next(_group_ids)}-{name}"


@pytest.fixture
def make_config(tmp_path: Path, moto: MotoServer, group_prefix: str):  # type: ignore[no-untyped-def]
    """Write a shipper config pointing at the moto server; return its path."""

    def make(sources: list[dict[str, Any]], **overrides: Any) -> Path:
        config: dict[str, Any] = {
            "state_dir": str(tmp_path / "state"),
            "shutdown_timeout": 15,
            "rescan_interval": 1.0,
            "cloudwatch": {
                "region": "us-east-1",
                "endpoint_url": moto.url,
                "log_group": group_prefix + "/{category}",
                "log_stream": "{hostname}",
            },
            "batch": {"flush_interval": 0.3},
            "sources": sources,
            "health": {"listen": None},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        return write_config(tmp_path / "shipper.yaml", config)

    return make
