"""``shipper preview`` as a real command: it prints the next events exactly as ``run``
then ships them, without sending anything or moving checkpoints (SPEC §4; issue 5 §9).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tests.support.cloudwatch import CREDENTIALS, MotoServer
from tests.support.process import ShipperProcess, wait_until

APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
ADDRESS = "someone@example.com"


def write_app_logs(path: Path) -> None:
    """A real app's records: JSON messages with an address, and a traceback."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(APP_FORMAT, DATEFMT))
    logger = logging.getLogger("shipper.tests.preview")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        for n in range(4):
            logger.info(json.dumps({"url": f"/v1/{n}", "client": {"email": ADDRESS}}))
        try:
            {}["missing"]
        except KeyError:
            logger.exception("lookup failed for %s", ADDRESS)
        logger.warning("last one")
    finally:
        logger.removeHandler(handler)
        handler.close()


def preview(config: Path, *args: str) -> list[tuple[str, str, int, str]]:
    """Run ``python -m shipper preview``; its lines as (group, stream, epoch ms, message)."""
    result = subprocess.run(
        [sys.executable, "-m", "shipper", "preview", "-c", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **CREDENTIALS},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        group, stream, stamp, message = line.split("\t", 3)
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        rows.append((group, stream, round(when.timestamp() * 1000), message))
    return rows


class TestPreview:
    def test_prints_what_run_then_ships_and_moves_nothing(
        self, tmp_path: Path, make_config, moto: MotoServer, group_prefix: str
    ) -> None:
        log_path = tmp_path / "logs" / "app" / "app.log"
        write_app_logs(log_path)
        source = {
            "category": "app",
            "path": str(log_path),
            "format": APP_FORMAT,
            "datefmt": DATEFMT,
            "timezone": "Asia/Seoul",
        }
        config = make_config([source])
        state_file = tmp_path / "state" / "checkpoints.json"

        shown = preview(config, "-n", "100")
        assert len(shown) == 6
        assert {row[0] for row in shown} == {f"{group_prefix}/app"}
        assert all(ADDRESS not in row[3] for row in shown)
        assert "KeyError" in json.loads(shown[4][3])["exception"]
        # Nothing sent, nothing saved.
        assert moto.groups(group_prefix) == {}
        assert not state_file.exists()
        # -n limits; a second preview shows the same events again.
        assert preview(config, "-n", "2") == shown[:2]
        assert preview(config, "--source", "app") == shown

        with ShipperProcess(config) as shipper:
            group = f"{group_prefix}/app"
            wait_until(lambda: len(moto.events(group)) >= 6, timeout=30)
            assert shipper.stop() == 0
        shipped = [
            (group, event["stream"], event["timestamp"], event["message"])
            for event in moto.events(group)
        ]
        assert shipped == shown

        # Checkpoints moved by the run: nothing is left to preview.
        assert state_file.exists()
        assert preview(config) == []
