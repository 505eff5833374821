"""The shipper's own logs (SPEC §7): JSON lines on stdout with one named event per
happening, at the configured level, masked (SPEC §3 promise 4), and readable console
lines instead when stdout is a terminal."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

from tests.support.cloudwatch import CREDENTIALS
from tests.support.process import ShipperProcess, wait_until

EVENT_NAME = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
ADDRESS = "jane.doe@example.com"


class TestOwnLogs:
    def test_every_line_is_json_with_a_dotted_event_name_level_and_time(
        self, tmp_path, make_config
    ):
        logs = tmp_path / "logs" / "app"
        logs.mkdir(parents=True)
        (logs / "app.log").write_text('{"message": "hello"}\n')
        config = make_config([{"category": "app", "path": str(logs / "app.log")}])
        with ShipperProcess(config) as shipper:
            wait_until(lambda: shipper.find("batch.delivered"))
            assert shipper.stop() == 0
        events = shipper.events()
        assert events
        for event in events:
            assert EVENT_NAME.match(event["event"]), event
            assert event["level"] in ("debug", "info", "warning", "error")
            assert event["ts"].endswith("Z")
        names = [e["event"] for e in events]
        assert names[0] != "shipper.stopped"
        assert names[-1] == "shipper.stopped"

    def test_level_warning_keeps_only_warnings_and_errors_masked(self, tmp_path, make_config):
        """log_level: warning drops info events; the warning about a missing folder
        is there, with the e-mail address in its path masked."""
        config = make_config(
            [{"category": "app", "path": str(tmp_path / ADDRESS / "app.log")}],
            log_level="warning",
        )
        shipper = ShipperProcess(config).start(wait_started=False)
        try:
            (error,) = wait_until(lambda: shipper.find("file.error"))
            assert error["level"] == "warning"
            assert shipper.stop() == 0
        finally:
            shipper.__exit__()
        assert ADDRESS not in shipper.output()
        assert error["path"].endswith("*@example.com")
        assert {e["level"] for e in shipper.events()} == {"warning"}

    def test_console_lines_for_a_terminal(self, tmp_path, make_config):
        """With stdout on a terminal (a real pseudo-terminal) the lines are for
        people: not JSON, the level and event name up front — and still masked."""
        config = make_config([{"category": "app", "path": str(tmp_path / ADDRESS / "app.log")}])
        controller, terminal = os.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipper", "run", "-c", str(config)],
            stdout=terminal,
            stderr=terminal,
            env={**os.environ, **CREDENTIALS},
        )
        os.close(terminal)
        output = b""
        try:
            deadline = time.monotonic() + 30
            while b"file.error" not in output and time.monotonic() < deadline:
                if select.select([controller], [], [], 0.5)[0]:
                    output += os.read(controller, 65536)
            proc.terminate()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(controller)
        text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode())  # colours off
        lines = [line for line in text.splitlines() if line.strip()]
        started = next(line for line in lines if "shipper.started" in line)
        assert not started.lstrip().startswith("{")
        assert re.search(r"\[info\s*\] shipper\.started", started), started
        assert ADDRESS not in text
        error = next(line for line in lines if "file.error" in line)
        assert re.search(r"\[warning\s*\] file\.error", error), error
        assert re.search(r"path=\S*\*@example\.com", error), error
