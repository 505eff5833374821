"""A reader or delivery task that fails stops the shipper (exit 1) instead of leaving
its source or stream silently stalled while the process looks healthy."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shipper import config
from shipper.app import Shipper


def make_shipper(tmp_path: Path) -> Shipper:
    (tmp_path / "shipper.yaml").write_text(
        "state_dir: state\nsources:\n  - category: app\n    path: app.log\n"
    )
    return Shipper(config.load(tmp_path / "shipper.yaml", env={}))


async def failing() -> None:
    raise ValueError("bug in a stage")


async def cancelled() -> None:
    await asyncio.sleep(3600)


class TestSupervision:
    def test_a_failed_task_asks_for_a_graceful_stop(self, tmp_path):
        async def scenario() -> tuple[bool, BaseException | None]:
            shipper = make_shipper(tmp_path)
            task = asyncio.create_task(failing(), name="read app")
            task.add_done_callback(shipper._supervise)
            await asyncio.wait([task])
            await asyncio.sleep(0)
            return shipper.stopping.is_set(), shipper.crashed

        stopping, crashed = asyncio.run(scenario())
        assert stopping
        assert isinstance(crashed, ValueError)

    def test_a_cancelled_task_is_not_a_crash(self, tmp_path):
        """Reloads cancel the readers of removed sources; that is no failure."""

        async def scenario() -> tuple[bool, BaseException | None]:
            shipper = make_shipper(tmp_path)
            task = asyncio.create_task(cancelled(), name="read app")
            task.add_done_callback(shipper._supervise)
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.wait([task])
            await asyncio.sleep(0)
            return shipper.stopping.is_set(), shipper.crashed

        assert asyncio.run(scenario()) == (False, None)
