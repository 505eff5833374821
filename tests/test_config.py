"""The configuration contract (SPEC §5) and promise 7: bad config never starts it."""

from __future__ import annotations

import logging
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


class TestWords:
    """Words are read as the docs write them, whatever YAML makes of them (promise 7:
    what is refused says what is accepted)."""

    def test_bare_off_no_and_false_turn_a_detector_off(self, tmp_path):
        """`email: off` as the README writes it loads as YAML false: it means off."""
        for word in ("off", "Off", "no", "false", '"off"'):
            loaded = load_text(tmp_path, MINIMAL + f"masking:\n  email: {word}\n")
            assert loaded.masking.email == "off", word

    def test_bare_on_yes_and_true_turn_a_detector_on_with_its_usual_strategy(self, tmp_path):
        for word in ("on", "yes", "true", "partial"):
            loaded = load_text(tmp_path, MINIMAL + f"masking:\n  ipv4: {word}\n")
            assert loaded.masking.ipv4 == "partial", word
        loaded = load_text(tmp_path, MINIMAL + "masking:\n  ipv4: ${IPV4:-off}\n")
        assert loaded.masking.ipv4 == "off"

    def test_off_turns_off_a_key_whose_off_is_null_or_empty(self, tmp_path):
        """`health.listen: off` is its documented null; `masking.keys: off` its []."""
        loaded = load_text(tmp_path, MINIMAL + "health:\n  listen: off\nmasking:\n  keys: no\n")
        assert loaded.health.listen is None
        assert loaded.masking.keys == []

    def test_switch_words_are_booleans_even_when_quoted_or_from_a_variable(self, tmp_path):
        text = MINIMAL + "cloudwatch:\n  create_log_group: ${CREATE:-no}\n"
        assert load_text(tmp_path, text).cloudwatch.create_log_group is False
        assert load_text(tmp_path, text, env={"CREATE": "Yes"}).cloudwatch.create_log_group

    def test_a_boolean_where_no_switch_word_fits_says_what_is_accepted(self, tmp_path):
        problems = problems_of(tmp_path, MINIMAL + "masking:\n  email: maybe\n")
        assert problems == [
            "masking.email: 'maybe'; expected one of partial | redact | hash | off "
            "(on, yes and true mean partial; off, no and false mean off)"
        ]
        text = MINIMAL.replace("sources:\n  - ", "sources:\n  - output: yes\n    ")
        assert problems_of(tmp_path, text) == [
            "sources[0].output: True; expected one of json | raw "
            "(YAML reads a bare on/off, yes/no as true/false: quote the word)"
        ]


class TestEncoding:
    def test_encoding_defaults_to_utf8_and_takes_any_python_codec(self, tmp_path):
        assert load_text(tmp_path, MINIMAL).sources[0].encoding == "utf-8"
        for name in ("cp949", "euc-kr", "gb18030", "utf-16", "latin-1"):
            text = MINIMAL.replace("sources:\n  - ", f"sources:\n  - encoding: {name}\n    ")
            assert load_text(tmp_path, text).sources[0].encoding == name

    def test_an_unknown_encoding_names_the_key_and_value(self, tmp_path):
        for name in ("klingon", "base64"):
            text = MINIMAL.replace("sources:\n  - ", f"sources:\n  - encoding: {name}\n    ")
            assert problems_of(tmp_path, text) == [
                f"sources[0].encoding: '{name}'; expected a Python codec name (utf-8, cp949, "
                "euc-kr, gb18030, utf-16, latin-1, ...)"
            ]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_DEFAULT_REGION": "us-east-1",
            **(env or {}),
        },
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
            env={**env, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "x"},
            timeout=60,
        )
        assert default.returncode == 0, default.stderr

    def test_a_missing_config_file_is_a_config_error(self, tmp_path):
        result = run_cli("check", "-c", "absent.yaml", cwd=tmp_path)
        assert result.returncode == 2
        assert "cannot read absent.yaml" in result.stderr


FORMAT = "%(asctime)s %(levelname)s %(message)s"


def write_log(path: Path, form: logging.Formatter, messages: list[str], **options: str) -> None:
    """Log ``messages`` to ``path`` through the stdlib's FileHandler."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, **options)
    handler.setFormatter(form)
    logger = logging.getLogger(f"tests.check.{path}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for message in messages:
            logger.info(message)
    finally:
        logger.removeHandler(handler)
        handler.close()


def check_with(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    text = MINIMAL + f"    format: '{FORMAT}'\n" + source + "state_dir: state\n"
    (tmp_path / "shipper.yaml").write_text(text)
    return run_cli("check", "-c", "shipper.yaml", cwd=tmp_path)


class TestCheckFormat:
    """`shipper check` reads the first lines of each file of each source and says
    whether the format matches them (issue 20 item 4)."""

    def test_a_matching_format_is_reported_as_such(self, tmp_path):
        log = tmp_path / "logs" / "app" / "app.log"
        write_log(log, logging.Formatter(FORMAT), ["one", "two"])
        write_log(log.with_name("app.log.20240101"), logging.Formatter(FORMAT), ["old"])
        result = check_with(tmp_path, "")
        assert result.returncode == 0, result.stderr
        assert "sources[0] (app): the format matches the first lines of 2 file(s)" in (
            result.stdout
        )

    def test_a_format_matching_no_line_is_an_error_quoting_the_first_masked(self, tmp_path):
        """The file has logging's default asctime (msecs), the datefmt has none."""
        log = tmp_path / "logs" / "app" / "app.log"
        write_log(log, logging.Formatter(FORMAT), ["signed up: someone@example.com", "two"])
        result = check_with(tmp_path, "    datefmt: '%Y-%m-%d %H:%M:%S'\n")
        assert result.returncode == 2
        first = log.read_text().splitlines()[0]
        masked = first.replace("someone@example.com", "**meon*@example.com")
        assert f"warning: sources[0] (app): {log} line 1 does not match the format: {masked}" in (
            result.stdout
        )
        assert "someone@example.com" not in result.stdout + result.stderr
        assert (
            f"sources[0].format: '{FORMAT}' matches none of the first 20 lines of {log} "
            "(datefmt '%Y-%m-%d %H:%M:%S')"
        ) in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_file_with_some_unmatched_lines_is_a_warning(self, tmp_path):
        log = tmp_path / "logs" / "app" / "app.log"
        seconds = logging.Formatter(FORMAT, "%Y-%m-%d %H:%M:%S")
        write_log(log, seconds, ["one", "two\n  continued"])
        write_log(log, logging.Formatter(FORMAT), ["from another handler"])
        result = check_with(tmp_path, "    datefmt: '%Y-%m-%d %H:%M:%S'\n")
        assert result.returncode == 0, result.stderr
        assert f"warning: sources[0] (app): {log} line 4 does not match the format" in (
            result.stdout
        )

    def test_files_are_read_in_the_sources_encoding(self, tmp_path):
        log = tmp_path / "logs" / "app" / "app.log"
        write_log(log, logging.Formatter(FORMAT), ["사용자 로그인"], encoding="utf-16")
        result = check_with(tmp_path, "    encoding: utf-16\n")
        assert result.returncode == 0, result.stderr
        assert "the format matches" in result.stdout


class TestReference:
    def test_readme_lists_every_key_with_its_default_and_meaning(self):
        """The README's configuration reference is the schema's, not a copy that rots."""
        readme = (Path(__file__).parent.parent / "README.md").read_text()
        assert config.reference_markdown() in readme
