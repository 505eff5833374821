"""``shipper volume`` on a generated folder whose byte shares are known (issue 21; SPEC
§4): events and bytes per day, the monthly estimate, the top templates with their
shares and folding, what the filters save, and that nothing moves or is sent.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipper import config, volume
from shipper.volume import GB, MONTH_DAYS, measure, message_template, template

HOUR = 3600
# Three kinds of lines, each of one fixed length, so each kind's bytes are known:
# (count, level, message of the record number n).
KINDS = {
    "order": (300, "INFO", lambda n: f"order {n:06d} placed by user {n % 97:04d}"),
    "cache": (150, "DEBUG", lambda n: f"cache miss for 1b4e28ba-2fa1-11d2-883f-{n:012d}"),
    "slow": (50, "WARNING", lambda n: f"slow query took {n % 9 + 100} ms on 'orders_{n:04d}'"),
}
TEMPLATES = {
    "order": "<n>-<n>-<n> <n>:<n>:<n> INFO order <n> placed by user <n>",
    "cache": "<n>-<n>-<n> <n>:<n>:<n> DEBUG cache miss for <uuid>",
    "slow": "<n>-<n>-<n> <n>:<n>:<n> WARNING slow query took <n> ms on <str>",
}


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def generate(folder: Path, now: float) -> dict[str, object]:
    """The live file (records of the last 6 hours), a rotated file (30 to 24 hours
    ago), and a rotated file last modified 10 days ago (outside --since 7d).  Returns
    what was written: bytes and events by kind, and events by UTC day."""
    folder.mkdir(parents=True)
    kinds_bytes = dict.fromkeys(KINDS, 0)
    days: dict[str, int] = {}
    files = {"app.log.20261201": (10 * 24 * HOUR, []), "app.log.20261202": (30 * HOUR, [])}
    files["app.log"] = (6 * HOUR, [])
    for kind, (count, level, text) in KINDS.items():
        for n in range(count):
            name = "app.log.20261202" if n % 3 == 0 else "app.log"
            age = files[name][0] - n  # a second apart, oldest first
            line = f"{stamp(now - age)} {level} {text(n)}"
            files[name][1].append((now - age, line))
            kinds_bytes[kind] += len(line) + 26
            day = datetime.fromtimestamp(now - age, UTC).date().isoformat()
            days[day] = days.get(day, 0) + 1
        old = f"{stamp(now - 10 * 24 * HOUR)} {level} {text(0)}"
        files["app.log.20261201"][1].append((now - 10 * 24 * HOUR, old))
    for name, (age, lines) in files.items():
        path = folder / name
        path.write_text("".join(f"{line}\n" for _, line in sorted(lines)))
        os.utime(path, (now - age + 600, now - age + 600))
    os.utime(folder / "app.log", (now, now))
    return {"bytes": kinds_bytes, "days": days}


def load(tmp_path: Path, extra: str = "", cloudwatch: str = "") -> config.Config:
    text = (
        f"state_dir: state\ncloudwatch: {{log_group: '/v/{{category}}'{cloudwatch}}}\n"
        "sources:\n  - category: app\n    path: logs/app/app.log\n"
        '    format: "%(asctime)s %(levelname)s %(message)s"\n'
        '    datefmt: "%Y-%m-%d %H:%M:%S"\n    output: raw\n' + extra
    )
    return config.parse(text, base_dir=tmp_path, env={})


class TestTemplates:
    """Templates fold what varies, so one message shape is one line of the report."""

    def test_numbers_ids_uuids_hex_and_quoted_values_are_folded(self) -> None:
        assert template("user 42 took 1.5s") == "user <n> took <n>s"
        assert template("req 9f86d081884c7d65 ok") == "req <hex> ok"
        assert template("id 0x1F") == "id <hex>"
        assert template("job ab12cd34ef ran") == "job <hex> ran"
        assert template("order ORD-2024A-99 for user_7781") == "order <id> for <id>"
        assert template("key 1b4e28ba-2fa1-11d2-883f-0016d3cca427") == "key <uuid>"
        assert template("table 'orders_0001' name \"x y\"") == "table <str> name <str>"
        assert template("GET /v1/orders") == "GET /v1/orders"

    def test_a_json_message_keeps_its_keys(self) -> None:
        event = '{"level":"INFO","message":{"url":"/a/1","status":200},"category":"app"}'
        assert message_template(event, "json") == 'INFO {"url":<str>,"status":<n>}'

    def test_a_traceback_is_named_not_printed(self) -> None:
        event = '{"level":"ERROR","message":"failed 3","exception":"Traceback ...","category":"a"}'
        assert message_template(event, "json") == "ERROR failed <n> + traceback"


class TestMeasure:
    """The figures of a folder whose bytes and days are known."""

    def test_bytes_days_shares_and_cost(self, tmp_path: Path) -> None:
        now = time.time()
        written = generate(tmp_path / "logs" / "app", now)
        loaded = load(tmp_path)
        measured = measure(loaded, loaded.sources[0], 7 * 24 * HOUR, io.StringIO(), now=now)
        kinds_bytes = written["bytes"]
        assert isinstance(kinds_bytes, dict)
        total = sum(kinds_bytes.values())
        shipped = measured.shipped
        assert shipped.events == 500  # the file modified 10 days ago is left out
        assert shipped.nbytes == total
        assert dict(shipped.days) == written["days"]
        assert measured.files == 2
        shares = {t: b / shipped.nbytes for t, b in shipped.templates.items()}
        assert set(shares) == set(TEMPLATES.values())
        for kind, shape in TEMPLATES.items():
            assert shares[shape] == pytest.approx(kinds_bytes[kind] / total)
            assert shipped.template_events[shape] == KINDS[kind][0]
        # The events cover 30 hours: the day rate is over those, the month is 30 days.
        assert measured.span_days == pytest.approx(30 / 24, abs=0.01)
        expected = total / (30 / 24) * MONTH_DAYS / GB * 0.50
        assert measured.monthly_cost(shipped) == pytest.approx(expected, rel=0.01)

    def test_price_per_gb_from_the_config(self, tmp_path: Path) -> None:
        now = time.time()
        generate(tmp_path / "logs" / "app", now)
        standard = load(tmp_path)
        priced = load(tmp_path, cloudwatch=", price_per_gb: 0.25")
        first = measure(standard, standard.sources[0], 7 * 24 * HOUR, io.StringIO(), now=now)
        second = measure(priced, priced.sources[0], 7 * 24 * HOUR, io.StringIO(), now=now)
        assert second.monthly_cost(second.shipped) == pytest.approx(
            first.monthly_cost(first.shipped) / 2
        )

    def test_what_the_filters_drop_and_save(self, tmp_path: Path) -> None:
        now = time.time()
        written = generate(tmp_path / "logs" / "app", now)
        loaded = load(
            tmp_path,
            "    min_level: INFO\n    sample: [{match: 'slow query', keep_one_in: 10}]\n",
        )
        measured = measure(loaded, loaded.sources[0], 7 * 24 * HOUR, io.StringIO(), now=now)
        kinds_bytes = written["bytes"]
        assert isinstance(kinds_bytes, dict)
        filtered = measured.filtered
        assert filtered is not None
        # DEBUG lines all dropped; of 50 slow queries (in two files, 17 and 33, counted
        # across them) 5 kept, each marked.
        assert measured.dropped["level"] == 150  # the file modified 10 days ago is not read
        assert filtered.events == 300 + 5
        slow_line = kinds_bytes["slow"] // 50
        mark = len(" …[sampled 1 in 10]".encode())
        assert filtered.nbytes == kinds_bytes["order"] + 5 * (slow_line + mark)
        out = io.StringIO()
        volume.report(measured, "7d", out)
        assert "filters: keep 305 of 500 events" in out.getvalue()

    def test_progress_goes_to_stderr(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(volume, "PROGRESS_EVERY", 0.0)
        generate(tmp_path / "logs" / "app", time.time())
        loaded = load(tmp_path)
        err = io.StringIO()
        measure(loaded, loaded.sources[0], 7 * 24 * HOUR, err)
        assert "volume: app: " in err.getvalue()
        assert " read (" in err.getvalue()


class TestCommand:
    """``shipper volume`` as a command: a report on stdout, no checkpoint, exit codes."""

    def run(self, config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipper", "volume", "-c", str(config_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_report_and_no_checkpoint(self, tmp_path: Path) -> None:
        generate(tmp_path / "logs" / "app", time.time())
        config_path = tmp_path / "shipper.yaml"
        config_path.write_text(
            "state_dir: state\nsources:\n  - category: app\n    path: logs/app/app.log\n"
            '    format: "%(asctime)s %(levelname)s %(message)s"\n'
            '    datefmt: "%Y-%m-%d %H:%M:%S"\n    output: raw\n    min_level: INFO\n'
        )
        result = self.run(config_path, "--since", "7d")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("app: 2 file(s) modified within 7d")
        assert any(TEMPLATES["order"] in line for line in lines)
        assert any("filters: keep 350 of 500 events" in line for line in lines)
        assert not (tmp_path / "state").exists()

    def test_bad_since_and_source_are_config_errors(self, tmp_path: Path) -> None:
        config_path = tmp_path / "shipper.yaml"
        config_path.write_text("sources:\n  - category: app\n    path: logs/app/app.log\n")
        bad_since = self.run(config_path, "--since", "lately")
        assert bad_since.returncode == 2
        assert "--since: 'lately'" in bad_since.stderr
        bad_source = self.run(config_path, "--source", "nope")
        assert bad_source.returncode == 2
        assert "--source: 'nope'" in bad_source.stderr
