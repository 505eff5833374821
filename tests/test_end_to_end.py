"""The whole pipeline, for real: stdlib handlers write and rotate two categories in a
non-UTC timezone while the shipper runs as a process; everything is read back from a
CloudWatch Logs API (moto's server) that the shipper reached through aiobotocore.

Holds SPEC §3 promises 1 (nothing lost), 4 (no personal data leaves) and 5 (order),
and §4's graceful SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.process import ShipperProcess, wait_until

APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
APP_DATEFMT = "%Y-%m-%d %H:%M:%S"
DB_FORMAT = (
    "%(asctime)s [pid:%(process)d] %(filename)s(line:%(lineno)d) %(levelname)s "
    "[%(request_id)s] %(message)s"
)
ZONE = "Asia/Seoul"
RAW_EMAIL = re.compile(r"user\.\d+\+tag@")
TRACEBACK_EVERY = {"app": 40, "db": 30}


def run_writer(logs: Path, category: str, fmt: str, manifest: Path, **options: object) -> None:
    args = [
        sys.executable,
        "-m",
        "tests.support.writer",
        "--path",
        str(logs / category / f"{category}.log"),
        "--category",
        category,
        "--format",
        fmt,
        "--manifest",
        str(manifest),
    ]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    env = {**os.environ, "TZ": ZONE}
    subprocess.run(args, check=True, env=env, cwd=Path(__file__).parent.parent)


def manifest(path: Path) -> dict[str, float]:
    return {r["id"]: r["created"] for r in map(json.loads, path.read_text().splitlines())}


def record_id(message: dict) -> str:
    inner = message["message"]
    if isinstance(inner, dict):
        return inner["id"]
    return inner.split()[0]


class TestEndToEnd:
    def test_two_rotating_categories_arrive_whole_masked_and_timed(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """Every record once, in its category's group, masked, at its written time."""
        logs = tmp_path / "logs"
        (logs / "app").mkdir(parents=True)
        (logs / "db").mkdir(parents=True)
        config = make_config(
            [
                {
                    "category": "app",
                    "path": str(logs / "app" / "app.log"),
                    "format": APP_FORMAT,
                    "datefmt": APP_DATEFMT,
                    "timezone": ZONE,
                },
                {
                    "category": "db",
                    "path": str(logs / "db" / "db.log"),
                    "format": DB_FORMAT,
                    "timezone": ZONE,
                },
            ]
        )
        with ShipperProcess(config) as shipper:
            # Three writer runs per category, each forcing rollovers while the shipper runs.
            for run in range(3):
                run_writer(
                    logs,
                    "app",
                    APP_FORMAT,
                    tmp_path / "app.jsonl",
                    datefmt=APP_DATEFMT,
                    count=150,
                    start=run * 150,
                    rollovers=2,
                    first_day=run * 2,
                    traceback_every=TRACEBACK_EVERY["app"],
                    json_message=True,
                )
                run_writer(
                    logs,
                    "db",
                    DB_FORMAT,
                    tmp_path / "db.jsonl",
                    count=100,
                    start=run * 100,
                    rollovers=1,
                    first_day=run,
                    traceback_every=TRACEBACK_EVERY["db"],
                )
            written = {
                "app": manifest(tmp_path / "app.jsonl"),
                "db": manifest(tmp_path / "db.jsonl"),
            }
            assert len(list((logs / "app").glob("app.log.2024*"))) == 6

            def delivered() -> bool:
                return all(
                    len(moto.events(f"{group_prefix}/{c}")) >= len(written[c]) for c in written
                )

            wait_until(delivered, timeout=60)
            assert shipper.stop() == 0

        for category, created in written.items():
            events = moto.events(f"{group_prefix}/{category}")
            messages = [json.loads(e["message"]) for e in events]
            ids = [record_id(m) for m in messages]
            assert sorted(ids) == sorted(created), f"{category}: lost or duplicated records"
            assert len(set(ids)) == len(ids)
            for event, message in zip(events, messages, strict=True):
                assert not RAW_EMAIL.search(event["message"]), event["message"]
                assert message["category"] == category
                when = created[record_id(message)]
                # app writes whole seconds; db writes logging's default ",msecs".
                expected = (
                    int(when) * 1000
                    if category == "app"
                    else (int(when) * 1000 + int((when - int(when)) * 1000))
                )
                assert event["timestamp"] == expected, (message, when)
            tracebacks = [m for m in messages if "exception" in m]
            every = TRACEBACK_EVERY[category]
            numbers = [int(i.rsplit("-", 1)[1]) for i in created]
            assert len(tracebacks) == sum(1 for n in numbers if n % every == every - 1)
            for message in tracebacks:
                text = message["exception"]
                assert text.startswith("Traceback (most recent call last):")
                assert "During handling of the above exception" in text
                assert "ValueError: lookup failed for **" in text

        app = [json.loads(e["message"]) for e in moto.events(f"{group_prefix}/app")]
        assert app[0]["level"] == "INFO"
        assert app[0]["filename"] == "writer.py"
        assert isinstance(app[0]["lineno"], int)
        assert app[0]["message"]["client"]["email"].startswith("**")
        db = [json.loads(e["message"]) for e in moto.events(f"{group_prefix}/db")]
        assert db[0]["request_id"].startswith("req-rec-db-")
        assert isinstance(db[0]["process"], int)

        # Per stream, records keep their order within each file (promise 5).
        db_numbers = [int(record_id(m).rsplit("-", 1)[1]) for m in db]
        assert db_numbers == sorted(db_numbers)

    def test_sigterm_saves_checkpoints_and_restart_sends_no_duplicates(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """A graceful stop and restart ships each record exactly once (promise 2)."""
        logs = tmp_path / "logs"
        (logs / "app").mkdir(parents=True)
        config = make_config(
            [
                {
                    "category": "app",
                    "path": str(logs / "app" / "app.log"),
                    "format": APP_FORMAT,
                    "datefmt": APP_DATEFMT,
                    "timezone": ZONE,
                }
            ]
        )
        group = f"{group_prefix}/app"
        run_writer(logs, "app", APP_FORMAT, tmp_path / "m.jsonl", datefmt=APP_DATEFMT, count=200)
        with ShipperProcess(config) as shipper:
            wait_until(lambda: len(moto.events(group)) >= 200)
            assert shipper.stop() == 0
        # More lines and a rotation while the shipper is down, then a restart.
        run_writer(
            logs,
            "app",
            APP_FORMAT,
            tmp_path / "m.jsonl",
            datefmt=APP_DATEFMT,
            count=200,
            start=200,
            rollovers=1,
            first_day=10,
        )
        with ShipperProcess(config) as shipper:
            wait_until(lambda: len(moto.events(group)) >= 400)
            assert shipper.stop() == 0
        numbers = sorted(
            int(re.search(r"rec-app-(\d+)", e["message"]).group(1)) for e in moto.events(group)
        )
        assert numbers == list(range(400))
