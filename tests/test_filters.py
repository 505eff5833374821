"""Per-source filters (issue 21): what is dropped, sampled and folded, how kept events are
marked, and that dropped positions are acknowledged in order, never past a record
still in flight (SPEC §3.1: only what the user asked to drop is not shipped; §3.2).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper import config
from shipper.app import build_follower
from shipper.batcher import Batcher
from shipper.checkpoints import State
from shipper.filters import FileFilter, Kept, SourceFilters, mark_events, parse_duration
from shipper.mask import Masker, masker_for
from shipper.records import FileEvents, Line, Record
from shipper.render import Renderer

NOW_MS = 1_700_000_000_000


@dataclass(eq=False)
class FilePosition:
    path: str = "app.log"
    category: str = "app"
    acked: list[int] = field(default_factory=list)

    def delivered(self, offset: int) -> None:
        self.acked.append(offset)


def line(text: str, end: int, level: str | None = "INFO", ts: int = NOW_MS) -> Line:
    fields = {"levelname": level, "message": text} if level else {"message": text}
    return (f"[{level}] {text}", fields, ts, end)


def texts(records: list[Record | Line]) -> list[str]:
    return [r.text if isinstance(r, Record) else r[0] for r in records]


class TestLevel:
    """``min_level`` drops records below it; records without a level are kept."""

    def test_records_below_the_level_are_dropped_and_counted(self) -> None:
        file = SourceFilters(min_level=20).for_file()
        kept = file.apply(
            [line("a", 10, "DEBUG"), line("b", 20, "INFO"), line("c", 30, "ERROR")], 0.0
        )
        assert texts(kept.records) == ["[INFO] b", "[ERROR] c"]
        assert kept.dropped == {"level": 1}

    def test_aliases_and_any_case_are_levels(self) -> None:
        file = SourceFilters(min_level=30).for_file()
        records = [line("w", 1, "warn"), line("f", 2, "Fatal"), line("i", 3, "info")]
        assert texts(file.apply(records, 0.0).records) == ["[warn] w", "[Fatal] f"]

    def test_a_record_without_a_level_is_kept(self) -> None:
        file = SourceFilters(min_level=40).for_file()
        unmatched: Line = ("no format here", None, NOW_MS, 5)
        unknown = line("odd", 9, "CHATTY")
        assert len(file.apply([unmatched, line("x", 7), unknown], 0.0).records) == 2

    def test_raw_output_reads_the_level_written_early_in_the_line(self) -> None:
        file = SourceFilters(min_level=20, raw=True).for_file()
        records: list[Record | Line] = [
            ("2024-01-01 00:00:00 DEBUG noisy", {}, NOW_MS, 10),
            ("2024-01-01 00:00:00 INFO kept, says DEBUG later", {}, NOW_MS, 20),
        ]
        assert texts(file.apply(records, 0.0).records) == [
            "2024-01-01 00:00:00 INFO kept, says DEBUG later"
        ]

    def test_a_json_lines_level_or_levelno_is_read(self) -> None:
        file = SourceFilters(min_level=20).for_file()
        records: list[Record | Line] = [
            ('{"level": "debug"}', {"level": "debug"}, NOW_MS, 1),
            ('{"levelno": 10}', {"level": 10}, NOW_MS, 2),
            ('{"severity": "ERROR"}', {"severity": "ERROR"}, NOW_MS, 3),
        ]
        assert texts(file.apply(records, 0.0).records) == ['{"severity": "ERROR"}']


class TestExcludeInclude:
    """``exclude`` drops matching records; ``include`` keeps only matching ones; both
    see the text as written (before masking), traceback included."""

    def test_exclude_matches_the_text_before_masking(self) -> None:
        file = SourceFilters(exclude=[r"health@example\.com", r"GET /healthz"]).for_file()
        records = [line("ping from health@example.com", 1), line("GET /healthz 200", 2)]
        kept = file.apply([*records, line("GET /orders 200", 3)], 0.0)
        assert texts(kept.records) == ["[INFO] GET /orders 200"]
        assert kept.dropped == {"exclude": 2}

    def test_exclude_sees_the_traceback(self) -> None:
        file = SourceFilters(exclude=["ConnectionResetError"]).for_file()
        record = Record("[ERROR] failed", {"levelname": "ERROR"}, NOW_MS, 50, extra=[
            "Traceback (most recent call last):", "ConnectionResetError: peer"
        ])  # fmt: skip
        assert file.apply([record], 0.0).records == []

    def test_include_keeps_only_matching_records(self) -> None:
        file = SourceFilters(include=["order", "payment"]).for_file()
        kept = file.apply([line("order 1", 1), line("cache hit", 2), line("payment", 3)], 0.0)
        assert texts(kept.records) == ["[INFO] order 1", "[INFO] payment"]
        assert kept.dropped == {"include": 1}


class TestSample:
    """``sample`` keeps the first of every N matching records, deterministically."""

    def test_the_first_of_every_n_is_kept_and_marked_across_steps(self) -> None:
        filters = SourceFilters(sample=[("GET /", 3)])
        file = filters.for_file()
        first = file.apply([line(f"GET /{n}", n + 1) for n in range(4)], 0.0)
        second = file.apply([line(f"GET /{n}", n + 1) for n in range(4, 7)], 0.0)
        assert texts(first.records) == ["[INFO] GET /0", "[INFO] GET /3"]
        assert texts(second.records) == ["[INFO] GET /6"]
        assert first.marks == {1: ("sampled", 3), 4: ("sampled", 3)}
        assert first.dropped["sample"] + second.dropped["sample"] == 4

    def test_the_first_matching_rule_decides_and_others_pass(self) -> None:
        file = SourceFilters(sample=[("GET", 2), ("GET|POST", 10)]).for_file()
        kept = file.apply([line("GET a", 1), line("GET b", 2), line("POST", 3)], 0.0)
        assert texts(kept.records) == ["[INFO] GET a", "[INFO] POST"]
        assert kept.marks == {1: ("sampled", 2), 3: ("sampled", 10)}


class TestCollapseRepeats:
    """``collapse_repeats`` folds identical consecutive records (but for their time) into
    one event a window, shipped when the window ends or the file is flushed."""

    def fold(self, window: float = 10.0) -> FileFilter:
        return SourceFilters(collapse_seconds=window).for_file()

    def test_a_retry_loop_costs_one_event_a_window(self) -> None:
        file = self.fold()
        records = [line("retry failed", n + 1, ts=NOW_MS + n) for n in range(10_000)]
        kept = file.apply(records, 0.0)
        assert kept.records == []
        assert file.holding
        rest = file.flush(0.0, force=True)
        assert len(rest.records) == 1
        assert rest.marks == {10_000: ("repeated", 10_000)}
        assert kept.dropped == {"repeat": 9_999}
        held = rest.records[0]
        assert not isinstance(held, Record)
        assert held[2] == NOW_MS
        assert held[3] == 10_000

    def test_a_different_record_ships_the_held_one_first(self) -> None:
        file = self.fold()
        kept = file.apply([line("x", 1), line("x", 2), line("y", 3)], 0.0)
        assert texts(kept.records) == ["[INFO] x"]
        assert kept.marks == {2: ("repeated", 2)}
        assert file.holding

    def test_times_do_not_tell_repeats_apart_but_the_window_does(self) -> None:
        file = self.fold(window=10.0)
        records = [
            ("2024-01-01 00:00:00 boom", None, NOW_MS, 1),
            ("2024-01-01 00:00:05 boom", None, NOW_MS + 5_000, 2),
            ("2024-01-01 00:00:11 boom", None, NOW_MS + 11_000, 3),
        ]
        kept = file.apply(records, 0.0)
        assert kept.marks == {2: ("repeated", 2)}
        assert texts(kept.records) == ["2024-01-01 00:00:00 boom"]

    def test_the_held_record_is_shipped_when_the_window_passes_by_the_clock(self) -> None:
        file = self.fold(window=10.0)
        file.apply([line("x", 1), line("x", 2)], now=100.0)
        assert file.flush(now=109.0, force=False).records == []
        late = file.flush(now=110.0, force=False)
        assert len(late.records) == 1
        assert not file.holding

    def test_a_record_that_repeats_nothing_goes_when_the_file_is_quiet(self) -> None:
        file = self.fold(window=10.0)
        file.apply([line("x", 1), line("y", 2)], now=0.0)
        assert file.flush(now=0.5, force=False).records == []
        assert texts(file.flush(now=0.5, force=False, quiet=True).records) == ["[INFO] y"]

    def test_a_run_of_repeats_waits_for_its_window_though_quiet(self) -> None:
        """A retry loop slower than the reader: the first error goes alone, the next
        ones are folded until the window ends, even while the file is quiet between
        them."""
        file = self.fold(window=10.0)
        file.apply([line("err", 1)], now=0.0)
        assert len(file.flush(now=0.5, force=False, quiet=True).records) == 1
        for n in range(2, 6):
            file.apply([line("err", n, ts=NOW_MS + n * 1000)], now=float(n))
            assert file.flush(now=n + 0.5, force=False, quiet=True).records == []
        late = file.flush(now=12.0, force=False, quiet=True)
        assert late.marks == {5: ("repeated", 4)}

    def test_a_single_record_is_not_marked(self) -> None:
        file = self.fold()
        file.apply([line("x", 1)], 0.0)
        assert file.flush(0.0, force=True).marks == {}


class TestAcknowledgement:
    """Dropped records are acknowledged, but never past a record still held or in flight."""

    def test_dropped_records_after_the_last_kept_one_are_acknowledged(self) -> None:
        file = SourceFilters(min_level=20).for_file()
        kept = file.apply([line("a", 10), line("b", 20, "DEBUG"), line("c", 30, "DEBUG")], 0.0)
        assert kept.acknowledge_to == 30

    def test_dropped_records_after_a_held_one_wait_for_it(self) -> None:
        file = SourceFilters(min_level=20, collapse_seconds=10).for_file()
        kept = file.apply([line("d", 5, "DEBUG"), line("x", 10), line("d", 20, "DEBUG")], 0.0)
        assert kept.records == []
        assert kept.acknowledge_to == 5
        rest = file.flush(0.0, force=True)
        assert rest.acknowledge_to == 20

    def test_an_acknowledgement_only_step_rides_behind_the_batch_in_flight(self) -> None:
        position = FilePosition()
        renderer = Renderer("app", "json", Masker("off"), json_lines=False)
        batcher = Batcher()
        batcher.add_all(renderer.events([line("kept", 10)], position), NOW_MS, 0.0)
        in_flight = batcher.seal()
        assert in_flight is not None
        batcher.add_all(FileEvents(position, acknowledge_to=40), NOW_MS, 1.0)
        assert in_flight.acks == {position: 10}
        after = batcher.seal()
        assert after is not None
        assert after.events == []
        assert after.acks == {position: 40}

    def test_an_acknowledgement_after_events_goes_with_their_batch(self) -> None:
        position = FilePosition()
        renderer = Renderer("app", "json", Masker("off"), json_lines=False)
        step = renderer.events([line("kept", 10)], position)
        step.acknowledge_to = 25
        batcher = Batcher()
        batcher.add_all(step, NOW_MS, 0.0)
        sealed = batcher.seal()
        assert sealed is not None
        assert sealed.acks == {position: 25}
        assert len(sealed.events) == 1


class TestAcknowledgementProperties:
    """For any records, steps and flushes: what is acknowledged (kept records' ends,
    then dropped ones') only moves forward, never passes a record still held, reaches
    the last record once everything is flushed, and every record is shipped or counted
    as dropped exactly once."""

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["DEBUG", "INFO"]),
                st.sampled_from(["a", "b"]),
                st.integers(0, 4000),  # ms after the record before
                st.booleans(),  # a step ends after this record
                st.booleans(),  # the clock moves a window on at that step's end
                st.booleans(),  # the file is quiet at that step's end
            ),
            max_size=60,
        )
    )
    def test_acknowledgements(self, specs: list[tuple[str, str, int, bool, bool, bool]]) -> None:
        file = SourceFilters(min_level=20, sample=[("b", 2)], collapse_seconds=5).for_file()
        acked = [0]
        shipped = dropped = 0
        ts, now = NOW_MS, 0.0
        step: list[Record | Line] = []

        def take(kept: Kept) -> None:
            nonlocal shipped, dropped
            for record in kept.records:
                end = record.end if isinstance(record, Record) else record[3]
                assert end > acked[-1]
                acked.append(end)
            if kept.acknowledge_to:
                assert kept.acknowledge_to > acked[-1]
                acked.append(kept.acknowledge_to)
            shipped += len(kept.records)
            dropped += sum(kept.dropped.values())
            if file.held is not None:
                held_end = file.held.end if isinstance(file.held, Record) else file.held[3]
                assert acked[-1] < held_end

        for index, (level, text, gap, ends_step, clock, quiet) in enumerate(specs):
            ts += gap
            step.append(line(text, (index + 1) * 10, level, ts))
            if ends_step:
                take(file.apply(step, now))
                step = []
                now += 5.0 if clock else 0.1
                take(file.flush(now, force=False, quiet=quiet))
        take(file.apply(step, now))
        take(file.flush(now, force=True))
        assert not file.holding
        assert acked[-1] == len(specs) * 10
        assert shipped + dropped == len(specs)


class TestKeyRules:
    """Filtering keeps the reader's finding of which records need no key rules, and
    never lets a record that needs them skip them (SPEC §3.4)."""

    def test_the_key_free_suffix_is_carried_to_what_is_kept(self) -> None:
        file = SourceFilters(min_level=20).for_file()
        records = [line("a", 1), line("b", 2, "DEBUG"), line("c", 3), line("d", 4)]
        assert file.apply(records, 0.0, key_rules_until=2).key_rules_until == 1
        assert file.apply(records, 0.0).key_rules_until == 3

    def test_a_held_repeat_keeps_its_need_for_key_rules(self) -> None:
        file = SourceFilters(collapse_seconds=10).for_file()
        file.apply([line("token=1", 1)], 0.0, key_rules_until=1)
        kept = file.apply([line("other", 2)], 0.0, key_rules_until=0)
        assert texts(kept.records) == ["[INFO] token=1"]
        assert kept.key_rules_until == 1


class TestMarks:
    """Kept events say what they stand for: a JSON key, or a visible mark in raw text."""

    def test_json_events_get_the_key_and_stay_json(self) -> None:
        renderer = Renderer("app", "json", Masker("off"), json_lines=False)
        events = renderer.events([line("x", 1), line("y", 2)], FilePosition())
        mark_events(events, {2: ("repeated", 7)}, raw=False)
        documents = [json.loads(e.message) for e in events]
        assert documents[1]["repeated"] == 7
        assert "repeated" not in documents[0]
        assert events.sizes[1] == len(events.events[1].message.encode()) + 26

    def test_raw_events_get_a_visible_mark(self) -> None:
        renderer = Renderer("app", "raw", Masker("off"), json_lines=False)
        events = renderer.events([line("x", 1), line("y", 2)], FilePosition())
        mark_events(events, {1: ("sampled", 10), 2: ("repeated", 3)}, raw=True)
        assert [e.message for e in events] == [
            "[INFO] x …[sampled 1 in 10]",
            "[INFO] y …[repeated 3 times]",
        ]


class TestConfig:
    """The filter keys are checked when the config loads; errors name the key path."""

    def load(self, tmp_path: Path, source: str) -> config.Config:
        text = f"sources:\n  - category: app\n    path: app.log\n{source}"
        return config.parse(text, base_dir=tmp_path, env={})

    def test_a_bad_regex_names_its_key_path(self, tmp_path: Path) -> None:
        with pytest.raises(config.ConfigError) as caught:
            self.load(
                tmp_path,
                "    exclude: ['ok', '(unclosed']\n    sample: [{match: '[', keep_one_in: 2}]\n",
            )
        problems = "\n".join(caught.value.problems)
        assert "sources[0].exclude: ['ok', '(unclosed']; item 1 ('(unclosed')" in problems
        assert "sources[0].sample[0].match: '['; not a valid regular expression" in problems

    def test_bad_level_duration_and_rate_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(config.ConfigError) as caught:
            self.load(
                tmp_path,
                "    min_level: LOUD\n    collapse_repeats: soon\n"
                "    sample: [{match: x, keep_one_in: 0}]\n",
            )
        problems = "\n".join(caught.value.problems)
        assert "sources[0].min_level: 'LOUD'; expected a level name" in problems
        assert "sources[0].collapse_repeats: 'soon'; expected a duration" in problems
        assert "sources[0].sample[0].keep_one_in: 0" in problems

    def test_durations(self) -> None:
        assert parse_duration("10s") == 10.0
        assert parse_duration("500ms") == 0.5
        assert parse_duration("2m") == 120.0
        assert parse_duration("3") == 3.0
        assert parse_duration("ten") is None


class TestFollower:
    """Through the follower (real files): a source without filters pays nothing; a
    filtered one ships what the filters keep and acknowledges what they drop."""

    def write(self, path: Path, levels: list[int]) -> None:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(asctime)s %(message)s"))
        logger = logging.getLogger(f"tests.filters.{path.name}")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        for n, level in enumerate(levels):
            logger.log(level, "record %d", n)
        logger.removeHandler(handler)
        handler.close()

    def source(self, tmp_path: Path, extra: str) -> config.SourceConfig:
        text = (
            "sources:\n  - category: app\n    path: app.log\n"
            '    format: "[%(levelname)s] %(asctime)s %(message)s"\n' + extra
        )
        return config.parse(text, base_dir=tmp_path, env={}).sources[0]

    def test_a_source_without_filters_has_none(self, tmp_path: Path) -> None:
        follower = build_follower(self.source(tmp_path, ""), State(), Masker("off"), 0.0)
        assert follower.filters is None

    def test_key_rules_still_apply_to_filtered_records(self, tmp_path: Path) -> None:
        path = tmp_path / "app.log"
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(asctime)s %(message)s"))
        logger = logging.getLogger("tests.filters.keys")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        for _ in range(3):
            logger.info(json.dumps({"user": "kim", "password": "hunter2"}))
        logger.info("done")
        logger.removeHandler(handler)
        handler.close()
        source = self.source(tmp_path, "    collapse_repeats: 10s\n")
        masker = masker_for(config.MaskingConfig())
        follower = build_follower(source, State(), masker, 0.0)
        try:
            (cursor,) = follower.scan()
            events = follower.read(cursor, NOW_MS)
            assert events is not None
            rest = follower.flush_quiet(cursor, 0.0)
            shipped = [json.loads(e.message) for e in [*events, *rest]]
        finally:
            follower.close()
        assert [e["message"] for e in shipped] == [
            {"user": "kim", "password": "<redacted>"},
            "done",
        ]
        assert shipped[0]["repeated"] == 3
        assert "hunter2" not in json.dumps(shipped)

    def test_trailing_dropped_records_are_acknowledged_with_the_step(self, tmp_path: Path) -> None:
        path = tmp_path / "app.log"
        self.write(path, [logging.INFO, logging.DEBUG, logging.INFO, logging.DEBUG])
        source = self.source(tmp_path, "    min_level: info\n")
        follower = build_follower(source, State(), Masker("off"), 0.0)
        try:
            (cursor,) = follower.scan()
            events = follower.read(cursor, NOW_MS)
            assert events is not None
            rest = follower.flush_quiet(cursor, 0.0)
            shipped = [json.loads(e.message)["message"] for e in [*events, *rest]]
            assert shipped == ["record 0", "record 2"]
            assert rest.acknowledge_to == path.stat().st_size
        finally:
            follower.close()
