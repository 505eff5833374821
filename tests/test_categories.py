"""Categories found by a glob (issue 20 item 7): one entry, a source per category folder,
each exactly as a hand-written one; config mistakes in a glob are loud (promise 7)."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from shipper import categories, config
from shipper.categories import Discovery, expand
from shipper.config import ConfigError, SourceConfig
from shipper.follow import source_key


def entry(path: str, **settings: object) -> SourceConfig:
    return SourceConfig(path=Path(path), **settings)  # type: ignore[arg-type]


def load(tmp_path: Path, sources: str, cloudwatch: str = "") -> config.Config:
    path = tmp_path / "shipper.yaml"
    path.write_text(f"{cloudwatch}sources:\n{sources}")
    return config.load(path, env={})


def problems(tmp_path: Path, sources: str, cloudwatch: str = "") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, sources, cloudwatch)
    return caught.value.problems


class TestExpand:
    def test_each_category_folder_is_a_source_named_after_it(self):
        """/logs/*/*.log: one source per folder, its category the folder's name, its
        path the live file; every other setting as the entry wrote it."""
        glob = entry("/logs/*/*.log", format="json", timezone="Asia/Seoul")
        found = expand(glob, {"app": ["app.log"], "db": ["db.log"], "empty": []})
        assert [(s.category, s.path) for s in found] == [
            ("app", Path("/logs/app/app.log")),
            ("db", Path("/logs/db/db.log")),
        ]
        assert found[0] == entry("/logs/app/app.log", category="app", timezone="Asia/Seoul")

    def test_rotated_siblings_are_the_live_files_rotation_not_sources(self):
        """A namer's app.20241205.log, app.log.20241205 and .gz files beside app.log are
        its rotation; only app.log is a source."""
        glob = entry("/logs/*/*.log*")
        names = ["app.log", "app.20241205.log", "app.log.20241204", "app.log.20241203.gz"]
        assert [s.path.name for s in expand(glob, {"app": names})] == ["app.log"]

    def test_a_rotated_file_is_no_source_while_its_live_file_is_missing(self):
        """Between the rename and the new app.log, the folder holds only the rotated
        file: it is still recognised as a rotation, not taken for a live file."""
        glob = entry("/logs/*/*.log")
        assert expand(glob, {"app": ["app.20241205.log"]}) == []

    def test_a_live_file_known_from_before_stays_a_source_while_it_is_missing(self):
        glob = entry("/logs/*/*.log")
        found = expand(glob, {"app": ["app.20241205.log"]}, known=[Path("/logs/app/app.log")])
        assert [s.path for s in found] == [Path("/logs/app/app.log")]

    def test_two_live_files_in_one_folder_are_two_sources_of_its_category(self):
        glob = entry("/logs/*/*.log")
        found = expand(glob, {"app": ["access.log", "app.log"]})
        assert [(s.category, s.path.name) for s in found] == [
            ("app", "access.log"),
            ("app", "app.log"),
        ]

    def test_category_placeholder_names_the_file_after_its_folder(self):
        """/logs/{category}/{category}.log: the folder's own file, even before it
        exists; other files in the folder are not sources."""
        glob = entry("/logs/{category}/{category}.log")
        found = expand(glob, {"app": ["other.log", "app.log"], "new": []})
        assert [s.path for s in found] == [Path("/logs/app/app.log"), Path("/logs/new/new.log")]

    def test_folder_pattern_and_hidden_folders(self):
        glob = entry("/logs/svc-*/app.log")
        found = expand(glob, {"svc-a": [], "other": [], ".svc-b": []})
        assert [s.category for s in found] == ["svc-a"]

    def test_stdlib_rotation_in_a_category_folder(self, tmp_path):
        """The real TimedRotatingFileHandler with a namer, rolled over: only its live
        file is a source."""
        folder = tmp_path / "app"
        folder.mkdir()
        handler = logging.handlers.TimedRotatingFileHandler(folder / "app.log", when="midnight")
        handler.namer = lambda name: name.replace(".log.", ".") + ".log"
        handler.suffix = "%Y%m%d"
        logger = logging.getLogger("test_categories.rotation")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning("before")
            handler.doRollover()
            logger.warning("after")
        finally:
            logger.removeHandler(handler)
            handler.close()
        assert len(list(folder.iterdir())) == 2
        glob = entry(str(tmp_path / "*" / "*.log"))
        assert [s.path for s in expand(glob, categories.list_root(glob))] == [folder / "app.log"]


class TestFind:
    def test_a_folder_cloudwatch_would_refuse_is_skipped_and_the_others_go_on(self, tmp_path):
        (tmp_path / "logs" / "app").mkdir(parents=True)
        (tmp_path / "logs" / "bad name").mkdir()
        loaded = load(tmp_path, "  - path: logs/{category}/{category}.log\n")
        sources, refused = categories.find(loaded, {})
        assert [s.category for s in sources] == ["app"]
        assert [(r.category, "refuses ' '" in r.problem) for r in refused] == [("bad name", True)]

    def test_a_hand_written_source_wins_over_the_glob(self, tmp_path):
        (tmp_path / "logs" / "app").mkdir(parents=True)
        (tmp_path / "logs" / "app" / "app.log").touch()
        loaded = load(
            tmp_path,
            "  - {category: special, path: logs/app/app.log}\n  - path: logs/*/*.log\n",
        )
        sources, _ = categories.find(loaded, {})
        assert [(s.category, s.path.name) for s in sources] == [("special", "app.log")]

    def test_refusal_reported_once(self, tmp_path):
        """A refused folder is logged once (category.refused, naming it and what
        CloudWatch refuses), not at every rescan."""
        (tmp_path / "logs" / "a:b").mkdir(parents=True)
        loaded = load(
            tmp_path,
            "  - path: logs/{category}/x.log\n",
            'cloudwatch:\n  log_stream: "{category}"\n',
        )
        discovery = Discovery()
        with capture_logs() as logged:
            assert discovery.sources(loaded, {}) == []
            assert discovery.sources(loaded, {}) == []
        refused = [e for e in logged if e["event"] == "category.refused"]
        assert [e["category"] for e in refused] == ["a:b"]
        assert "refuses ':' in a log stream name" in refused[0]["problem"]

    def test_a_glob_that_finds_nothing_yet_is_a_warning_once(self, tmp_path):
        """No category folder yet: category.none_yet, once (the folders may come
        later), and nothing for a glob that finds one."""
        (tmp_path / "logs" / "app").mkdir(parents=True)
        loaded = load(tmp_path, "  - path: logs/*/app.log\n  - path: later/*/*.log\n")
        discovery = Discovery()
        with capture_logs() as logged:
            assert [s.category for s in discovery.sources(loaded, {})] == ["app"]
            discovery.sources(loaded, {})
        empty = [e["glob"] for e in logged if e["event"] == "category.none_yet"]
        assert empty == [str(tmp_path / "later" / "*" / "*.log")]

    def test_sources_keep_their_checkpoint_keys(self, tmp_path):
        """A found source's checkpoints are keyed by its live path, as a hand-written
        one's: a restart finds them again."""
        (tmp_path / "logs" / "app").mkdir(parents=True)
        loaded = load(tmp_path, "  - path: logs/{category}/{category}.log\n")
        (found,) = categories.find(loaded, {})[0]
        assert source_key(found) == str(tmp_path / "logs" / "app" / "app.log")


class TestGlobConfig:
    def test_a_glob_entry_needs_no_category(self, tmp_path):
        loaded = load(tmp_path, "  - path: logs/*/*.log\n")
        assert loaded.sources[0].category == ""

    def test_category_with_a_glob_is_an_error(self, tmp_path):
        (problem,) = problems(tmp_path, "  - {category: app, path: logs/*/*.log}\n")
        assert problem.startswith("sources[0].category: 'app' with a glob path")

    def test_plain_path_still_needs_a_category(self, tmp_path):
        (problem,) = problems(tmp_path, "  - path: logs/app/app.log\n")
        assert problem == "sources[0].category: missing; required"

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("logs/*/x/app.log", "expected a pattern only in the category folder"),
            ("logs/app/*.log", "expected the category folder to be a pattern"),
            ("logs/{category}/{host}.log", "expected no placeholder but {category}"),
            ("logs/app-{category}/a.log", "expected {category} as the whole folder name"),
        ],
    )
    def test_glob_shapes_that_are_refused(self, tmp_path, path, expected):
        (problem,) = problems(tmp_path, f"  - path: {path}\n")
        assert problem.startswith("sources[0].path: ")
        assert expected in problem, problem


class _Host:
    """The shipper as discovery sees it: the sources it follows."""

    def __init__(self, config: config.Config) -> None:
        self.config = config
        self.values: dict[str, str] = {}
        self.watcher = None
        self.stopping = asyncio.Event()
        self.sources: dict[str, SourceConfig] = {}
        self.removed: list[str] = []

    def followed(self) -> set[str]:
        return set(self.sources)

    def add_found(self, source: SourceConfig) -> None:
        assert source_key(source) not in self.sources, "added twice"
        self.sources[source_key(source)] = source

    async def remove_sources(self, keys: list[str]) -> object:
        self.removed += keys
        for key in keys:
            del self.sources[key]
        return set()


class TestDiscovery:
    def test_a_pass_adds_new_categories_once_and_retires_those_whose_folder_went(self, tmp_path):
        logs = tmp_path / "logs"
        (logs / "app").mkdir(parents=True)
        host = _Host(load(tmp_path, "  - path: logs/{category}/{category}.log\n"))
        discovery = Discovery()
        asyncio.run(discovery.look(host))
        (logs / "db").mkdir()
        asyncio.run(discovery.look(host))
        asyncio.run(discovery.look(host))
        assert sorted(s.category for s in host.sources.values()) == ["app", "db"]
        (logs / "app").rmdir()
        asyncio.run(discovery.look(host))
        assert host.removed == [str(logs / "app" / "app.log")]
        (logs / "app").mkdir()
        asyncio.run(discovery.look(host))
        assert sorted(s.category for s in host.sources.values()) == ["app", "db"]
