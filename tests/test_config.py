"""The configuration contract (SPEC §5) and promise 7: bad config never starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipper import config
from shipper.config import ConfigError

MINIMAL = """
sources:
  - category: app
    path: logs/app/app.log
"""


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> config.Config:
    path = tmp_path / "shipper.yaml"
    path.write_text(text)
    return config.load(path, env=env or {})


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, env)
    return caught.value.problems


class TestLoading:
    def test_minimal_config_takes_the_documented_defaults(self, tmp_path):
        """Only sources are required; every other key has the SPEC's default."""
        loaded = load_text(tmp_path, MINIMAL)
        assert loaded.state_dir == Path("/var/lib/shipper")
        assert loaded.shutdown_timeout == 20
        assert loaded.batch.flush_interval == 1.0
        assert loaded.masking.email == "partial"
        assert loaded.health.listen == "127.0.0.1:9880"
        source = loaded.sources[0]
        assert (source.rotated, source.timezone, source.start_at) == ("auto", "UTC", "beginning")
        assert source.ignore_older == "14d"

    def test_relative_paths_are_relative_to_the_yaml_file(self, tmp_path):
        """A config read from anywhere points at files beside it."""
        (tmp_path / "etc").mkdir()
        path = tmp_path / "etc" / "shipper.yaml"
        path.write_text(MINIMAL + "state_dir: state\n")
        loaded = config.load(path, env={})
        assert loaded.sources[0].path == tmp_path / "etc" / "logs" / "app" / "app.log"
        assert loaded.state_dir == tmp_path / "etc" / "state"

    def test_environment_variables_and_defaults_are_expanded(self, tmp_path):
        """${VAR} and ${VAR:-default} let one image serve every environment."""
        text = MINIMAL + (
            "cloudwatch:\n"
            "  region: ${REGION}\n"
            "  log_group: /${APP:-shop}/{category}\n"
            "shutdown_timeout: ${STOP_AFTER:-12}\n"
        )
        loaded = load_text(tmp_path, text, env={"REGION": "ap-northeast-2"})
        assert loaded.cloudwatch.region == "ap-northeast-2"
        assert loaded.cloudwatch.log_group == "/shop/{category}"
        assert loaded.shutdown_timeout == 12.0

    def test_a_missing_variable_without_default_names_key_and_variable(self, tmp_path):
        problems = problems_of(tmp_path, MINIMAL + "cloudwatch:\n  region: ${NOPE}\n")
        assert problems == [
            "cloudwatch.region: '${NOPE}'; environment variable NOPE is not set (or add :-default)"
        ]


class TestRejection:
    def test_unknown_keys_are_rejected_with_their_path(self, tmp_path):
        """A typo is an error, not a silently ignored key."""
        problems = problems_of(tmp_path, MINIMAL + "    timezon: Asia/Seoul\nbatch:\n  flush: 1\n")
        assert any(p.startswith("sources[0].timezon: 'Asia/Seoul'; unknown key") for p in problems)
        assert any(p.startswith("batch.flush: 1; unknown key") for p in problems)

    def test_every_problem_is_reported_at_once_with_value_and_expectation(self, tmp_path):
        text = """
shutdown_timeout: soon
cloudwatch:
  retention_days: 31
  log_stream: "{pod}"
masking:
  email: scramble
sources:
  - category: app
    path: a.log
    timezone: Asia/Seol
    start_at: middle
  - path: b.log
"""
        problems = problems_of(tmp_path, text)
        expected_prefixes = [
            "shutdown_timeout: 'soon'; expected a number",
            "cloudwatch.retention_days: 31; expected one of 1, 3, 5",
            "cloudwatch.log_stream: '{pod}'; unknown placeholder {pod}",
            "masking.email: 'scramble'; expected one of partial | redact | hash | off",
            "sources[0].timezone: 'Asia/Seol'; expected an IANA timezone",
            "sources[0].start_at: 'middle'; expected one of beginning | end",
            "sources[1].category: missing; required",
        ]
        for prefix in expected_prefixes:
            assert any(p.startswith(prefix) for p in problems), (prefix, problems)
        assert len(problems) == len(expected_prefixes)

    def test_cross_field_rules(self, tmp_path):
        """The same file twice, no sources, and hash without a key are refused."""
        twice = MINIMAL + "  - category: other\n    path: logs/app/app.log\n"
        assert any("is sources[0] too" in p for p in problems_of(tmp_path, twice))
        assert problems_of(tmp_path, "sources: []\n") == ["sources: expected at least one source"]
        hashed = problems_of(tmp_path, MINIMAL + "masking:\n  email: hash\n")
        assert hashed[0].startswith("masking.hash_key: null; expected a key")

    def test_a_malformed_template_is_a_config_error(self, tmp_path):
        """A stray brace is caught at load time, not when the first stream is named."""
        problems = problems_of(tmp_path, MINIMAL + "cloudwatch:\n  log_group: /app/{category}}\n")
        assert problems[0].startswith(
            "cloudwatch.log_group: '/app/{category}}'; not a valid template"
        )

    def test_invalid_yaml_says_where(self, tmp_path):
        problems = problems_of(tmp_path, "sources: [\n  - category: app\n")
        assert problems[0].startswith("line ")
        assert "not valid YAML" in problems[0]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", **(env or {})},
        timeout=60,
    )


class TestCommandLine:
    def test_check_accepts_a_valid_config(self, tmp_path):
        (tmp_path / "logs" / "app").mkdir(parents=True)
        (tmp_path / "shipper.yaml").write_text(MINIMAL + "state_dir: state\n")
        result = run_cli("check", "-c", "shipper.yaml", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "ok (1 sources)" in result.stdout

    def test_bad_config_exits_2_with_every_problem_and_no_traceback(self, tmp_path):
        """Promise 7, for each command that reads a config."""
        (tmp_path / "shipper.yaml").write_text(MINIMAL + "bogus: 1\nstate_dir: state\n")
        for command in ("check", "run", "preview"):
            result = run_cli(command, "-c", "shipper.yaml", cwd=tmp_path)
            assert result.returncode == 2, (command, result.stderr)
            assert "bogus: 1; unknown key" in result.stderr
            assert "Traceback" not in result.stderr + result.stdout

    def test_config_path_defaults_to_env_then_current_folder(self, tmp_path):
        """`-c` falls back on $SHIPPER_CONFIG, then ./shipper.yaml."""
        (tmp_path / "elsewhere.yaml").write_text("nonsense: true\n")
        (tmp_path / "shipper.yaml").write_text(MINIMAL + "state_dir: state\n")
        from_env = run_cli("check", cwd=tmp_path, env={"SHIPPER_CONFIG": "elsewhere.yaml"})
        assert from_env.returncode == 2
        assert "nonsense" in from_env.stderr
        env = {k: v for k, v in os.environ.items() if k != "SHIPPER_CONFIG"}
        default = subprocess.run(
            [sys.executable, "-m", "shipper", "check"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
            timeout=60,
        )
        assert default.returncode == 0, default.stderr

    def test_a_missing_config_file_is_a_config_error(self, tmp_path):
        result = run_cli("check", "-c", "absent.yaml", cwd=tmp_path)
        assert result.returncode == 2
        assert "cannot read absent.yaml" in result.stderr


class TestReference:
    def test_readme_lists_every_key_with_its_default_and_meaning(self):
        """The README's configuration reference is the schema's, not a copy that rots."""
        readme = (Path(__file__).parent.parent / "README.md").read_text()
        assert config.reference_markdown() in readme
