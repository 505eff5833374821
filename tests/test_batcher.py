"""The batcher obeys every PutLogEvents rule of SPEC §6, counted the way the service counts.

Events are made by the real renderer (so sizes are the renderer's UTF-8 counts), and
every sealed batch is judged by the strict front's own check of the rules
(:func:`tests.support.strict_front.check_put`), written independently of the batcher.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from shipper.batcher import MAX_AGE_MS, MAX_AHEAD_MS, MAX_SPAN_MS, Batch, Batcher, rejection
from shipper.mask import Masker
from shipper.records import EVENT_OVERHEAD, Event, FileEvents, Record
from shipper.render import MAX_EVENT_BYTES, Renderer
from tests.support.strict_front import check_put

NOW_MS = 1_700_000_000_000
HOUR_MS = 3_600_000


@dataclass(eq=False)  # compared and hashed by identity, as followed files are
class FilePosition:
    """Where events came from; records what was acknowledged (the Position protocol)."""

    path: str
    category: str = "app"
    acked: list[int] = field(default_factory=list)

    def delivered(self, offset: int) -> None:
        self.acked.append(offset)


RAW = Renderer("app", "raw", Masker("off"), json_lines=False)


def event(
    text: str, timestamp: int = NOW_MS, position: FilePosition | None = None, end: int = 0
) -> FileEvents:
    """The event of one record, as the reader hands it over: a read step of one event."""
    made = RAW.events([Record(text, None, timestamp, end)], position or FilePosition("a.log"))
    assert len(made) == 1
    return made


def step(position: FilePosition, events: list[tuple[int, str, int]]) -> FileEvents:
    """A read step of ``position``'s (timestamp, message, end) events, sized as
    CloudWatch counts them, whatever the batcher would say of them."""
    return FileEvents(
        position,
        [Event(timestamp, message) for timestamp, message, _ in events],
        [len(message.encode()) + EVENT_OVERHEAD for _, message, _ in events],
        [end for _, _, end in events],
    )


def feed(batcher: Batcher, steps: list[FileEvents], now_ms: int = NOW_MS) -> list[Batch]:
    """Add every step, then seal: all the batches, in the order they were sealed."""
    batches = [b for each in steps for b in batcher.add_all(each, now_ms, 0.0)]
    last = batcher.seal()
    return [*batches, last] if last is not None else batches


def ends(places: list[str]) -> list[int]:
    """The offsets of ``path:offset`` places."""
    return [int(place.rpartition(":")[2]) for place in places]


def assert_valid(batches: list[Batch]) -> None:
    for batch in batches:
        if batch.events:
            params = {
                "logEvents": [
                    {"timestamp": e.timestamp, "message": e.message} for e in batch.events
                ]
            }
            assert check_put(params) is None, check_put(params)


class TestCountLimit:
    def test_exactly_ten_thousand_events_make_one_batch(self):
        """10,000 small events are one call; nothing is split early."""
        batches = feed(Batcher(), [event(f"line {n}", end=n) for n in range(10_000)])
        assert [len(b.events) for b in batches] == [10_000]
        assert_valid(batches)

    def test_the_ten_thousand_and_first_event_starts_a_new_batch(self):
        batches = feed(Batcher(), [event(f"line {n}", end=n) for n in range(10_001)])
        assert [len(b.events) for b in batches] == [10_000, 1]
        assert_valid(batches)


class TestByteLimit:
    def test_a_batch_that_would_cross_the_byte_limit_is_split(self):
        """Events of 100,000 bytes: 10 fit (1,000,260 bytes with overhead), the 11th does not."""
        batches = feed(Batcher(), [event("x" * 100_000, end=n) for n in range(25)])
        assert [len(b.events) for b in batches] == [10, 10, 5]
        assert all(b.nbytes <= 1_048_576 for b in batches)
        assert_valid(batches)

    def test_a_batch_filled_to_the_exact_byte_limit_is_one_call(self):
        """Four events whose sizes add up to exactly 1,048,576 bytes fit; one byte more does not."""
        size = 1_048_576 // 4 - EVENT_OVERHEAD
        exact = feed(Batcher(), [event("y" * size, end=n) for n in range(4)])
        assert [b.nbytes for b in exact] == [1_048_576]
        over = feed(
            Batcher(), [event("y" * size, end=n) for n in range(3)] + [event("y" * (size + 1))]
        )
        assert [len(b.events) for b in over] == [3, 1]
        assert_valid(exact + over)

    def test_multibyte_utf8_is_counted_in_bytes_not_characters(self):
        """Korean text (3 bytes a character) and emoji (4) are counted by their UTF-8 bytes,
        so batches a character count would think small still obey the byte limit."""
        hangul = "한국어 로그 " * 10_000  # 70,000 characters, 190,000 bytes
        emoji = "📦" * 60_000  # 60,000 characters, 240,000 bytes
        events = [event(hangul if n % 2 else emoji, end=n) for n in range(12)]
        assert events[0].sizes == [240_000 + EVENT_OVERHEAD]
        assert events[1].sizes == [len(hangul.encode()) + EVENT_OVERHEAD]
        batches = feed(Batcher(), events)
        assert len(batches) > 1
        assert all(b.nbytes <= 1_048_576 for b in batches)
        assert sum(len(b.events) for b in batches) == 12
        assert_valid(batches)

    def test_a_configured_smaller_byte_limit_is_obeyed(self):
        batches = feed(Batcher(max_bytes=4096), [event("z" * 1000, end=n) for n in range(10)])
        assert all(b.nbytes <= 4096 for b in batches)
        assert [len(b.events) for b in batches] == [3, 3, 3, 1]  # 1,026 bytes each


class TestOrderAndSpan:
    def test_out_of_order_records_across_files_are_sorted_within_the_call(self):
        """Two files read one after the other, their times interleaved: each batch is sent
        in time order (stable for equal times) and each file's highest offset is acknowledged."""
        old, new = FilePosition("app.log.20240101"), FilePosition("app.log")
        events = [
            event(f"old {n}", NOW_MS - 1000 + 10 * n, old, end=100 * (n + 1)) for n in range(50)
        ]
        events += [
            event(f"new {n}", NOW_MS - 1000 + 10 * n - 5, new, end=80 * (n + 1)) for n in range(50)
        ]
        events += [event("same time, later in file", NOW_MS - 1000, new, end=99_999)]
        (batch,) = feed(Batcher(), events)
        stamps = [e.timestamp for e in batch.events]
        assert stamps == sorted(stamps)
        at_first_time = [e.message for e in batch.events if e.timestamp == NOW_MS - 1000]
        assert at_first_time == ["old 0", "same time, later in file"]
        assert batch.acks == {old: 5000, new: 99_999}
        # Reports still name where each event ended, in its own file.
        messages = [e.message for e in batch.events]
        places = dict(zip(messages, batch.where(batch.events), strict=True))
        assert places["old 3"] == "app.log.20240101:400"
        assert places["new 3"] == "app.log:320"
        assert places["same time, later in file"] == "app.log:99999"
        assert_valid([batch])

    def test_a_batch_that_would_span_more_than_24_hours_is_split(self):
        """Events 23 h apart share a call; one 24 h after the first starts a new call."""
        start = NOW_MS - 30 * HOUR_MS
        events = [
            event("first", start),
            event("23 hours later", start + 23 * HOUR_MS),
            event("exactly 24 hours after the first", start + 24 * HOUR_MS),
        ]
        batches = feed(Batcher(), events, now_ms=NOW_MS)
        assert [[e.message for e in b.events] for b in batches] == [
            ["first", "23 hours later"],
            ["exactly 24 hours after the first"],
        ]
        assert_valid(batches)

    def test_span_counts_an_earlier_event_arriving_late(self):
        """A late event 25 h before the batch's newest must not join it."""
        events = [
            event("now", NOW_MS - HOUR_MS),
            event("a day and an hour earlier", NOW_MS - 26 * HOUR_MS),
        ]
        batches = feed(Batcher(), events)
        assert [len(b.events) for b in batches] == [1, 1]
        assert_valid(batches)


class TestRefusedEvents:
    def test_events_older_than_14_days_are_not_sent_but_acknowledged(self):
        """SPEC §3.1: too old at read time: counted as ``too_old``, never sent, acknowledged."""
        position = FilePosition("app.log")
        events = [
            event("fresh", NOW_MS - HOUR_MS, position, end=10),
            event("15 days old", NOW_MS - MAX_AGE_MS - 1, position, end=20),
            event("3 hours ahead", NOW_MS + MAX_AHEAD_MS + 1, position, end=30),
        ]
        (batch,) = feed(Batcher(), events)
        assert [e.message for e in batch.events] == ["fresh"]
        assert batch.rejected == [("too_old", "app.log:20"), ("too_new", "app.log:30")]
        assert batch.acks == {position: 30}

    def test_refused_events_are_held_in_bounded_chunks(self):
        """Issue 18: a file of events too old to send is not gathered whole into one
        batch (a million took 144 MiB): every batch holds at most ``max_events`` of
        them, and each chunk is acknowledged to its last event."""
        position = FilePosition("app.log")
        old = NOW_MS - MAX_AGE_MS - HOUR_MS
        refused = step(position, [(old, f"old {n}", n + 1) for n in range(2_500)])
        batcher = Batcher(max_events=1_000)
        sealed = batcher.add_all(refused, NOW_MS, 1.0)
        last = batcher.seal()
        assert last is not None
        chunks = [*sealed, last]
        assert [len(b.rejected) for b in chunks] == [1_000, 1_000, 500]
        assert [b.events for b in chunks] == [[], [], []]
        assert [b.acks for b in chunks] == [{position: 1_000}, {position: 2_000}, {position: 2_500}]

    def test_a_batch_of_only_refused_events_is_still_sealed_for_acknowledgement(self):
        (batch,) = feed(Batcher(), [event("ancient", NOW_MS - MAX_AGE_MS - HOUR_MS, end=7)])
        assert batch.events == []
        assert [r for r, _ in batch.rejected] == ["too_old"]

    def test_an_empty_message_is_never_sent(self):
        """The service refuses an empty message (and with it the whole call)."""
        position = FilePosition("app.log")
        empty = step(position, [(NOW_MS, "", 5)])
        (batch,) = feed(Batcher(), [event("before", end=4, position=position), empty])
        assert [e.message for e in batch.events] == ["before"]
        assert [r for r, _ in batch.rejected] == ["empty"]
        assert batch.acks == {position: 5}

    def test_the_renderer_drops_an_empty_raw_line(self):
        """An empty line in raw output makes no event at all."""
        assert RAW.event(Record("", None, NOW_MS, 1), FilePosition("a.log")) is None

    def test_an_event_over_1_mb_is_truncated_by_the_renderer_and_says_so(self):
        """A 1.5 MB record becomes one event that fits the limit and is marked truncated."""
        big = event("é" * 750_000)  # 1,500,000 bytes
        assert big.sizes[0] <= MAX_EVENT_BYTES
        assert big.events[0].message.endswith("…[truncated]")
        batches = feed(Batcher(), [event("small"), big, event("after")])
        assert sum(len(b.events) for b in batches) == 3
        assert_valid(batches)

    def test_an_event_over_1_mb_that_reaches_the_batcher_is_refused_not_sent(self):
        """Defence in depth: one oversized event would fail the whole call."""
        huge = step(FilePosition("a"), [(NOW_MS, "h" * MAX_EVENT_BYTES, 9)])
        (batch,) = feed(Batcher(), [event("ok"), huge])
        assert [e.message for e in batch.events] == ["ok"]
        assert [r for r, _ in batch.rejected] == ["too_large"]


class TestTiming:
    def test_pending_since_is_when_the_oldest_unsealed_event_came(self):
        batcher = Batcher()
        assert batcher.pending_since() is None
        batcher.add_all(event("a"), NOW_MS, 12.5)
        batcher.add_all(event("b"), NOW_MS, 13.0)
        assert batcher.pending_since() == 12.5
        batcher.seal()
        assert batcher.pending_since() is None


def _greedy(
    events: list[tuple[int, str, int, int]], now_ms: int, max_events: int, max_bytes: int
) -> list[Any]:
    """The batching rules written plainly, over (timestamp, message, size, end) events: an
    event starts a new batch when adding it would break the count, the bytes or the
    24-hour span; refused events ride along, and a batch holding ``max_events`` of them
    is sealed."""
    batches: list[tuple[list[Any], list[Any]]] = [([], [])]
    for e in events:
        timestamp, message, size, _ = e
        kept, refused = batches[-1]
        if rejection(timestamp, message, size, now_ms) is not None:
            refused.append(e)
            if len(refused) >= max_events:
                batches.append(([], []))
            continue
        times = [k[0] for k in kept] + [timestamp]
        if kept and (
            len(kept) >= max_events
            or sum(k[2] for k in kept) + size > max_bytes
            or max(times) - min(times) > MAX_SPAN_MS
        ):
            batches.append(([], []))
        batches[-1][0].append(e)
    return [
        (sorted(k[3] for k in kept), [r[3] for r in refused])
        for kept, refused in batches
        if kept or refused
    ]


_ONE = st.tuples(
    st.sampled_from(
        [0, 1, HOUR_MS, -20 * HOUR_MS, -40 * HOUR_MS, -MAX_AGE_MS - 1, MAX_AHEAD_MS + 1]
    ),
    st.integers(0, 120),
)


class TestAgainstThePlainRules:
    @given(
        events=st.lists(_ONE, max_size=40),
        cuts=st.lists(st.integers(0, 40), max_size=6),
        max_events=st.integers(1, 5),
        max_bytes=st.integers(200, 600),
    )
    # Each event within 24 hours of the first, but the last 40 hours before the second.
    @example(
        events=[(-20 * HOUR_MS, 10), (0, 10), (-40 * HOUR_MS, 10)],
        cuts=[],
        max_events=5,
        max_bytes=600,
    )
    def test_chunked_batches_match_the_rules_event_by_event(
        self, events: list[tuple[int, int]], cuts: list[int], max_events: int, max_bytes: int
    ) -> None:
        """However a file's events arrive in chunks, the batches are the ones the rules
        give one event at a time: same events, same refusals, same acknowledgements."""
        files = [FilePosition("a.log"), FilePosition("b.log")]  # chunks alternate between them
        made = [
            (NOW_MS + shift, "m" * length, length + EVENT_OVERHEAD, n)
            for n, (shift, length) in enumerate(events)
        ]
        batcher = Batcher(max_events, max_bytes)
        batches: list[Batch] = []
        bounds = [0, *sorted(c for c in cuts if c <= len(made)), len(made)]
        added_at = {}  # offset -> the monotonic time of the call that added it
        file_of = {}  # offset -> the file it was read from
        for call, (low, high) in enumerate(itertools.pairwise(bounds), start=1):
            position = files[call % 2]
            chunk = step(position, [(t, m, n) for t, m, _, n in made[low:high]])
            batches += batcher.add_all(chunk, NOW_MS, float(call))
            added_at.update((n, float(call)) for n in range(low, high))
            file_of.update((n, position) for n in range(low, high))
        last = batcher.seal()
        batches += [last] if last is not None else []
        seen = [
            (sorted(ends(b.where(b.events))), ends([place for _, place in b.rejected]))
            for b in batches
        ]
        assert seen == _greedy(made, NOW_MS, max_events, max_bytes)
        for batch, (kept, refused) in zip(batches, seen, strict=True):
            assert sorted(batch.where(batch.events)) == sorted(
                f"{file_of[n].path}:{n}" for n in kept
            )
            assert batch.first_added == added_at[min(kept + refused)]  # how long it has waited
            assert batch.nbytes == sum(made[n][2] for n in kept)
            assert batch.acks == {
                position: max(n for n in kept + refused if file_of[n] is position)
                for position in {file_of[n] for n in kept + refused}
            }
            if batch.events:
                times = [e.timestamp for e in batch.events]
                assert times == sorted(times)
                assert max(times) - min(times) <= MAX_SPAN_MS
