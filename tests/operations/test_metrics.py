"""/metrics, scraped over HTTP from a real shipper process while stdlib handlers write
and rotate: each counter agrees with what was written and what CloudWatch (moto's
server) holds.  SPEC §7: lines read, records shipped, bytes, rejected, retries, lag in
bytes per file, last successful delivery time — and files watched."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from tests.support import writer
from tests.support.probe import Metrics, get, scrape
from tests.support.process import ShipperProcess, wait_until

APP_FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
APP_DATEFMT = "%Y-%m-%d %H:%M:%S"
DB_FORMAT = (
    "%(asctime)s [pid:%(process)d] %(filename)s(line:%(lineno)d) %(levelname)s "
    "[%(request_id)s] %(message)s"
)


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


class TestMetricsDuringARun:
    def test_counters_agree_with_what_was_written_and_delivered(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """Lines and bytes read equal the files' lines and bytes (rotated files
        included); records and bytes shipped equal what CloudWatch holds; the lag of
        every file drops to 0 once delivered; files watched counts each file."""
        logs = tmp_path / "logs"
        sources = []
        for category, fmt, datefmt in (("app", APP_FORMAT, APP_DATEFMT), ("db", DB_FORMAT, None)):
            (logs / category).mkdir(parents=True)
            source = {"category": category, "path": str(logs / category / f"{category}.log")}
            source |= {"format": fmt, **({"datefmt": datefmt} if datefmt else {})}
            sources.append(source)
        config = make_config(sources, health={"listen": "127.0.0.1:0"})
        started = time.time()
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            before = scrape(url)
            assert before.value("shipper_lines_read_total") == 0
            assert before.value("shipper_records_shipped_total") == 0

            writer.write(
                logs / "app" / "app.log", APP_FORMAT, tmp_path / "app.jsonl", category="app",
                datefmt=APP_DATEFMT, count=120, rollovers=2, traceback_every=20, json_message=True,
            )  # fmt: skip
            writer.write(
                logs / "db" / "db.log", DB_FORMAT, tmp_path / "db.jsonl", category="db",
                count=80, rollovers=1, traceback_every=25,
            )  # fmt: skip
            written = {"app": 120, "db": 80}
            groups = {c: f"{group_prefix}/{c}" for c in written}
            wait_until(lambda: all(len(moto.events(groups[c])) >= n for c, n in written.items()))

            def settled() -> Metrics | None:
                metrics = scrape(url)
                lags = metrics.labels("shipper_checkpoint_lag_bytes")
                if lags and metrics.value("shipper_checkpoint_lag_bytes") == 0:
                    return metrics
                return None

            metrics = wait_until(settled, timeout=20)
            assert shipper.stop() == 0

        for category, count in written.items():
            files = files_of(logs / category)
            data = b"".join(p.read_bytes() for p in files)
            assert metrics.value("shipper_lines_read_total", category=category) == data.count(b"\n")
            assert metrics.value("shipper_bytes_read_total", category=category) == len(data)
            assert metrics.value("shipper_files_watched", category=category) == len(files)
            lagged = {
                m["path"]
                for m in metrics.labels("shipper_checkpoint_lag_bytes")
                if m["category"] == category
            }
            assert lagged == {str(p) for p in files}

            events = moto.events(groups[category])
            assert len(events) == count
            labels = {"log_group": groups[category]}
            assert metrics.value("shipper_records_shipped_total", **labels) == count
            shipped_bytes = sum(len(e["message"].encode()) for e in events)
            assert metrics.value("shipper_bytes_shipped_total", **labels) == shipped_bytes
            last = metrics.value("shipper_last_delivery_timestamp_seconds", **labels)
            assert started <= last <= time.time()
        assert metrics.value("shipper_records_rejected_total") == 0
        assert metrics.value("shipper_put_retries_total") == 0

    def test_rejected_events_are_counted_by_reason(self, tmp_path, make_config, moto, group_prefix):
        """Events CloudWatch would refuse (older than 14 days, more than 2 hours ahead)
        are counted under their reason and logged — SPEC §3 promise 1's exception."""
        logs = tmp_path / "logs" / "app"
        logs.mkdir(parents=True)
        config = make_config(
            [
                {
                    "category": "app",
                    "path": str(logs / "app.log"),
                    "format": APP_FORMAT,
                    "datefmt": APP_DATEFMT,
                }
            ],
            health={"listen": "127.0.0.1:0"},
        )
        now = time.gmtime()
        lines = [f"[INFO] 2020-01-0{n} 10:00:00 old.py:1 old record {n}" for n in range(1, 4)]
        lines += [f"[INFO] {time.strftime(APP_DATEFMT, now)} now.py:1 current record"]
        lines += [f"[INFO] {now.tm_year + 2}-01-01 00:00:00 future.py:1 future record"]
        (logs / "app.log").write_text("".join(line + "\n" for line in lines))
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            wait_until(lambda: moto.events(f"{group_prefix}/app"))
            metrics = wait_until(
                lambda: (m := scrape(url)).value("shipper_records_rejected_total") == 4 and m
            )
            assert shipper.stop() == 0
        assert metrics.value("shipper_records_rejected_total", reason="too_old") == 3
        assert metrics.value("shipper_records_rejected_total", reason="too_new") == 1
        logged = {e["reason"]: e["count"] for e in shipper.find("events.rejected")}
        assert logged == {"too_old": 3, "too_new": 1}
        assert metrics.value("shipper_records_shipped_total") == 1

    def test_retries_are_counted_by_error_while_the_sink_is_unreachable(
        self, tmp_path, make_config, group_prefix
    ):
        """With nothing listening at the endpoint each retry is counted under its
        error, matching the put.retry log; within the grace period /readyz stays 200."""
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        logs = tmp_path / "logs" / "app"
        logs.mkdir(parents=True)
        (logs / "app.log").write_text(json.dumps({"message": "waiting"}) + "\n")
        config = make_config(
            [{"category": "app", "path": str(logs / "app.log"), "format": "json"}],
            cloudwatch={"endpoint_url": f"http://127.0.0.1:{closed}", "max_backoff": 0.2},
            health={"listen": "127.0.0.1:0"},
            shutdown_timeout=2,
        )
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            metrics = wait_until(
                lambda: (m := scrape(url)).value("shipper_put_retries_total") >= 3 and m
            )
            assert get(f"{url}/readyz")[0] == 200
            shipper.stop()
        (error,) = {m["error"] for m in metrics.labels("shipper_put_retries_total")}
        assert {e["error"] for e in shipper.find("put.retry")} == {error}
        assert metrics.value("shipper_records_shipped_total") == 0
        assert metrics.value("shipper_checkpoint_lag_bytes") == (logs / "app.log").stat().st_size
