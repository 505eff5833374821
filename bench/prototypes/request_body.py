"""Prototype: what building one PutLogEvents request costs, and a cheaper body.

botocore turns the call's parameters into the JSON body by walking the operation's
shape per event (a Python call per member of each of up to 10,000 events), then
SigV4 signs it (a SHA-256 of the ~1 MB body, then a few HMACs).  The shipper also
builds a ``{"timestamp", "message"}`` dict per event for it.  The alternative: encode
the body once with msgspec from the events themselves (``msgspec.Struct`` with the
API's field names, or a list of tuples turned into JSON), and only sign it.

    python -m bench.prototypes.request_body --lines 200000
"""

from __future__ import annotations

import time

import botocore.session
import msgspec
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer

from bench.generate import file_from_arguments
from bench.profile import read_and_batch


class LogEvent(msgspec.Struct, array_like=False):
    timestamp: int
    message: str


class PutLogEventsBody(msgspec.Struct, rename="camel"):
    log_group_name: str
    log_stream_name: str
    log_events: list[LogEvent]


def main() -> None:
    path = file_from_arguments(__doc__.split("\n\n")[0], 200_000)
    count, batches = read_and_batch(path, "full")
    operation = (
        botocore.session.get_session().get_service_model("logs").operation_model("PutLogEvents")
    )
    serializer = create_serializer("json", include_validation=False)
    signer = SigV4Auth(Credentials("bench", "bench"), "logs", "us-east-1")
    url = "https://logs.us-east-1.amazonaws.com/"
    encoder = msgspec.json.Encoder()
    timings: dict[str, float] = {}

    def clock(name: str, started: float) -> None:
        timings[name] = timings.get(name, 0.0) + time.process_time() - started

    for batch in batches:
        started = time.process_time()
        params = {
            "logGroupName": "/bench/app",
            "logStreamName": "bench",
            "logEvents": [{"timestamp": e.timestamp, "message": e.message} for e in batch.events],
        }
        clock("per-event dicts (shipper)", started)
        started = time.process_time()
        request = serializer.serialize_to_request(params, operation)
        clock("botocore serialize", started)
        started = time.process_time()
        signed = AWSRequest(
            method="POST", url=url, data=request["body"], headers=request["headers"]
        )
        signer.add_auth(signed)
        clock("SigV4 sign", started)
        started = time.process_time()
        body = encoder.encode(
            PutLogEventsBody(
                "/bench/app",
                "bench",
                [LogEvent(e.timestamp, e.message) for e in batch.events],
            )
        )
        clock("msgspec body (Struct per event)", started)
        assert msgspec.json.decode(body) == msgspec.json.decode(request["body"])
        started = time.process_time()
        body = encoder.encode(params)
        clock("msgspec body (of the dicts above)", started)
    per_million = 1e6 / count
    for name, took in timings.items():
        print(f"{name:<34} {took * per_million:5.2f} CPU-s per million events")


if __name__ == "__main__":
    main()
