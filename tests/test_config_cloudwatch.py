"""The CloudWatch and batch keys of the configuration (SPEC §5, §3.7), and ``check``.

``retention_days`` takes only the values PutRetentionPolicy accepts; the batch
limits cannot be set beyond what PutLogEvents allows; names, group class, tags and
the role are checked against the API's rules, each problem naming its key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipper.config import ConfigError, parse

SOURCES = "sources:\n  - {category: app, path: logs/app.log}\n"


def load(text: str):  # type: ignore[no-untyped-def]
    return parse(SOURCES + text, base_dir=Path("/srv"), env={})


class TestRetention:
    @pytest.mark.parametrize("days", [1, 14, 30, 400, 3653])
    def test_values_the_api_accepts_are_taken(self, days):
        assert load(f"cloudwatch: {{retention_days: {days}}}\n").cloudwatch.retention_days == days

    @pytest.mark.parametrize("days", [0, 2, 10, 31, 366, 3654])
    def test_other_values_are_refused_naming_the_key_and_the_choices(self, days):
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch: {{retention_days: {days}}}\n")
        (problem,) = error.value.problems
        assert problem.startswith(f"cloudwatch.retention_days: {days}; expected one of 1, 3, 5")
        assert problem.endswith("3288, 3653")


class TestBatchLimits:
    @pytest.mark.parametrize(
        ("key", "value", "expected"),
        [
            ("max_events", 10_001, "expected 1 to 10000"),
            ("max_events", 0, "expected 1 to 10000"),
            ("max_bytes", 1_048_577, "expected 1024 to 1048576"),
            ("flush_interval", 0, "expected a number greater than 0"),
        ],
    )
    def test_limits_beyond_the_api_are_refused(self, key, value, expected):
        with pytest.raises(ConfigError) as error:
            load(f"batch: {{{key}: {value}}}\n")
        assert error.value.problems == [f"batch.{key}: {value}; {expected}"]

    def test_defaults_are_the_api_limits(self):
        batch = load("").batch
        assert (batch.max_events, batch.max_bytes) == (10_000, 1_048_576)


class TestNames:
    """Issue 18: a group or stream name CloudWatch refuses is a config error at load,
    naming the key at fault (group: 1-512 of . - _ / # letters digits; stream: 1-512,
    no : or *), not a run whose every batch is refused."""

    def test_a_category_making_a_refused_group_name_is_named(self):
        with pytest.raises(ConfigError) as error:
            parse(
                "sources:\n  - {category: web api, path: a.log}\n  - {category: db, path: b.log}\n",
                base_dir=Path("/srv"),
                env={},
            )
        assert error.value.problems == [
            "sources[0].category: 'web api' gives log group '/shipper/web api'; CloudWatch "
            "refuses ' ' in a log group name; expected letters, digits, . - _ / #"
        ]

    @pytest.mark.parametrize(
        ("key", "template", "complaint"),
        [
            ("log_group", "/shop:{category}", "CloudWatch refuses ':' in a log group name"),
            ("log_group", "/shop/{category}/é", "CloudWatch refuses 'é' in a log group name"),
            ("log_group", "/" + "g" * 512 + "/{category}", "515 characters; CloudWatch takes"),
            ("log_stream", "{hostname}:{category}", "CloudWatch refuses ':' in a log stream"),
            ("log_stream", "{category}*", "CloudWatch refuses '*' in a log stream name"),
        ],
    )
    def test_a_template_making_refused_names_is_named_once(self, key, template, complaint):
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch: {{{key}: '{template}'}}\n")
        (problem,) = error.value.problems
        assert problem.startswith(f"cloudwatch.{key}: {template!r} gives log ")
        assert complaint in problem

    @pytest.mark.parametrize(
        ("group", "stream"),
        [("/a-b_c.d/#1/{category}", "{hostname} [web] (1)"), ("{category}", "x" * 500)],
    )
    def test_names_the_api_takes_load(self, group, stream):
        loaded = load(f"cloudwatch: {{log_group: '{group}', log_stream: '{stream}'}}\n")
        assert loaded.cloudwatch.log_group == group


class TestCreatedGroups:
    """Issue 21: class, tags and KMS key of the groups the shipper creates."""

    def test_class_tags_and_key_load(self):
        cloudwatch = load(
            "cloudwatch:\n  log_group_class: INFREQUENT_ACCESS\n"
            "  log_group_tags: {team: payments, cost-centre: '4711', 'env name': prod}\n"
            "  kms_key_id: arn:aws:kms:eu-west-1:123456789012:key/1234abcd\n"
        ).cloudwatch
        assert cloudwatch.log_group_class == "INFREQUENT_ACCESS"
        assert cloudwatch.log_group_tags == {
            "team": "payments",
            "cost-centre": "4711",
            "env name": "prod",
        }
        assert cloudwatch.kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/1234abcd"

    def test_defaults_create_standard_untagged_groups(self):
        cloudwatch = load("").cloudwatch
        assert (cloudwatch.log_group_class, cloudwatch.log_group_tags) == ("STANDARD", {})
        assert cloudwatch.kms_key_id is None

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                "log_group_class: COLD",
                "cloudwatch.log_group_class: 'COLD'; expected one of STANDARD | INFREQUENT_ACCESS",
            ),
            (
                "log_group_tags: [team]",
                "cloudwatch.log_group_tags: ['team']; expected a mapping of names to values",
            ),
            ("log_group_tags: {'a!': b}", "tag key 'a!': expected 1 to 128 letters"),
            ("log_group_tags: {'aws:team': b}", "(not starting with aws:)"),
            ("log_group_tags: {team: 'a;b'}", "tag 'team': value 'a;b': expected up to 256"),
            ("log_group_tags: {team: " + "v" * 257 + "}", "expected up to 256"),
        ],
    )
    def test_values_the_api_refuses_are_refused(self, text, expected):
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch:\n  {text}\n")
        (problem,) = error.value.problems
        assert expected in problem
        assert problem.startswith("cloudwatch.log_group_")

    @pytest.mark.parametrize(
        "key", ["1234abcd", "alias/logs", "arn:aws:kms:eu-west-1:123456789012:alias/logs"]
    )
    def test_a_kms_key_that_is_not_a_key_arn_is_refused(self, key):
        """CreateLogGroup takes the key's ARN only: anything else would be refused later."""
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch: {{kms_key_id: '{key}'}}\n")
        (problem,) = error.value.problems
        assert problem.startswith(f"cloudwatch.kms_key_id: {key!r}; expected a KMS key ARN")

    def test_at_most_50_tags(self):
        tags = ", ".join(f"t{n}: v" for n in range(51))
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch:\n  log_group_tags: {{{tags}}}\n")
        (problem,) = error.value.problems
        assert problem.endswith("51 tags; CloudWatch takes at most 50")


class TestRole:
    def test_a_role_with_its_external_id_and_session_name_loads(self):
        cloudwatch = load(
            "cloudwatch:\n  role_arn: arn:aws:iam::123456789012:role/logs/writer\n"
            "  external_id: shop-7d1f\n  role_session_name: web-1\n"
        ).cloudwatch
        assert cloudwatch.role_arn == "arn:aws:iam::123456789012:role/logs/writer"
        assert (cloudwatch.external_id, cloudwatch.role_session_name) == ("shop-7d1f", "web-1")

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:iam::123456789012:user/writer",
            "arn:aws:iam::12345:role/writer",
            "writer",
            "arn:aws:sts::123456789012:assumed-role/writer/s",
        ],
    )
    def test_anything_but_a_role_arn_is_refused(self, arn):
        with pytest.raises(ConfigError) as error:
            load(f"cloudwatch: {{role_arn: '{arn}'}}\n")
        assert error.value.problems == [
            f"cloudwatch.role_arn: {arn!r}; expected a role ARN such as "
            "arn:aws:iam::123456789012:role/log-writer"
        ]

    def test_an_external_id_without_a_role_is_refused(self):
        with pytest.raises(ConfigError) as error:
            load("cloudwatch: {external_id: shop-7d1f}\n")
        assert error.value.problems == [
            "cloudwatch.external_id: 'shop-7d1f' without cloudwatch.role_arn; "
            "expected the role it is for"
        ]

    def test_a_session_name_the_api_refuses_is_refused(self):
        with pytest.raises(ConfigError) as error:
            load("cloudwatch: {role_session_name: 'web 1'}\n")
        (problem,) = error.value.problems
        assert problem.startswith("cloudwatch.role_session_name: 'web 1'; expected 2 to 64")


def check(tmp_path: Path, text: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``shipper check`` on a config of ``text`` (its logs folder made), as a process."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "shipper.yaml").write_text(
        "state_dir: state\nsources:\n  - {category: app, path: logs/app.log}\n" + text
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "shipper", "check", "-c", "shipper.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **clean,
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            **env,
        },
        timeout=60,
    )


KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


class TestCheckCommand:
    def test_a_refused_name_fails_check_naming_the_key(self, tmp_path):
        (tmp_path / "logs").mkdir()
        (tmp_path / "shipper.yaml").write_text(
            "state_dir: state\nsources:\n  - {category: web api, path: logs/app.log}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "shipper", "check", "-c", "shipper.yaml"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, **KEYS, "AWS_REGION": "eu-west-1"},
            timeout=60,
        )
        assert result.returncode == 2
        assert "sources[0].category: 'web api' gives log group '/shipper/web api'" in result.stderr
        assert "Traceback" not in result.stderr

    def test_check_prints_the_region_and_where_it_was_found(self, tmp_path):
        from_env = check(tmp_path, "", AWS_REGION="eu-west-1", **KEYS)
        assert from_env.returncode == 0, from_env.stderr
        assert "note: cloudwatch.region: eu-west-1 (from $AWS_REGION)" in from_env.stdout
        from_file = check(tmp_path, "cloudwatch: {region: sa-east-1}\n", **KEYS)
        assert "note: cloudwatch.region: sa-east-1 (from cloudwatch.region)" in from_file.stdout

    def test_no_region_anywhere_fails_check_saying_how_to_set_one(self, tmp_path):
        result = check(tmp_path, "", **KEYS)
        assert result.returncode == 2
        assert "cloudwatch.region: null; no AWS region found: set cloudwatch.region" in (
            result.stderr
        )

    def test_missing_credentials_are_a_warning_not_an_error(self, tmp_path):
        """Issue 20: at boot credentials may come late, and the systemd unit does not
        restart after exit 2: check warns and exits 0 (a run waits for them)."""
        result = check(tmp_path, "", AWS_REGION="eu-west-1")
        assert result.returncode == 0, result.stderr
        assert "warning: cloudwatch: no AWS credentials found" in result.stderr
        assert "a run waits for them" in result.stderr
