"""What ships next to the code: the example config, the Dockerfile, the systemd unit and
the ECS task definition (SPEC §7 "Shipped with the code").  Each is parsed and checked
here, and the image's entrypoint and health check run for real against a moto server,
so none of them can rot unnoticed."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest
import yaml

from shipper import config as schema
from tests.support.cloudwatch import CREDENTIALS
from tests.support.process import ShipperProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "shipper.yaml.example"
DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "config" / "shipper.service"
TASK = ROOT / "config" / "ecs-task-definition.json"
CONTAINER_CONFIG = ROOT / "config" / "shipper.container.yaml"


def schema_keys(kind: typing.Any, prefix: str = "") -> set[str]:
    """Every key path the config schema declares (``sources[].format``, ...)."""
    keys = set()
    hints = typing.get_type_hints(kind)
    for field in dataclasses.fields(kind):
        path = f"{prefix}{field.name}"
        keys.add(path)
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            keys |= schema_keys(hint, path + ".")
        elif typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            keys |= schema_keys(typing.get_args(hint)[0], path + "[].")
    return keys


def document_keys(value: typing.Any, prefix: str = "") -> set[str]:
    """Every key path present in a parsed YAML document."""
    keys = set()
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(f"{prefix}{key}")
            keys |= document_keys(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            keys |= document_keys(item, prefix[:-1] + "[].")
    return keys


class TestExampleConfig:
    def test_loads_with_shippers_own_loader(self):
        """The example is a valid config (the loader a user's file goes through)."""
        loaded = schema.load(EXAMPLE, env={})
        shown = [s.category or str(s.path) for s in loaded.sources]  # a glob: no category
        assert shown == ["app", "db", "/var/log/apps/*/*.log"]

    def test_has_every_key_of_the_schema(self):
        """Every key the schema declares appears in the example: a key added to
        config.py without documenting it here fails this test."""
        written = document_keys(yaml.safe_load(EXAMPLE.read_text()))
        missing = schema_keys(schema.Config) - written
        assert not missing, f"keys missing from shipper.yaml.example: {sorted(missing)}"

    def test_every_key_is_commented(self):
        """Each schema key has a comment: on the line above it or on its own line."""
        lines = EXAMPLE.read_text().splitlines()
        names = {key.rsplit(".", 1)[-1].removesuffix("[]") for key in schema_keys(schema.Config)}
        uncommented = set()
        for name in names:
            pattern = re.compile(rf"^\s*(- )?{name}:")
            found = [i for i, line in enumerate(lines) if pattern.match(line)]
            assert found, name
            if not any(
                "#" in lines[i] or lines[i - 1].lstrip().startswith(("#", "- #")) for i in found
            ):
                uncommented.add(name)
        assert not uncommented, f"keys without a comment: {sorted(uncommented)}"


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = [[]]
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        stages[-1].append((instruction, rest.strip()))
    return [stage for stage in stages if stage and stage[0][0] == "FROM"]


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [rest for instruction, rest in stage if instruction == name]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in instructions(stage, "ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            env[key] = value
    return env


class TestDockerfile:
    stages: typing.ClassVar[list[list[tuple[str, str]]]] = dockerfile_stages(DOCKERFILE.read_text())
    final: typing.ClassVar[list[tuple[str, str]]] = stages[-1]

    def test_hadolint_finds_nothing(self):
        """The Dockerfile passes hadolint (installed from PyPI by the test extras)."""
        hadolint = shutil.which("hadolint") or shutil.which(
            "hadolint", path=str(Path(sys.executable).parent)
        )
        if hadolint is None:
            pytest.skip("hadolint is not installed")
        result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_multi_stage_on_python_slim_without_build_tools_in_the_final_stage(self):
        """Small image: slim base, and the final stage only copies the built virtualenv."""
        assert len(self.stages) >= 2
        for stage in self.stages:
            assert re.match(r"python:\$\{PYTHON_VERSION\}-slim|python:3\.\d+-slim", stage[0][1])
        runs = " ".join(instructions(self.final, "RUN"))
        for tool in ("pip install", "apt-get install", "gcc", "build-essential"):
            assert tool not in runs
        assert any("--from=build" in c for c in instructions(self.final, "COPY"))

    def test_runs_as_a_non_root_user_with_state_on_a_volume(self):
        """Non-root, and the only path it writes (state_dir) is a volume, so the root
        filesystem can be read-only; no bytecode is written at run time."""
        (user,) = instructions(self.final, "USER")
        assert user.split(":")[0] not in ("root", "0")
        volumes = [v for rest in instructions(self.final, "VOLUME") for v in json.loads(rest)]
        loaded = schema.load(CONTAINER_CONFIG, env={})
        assert str(loaded.state_dir) in volumes
        assert env_of(self.final)["PYTHONDONTWRITEBYTECODE"] == "1"

    def test_stops_with_sigterm(self):
        assert instructions(self.final, "STOPSIGNAL") == ["SIGTERM"]

    def test_entrypoint_and_healthcheck_work_for_real(self, tmp_path, moto, group_prefix):
        """The image's ENTRYPOINT + CMD, with the image's ENV and its bundled config, ship
        a file to CloudWatch; its HEALTHCHECK command passes against it; its STOPSIGNAL
        stops it cleanly.  Only the mounted paths and the endpoint are changed."""
        (entrypoint,) = instructions(self.final, "ENTRYPOINT")
        (cmd,) = instructions(self.final, "CMD")
        argv = json.loads(entrypoint) + json.loads(cmd)
        # `shipper` is the console script pip installs: pyproject says what it runs.
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        assert argv[0] == "shipper"
        assert scripts["shipper"] == "shipper.cli:main"
        assert argv[1:] == ["run"]
        env = env_of(self.final)
        # The config the image runs is the one the Dockerfile copies to $SHIPPER_CONFIG.
        copies = [c.split() for c in instructions(self.final, "COPY") if "--from" not in c]
        (bundled,) = [ROOT / src for src, dest in copies if dest == env["SHIPPER_CONFIG"]]
        assert bundled == CONTAINER_CONFIG

        logs = tmp_path / "logs" / "app"
        logs.mkdir(parents=True)
        lines = [
            json.dumps(
                {"level": "info", "message": f"signup {n}", "user": f"person{n}@example.com"}
            )
            for n in range(20)
        ]
        (logs / "app.log").write_text("".join(line + "\n" for line in lines))
        overrides = {
            "SHIPPER_LOG_ROOT": str(tmp_path / "logs"),
            "SHIPPER_STATE_DIR": str(tmp_path / "state"),
            "SHIPPER_LOG_GROUP_PREFIX": group_prefix,
            "SHIPPER_HEALTH_LISTEN": "127.0.0.1:0",
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": moto.url,
        }
        image_env = {k: v for k, v in env.items() if k != "PATH"}
        # A copy (the helper keeps the process's output next to its config), same text.
        config = tmp_path / "shipper.yaml"
        config.write_text(bundled.read_text())
        shipper = ShipperProcess(config, env={**image_env, **overrides, **CREDENTIALS})
        with shipper:
            group = f"{group_prefix}/app"
            wait_until(lambda: len(moto.events(group)) >= len(lines))
            messages = [json.loads(e["message"]) for e in moto.events(group)]
            assert [m["message"] for m in messages] == [f"signup {n}" for n in range(20)]
            assert all("@example.com" in m["user"] and m["user"].startswith("**") for m in messages)

            healthcheck = instructions(self.final, "HEALTHCHECK")[0]
            probe = json.loads(healthcheck.split(" CMD ", 1)[1])
            assert probe[0] == "python"
            listen = shipper.health_url().removeprefix("http://")
            ok = subprocess.run(
                [sys.executable, *probe[1:]], env={"SHIPPER_HEALTH_LISTEN": listen}, timeout=10
            )
            assert ok.returncode == 0
            stop = signal.Signals[instructions(self.final, "STOPSIGNAL")[0]]
            assert shipper.stop(stop) == 0
        assert (tmp_path / "state" / "checkpoints.json").exists()
        # With the shipper gone the same health check fails: it really asks the process.
        failed = subprocess.run(
            [sys.executable, *probe[1:]],
            env={"SHIPPER_HEALTH_LISTEN": listen},
            capture_output=True,
            timeout=10,
        )
        assert failed.returncode != 0


# --------------------------------------------------------------------------- systemd


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


class TestSystemdUnit:
    service: typing.ClassVar[dict[str, list[str]]] = unit_settings(UNIT.read_text())["Service"]

    def test_systemd_analyze_verify_accepts_it(self, tmp_path):
        """`systemd-analyze verify` reports nothing (skipped where systemd is absent).
        The binary path is pointed at an executable that exists here, since verify
        checks that ExecStart's program is present."""
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            pytest.skip("systemd-analyze is not installed")
        program = tmp_path / "shipper"
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
        unit = tmp_path / "shipper.service"
        unit.write_text(UNIT.read_text().replace("/usr/local/bin/shipper", str(program)))
        result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "", result.stderr

    def test_restarts_on_failure_but_not_on_a_bad_config(self):
        assert self.service["Type"] in (["simple"], ["notify"])
        assert self.service["Restart"] == ["on-failure"]
        assert self.service["RestartPreventExitStatus"] == ["2"]  # SPEC §4: config error

    def test_is_hardened_with_state_under_var_lib_shipper(self):
        """An unprivileged user, a read-only system, and only the state folder writable
        (SPEC §1: state under /var/lib/shipper)."""
        assert self.service.get("DynamicUser") == ["yes"] or self.service.get("User")
        assert self.service["ProtectSystem"] == ["strict"]
        assert self.service["StateDirectory"] == ["shipper"]
        assert self.service["ReadWritePaths"] == ["/var/lib/shipper"]
        assert self.service["NoNewPrivileges"] == ["yes"]

    def test_stops_with_sigterm_after_shutdown_timeout_and_reloads_with_sighup(self):
        """systemd waits longer than shutdown_timeout before SIGKILL; reload is SIGHUP."""
        assert self.service["KillSignal"] == ["SIGTERM"]
        assert (
            float(self.service["TimeoutStopSec"][0])
            > schema.Config.__dataclass_fields__["shutdown_timeout"].default
        )
        assert "-HUP" in self.service["ExecReload"][0]
        (start,) = self.service["ExecStart"]
        assert shlex.split(start)[1:] == ["run", "-c", "/etc/shipper/shipper.yaml"]


# --------------------------------------------------------------------------- ECS


class TestEcsTaskDefinition:
    task: typing.ClassVar[dict[str, typing.Any]] = json.loads(TASK.read_text())
    containers: typing.ClassVar[dict[str, typing.Any]] = {
        c["name"]: c for c in task["containerDefinitions"]
    }

    def test_app_and_shipper_share_the_log_volume(self):
        """SPEC §1: the sidecar reads the app's volume at /logs (read-only for it)."""
        app, shipper = self.containers["app"], self.containers["shipper"]
        volumes = {v["name"] for v in self.task["volumes"]}
        app_logs = [m for m in app["mountPoints"] if m["containerPath"] == "/logs"]
        shipper_logs = [m for m in shipper["mountPoints"] if m["containerPath"] == "/logs"]
        assert app_logs
        assert shipper_logs
        assert app_logs[0]["sourceVolume"] == shipper_logs[0]["sourceVolume"]
        assert app_logs[0]["sourceVolume"] in volumes
        assert shipper_logs[0]["readOnly"] is True

    def test_sidecar_is_not_essential_and_stops_after_the_app(self):
        """A shipper failure never stops the app; the app depends on the shipper, so ECS
        stops the app first and the shipper can ship its last lines."""
        assert self.containers["shipper"]["essential"] is False
        assert self.containers["app"]["essential"] is True
        assert {"containerName": "shipper", "condition": "START"} in self.containers["app"][
            "dependsOn"
        ]

    def test_environment_names_variables_the_bundled_config_reads(self):
        """Each SHIPPER_* variable the task sets is one the image's config expands."""
        text = CONTAINER_CONFIG.read_text()
        for item in self.containers["shipper"]["environment"]:
            if item["name"].startswith("SHIPPER_"):
                assert "${" + item["name"] + ":-" in text, item["name"]

    def test_health_check_asks_healthz_where_the_shipper_listens(self):
        check = self.containers["shipper"]["healthCheck"]
        assert check["command"][0] == "CMD"
        env = {e["name"]: e["value"] for e in self.containers["shipper"]["environment"]}
        assert f"http://{env['SHIPPER_HEALTH_LISTEN']}/healthz" in " ".join(check["command"])
        assert 5 <= check["interval"] <= 300
        assert 2 <= check["timeout"] <= 60

    def test_stop_timeout_exceeds_shutdown_timeout(self):
        """ECS sends SIGKILL after stopTimeout: it must leave the configured
        shutdown_timeout (of the config the image runs) to finish."""
        loaded = schema.load(CONTAINER_CONFIG, env={})
        stop_timeout = self.containers["shipper"]["stopTimeout"]
        assert loaded.shutdown_timeout < stop_timeout <= 120

    def test_read_only_root_with_state_on_a_volume(self):
        shipper = self.containers["shipper"]
        assert shipper["readonlyRootFilesystem"] is True
        loaded = schema.load(CONTAINER_CONFIG, env={})
        state = [m for m in shipper["mountPoints"] if m["containerPath"] == str(loaded.state_dir)]
        assert state
        assert state[0]["readOnly"] is False
        user = shipper["user"].split(":")[0]
        assert user not in ("root", "0")
