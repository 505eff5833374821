"""The account side of delivery: how groups are created, and whose credentials sign.

Issue 21 (SPEC §5): ``log_group_class``, ``log_group_tags`` and ``kms_key_id`` are
applied when the shipper creates a group; with ``role_arn`` the shipper assumes the
role through botocore's own assume-role provider (STS reached at
``AWS_ENDPOINT_URL_STS``: here moto's STS, behind the strict front that records the
parameters moto ignores) and signs PutLogEvents with the role's credentials.
"""

from __future__ import annotations

import boto3

from tests.delivery.conftest import RECORD, Deployment, assert_clean_front
from tests.support.process import ShipperProcess, wait_until

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
ROLE = "arn:aws:iam::210987654321:role/log-writer"


class TestCreatedGroups:
    def test_class_tags_and_key_are_applied_to_created_groups(self, deployment: Deployment):
        config = deployment.configure(
            ["app", "db"],
            log_group_class="INFREQUENT_ACCESS",
            log_group_tags={"team": "payments", "cost-centre": "4711"},
            kms_key_id=KMS_KEY,
        )
        with ShipperProcess(config) as shipper:
            deployment.write("app", 10)
            deployment.write("db", 10)
            wait_until(lambda: deployment.has_all("app", 10) and deployment.has_all("db", 10))
            assert shipper.stop() == 0
        created = deployment.front.operations("CreateLogGroup")
        assert sorted(c["logGroupName"] for c in created) == [
            deployment.group("app"),
            deployment.group("db"),
        ]
        for call in created:
            assert call["logGroupClass"] == "INFREQUENT_ACCESS"
            assert call["tags"] == {"team": "payments", "cost-centre": "4711"}
            assert call["kmsKeyId"] == KMS_KEY
        # moto keeps the key and the tags (it ignores the class, recorded above).
        client = deployment.moto.client()
        group = deployment.moto.groups(deployment.group("app"))[deployment.group("app")]
        assert group["kmsKeyId"] == KMS_KEY
        tags = client.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"]
        assert tags == {"team": "payments", "cost-centre": "4711"}
        assert_clean_front(deployment.front)

    def test_groups_are_standard_and_untagged_by_default(self, deployment: Deployment):
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 5)
            wait_until(lambda: deployment.has_all("app", 5))
            assert shipper.stop() == 0
        (created,) = deployment.front.operations("CreateLogGroup")
        assert created == {"logGroupName": deployment.group("app"), "logGroupClass": "STANDARD"}


class TestAssumedRole:
    def test_put_log_events_is_signed_with_the_assumed_roles_credentials(
        self, deployment: Deployment
    ):
        """The chain's key ("testing") signs only AssumeRole, with the configured
        external id and session name; every CloudWatch Logs call is signed with the
        temporary key STS handed out, so the events land in the role's account."""
        front = deployment.front
        config = deployment.configure(
            ["app"], role_arn=ROLE, external_id="shop-7d1f", role_session_name="web-1"
        )
        env = {"AWS_ENDPOINT_URL_STS": front.url}
        with ShipperProcess(config, env=env) as shipper:
            deployment.write("app", 40)
            wait_until(lambda: sum(put.events for put in front.puts) >= 40)
            assert shipper.stop() == 0
        (assumed,) = front.operations("AssumeRole")
        assert assumed["RoleArn"] == ROLE
        assert assumed["ExternalId"] == "shop-7d1f"
        assert assumed["RoleSessionName"] == "web-1"
        keys = front.keys_seen()
        assert keys["testing"] == 1  # AssumeRole alone
        (role_key,) = set(keys) - {"testing"}
        assert role_key.startswith("ASIA")
        assert keys[role_key] == sum(front.calls.values()) - 1
        # moto keeps each account apart, as AWS does: the events are the role's
        # account's, and the source account has no such group.
        in_role_account = boto3.client(
            "logs",
            region_name="us-east-1",
            endpoint_url=deployment.moto.url,
            aws_access_key_id=role_key,
            aws_secret_access_key="unchecked",
        )
        events = in_role_account.get_log_events(
            logGroupName=deployment.group("app"), logStreamName="app", startFromHead=True
        )["events"]
        found = [RECORD.search(event["message"]) for event in events]
        numbers = sorted(int(match.group(2)) for match in found if match is not None)
        assert numbers == list(range(40))
        assert deployment.moto.groups(deployment.group("app")) == {}
        assert_clean_front(front)
