"""The quick start's first command (`./scripts/demo` runs `python -m demo`) works: it
finishes by itself, reports everything written as arrived and masked, and leaves no
process or working folder behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: it has exited and only awaits its parent.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


class TestDemo:
    def test_runs_to_completion_and_cleans_up(self):
        result = subprocess.run(
            [sys.executable, "-m", "demo", "--seconds", "3"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        rows = {
            m["group"]: m
            for m in re.finditer(
                r"^\s+(?P<group>/demo/\w+)\s+(?P<streams>\d+)\s+(?P<events>\d+)\s+(?P<written>\d+)"
                r"\s+(?P<tracebacks>\d+)\s+(?P<unmasked>\d+)\s*$",
                out,
                re.MULTILINE,
            )
        }
        assert set(rows) == {"/demo/app", "/demo/db"}, out
        for row in rows.values():
            assert int(row["written"]) > 0
            assert row["events"] == row["written"]
            assert row["unmasked"] == "0"
        assert int(rows["/demo/app"]["tracebacks"]) > 0
        assert "exit code 0, clean=True" in out
        assert "@" in out.split("A sample of the events")[1]  # the sample is shown
        assert "rotated files" in out  # progress was shown while it ran
        for pid in re.findall(r"\(pid (\d+)\)", out):
            assert not alive(int(pid)), f"process {pid} left running"
        work = re.search(r"working in (\S+)", out)[1]
        assert not Path(work).exists()
