"""The shipper as a real process: started with a YAML config, stopped by real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.cloudwatch import CREDENTIALS


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(interval)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class ShipperProcess:
    """``python -m shipper run -c CONFIG`` with its stdout (JSON lines) kept in a file."""

    def __init__(
        self, config_path: Path, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> None:
        self.config_path = config_path
        self.prefix = list(prefix)  # a command the shipper runs under (e.g. setpriv)
        self.log_path = config_path.with_suffix(f".{int(time.time() * 1000)}.log")
        self.env = {**os.environ, **CREDENTIALS, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_started: bool = True) -> ShipperProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "shipper", "run", "-c", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        if wait_started:
            wait_until(lambda: self.find("shipper.started") or self.exited(), timeout=30)
            assert self.proc.poll() is None, self.output()
        return self

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        """The shipper's own log lines, parsed."""
        found = []
        for line in self.output().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"event": "<not json>", "line": line})
        return found

    def find(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == name]

    def health_url(self, timeout: float = 30.0) -> str:
        """``http://host:port`` of the health listener, from its ``health.listening`` event."""
        event = wait_until(lambda: self.find("health.listening"), timeout=timeout)[0]
        return f"http://{event['host']}:{event['port']}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            self._log.close()
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> ShipperProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self._log.close()
