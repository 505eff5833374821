"""The quick-start demo, for real and on this machine only.

    python -m demo [--seconds 5] [--keep]

1. starts a CloudWatch Logs API on 127.0.0.1 (moto's server, from the test extras);
2. starts the sample app (:mod:`demo.sample_app`), which writes two categories of
   rotating logs with e-mail addresses in them;
3. runs ``shipper run`` as a separate process, pointed at that API, and shows its
   progress from its own /metrics;
4. when everything written has arrived, stops the shipper with SIGTERM and prints
   what arrived per log group, a sample of the (masked) events, and the metrics the
   shipper made from the logs (EMF events in ``/demo-metrics``).

Every process it starts is stopped before it exits, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from demo.sample_app import APP_DATEFMT, APP_FORMAT, DB_FORMAT, USERS

ZONE = "Asia/Seoul"
CATEGORIES = ("app", "db")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
}
DELIVERY_WAIT = 30.0
METRICS_GROUP = "/demo-metrics"


def say(text: str = "") -> None:
    print(text, flush=True)


@contextlib.contextmanager
def cloudwatch_api() -> Iterator[str]:
    """moto's CloudWatch Logs server on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with its output in ``log``; killed on the way out if still running."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def write_config(work: Path, endpoint: str) -> Path:
    logs = work / "logs"
    config = {
        "state_dir": str(work / "state"),
        "shutdown_timeout": 10,
        "rescan_interval": 1.0,
        "cloudwatch": {
            "region": "us-east-1",
            "endpoint_url": endpoint,
            "log_group": "/demo/{category}",
            "log_stream": "{hostname}",
            "retention_days": 7,
        },
        "batch": {"flush_interval": 0.5},
        "sources": [
            {
                "category": "app",
                "path": str(logs / "app" / "app.log"),
                "format": APP_FORMAT,
                "datefmt": APP_DATEFMT,
                "timezone": ZONE,
                "requests": {"duration_unit": "ms"},  # its JSON request summaries
            },
            {
                "category": "db",
                "path": str(logs / "db" / "db.log"),
                "format": DB_FORMAT,
                "timezone": ZONE,
            },
        ],
        "masking": {"email": "partial"},
        "health": {"listen": "127.0.0.1:0"},
        "metrics": {"namespace": "Demo", "log_group": METRICS_GROUP},
    }
    path = work / "shipper.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def own_events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def wait_for(condition: Any, seconds: float, what: str, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if proc.poll() is not None:
            raise SystemExit(f"demo: the shipper exited ({proc.returncode}) before {what}")
        time.sleep(0.1)
    raise SystemExit(f"demo: timed out waiting for {what}")


def scrape(url: str) -> dict[tuple[str, str], float]:
    """/metrics as {(sample name, first label value): value}, summed."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = next(iter(sample.labels.values()), "")
            key = (sample.name, label)
            values[key] = values.get(key, 0.0) + sample.value
    return values


def read_status(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


class Progress:
    """One status line, rewritten in place on a terminal, printed each second otherwise."""

    def __init__(self) -> None:
        self.terminal = sys.stdout.isatty()
        self.started = time.monotonic()
        self.last = 0.0

    def show(self, text: str) -> None:
        now = time.monotonic()
        line = f"  {now - self.started:5.1f}s  {text}"
        if self.terminal:
            print(f"\r{line:<110}", end="", flush=True)
        elif now - self.last >= 1.0:
            say(line)
            self.last = now

    def done(self) -> None:
        if self.terminal:
            print(flush=True)


def progress_text(status: dict[str, Any], metrics: dict[tuple[str, str], float], logs: Path) -> str:
    rotated = sum(len(list((logs / c).glob(f"{c}.log.*"))) for c in CATEGORIES)
    parts = []
    for category in CATEGORIES:
        written = status.get(category, 0)
        shipped = metrics.get(("shipper_records_shipped_total", f"/demo/{category}"), 0.0)
        parts.append(f"{category}: {written:>4} written {int(shipped):>4} shipped")
    lines = sum(metrics.get(("shipper_lines_read_total", c), 0.0) for c in CATEGORIES)
    return " | ".join(parts) + f" | {int(lines)} lines read | {rotated} rotated files"


def cloudwatch_events(endpoint: str, group: str) -> list[dict[str, Any]]:
    import boto3

    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    events: list[dict[str, Any]] = []
    for page in client.get_paginator("describe_log_streams").paginate(logGroupName=group):
        for stream in page["logStreams"]:
            token = None
            while True:
                kwargs = {
                    "logGroupName": group,
                    "logStreamName": stream["logStreamName"],
                    "startFromHead": True,
                }
                if token:
                    kwargs["nextToken"] = token
                found = client.get_log_events(**kwargs)
                events.extend(dict(e, stream=stream["logStreamName"]) for e in found["events"])
                if not found["events"] or found["nextForwardToken"] == token:
                    break
                token = found["nextForwardToken"]
    return events


def report(endpoint: str, written: dict[str, Any]) -> int:
    """Print what arrived per group and a sample of events; return the number of
    problems (records missing, duplicated, or an address left unmasked)."""
    problems = 0
    say(f"\nWhat arrived in CloudWatch Logs (the API on {endpoint}):\n")
    say(f"  {'log group':<12} {'streams':>7} {'events':>7} {'written':>8} {'tracebacks':>11}"
        f" {'unmasked e-mails':>17}")  # fmt: skip
    samples: list[tuple[str, dict[str, Any]]] = []
    for category in CATEGORIES:
        group = f"/demo/{category}"
        events = cloudwatch_events(endpoint, group)
        messages = [json.loads(e["message"]) for e in events]
        unmasked = sum(1 for e in events if any(user in e["message"] for user in USERS))
        tracebacks = sum(1 for m in messages if "exception" in m)
        streams = len({e["stream"] for e in events})
        say(f"  {group:<12} {streams:>7} {len(events):>7} {written.get(category, 0):>8}"
            f" {tracebacks:>11} {unmasked:>17}")  # fmt: skip
        if len(events) != written.get(category) or unmasked:
            problems += 1
        samples.extend((group, e) for e in events[:: max(len(events) // 3, 1)][:2])
        with_traceback = next((e for e in events if "exception" in e["message"]), None)
        if with_traceback is not None and category == "app":
            samples.append((group, with_traceback))
    say("\nA sample of the events, as stored (masked):\n")
    for group, event in samples:
        when = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
        message = event["message"]
        if len(message) > 300:
            message = message[:300] + "…"
        say(f"  {group}  {when:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC")
        say(f"    {message}")
    return problems


def report_metrics(endpoint: str) -> None:
    """Print what the EMF events in METRICS_GROUP add up to, as CloudWatch sums them."""
    routes: dict[str, dict[str, Any]] = {}
    others: dict[tuple[str, str], float] = {}
    events = cloudwatch_events(endpoint, METRICS_GROUP)
    for event in events:
        document = json.loads(event["message"])
        route = document.get("Route")
        if route is not None:
            each = routes.setdefault(route, {"Requests": 0, "Errors5xx": 0, "Latency": {}})
            each["Requests"] += document.get("Requests", 0)
            each["Errors5xx"] += document.get("Errors5xx", 0)
            latency = document.get("Latency", {"Values": [], "Counts": []})
            for value, count in zip(latency["Values"], latency["Counts"], strict=True):
                each["Latency"][value] = each["Latency"].get(value, 0) + count
        for name in ("Exceptions", "Errors", "Warnings"):
            if name in document:
                kind = document.get("Exception")
                key = (document["Category"], f"{name} {kind}" if kind else name)
                others[key] = others.get(key, 0) + document[name]
    say(f"\nMetrics made from the logs ({len(events)} EMF events in {METRICS_GROUP}):\n")
    say(f"  {'route':<22} {'requests':>8} {'5xx':>5} {'p50 ms':>7} {'p99 ms':>7}")
    for route, each in sorted(routes.items()):
        p50, p99 = (_quantile(each["Latency"], q) for q in (0.5, 0.99))
        say(f"  {route:<22} {each['Requests']:>8} {each['Errors5xx']:>5} {p50:>7.1f} {p99:>7.1f}")
    for (category, name), count in sorted(others.items()):
        say(f"  {category}: {name} {count:g}")


def _quantile(counts: dict[float, int], q: float) -> float:
    total = sum(counts.values())
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= q * total:
            return value
    return 0.0


def run(seconds: float, work: Path) -> int:
    env = {**os.environ, **CREDENTIALS, "PYTHONUNBUFFERED": "1"}
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    logs = work / "logs"
    status_path = work / "written.json"
    say(f"shipper demo — working in {work}")
    with cloudwatch_api() as endpoint:
        say(f"  1. CloudWatch Logs API (moto) listening on {endpoint}")
        config = write_config(work, endpoint)
        shipper_log = work / "shipper.log"
        shipper_args = [sys.executable, "-m", "shipper", "run", "-c", str(config)]
        with process(shipper_args, shipper_log, env) as shipper:
            wait_for(lambda: own_events(shipper_log, "shipper.started"), 30, "it started", shipper)
            (listening,) = own_events(shipper_log, "health.listening")
            metrics_url = f"http://{listening['host']}:{listening['port']}"
            say(f"  2. shipper running (pid {shipper.pid}); metrics on {metrics_url}/metrics")
            app_args = [sys.executable, "-m", "demo.sample_app", "--logs", str(logs)]
            app_args += ["--seconds", str(seconds), "--status", str(status_path)]
            app_env = {**env, "TZ": ZONE}
            progress = Progress()
            with process(app_args, work / "sample_app.log", app_env) as app:
                say(f"  3. sample app (pid {app.pid}) writing {', '.join(CATEGORIES)} logs for "
                    f"{seconds:g}s with forced midnight rollovers, in {ZONE} time\n")  # fmt: skip
                deadline = None
                while True:
                    status = read_status(status_path)
                    metrics = scrape(metrics_url)
                    progress.show(progress_text(status, metrics, logs))
                    if app.poll() is not None and status.get("done"):
                        shipped = all(
                            metrics.get(("shipper_records_shipped_total", f"/demo/{c}"), 0)
                            >= status[c]
                            for c in CATEGORIES
                        )
                        if shipped:
                            break
                        deadline = deadline or time.monotonic() + DELIVERY_WAIT
                        if time.monotonic() > deadline:
                            progress.done()
                            say("demo: not everything arrived in time; see shipper.log")
                            break
                    elif app.poll() is not None and app.returncode != 0:
                        raise SystemExit(f"demo: the sample app failed; see {work}/sample_app.log")
                    if shipper.poll() is not None:
                        raise SystemExit(f"demo: the shipper exited; see {shipper_log}")
                    time.sleep(0.25)
                progress.show(progress_text(status, scrape(metrics_url), logs))
                progress.done()
            shipper.send_signal(signal.SIGTERM)
            code = shipper.wait(timeout=30)
            stopped = own_events(shipper_log, "shipper.stopped")
            say(f"\n  4. shipper stopped by SIGTERM: exit code {code}, "
                f"clean={stopped[0]['clean'] if stopped else '?'}")  # fmt: skip
        problems = report(endpoint, read_status(status_path))
        report_metrics(endpoint)
    if code != 0 or problems:
        say("\ndemo: FAILED — see the logs in " + str(work))
        return 1
    say("\nEverything written arrived, masked. Next: ./scripts/test")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the app writes (5)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipper-demo-"))
    try:
        return run(args.seconds, work)
    except KeyboardInterrupt:
        return 130
    finally:
        if args.keep:
            say(f"(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
