"""Files in other encodings (``sources[].encoding``) reach CloudWatch as the text they
hold, written by the stdlib's own ``FileHandler(encoding=...)``; offsets are bytes, so a
restart in the middle of such a file neither loses nor repeats a record (promises 1, 2).
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.scenarios.conftest import FORMAT, RECORD_ID, Scenario
from tests.support.process import ShipperProcess

# Each encoding with text only it (or Unicode) can write: multi-byte characters, and for
# GB18030 and UTF-16 characters beyond the BMP (four bytes, a surrogate pair).
TEXTS = {
    "cp949": "사용자 로그인 성공 · 결제 완료 ㈜",
    "gb18030": "用户登录成功 支付完成 € 𠀀",
    "utf-16": "사용자 用户 café 𝄞",
}


def write(path, encoding: str, start: int, count: int) -> list[str]:
    """``count`` records ``rec-e-<n>`` through a fresh FileHandler (appending, as an app
    that restarts does: no second byte-order mark)."""
    handler = logging.FileHandler(path, encoding=encoding)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(f"scenario.encoding.{encoding}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        ids = [f"rec-e-{n:04d}" for n in range(start, start + count)]
        for rid in ids:
            logger.info("%s %s", rid, TEXTS[encoding])
    finally:
        logger.removeHandler(handler)
        handler.close()
    return ids


class TestEncodings:
    @pytest.mark.parametrize("encoding", list(TEXTS))
    def test_records_round_trip_across_a_restart_mid_file(
        self, scenario: Scenario, encoding: str
    ) -> None:
        scenario.live.parent.mkdir(parents=True)
        config = scenario.config({"encoding": encoding})
        first = write(scenario.live, encoding, 0, 30)
        with ShipperProcess(config) as shipper:
            scenario.wait_delivered(first[:-1])
            assert shipper.stop() == 0
        later = write(scenario.live, encoding, 30, 30)
        with ShipperProcess(config) as shipper:
            scenario.wait_delivered(first + later)
            assert shipper.stop() == 0
        scenario.assert_exactly_once(first + later)
        for event in scenario.moto.events(scenario.group):
            document = json.loads(event["message"])
            match = RECORD_ID.match(document["message"])
            assert match is not None, document
            assert document["message"] == f"{match.group()} {TEXTS[encoding]}"
            assert document["level"] == "INFO"
