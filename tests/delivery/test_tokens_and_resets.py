"""Connection resets after the service stored a batch, and legacy sequence tokens.

SPEC §3.2 (after a failure, at most the batches in flight are sent twice) and §6
(send the last nextSequenceToken; on InvalidSequenceTokenException take the expected
token from the error; on DataAlreadyAcceptedException treat the batch as delivered).
"""

from __future__ import annotations

from tests.delivery.conftest import Deployment, assert_clean_front, duplicates
from tests.support.process import ShipperProcess, wait_until


class TestResetAfterAcceptance:
    def test_only_batches_stored_before_a_reset_are_sent_twice(self, deployment: Deployment):
        """Two answers are cut off after moto stored the batch: the shipper cannot know,
        retries, and exactly those batches' records appear twice; nothing is lost."""
        front = deployment.front
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 30)
            wait_until(lambda: deployment.has_all("app", 30))
            front.inject("reset", times=2, stream="app")
            deployment.write("app", 300, start=30)
            wait_until(lambda: deployment.has_all("app", 330))
            assert shipper.stop() == 0
        assert front.served["reset"] == 2
        numbers = deployment.numbers("app")
        assert sorted(set(numbers)) == list(range(330))
        # The extra copies are exactly the records of the puts whose answer was lost (the
        # same batch may be cut off twice, its records then stored three times).
        reset_puts = [p for p in front.puts if p.reset]
        assert len(reset_puts) == 2
        assert sum(duplicates(numbers).values()) == sum(p.events for p in reset_puts)
        assert len(shipper.find("put.retry")) >= 2
        assert_clean_front(front)


class TestLegacySequenceTokens:
    def test_expected_token_is_taken_from_the_error_and_used_from_then_on(
        self, deployment: Deployment
    ):
        """The stream already holds data (token T): the first put without a token is
        refused naming T; the shipper retries with T, then chains nextSequenceToken."""
        front = deployment.front
        group = deployment.group("app")
        client = deployment.moto.client()
        client.create_log_group(logGroupName=group)
        client.create_log_stream(logGroupName=group, logStreamName="app")
        front.legacy_tokens(
            seed={(group, "app"): "49590338271490256608559692538361571095921575989136588898"}
        )
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            for run in range(3):
                deployment.write("app", 40, start=40 * run)
                wait_until(lambda run=run: deployment.has_all("app", 40 * (run + 1)))
            assert shipper.stop() == 0
            corrected = shipper.find("sequence_token.corrected")
        assert front.served["invalid_sequence_token"] == 1
        assert len(corrected) == 1
        assert front.put_count("app") >= 3
        numbers = deployment.numbers("app")
        assert sorted(numbers) == list(range(120))
        assert_clean_front(front)

    def test_a_batch_stored_before_a_reset_is_recognised_and_not_sent_twice(
        self, deployment: Deployment
    ):
        """With tokens, the retry of a batch whose answer was lost gets
        DataAlreadyAcceptedException: the shipper counts it delivered, takes the next
        token from the error, and no record is duplicated."""
        front = deployment.front
        front.legacy_tokens()
        config = deployment.configure(["app"])
        with ShipperProcess(config) as shipper:
            deployment.write("app", 20)
            wait_until(lambda: deployment.has_all("app", 20))
            front.inject("reset", times=2, stream="app")
            deployment.write("app", 200, start=20)
            wait_until(lambda: deployment.has_all("app", 220))
            deployment.write("app", 30, start=220)
            wait_until(lambda: deployment.has_all("app", 250))
            assert shipper.stop() == 0
            already = [e for e in shipper.find("batch.delivered") if e.get("already_accepted")]
        assert front.served["reset"] == 2
        assert front.served["data_already_accepted"] == 2
        assert len(already) == 2
        numbers = deployment.numbers("app")
        assert sorted(numbers) == list(range(250))
        assert not duplicates(numbers)
        assert_clean_front(front)
