"""Categories that appear later (issue 20 item 7): one glob entry, a category folder
created while the shipper runs is shipped to its own group; a restart resumes every
category at its checkpoint (promises 1 and 2: nothing lost, nothing twice)."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from tests.scenarios.conftest import FORMAT, RECORD_ID, AppLog, Scenario, rollover, timed_handler
from tests.support.process import ShipperProcess, wait_until


def _ids(scenario: Scenario, category: str) -> list[str]:
    group = f"{scenario.group_prefix}/{category}"
    return [
        match.group()
        for event in scenario.moto.events(group)
        if (match := RECORD_ID.search(event["message"]))
    ]


def _app(scenario: Scenario, category: str) -> AppLog:
    """An app that makes its category's folder as it starts logging, as the apps do."""
    folder = scenario.logs / category
    folder.mkdir(parents=True, exist_ok=True)
    return AppLog(logging.FileHandler(folder / f"{category}.log"), tag=category)


def _glob_config(scenario: Scenario, glob: str = "*/*.log", **overrides: object) -> Path:
    entry = {"path": str(scenario.logs / glob), "format": FORMAT}
    return scenario.make_config([entry], **overrides)  # type: ignore[no-any-return]


class TestCategoriesAppearLater:
    def test_new_folder_while_running_then_restart_resumes_every_category(
        self, scenario: Scenario
    ) -> None:
        """A category folder and file created while running (rescan once a minute: the
        root's watch finds it) ship to the new category's group; a folder CloudWatch
        would refuse is reported and skipped; after a stop and lines written meanwhile,
        a restart ships every category's rest exactly once."""
        apps = {"app": _app(scenario, "app")}
        config = _glob_config(scenario, rescan_interval=60)
        try:
            with ShipperProcess(config) as shipper:
                apps["app"].write(10)
                wait_until(lambda: len(_ids(scenario, "app")) == 10, timeout=20)
                (scenario.logs / "bad name").mkdir()
                (scenario.logs / "bad name" / "x.log").write_text("ignored\n")
                apps["db"] = _app(scenario, "db")
                apps["db"].write(15)
                wait_until(lambda: len(_ids(scenario, "db")) == 15, timeout=15)
                refused = wait_until(lambda: shipper.find("category.refused"), timeout=10)
                assert refused[0]["category"] == "bad name"
                found = shipper.find("category.found")
                assert [e["category"] for e in found] == ["app", "db"]  # at start, then
                # A reload of the same file changes no category's source.
                assert shipper.proc is not None
                shipper.proc.send_signal(signal.SIGHUP)
                reloaded = wait_until(lambda: shipper.find("config.reloaded"), timeout=10)[0]
                assert (reloaded["added"], reloaded["removed"], reloaded["changed"]) == ([], [], [])
                assert shipper.stop() == 0
            for app in apps.values():
                app.write(20)  # while the shipper is down
            apps["web"] = _app(scenario, "web")
            apps["web"].write(5)
            with ShipperProcess(config) as shipper:
                for category, app in apps.items():
                    wanted = set(app.written)
                    wait_until(lambda c=category, w=wanted: w <= set(_ids(scenario, c)), timeout=20)
                assert shipper.stop() == 0
        finally:
            for app in apps.values():
                app.close()
        for category, app in apps.items():
            ids = _ids(scenario, category)
            assert not [i for i, n in Counter(ids).items() if n > 1], f"{category}: duplicates"
            assert sorted(ids) == sorted(app.written), category

    def test_a_glob_entry_added_by_a_reload_finds_folders_made_after_it(
        self, scenario: Scenario
    ) -> None:
        """A config with hand-written sources only has nothing to discover; a SIGHUP that
        adds a glob entry starts discovery at once: a category folder made afterwards
        ships to its group without waiting for a rescan (once a minute here)."""
        apps = {"app": _app(scenario, "app")}
        written = {"path": str(scenario.logs / "app" / "app.log"), "category": "app"}
        config = scenario.make_config([{**written, "format": FORMAT}], rescan_interval=60)
        try:
            with ShipperProcess(config) as shipper:
                apps["app"].write(5)
                wait_until(lambda: len(_ids(scenario, "app")) == 5, timeout=20)
                document = yaml.safe_load(config.read_text())
                document["sources"].append(
                    {"path": str(scenario.logs / "*/*.log"), "format": FORMAT}
                )
                config.write_text(yaml.safe_dump(document))
                assert shipper.proc is not None
                shipper.proc.send_signal(signal.SIGHUP)
                wait_until(lambda: shipper.find("config.reloaded"), timeout=10)
                time.sleep(0.5)  # the pass after the reload places the root's watch
                apps["db"] = _app(scenario, "db")
                apps["db"].write(7)
                wait_until(lambda: len(_ids(scenario, "db")) == 7, timeout=15)
                apps["app"].write(5)
                wait_until(lambda: len(_ids(scenario, "app")) == 10, timeout=20)
                assert shipper.stop() == 0
        finally:
            for app in apps.values():
                app.close()
        for category, app in apps.items():
            assert sorted(_ids(scenario, category)) == sorted(app.written), category

    def test_rotated_files_of_a_category_are_its_rotation_not_new_categories(
        self, scenario: Scenario
    ) -> None:
        """TimedRotatingFileHandler with a namer (app.20240102.log, which `*.log`
        matches) rolls over three times while running (rescans every 0.2 s), and once
        while stopped: each rotated file is read as the live file's rotation, once, and
        neither a rescan nor the restart takes one for a new source."""
        handler = timed_handler(scenario.logs / "app" / "app.log")
        handler.namer = lambda name: name.replace(".log.", ".") + ".log"
        app = AppLog(handler, tag="app")
        config = _glob_config(scenario, rescan_interval=0.2)
        found = []
        try:
            for run in range(2):
                with ShipperProcess(config) as shipper:
                    for day in range(4 * run, 4 * run + 3):
                        app.write(30)
                        rollover(handler, day)
                        time.sleep(0.5)  # rescans see the rotated file
                    app.write(10)
                    wait_until(lambda: set(app.written) <= set(_ids(scenario, "app")), timeout=20)
                    assert shipper.stop() == 0
                found += [e["path"] for e in shipper.find("category.found")]
                if run == 0:  # while stopped
                    app.write(10)
                    rollover(handler, 3)
        finally:
            app.close()
        assert len(list((scenario.logs / "app").glob("app.2024*.log"))) == 7
        assert found == [str(scenario.logs / "app" / "app.log")] * 2
        ids = _ids(scenario, "app")
        assert sorted(ids) == sorted(app.written), Counter(ids).most_common(3)

    def test_a_category_whose_folder_went_keeps_its_checkpoint(self, scenario: Scenario) -> None:
        """Its folder deleted while running, the category is followed no more (the
        others go on), its checkpoint stays in the state file (as a removed source's),
        and when the folder comes back its new file is shipped from its start.  The
        glob names the file after its folder: {category}/{category}.log."""
        gone, kept = _app(scenario, "gone"), _app(scenario, "kept")
        gone.write(3)
        gone.close()
        config = _glob_config(scenario, "{category}/{category}.log")
        live = scenario.logs / "gone" / "gone.log"
        try:
            with ShipperProcess(config) as shipper:
                wait_until(lambda: len(_ids(scenario, "gone")) == 3, timeout=20)
                shutil.rmtree(live.parent)
                event = wait_until(lambda: shipper.find("category.gone"), timeout=10)[0]
                assert event["path"] == str(live)
                kept.write(5)
                wait_until(lambda: len(_ids(scenario, "kept")) == 5, timeout=20)
                assert shipper.stop() == 0
            state = json.loads(next((scenario.tmp_path / "state").glob("*.json")).read_text())
            assert str(live) in json.dumps(state)
            with ShipperProcess(config) as shipper:
                back = _app(scenario, "gone")
                back.tag = "back"
                back.write(4)
                back.close()
                wait_until(lambda: len(_ids(scenario, "gone")) == 7, timeout=20)
                assert shipper.stop() == 0
        finally:
            kept.close()
        assert sorted(_ids(scenario, "gone")) == sorted(gone.written + back.written)


class TestReload:
    def test_a_changed_glob_entry_restarts_each_category_without_duplicates(
        self, scenario: Scenario
    ) -> None:
        """SIGHUP after the glob entry's settings changed (min_level): each category's
        source is changed, restarts where it was delivered, and the new setting
        applies to what is written next; nothing is shipped twice."""
        apps = {c: _app(scenario, c) for c in ("app", "db")}
        config = _glob_config(scenario)
        try:
            with ShipperProcess(config) as shipper:
                for app in apps.values():
                    app.write(10)
                for category, app in apps.items():
                    wait_until(lambda c=category, a=app: len(_ids(scenario, c)) == 10, timeout=20)
                document = yaml.safe_load(config.read_text())
                document["sources"][0]["min_level"] = "WARNING"
                config.write_text(yaml.safe_dump(document))
                assert shipper.proc is not None
                shipper.proc.send_signal(signal.SIGHUP)
                reloaded = wait_until(lambda: shipper.find("config.reloaded"), timeout=10)[0]
                assert sorted(reloaded["changed"]) == [
                    str(scenario.logs / c / f"{c}.log") for c in ("app", "db")
                ]
                for app in apps.values():
                    app.write(5)  # INFO: dropped now
                    app.logger.warning("rec-%s-warned", app.tag)
                for category in apps:
                    wanted = f"rec-{category}-warned"
                    wait_until(lambda c=category, w=wanted: w in _ids(scenario, c), timeout=20)
                assert shipper.stop() == 0
        finally:
            for app in apps.values():
                app.close()
        for category, app in apps.items():
            assert sorted(_ids(scenario, category)) == sorted(
                [*app.written[:10], f"rec-{category}-warned"]
            )


class TestCheck:
    def _check(self, config: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipper", "check", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_check_names_the_categories_a_glob_finds(self, scenario: Scenario) -> None:
        """Each category with its live file; a rotated sibling is not one; the format
        is checked against each category's files."""
        for category in ("app", "db"):
            app = _app(scenario, category)
            app.write(2)
            app.close()
        (scenario.logs / "app" / "app.log").rename(scenario.logs / "app" / "app.log.20241205")
        (scenario.logs / "app" / "app.log").touch()
        done = self._check(_glob_config(scenario))
        assert done.returncode == 0, done.stderr
        app_log, db_log = scenario.logs / "app" / "app.log", scenario.logs / "db" / "db.log"
        assert f"finds app ({app_log}), db ({db_log})\n" in done.stdout
        # Named after the entry as written: the glob is sources[0].
        assert "sources[0] (app): the format matches the first lines of" in done.stdout
        assert "sources[0] (db): the format matches the first lines of" in done.stdout

    def test_a_glob_that_finds_nothing_is_a_warning(self, scenario: Scenario) -> None:
        """No folder yet, or only one CloudWatch would refuse: warnings, exit 0 (the
        folders may come later; a run skips the refused one)."""
        (scenario.logs / "bad name").mkdir(parents=True)
        (scenario.logs / "bad name" / "x.log").touch()
        done = self._check(_glob_config(scenario))
        assert done.returncode == 0, done.stderr
        assert "finds no category yet" in done.stderr
        assert "folder 'bad name' is skipped: " in done.stderr
        assert "refuses ' ' in a log group name" in done.stderr
