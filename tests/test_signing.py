"""shipper.signing signs a PutLogEvents request exactly as botocore's SigV4Auth would
for the same request at the same second: the service accepts only that signature.

Each case builds botocore's view of the request from the headers our signer sent and
has botocore compute the signature and the signed header list from them.
"""

from __future__ import annotations

import calendar

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shipper.signing import RequestSigner

FIXED = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "Logs_20140328.PutLogEvents",
    "User-Agent": "shipper/1.0 aiobotocore/2  botocore/1",
}
BODY = (
    b'{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"\xc3\xa9"}]}'
)
NOON = calendar.timegm((2026, 12, 7, 12, 0, 0))


def botocores_authorization(
    url: str, sent: dict[str, str], body: bytes, credentials: Credentials, region: str
) -> str:
    headers = {name: value for name, value in sent.items() if name != "Authorization"}
    request = AWSRequest("POST", url, headers, body)
    request.context["timestamp"] = sent["X-Amz-Date"]
    signer = SigV4Auth(credentials, "logs", region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    scope = signer.scope(request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"


@pytest.mark.parametrize(
    "url",
    [
        "https://logs.eu-west-1.amazonaws.com/",
        "https://logs.eu-west-1.amazonaws.com",
        "https://logs.eu-west-1.amazonaws.com:443/",
        "http://127.0.0.1:4566/",
        "http://[::1]:8080/",
        "https://Proxy.Example.COM:8443/logs/../aws/",
        "https://vpce-1.logs.eu-west-1.vpce.amazonaws.com/?b=2&a=1",
    ],
)
@pytest.mark.parametrize("token", [None, "IQoJb3JpZ2luX2VjE//session+token="])
def test_each_signature_is_the_one_botocore_computes(url: str, token: str | None) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = RequestSigner(url, FIXED, "logs", "eu-west-1")
    sent = signer.headers(BODY, credentials.access_key, credentials.secret_key, token, now=NOON)
    assert sent["X-Amz-Date"] == "20261207T120000Z"
    assert sent.get("X-Amz-Security-Token") == token
    assert sent["User-Agent"] == FIXED["User-Agent"]  # sent as it was, not signed
    assert "user-agent" not in sent["Authorization"]
    assert sent["Authorization"] == botocores_authorization(
        url, sent, BODY, credentials, "eu-west-1"
    )


def test_the_kept_key_follows_the_day_and_the_secret() -> None:
    """The signing key is derived once a day: a signature after midnight, and one with
    rotated credentials, are still the ones botocore computes."""
    url = "https://logs.us-east-1.amazonaws.com/"
    signer = RequestSigner(url, FIXED, "logs", "us-east-1")
    turns = [
        (NOON, Credentials("AKID1", "first-secret")),
        (NOON + 60, Credentials("AKID1", "first-secret")),
        (NOON + 12 * 3600, Credentials("AKID1", "first-secret")),  # the next day
        (NOON + 12 * 3600 + 1, Credentials("AKID2", "rotated-secret", "token")),
    ]
    for now, credentials in turns:
        sent = signer.headers(
            BODY, credentials.access_key, credentials.secret_key, credentials.token, now=now
        )
        assert sent["Authorization"] == botocores_authorization(
            url, sent, BODY, credentials, "us-east-1"
        )
