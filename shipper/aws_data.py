"""botocore's data files, read lean, through one loader for every session.

botocore reads its JSON data files into ``OrderedDict``s, among them all of
``endpoints.json``: every service of every partition (1.2 MB of JSON, about 6.5 MiB
in memory), of which a CloudWatch Logs client needs one entry.  The loader made here
reads the files with msgspec into plain dicts (which keep their order too), and of
the endpoints data keeps every partition's own settings and regions but only the
entries of :data:`SERVICES`: CloudWatch Logs, and the services botocore's credential
chain may call (STS for assumed roles and web identity, SSO).  Those services'
endpoints resolve exactly as with the full data; another service would get its
partition's defaults, and the shipper makes no client for one.  Service models lose
their ``documentation`` text (two thirds of the CloudWatch Logs model), which botocore
reads only to write docstrings for ``help()``.

One loader serves every session (a new session is opened whenever credentials
expire), so the service model is read once rather than once per client.  Extra data
folders (``AWS_DATA_PATH``) are searched first, as botocore does.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import msgspec
from botocore.loaders import Loader

SERVICES = frozenset({"logs", "sts", "sso", "sso-oidc"})

_ENDPOINTS_FILE = "endpoints"
_SERVICE_MODEL_FILE = "service-2"

_shared: Loader | None = None


class LeanJSONFiles:
    """A botocore file loader: ``<path>.json`` or ``<path>.json.gz`` as plain dicts."""

    def exists(self, file_path: str) -> bool:
        return _json_file(file_path) is not None

    def load_file(self, file_path: str) -> Any:
        data = _read(file_path)
        if data is None:
            return None
        name = os.path.basename(file_path)
        if name == _ENDPOINTS_FILE:
            return endpoints_for(data, SERVICES)
        document = msgspec.json.decode(data)
        if name == _SERVICE_MODEL_FILE:
            _drop_documentation(document)
        return document


def _drop_documentation(value: Any) -> None:
    """Remove, in place, the ``documentation`` text of a service model at any depth."""
    if isinstance(value, dict):
        value.pop("documentation", None)
        for item in value.values():
            _drop_documentation(item)
    elif isinstance(value, list):
        for item in value:
            _drop_documentation(item)


def _json_file(file_path: str) -> str | None:
    """The file botocore means by ``file_path``: ``.json``, else ``.json.gz``, or None."""
    for name in (file_path + ".json", file_path + ".json.gz"):
        if os.path.isfile(name):
            return name
    return None


def _read(file_path: str) -> bytes | None:
    name = _json_file(file_path)
    if name is None:
        return None
    with gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb") as file:
        return file.read()


def endpoints_for(data: bytes, services: frozenset[str]) -> Any:
    """The endpoints document ``data`` with each partition's services cut to ``services``.

    The other services' entries are never built as Python objects (msgspec leaves them
    as raw JSON, dropped here).  A document of another shape is returned whole.
    """
    try:
        document = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
        partitions = msgspec.json.decode(
            document.pop("partitions", b"[]"), type=list[dict[str, msgspec.Raw]]
        )
        kept_partitions = []
        for partition in partitions:
            entries = msgspec.json.decode(
                partition.pop("services", b"{}"), type=dict[str, msgspec.Raw]
            )
            kept = {key: msgspec.json.decode(value) for key, value in partition.items()}
            kept["services"] = {
                name: msgspec.json.decode(entry)
                for name, entry in entries.items()
                if name in services
            }
            kept_partitions.append(kept)
    except msgspec.ValidationError:
        return msgspec.json.decode(data)
    lean = {key: msgspec.json.decode(value) for key, value in document.items()}
    lean["partitions"] = kept_partitions
    return lean


def lean_loader(data_path: str | None = None) -> Loader:
    """A botocore loader of lean data; ``data_path`` is ``AWS_DATA_PATH`` (folders
    joined by ``os.pathsep``), searched before the customer and built-in data."""
    extra = None
    if data_path:
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    return Loader(extra_search_paths=extra, file_loader=LeanJSONFiles())


def shared_loader(data_path: str | None) -> Loader:
    """The one lean loader of the process, made from the first session's ``data_path``."""
    global _shared
    if _shared is None:
        _shared = lean_loader(data_path)
    return _shared
