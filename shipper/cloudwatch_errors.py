"""The errors a CloudWatch Logs call can end in, as the rest of the shipper sees them.

    CloudWatchError
    ├── Retriable               throttling, 5xx, timeouts, connection resets
    │   ├── ExpiredCredentials  refresh the credentials, then retry
    │   └── MissingCredentials  none found (yet: at boot a role may come late): ask again
    ├── InvalidSequenceToken    retry with ``expected``
    ├── DataAlreadyAccepted     the batch is stored already; ``expected`` is the next token
    ├── ResourceNotFound        the group or stream is gone: create it, then retry
    └── Rejected                the service refuses the request itself (InvalidParameter)

Only :mod:`shipper.cloudwatch` raises them, translating botocore's and aiohttp's.
"""

from __future__ import annotations


class CloudWatchError(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class Retriable(CloudWatchError):
    pass


class ExpiredCredentials(Retriable):
    pass


class MissingCredentials(Retriable):
    pass


class InvalidSequenceToken(CloudWatchError):
    def __init__(self, code: str, detail: str, expected: str | None) -> None:
        super().__init__(code, detail)
        self.expected = expected


class DataAlreadyAccepted(InvalidSequenceToken):
    pass


class ResourceNotFound(CloudWatchError):
    pass


class Rejected(CloudWatchError):
    pass
