"""A one-line record the assembler hands over as a plain ``Line`` tuple becomes the
same event as the ``Record`` it stands for: same text, masking, key rules, time,
size and offset, in raw and JSON output, alone or among Records."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from shipper.mask import Masker
from shipper.records import Line, Record
from shipper.render import Renderer
from tests.support.events import Seen, seen

T = 1_700_000_000_000
MASKERS = {
    "off": Masker("off"),
    "email": Masker("partial"),
    "email and keys": Masker("partial", keys=("password", "api_key")),
}
_TEXTS = st.one_of(
    st.sampled_from(
        [
            "login ok for jane.doe@example.com",
            "db password=hunter2 ok",
            '{"api_key": "991", "user": "x@y.org"}',
            "",
        ]
    ),
    st.text(max_size=60),
)
_FIELDS = st.one_of(
    st.none(),
    st.just({}),
    st.fixed_dictionaries({"levelname": st.just("INFO"), "message": _TEXTS}),
    st.just({"asctime": "2023-02-29 12:00:00", "time_unreadable": True, "message": "late"}),
)


class _Where:
    category = "app"
    path = "/logs/app/app.log"

    def delivered(self, offset: int) -> None:
        pass


def _seen(renderer: Renderer, records: list[Record | Line], key_rules: bool) -> list[Seen]:
    return seen([renderer.events(records, _Where(), None if key_rules else 0)])


@given(
    text=_TEXTS,
    fields=_FIELDS,
    output=st.sampled_from(["raw", "json"]),
    masking=st.sampled_from(sorted(MASKERS)),
    key_rules=st.booleans(),
)
@example(text="db password=hunter2 ok", fields={}, output="raw", masking="email and keys",
         key_rules=True)  # fmt: skip
def test_a_line_renders_as_its_record(
    text: str, fields: dict[str, Any] | None, output: str, masking: str, key_rules: bool
) -> None:
    renderer = Renderer("app", output, MASKERS[masking], json_lines=False)  # type: ignore[arg-type]
    line: Line = (text, fields, T, 42)
    assert _seen(renderer, [line], key_rules) == _seen(renderer, [Record(*line)], key_rules)


@given(
    texts=st.lists(_TEXTS, min_size=1, max_size=8),
    as_lines=st.lists(st.booleans(), min_size=8, max_size=8),
    output=st.sampled_from(["raw", "json"]),
)
def test_lines_and_records_mixed_keep_their_order(
    texts: list[str], as_lines: list[bool], output: str
) -> None:
    renderer = Renderer("app", output, MASKERS["email and keys"], json_lines=False)  # type: ignore[arg-type]
    records = [Record(text, {}, T + n, n + 1) for n, text in enumerate(texts)]
    mixed: list[Record | Line] = [
        (r.text, r.fields, r.timestamp, r.end) if as_line else r
        for r, as_line in zip(records, as_lines, strict=False)
    ]
    assert _seen(renderer, mixed, True) == _seen(renderer, list(records), True)
