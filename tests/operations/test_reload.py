"""SIGHUP re-reads the config of a running shipper process (issue: operating it).

Sources added start shipping, sources removed stop without losing their position
(put back, they resume where they stopped: SPEC §3 promises 1 and 2), a source whose
settings changed restarts without duplicates, and a config that does not load is
reported while the running one goes on (SPEC §3 promise 7 for a running process).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from tests.support import writer
from tests.support.probe import get
from tests.support.process import ShipperProcess, wait_until, write_config

FORMAT = "[%(levelname)s] %(asctime)s %(filename)s:%(lineno)d %(message)s"
RECORD = re.compile(r"rec-(\w+)-(\d+)")
ROOT = Path(__file__).resolve().parents[2]


def source(logs: Path, category: str, **options: object) -> dict[str, object]:
    (logs / category).mkdir(parents=True, exist_ok=True)
    return {
        "category": category,
        "path": str(logs / category / f"{category}.log"),
        "format": FORMAT,
        **options,
    }


def write(logs: Path, category: str, start: int, count: int, **options: object) -> None:
    writer.write(
        logs / category / f"{category}.log",
        FORMAT,
        logs / f"{category}.manifest",
        category=category,
        start=start,
        count=count,
        **options,
    )


def numbers(moto, group: str) -> list[int]:
    found = []
    for event in moto.events(group):
        match = RECORD.search(event["message"])
        assert match, event["message"]
        found.append(int(match.group(2)))
    return found


def rewrite(config: Path, **changes: object) -> None:
    document = yaml.safe_load(config.read_text())
    document.update(changes)
    config.write_text(yaml.safe_dump(document, sort_keys=False))


def reload(shipper: ShipperProcess, event: str) -> dict:
    """Send SIGHUP and return the next ``event`` (config.reloaded / config.reload_failed)."""
    seen = len(shipper.find(event))
    shipper.proc.send_signal(signal.SIGHUP)
    return wait_until(lambda: shipper.find(event)[seen:], timeout=20)[0]


class TestReload:
    def test_added_source_starts_shipping(self, tmp_path, make_config, moto, group_prefix):
        """A source added to the file is followed after SIGHUP, from its first line
        (start_at beginning), while the other source goes on undisturbed."""
        logs = tmp_path / "logs"
        app, db = source(logs, "app"), source(logs, "db")
        config = make_config([app])
        write(logs, "db", 0, 40)  # the db file exists before the shipper knows it
        with ShipperProcess(config) as shipper:
            write(logs, "app", 0, 40)
            wait_until(lambda: len(moto.events(f"{group_prefix}/app")) >= 40)
            rewrite(config, sources=[app, db])
            event = reload(shipper, "config.reloaded")
            assert event["added"] == [db["path"]]
            assert event["removed"] == []
            write(logs, "app", 40, 40)
            write(logs, "db", 40, 40, rollovers=1)
            wait_until(lambda: len(moto.events(f"{group_prefix}/db")) >= 80)
            wait_until(lambda: len(moto.events(f"{group_prefix}/app")) >= 80)
            assert shipper.stop() == 0
        assert sorted(numbers(moto, f"{group_prefix}/app")) == list(range(80))
        assert sorted(numbers(moto, f"{group_prefix}/db")) == list(range(80))

    def test_removed_source_stops_and_resumes_at_its_position(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """A removed source is no longer read; put back, it ships what was written
        meanwhile (rotation included) — nothing lost, nothing twice."""
        logs = tmp_path / "logs"
        app, db = source(logs, "app"), source(logs, "db")
        config = make_config([app, db])
        db_group = f"{group_prefix}/db"
        with ShipperProcess(config) as shipper:
            write(logs, "app", 0, 30)
            write(logs, "db", 0, 30)
            wait_until(lambda: len(moto.events(db_group)) >= 30)
            rewrite(config, sources=[app])
            event = reload(shipper, "config.reloaded")
            assert event["removed"] == [db["path"]]
            # Written while db is not followed; the app keeps shipping meanwhile.
            write(logs, "db", 30, 30, rollovers=1, first_day=3)
            write(logs, "app", 30, 30)
            wait_until(lambda: len(moto.events(f"{group_prefix}/app")) >= 60)
            assert len(moto.events(db_group)) == 30
            state = json.loads((tmp_path / "state" / "checkpoints.json").read_text())
            assert db["path"] in state["sources"], "the removed source's position was dropped"

            rewrite(config, sources=[app, db])
            event = reload(shipper, "config.reloaded")
            assert event["added"] == [db["path"]]
            wait_until(lambda: len(moto.events(db_group)) >= 60)
            assert shipper.stop() == 0
        assert sorted(numbers(moto, db_group)) == list(range(60))
        assert sorted(numbers(moto, f"{group_prefix}/app")) == list(range(60))

    def test_changed_source_restarts_with_new_settings_and_no_duplicates(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """Changing a source's settings (here: output json → raw) applies to what is
        read next; what was shipped is not shipped again."""
        logs = tmp_path / "logs"
        app = source(logs, "app")
        config = make_config([app])
        group = f"{group_prefix}/app"
        with ShipperProcess(config) as shipper:
            write(logs, "app", 0, 25)
            wait_until(lambda: len(moto.events(group)) >= 25)
            rewrite(config, sources=[{**app, "output": "raw"}])
            event = reload(shipper, "config.reloaded")
            assert event["changed"] == [app["path"]]
            write(logs, "app", 25, 25)
            wait_until(lambda: len(moto.events(group)) >= 50)
            assert shipper.stop() == 0
        events = moto.events(group)
        assert sorted(numbers(moto, group)) == list(range(50))
        raw = [e["message"] for e in events if e["message"].startswith("[INFO]")]
        assert len(raw) == 25
        assert all(int(RECORD.search(m).group(2)) >= 25 for m in raw)

    def test_broken_config_is_rejected_and_the_running_one_kept(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """Invalid YAML, then a schema error: each is logged with what is wrong, the
        process stays ready and keeps shipping with the config it had."""
        logs = tmp_path / "logs"
        app = source(logs, "app")
        config = make_config([app], health={"listen": "127.0.0.1:0"})
        group = f"{group_prefix}/app"
        good = config.read_text()
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            write(logs, "app", 0, 20)
            wait_until(lambda: len(moto.events(group)) >= 20)

            config.write_text(good + "\nsources: [unclosed\n")
            failed = reload(shipper, "config.reload_failed")
            assert "not valid YAML" in failed["problems"][0]

            config.write_text(good)
            rewrite(config, sources=[{**app, "timezone": "Mars/Olympus"}], flush_everything=True)
            failed = reload(shipper, "config.reload_failed")
            problems = "\n".join(failed["problems"])
            assert "sources[0].timezone: 'Mars/Olympus'" in problems
            assert "flush_everything: True; unknown key" in problems

            assert shipper.proc.poll() is None
            assert get(f"{url}/readyz")[0] == 200
            write(logs, "app", 20, 20)
            wait_until(lambda: len(moto.events(group)) >= 40)
            assert not shipper.find("config.reloaded")
            assert shipper.stop() == 0
        assert sorted(numbers(moto, group)) == list(range(40))

    def test_keys_only_a_restart_applies_keep_their_running_values(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """Changing the sink (cloudwatch.log_group) is reported as needing a restart
        and events keep going where they went; log_level applies at once."""
        logs = tmp_path / "logs"
        app = source(logs, "app")
        config = make_config([app])
        group = f"{group_prefix}/app"
        with ShipperProcess(config) as shipper:
            write(logs, "app", 0, 10)
            wait_until(lambda: len(moto.events(group)) >= 10)
            document = yaml.safe_load(config.read_text())
            document["cloudwatch"]["log_group"] = group_prefix + "/elsewhere/{category}"
            document["log_level"] = "warning"
            config.write_text(yaml.safe_dump(document))
            event = reload(shipper, "config.restart_required")
            assert event["keys"] == ["cloudwatch"]
            delivered_before = len(shipper.find("batch.delivered"))
            write(logs, "app", 10, 10)
            wait_until(lambda: len(moto.events(group)) >= 20)
            assert moto.groups(group_prefix + "/elsewhere") == {}
            # At level warning, info events (batch.delivered, config.reloaded) are not logged.
            assert len(shipper.find("batch.delivered")) == delivered_before
            assert not shipper.find("config.reloaded")
            assert shipper.stop() == 0


def start_writer(logs: Path, category: str, count: int, interval: float) -> subprocess.Popen:
    """A writer process logging ``count`` records at one per ``interval`` seconds."""
    args = [
        sys.executable, "-m", "tests.support.writer",
        "--path", str(logs / category / f"{category}.log"), "--format", FORMAT,
        "--manifest", str(logs / f"{category}.manifest"), "--category", category,
        "--count", str(count), "--interval", str(interval), "--rollovers", "2",
    ]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT)


class TestReloadStorm:
    def test_reloads_every_half_second_under_load_lose_nothing_and_never_hang(
        self, tmp_path, make_config, moto, group_prefix
    ):
        """Issue 18 item 1; SPEC §3 promises 1 and 2.  Two writers log ~500 lines/s in
        all (rotating twice) while SIGHUP arrives every 0.5 s for 10 s, the file
        alternating between two valid configs (one changes app's output and removes
        db, the other puts db back) and broken ones; a third source is added
        mid-storm.  No reload hangs: a later SIGHUP still applies (its source ships),
        /readyz is 200 again, and every line arrives exactly once."""
        logs = tmp_path / "logs"
        app, db, web, late = (source(logs, c) for c in ("app", "db", "web", "late"))
        config = make_config(
            [app, db], health={"listen": "127.0.0.1:0"}, batch={"flush_interval": 0.2}
        )
        document = yaml.safe_load(config.read_text())
        write(logs, "web", 0, 300)  # on disk before it is added
        counts = {"app": 2500, "db": 2500, "web": 300, "late": 50}
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            writers = [start_writer(logs, c, counts[c], 0.004) for c in ("app", "db")]
            try:
                extra: list[dict[str, object]] = []
                for n in range(20):
                    if n == 10:
                        extra = [web]
                    if n % 2:
                        config.write_text(config.read_text() + "\nsources: [unclosed\n")
                    elif n % 4 == 0:
                        sources = [{**app, "output": "raw"}, *extra]
                        write_config(config, {**document, "sources": sources})
                    else:
                        write_config(config, {**document, "sources": [app, db, *extra]})
                    shipper.proc.send_signal(signal.SIGHUP)
                    time.sleep(0.5)
                for writer_process in writers:
                    assert writer_process.wait(timeout=60) == 0
            finally:
                for writer_process in writers:
                    if writer_process.poll() is None:
                        writer_process.kill()
            # After the storm: one more change must still be applied.
            write_config(config, {**document, "sources": [app, db, web, late]})
            event = wait_until(lambda: reload_applied(shipper, late["path"]), 40, interval=1.0)
            assert event["added"] == [late["path"]]
            write(logs, "late", 0, counts["late"])
            for category, count in counts.items():
                group = f"{group_prefix}/{category}"
                wait_until(lambda g=group, c=count: len(moto.events(g)) >= c, timeout=60)
            wait_until(lambda: get(f"{url}/readyz")[0] == 200, timeout=20)
            assert not shipper.find("reader.stuck")
            assert shipper.stop() == 0
        for category, count in counts.items():
            found = numbers(moto, f"{group_prefix}/{category}")
            duplicated = sorted(n for n, times in Counter(found).items() if times > 1)
            assert not duplicated, f"{category}: {len(duplicated)} sent twice: {duplicated[:10]}"
            assert sorted(found) == list(range(count)), f"{category}: lines lost"


def reload_applied(shipper: ShipperProcess, path: str) -> dict | None:
    """The config.reloaded event that added ``path`` after a SIGHUP, sending one more
    SIGHUP each time it is asked while none has (a reload under way takes the next)."""
    for event in shipper.find("config.reloaded"):
        if path in event["added"]:
            return event
    shipper.proc.send_signal(signal.SIGHUP)
    return None
