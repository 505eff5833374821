"""Expired credentials are refreshed; a deleted group or stream is recreated.

SPEC §6 (expired credentials are refreshed; ResourceNotFoundException recreates the
group/stream, the group only when ``create_log_group`` allows) and §5
(``retention_days`` applied to a group the shipper creates); issue 18 (a refused
create is retried, never a reason to drop; retention retried until set) and issue 20
(credentials missing at start are waited for).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tests.delivery.conftest import Deployment, assert_clean_front, duplicates
from tests.support.process import ShipperProcess, wait_until


def write_credentials(path: Path, key: str) -> None:
    path.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = secret-{key}\n")


class TestExpiredCredentials:
    def test_expired_credentials_are_refreshed_from_the_credential_chain(
        self, deployment: Deployment, tmp_path: Path
    ):
        """The key the shipper started with expires and the credentials file is rotated:
        the shipper asks the chain again, signs with the new key and loses nothing."""
        front = deployment.front
        credentials = tmp_path / "credentials"
        write_credentials(credentials, "AKIAOLDKEY")
        env = {
            "AWS_ACCESS_KEY_ID": "",  # empty: the chain goes on to the credentials file
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        }
        config = deployment.configure(["app", "db"])
        with ShipperProcess(config, env=env) as shipper:
            deployment.write("app", 50)
            wait_until(lambda: deployment.has_all("app", 50))
            front.expire_key("AKIAOLDKEY")
            write_credentials(credentials, "AKIANEWKEY")
            deployment.write("app", 100, start=50)
            deployment.write("db", 100)
            wait_until(lambda: deployment.has_all("app", 150) and deployment.has_all("db", 100))
            assert shipper.stop() == 0
            refreshed = shipper.find("credentials.refreshed")
        assert front.served["expired"] >= 1
        assert refreshed
        assert refreshed[0]["error"] == "ExpiredTokenException"
        keys = front.keys_seen()
        assert keys["AKIAOLDKEY"] > 0
        assert keys["AKIANEWKEY"] > 0
        assert sorted(deployment.numbers("app")) == list(range(150))
        assert sorted(deployment.numbers("db")) == list(range(100))
        assert_clean_front(front)


class TestDeletedResources:
    def test_a_deleted_group_is_recreated_with_its_retention(self, deployment: Deployment):
        """The group is deleted while the shipper runs: it is created again (with
        retention_days), its stream too, and every record written after is delivered."""
        config = deployment.configure(["app"], retention_days=30)
        group = deployment.group("app")
        client = deployment.moto.client()
        with ShipperProcess(config) as shipper:
            deployment.write("app", 20)
            wait_until(lambda: deployment.has_all("app", 20))
            client.delete_log_group(logGroupName=group)
            deployment.write("app", 100, start=20)
            wait_until(lambda: len(deployment.numbers("app")) >= 100)
            assert shipper.stop() == 0
            created = shipper.find("stream.created")
            not_found = [
                e for e in shipper.find("put.retry") if e["error"] == "ResourceNotFoundException"
            ]
        assert [e["created_group"] for e in created] == [True, True]
        assert not_found
        numbers = deployment.numbers("app")
        assert sorted(numbers) == list(range(20, 120))  # the first 20 went with the group
        assert not duplicates(numbers)
        assert deployment.moto.groups(group)[group]["retentionInDays"] == 30
        assert_clean_front(deployment.front)

    def test_a_deleted_stream_is_recreated(self, deployment: Deployment):
        config = deployment.configure(["app"])
        group = deployment.group("app")
        client = deployment.moto.client()
        with ShipperProcess(config) as shipper:
            deployment.write("app", 20)
            wait_until(lambda: deployment.has_all("app", 20))
            client.delete_log_stream(logGroupName=group, logStreamName="app")
            deployment.write("app", 100, start=20)
            wait_until(lambda: len(deployment.numbers("app")) >= 100)
            assert shipper.stop() == 0
            created = shipper.find("stream.created")
        assert [e["created_group"] for e in created] == [True, False]
        assert sorted(deployment.numbers("app")) == list(range(20, 120))
        assert_clean_front(deployment.front)

    def test_a_missing_group_is_not_created_when_create_log_group_is_false(
        self, deployment: Deployment
    ):
        """With create_log_group: false the shipper waits (retrying, reading nothing
        more than its backlog allows) until an operator creates the group; then all
        records arrive."""
        config = deployment.configure(["app"], create_log_group=False)
        group = deployment.group("app")
        with ShipperProcess(config) as shipper:
            deployment.write("app", 60)
            wait_until(
                lambda: (
                    len(
                        [
                            e
                            for e in shipper.find("put.retry")
                            if e["error"] == "ResourceNotFoundException"
                        ]
                    )
                    >= 3
                )
            )
            assert group not in deployment.moto.groups(group)
            deployment.moto.client().create_log_group(logGroupName=group)
            wait_until(lambda: deployment.has_all("app", 60))
            assert shipper.stop() == 0
        assert sorted(deployment.numbers("app")) == list(range(60))
        assert_clean_front(deployment.front)


def readiness(deployment: Deployment) -> tuple[int, str]:
    """/readyz's status and body."""
    url = f"http://127.0.0.1:{deployment.health_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class TestRefusedCreation:
    def test_a_group_the_service_refuses_to_create_is_retried_and_reported(
        self, deployment: Deployment
    ):
        """Issue 18: CreateLogGroup answered InvalidParameterException (a key or tag the
        service will not take) is no reason to drop anything: /readyz names the refusal
        at once, the create is retried with backoff, and once the service takes it
        every record is delivered; none is counted as refused."""
        front = deployment.front
        front.inject("refuse_group", seconds=4.0)
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 30)
            wait_until(
                lambda: (
                    readiness(deployment)[0] == 503
                    and "refuses to create" in readiness(deployment)[1]
                )
            )
            assert deployment.numbers("app") == []
            wait_until(lambda: deployment.has_all("app", 30))
            assert readiness(deployment) == (200, "ready\n")
            counted = deployment.metric_sum("shipper_records_rejected_total")
            assert shipper.stop() == 0
            refused = [
                e for e in shipper.find("put.retry") if e["error"] == "InvalidParameterException"
            ]
        assert front.served["refuse_group"] >= 2
        assert len(refused) >= 2
        assert refused[1]["delay"] > 0  # backoff, not a tight loop
        assert shipper.find("events.rejected") == []
        assert counted == 0
        assert sorted(deployment.numbers("app")) == list(range(30))
        assert_clean_front(front)


class TestRetention:
    def test_retention_is_set_though_its_first_tries_fail(self, deployment: Deployment):
        """Issue 18: PutRetentionPolicy failing once used to leave the group (created,
        so never created again) without retention. It is retried until set, and
        deliveries do not wait for it."""
        front = deployment.front
        front.inject("fail_retention", times=3)
        config = deployment.configure(["app"], retention_days=14)
        group = deployment.group("app")
        with ShipperProcess(config) as shipper:
            deployment.write("app", 20)
            wait_until(lambda: deployment.has_all("app", 20))
            wait_until(lambda: shipper.find("retention.set"))
            assert shipper.stop() == 0
            retries = shipper.find("retention.retry")
        assert front.served["fail_retention"] == 3
        assert [r["attempt"] for r in retries] == [1, 2, 3]
        assert deployment.moto.groups(group)[group]["retentionInDays"] == 14
        assert_clean_front(front)


class TestMissingCredentials:
    def test_no_credentials_at_start_are_waited_for_not_fatal(
        self, deployment: Deployment, tmp_path: Path
    ):
        """Issue 20: at boot the credentials may come late. With none anywhere the
        shipper keeps running, says so on /readyz and in its log, asks the chain again
        with backoff, and ships everything once a credentials file appears."""
        credentials = tmp_path / "credentials"
        env = {
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        config = deployment.configure(["app"])
        with ShipperProcess(config, env=env) as shipper:
            deployment.write("app", 25)
            wait_until(
                lambda: (
                    (found := readiness(deployment))[0] == 503
                    and "no AWS credentials found" in found[1]
                )
            )
            wait_until(lambda: len(shipper.find("credentials.refresh_failed")) >= 2)
            assert shipper.find("credentials.missing")
            assert shipper.find("credentials.refreshed") == []
            write_credentials(credentials, "AKIALATEKEY")
            wait_until(lambda: deployment.has_all("app", 25))
            assert readiness(deployment) == (200, "ready\n")
            assert shipper.stop() == 0
            refreshed = shipper.find("credentials.refreshed")
            missing = [e for e in shipper.find("put.retry") if e["error"] == "NoCredentials"]
        assert len(refreshed) == 1
        assert missing
        assert all(e["delay"] > 0 for e in missing)
        assert deployment.front.keys_seen()["AKIALATEKEY"] > 0
        assert sorted(deployment.numbers("app")) == list(range(25))
        assert_clean_front(deployment.front)
