"""The configuration: one declarative schema, loaded from one YAML file.

Every key is declared once, as a dataclass field with its type, default and help
text (``doc``).  The loader walks the schema, so unknown keys, wrong types and bad
values are all reported together, each with its key path and the value found.
Cross-field checks live in :func:`_check_whole`.

Words are taken as the docs write them, whatever YAML makes of them: YAML 1.1 reads a
bare ``off``/``no``/``false`` (and ``on``/``yes``/``true``) as a boolean, so where the
schema expects a word, false means ``off`` (or the null/[] that turns a key off), and
true turns a masking detector on with its usual strategy, ``partial``.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from shipper.filters import LEVELS, level_number, parse_duration
from shipper.parse import FormatError, build_parser, check_datefmt, datefmt_pattern

# The values PutRetentionPolicy accepts (CloudWatch Logs API reference).
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

STREAM_PLACEHOLDERS = frozenset({"category", "hostname", "instance_id", "task_id", "container"})

# Masking detectors (each a key of `masking`) and the default key rules.
MASK_DETECTORS = (
    "email",
    "ipv4",
    "ipv6",
    "phone",
    "card",
    "jwt",
    "bearer",
    "aws_key",
    "rrn",
    "cn_id",
    "url_password",
    "private_key",
)
DEFAULT_MASK_KEYS = (
    "password",
    "passwd",
    "token",
    "authorization",
    "secret",
    "cookie",
    "api_key",
    "access_key",
    "private_key",
    "session_id",
    "signature",
)


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists each one with its key path."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"invalid configuration {source}".rstrip()
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


# ``doc(off=...)`` for a key that has no "off" value of its own.
_NO_OFF = object()


def doc(
    text: str,
    check: typing.Callable[[Any], str | None] | None = None,
    off: Any = _NO_OFF,
) -> dict[str, Any]:
    """Field metadata: help text, an optional check returning a problem or None, and for
    a key whose documented way to turn it off is null or [], that value (``off``): YAML
    reads a bare ``off`` (``no``, ``false``) as false, which then means it."""
    return {"doc": text, "check": check, "off": off}


def _positive(value: Any) -> str | None:
    return None if value > 0 else "expected a number greater than 0"


def _timezone(value: Any) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "expected an IANA timezone such as Asia/Seoul or UTC"
    return None


def _retention(value: Any) -> str | None:
    if value is None or value in RETENTION_DAYS:
        return None
    return "expected one of " + ", ".join(map(str, RETENTION_DAYS))


def _rotated(value: Any) -> str | None:
    if value in ("auto", "number"):
        return None
    expected = "expected `auto`, a strftime suffix such as %Y-%m-%d, or `number`"
    try:
        datefmt_pattern(value)
    except FormatError as exc:
        return f"{expected} ({exc})"
    return None if "%" in value else expected


def _encoding(value: Any) -> str | None:
    try:
        codecs.lookup(value)
        "\n".encode(value)  # a text encoding, not a bytes-to-bytes codec (base64)
    except LookupError:
        return "expected a Python codec name (utf-8, cp949, euc-kr, gb18030, utf-16, latin-1, ...)"
    return None


def _host_port(value: Any) -> str | None:
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return "expected host:port, such as 127.0.0.1:9880"
    return None


def _regex(value: Any) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression ({exc})"
    return None


def _regexes(value: Any) -> str | None:
    for index, item in enumerate(value):
        problem = _regex(item)
        if problem:
            return f"item {index} ({item!r}) is {problem}"
    return None


def _level(value: Any) -> str | None:
    if value is None or level_number(value) is not None:
        return None
    return "expected a level name: " + ", ".join(LEVELS)


def _duration(value: Any) -> str | None:
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        return "expected a duration greater than 0, such as 10s, 500ms, 1m, 12h or 14d"
    return None


def _rule_name(value: Any) -> str | None:
    return None if re.fullmatch(r"[a-z][a-z0-9_]*", value) else "expected a name like order_id"


def _safe_text(value: Any) -> str | None:
    if value is not None and ('"' in value or "\\" in value):
        return 'expected text without " or \\ (masked JSON must stay valid)'
    return None


def _template(value: Any) -> str | None:
    allowed = ", ".join(f"{{{n}}}" for n in sorted(STREAM_PLACEHOLDERS))
    names = set(re.findall(r"{(\w*)[^}]*}", value))
    unknown = names - STREAM_PLACEHOLDERS
    if unknown:
        return f"unknown placeholder {{{', '.join(sorted(unknown))}}}; expected some of {allowed}"
    try:
        value.format(**dict.fromkeys(STREAM_PLACEHOLDERS, "x"))
    except (ValueError, IndexError, KeyError) as exc:
        return f"not a valid template ({exc}); expected text with placeholders such as {allowed}"
    return None


# CloudWatch Logs' rules for names (its API reference: LogGroupName, LogStreamName).
NAME_MAX = 512
_GROUP_CHARACTER = re.compile(r"[.\-_/#A-Za-z0-9]")
_STREAM_REFUSED = frozenset(":*")
# CreateLogGroup's other parameters: LogGroupClass, Tags (TagKey, TagValue), KmsKeyId.
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS")
MAX_TAGS = 50
_TAG_TEXT = re.compile(r"[\w .:/=+\-@]*")  # the API's \p{L}\p{Z}\p{N}_.:/=+\-@
_KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[\w-]+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def log_group_name_problem(name: str) -> str | None:
    """What CloudWatch would refuse in a log group name, or None."""
    if not 1 <= len(name) <= NAME_MAX:
        return f"{len(name)} characters; CloudWatch takes 1 to {NAME_MAX}"
    refused = sorted(set(_GROUP_CHARACTER.sub("", name)))
    if refused:
        shown = " ".join(repr(c) for c in refused)
        return (
            f"CloudWatch refuses {shown} in a log group name; expected letters, digits, . - _ / #"
        )
    return None


def log_stream_name_problem(name: str) -> str | None:
    """What CloudWatch would refuse in a log stream name, or None."""
    if not 1 <= len(name) <= NAME_MAX:
        return f"{len(name)} characters; CloudWatch takes 1 to {NAME_MAX}"
    refused = sorted(_STREAM_REFUSED.intersection(name))
    if refused:
        shown = " ".join(repr(c) for c in refused)
        return f"CloudWatch refuses {shown} in a log stream name; expected any text without : or *"
    return None


def name_problems(config: Config, values: typing.Mapping[str, str] | None = None) -> list[str]:
    """The log group and stream names CloudWatch would refuse, each with the key at fault.

    ``values`` are the placeholders' values besides ``{category}`` that are known:
    none when the file is loaded (only the templates and the categories are), all
    once the shipper starts.  A placeholder without a value stands in as a valid
    ``x``.  A template at fault is named once; otherwise each category that makes a
    refused name is.
    """
    problems = []
    cloudwatch = config.cloudwatch
    known = values or {}
    values = {**dict.fromkeys(STREAM_PLACEHOLDERS - {"category"}, "x"), **known}
    for key, template, problem_of in (
        ("log_group", cloudwatch.log_group, log_group_name_problem),
        ("log_stream", cloudwatch.log_stream, log_stream_name_problem),
    ):
        kind = key.replace("_", " ")
        resolved = {name: value for name, value in known.items() if f"{{{name}" in template}
        shown = "".join(f" with {{{name}}}={value!r}" for name, value in resolved.items())
        plain = template.format(category="x", **values)
        problem = problem_of(plain)
        if problem is not None:
            problems.append(
                f"cloudwatch.{key}: {template!r} gives {kind} {plain!r}{shown}; {problem}"
            )
            continue
        for index, source in enumerate(config.sources):
            if is_glob(source.path):
                continue  # its categories are checked as they are found
            name = template.format(category=source.category, **values)
            problem = problem_of(name)
            if problem is not None:
                problems.append(
                    f"sources[{index}].category: {source.category!r} gives {kind} {name!r}; "
                    f"{problem}"
                )
    return problems


def _tags(value: Any) -> str | None:
    if len(value) > MAX_TAGS:
        return f"{len(value)} tags; CloudWatch takes at most {MAX_TAGS}"
    for key, text in value.items():
        if not 1 <= len(key) <= 128 or not _TAG_TEXT.fullmatch(key) or key.startswith("aws:"):
            return (
                f"tag key {key!r}: expected 1 to 128 letters, digits, spaces or _ . : / = + - @"
                " (not starting with aws:)"
            )
        if len(text) > 256 or not _TAG_TEXT.fullmatch(text):
            return (
                f"tag {key!r}: value {text!r}: expected up to 256 letters, digits, spaces"
                " or _ . : / = + - @"
            )
    return None


def _role_arn(value: Any) -> str | None:
    if _ROLE_ARN.fullmatch(value):
        return None
    return "expected a role ARN such as arn:aws:iam::123456789012:role/log-writer"


def _kms_key(value: Any) -> str | None:
    if len(value) <= 256 and _KMS_KEY_ARN.fullmatch(value):
        return None
    return "expected a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-..."


def _bounded(limit: int, what: str) -> typing.Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if 1 <= len(value) <= limit else f"expected {what} of 1 to {limit} characters"

    return check


def _session_name(value: Any) -> str | None:
    if re.fullmatch(r"[\w+=,.@-]{2,64}", value):
        return None
    return "expected 2 to 64 letters, digits or + = , . @ - _"


@dataclass(frozen=True)
class CloudWatchConfig:
    region: str | None = field(
        default=None,
        metadata=doc(
            "AWS region of the CloudWatch Logs endpoint; null: botocore's chain ($AWS_REGION,"
            " $AWS_DEFAULT_REGION, the profile's region, then the EC2 instance's own region)."
        ),
    )
    endpoint_url: str | None = field(
        default=None, metadata=doc("Another endpoint (LocalStack, a moto server); default AWS.")
    )
    log_group: str = field(
        default="/shipper/{category}",
        metadata=doc(
            "Log group name template; the name may hold letters, digits and . - _ / # "
            "(1 to 512 characters).",
            _template,
        ),
    )
    log_stream: str = field(
        default="{hostname}",
        metadata=doc(
            "Log stream name template: {category} {hostname} {instance_id} {task_id} {container};"
            " the name may hold anything but : and * (1 to 512 characters).",
            _template,
        ),
    )
    create_log_group: bool = field(
        default=True, metadata=doc("Create missing log groups (streams are always created).")
    )
    retention_days: int | None = field(
        default=None,
        metadata=doc("Retention set on groups the shipper creates.", _retention),
    )
    log_group_class: Literal["STANDARD", "INFREQUENT_ACCESS"] = field(
        default="STANDARD",
        metadata=doc("Class of the groups the shipper creates: STANDARD | INFREQUENT_ACCESS."),
    )
    log_group_tags: dict[str, str] = field(
        default_factory=dict,
        metadata=doc("Tags put on the groups the shipper creates, as {key: value}.", _tags),
    )
    kms_key_id: str | None = field(
        default=None,
        metadata=doc("ARN of the KMS key that encrypts the groups the shipper creates.", _kms_key),
    )
    role_arn: str | None = field(
        default=None,
        metadata=doc(
            "A role to assume (another account's), from the credentials the chain finds; "
            "refreshed before it expires.",
            _role_arn,
        ),
    )
    external_id: str | None = field(
        default=None,
        metadata=doc(
            "The external id the role's trust policy asks for.", _bounded(1224, "an external id")
        ),
    )
    role_session_name: str = field(
        default="shipper",
        metadata=doc("The session name of the assumed role (shows in CloudTrail).", _session_name),
    )
    request_timeout: float = field(
        default=30.0, metadata=doc("Seconds one API call may take before it is retried.", _positive)
    )
    max_backoff: float = field(
        default=20.0, metadata=doc("Longest pause between retries, in seconds.", _positive)
    )
    price_per_gb: float | None = field(
        default=None,
        metadata=doc(
            "USD per GB ingested, for `shipper volume`'s cost estimate; null: the list "
            "price of the group class (STANDARD 0.50, INFREQUENT_ACCESS 0.25).",
            lambda v: None if v >= 0 else "expected a price of 0 or more",
        ),
    )


@dataclass(frozen=True)
class BatchConfig:
    flush_interval: float = field(
        default=1.0, metadata=doc("Seconds a record may wait for company.", _positive)
    )
    max_events: int = field(
        default=10_000,
        metadata=doc(
            "Events per PutLogEvents call (the API allows 10,000).",
            lambda v: None if 1 <= v <= 10_000 else "expected 1 to 10000",
        ),
    )
    max_bytes: int = field(
        default=1_048_576,
        metadata=doc(
            "Bytes per call, counting 26 per event (the API allows 1,048,576).",
            lambda v: None if 1024 <= v <= 1_048_576 else "expected 1024 to 1048576",
        ),
    )
    queue_batches: int = field(
        default=2,
        metadata=doc("Sealed batches a stream may hold before reading pauses.", _positive),
    )


def _namespace(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9 ._\-/#:]{1,255}", value) and not value.startswith("AWS/"):
        return None
    return "expected 1 to 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/"


def _log_group_name(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9._\-/#]{1,512}", value):
        return None
    return "expected a log group name: 1 to 512 of A-Z a-z 0-9 . - _ / #"


@dataclass(frozen=True)
class RequestsConfig:
    route: str | None = field(
        default=None,
        metadata=doc(
            "Field with the request line (`GET /users/7 HTTP/1.1`), path or URL; "
            "omitted: request_line, url, path (with method)."
        ),
    )
    status: str | None = field(
        default=None,
        metadata=doc("Field with the status code; omitted: status_code, statusCode, status."),
    )
    duration: str | None = field(
        default=None,
        metadata=doc(
            "Field with the request's duration; omitted: request_time, processedTime, duration."
        ),
    )
    duration_unit: Literal["s", "ms"] | None = field(
        default=None,
        metadata=doc("Unit of the duration; omitted: the value's suffix (`12ms`), else s."),
    )


@dataclass(frozen=True)
class MetricsConfig:
    namespace: str | None = field(
        default=None,
        metadata=doc(
            "CloudWatch namespace; set, it turns on metrics from the logs (EMF events).",
            _namespace,
        ),
    )
    interval: int = field(
        default=60,
        metadata=doc(
            "Seconds per aggregate, by the records' own times.",
            lambda v: None if 1 <= v <= 3600 else "expected 1 to 3600",
        ),
    )
    log_group: str = field(
        default="/shipper/metrics",
        metadata=doc(
            "Log group of the EMF events (stream: the source's stream name).", _log_group_name
        ),
    )
    max_routes: int = field(
        default=200,
        metadata=doc("Routes per category with their own name; the rest are `other`.", _positive),
    )


@dataclass(frozen=True)
class SampleRule:
    match: str = field(
        metadata=doc("A regular expression searched in the record's text as written.", _regex)
    )
    keep_one_in: int = field(
        metadata=doc(
            "Of the records it finds, the first of every N is kept (marked `sampled`).",
            _positive,
        )
    )


@dataclass(frozen=True)
class SourceConfig:
    category: str = field(
        default="",
        kw_only=True,  # before the required `path` in the schema's (and README's) order
        metadata=doc(
            "The category: names the group/stream and a field. Required, except with a glob"
            " `path`, where each folder's name is its category (giving it there is an error)."
        ),
    )
    path: Path = field(
        metadata=doc(
            "The live file; relative to the YAML file's folder. A glob (`/logs/*/*.log`, or"
            " `/logs/{category}/{category}.log`: file named as its folder) makes a source per"
            " category folder, found while running; a file that is a rotated sibling of"
            " another is not a new source."
        )
    )
    rotated: str = field(
        default="auto",
        metadata=doc(
            "How rotated siblings are named. `auto`: every name the stdlib's"
            " TimedRotatingFileHandler writes for any `when` (app.log.2024-01-01,"
            " app.log.2024-01-01_13, ...), app.log.20240101, logrotate's dateext"
            " (app.log-20240101) and numbered files (app.log.1, higher is older), and a"
            " namer's app.2024-01-01.log. Or only one form: a strftime suffix, or `number`."
            " Gzipped ones (app.log.1.gz, app.log-20240101.gz) are read too.",
            _rotated,
        ),
    )
    format: str = field(
        default="json",
        metadata=doc(
            "A Python logging format string; `json` for JSON lines; or a preset: "
            "`uvicorn_access` ([%(asctime)s] %(request_id)s %(status_code)s "
            '%(request_time)ss %(client_addr)s - "%(request_line)s"), `uvicorn` '
            "(its default access line), `gunicorn_access` (its default access_log_format)."
        ),
    )
    style: Literal["%", "{", "$"] = field(
        default="%", metadata=doc("The format's style, as logging.Formatter's `style`.")
    )
    datefmt: str | None = field(
        default=None,
        metadata=doc(
            "strftime form of %(asctime)s (omitted: logging's default, with ,msecs); "
            "for JSON lines, the form of the time value (omitted: ISO 8601 or epoch)."
        ),
    )
    time_key: str | None = field(
        default=None,
        metadata=doc(
            "JSON lines: the key holding the time; omitted: the first of timestamp, "
            "time, @timestamp, ts, asctime, created."
        ),
    )
    multiline_start: str | None = field(
        default=None,
        metadata=doc(
            "A regular expression matching the first line of every record; lines that "
            "do not match continue the record before. Omitted: lines the format matches "
            "start records (tracebacks are recognised either way).",
            _regex,
        ),
    )
    timezone: str = field(
        default="UTC", metadata=doc("IANA timezone of times written without an offset.", _timezone)
    )
    encoding: str = field(
        default="utf-8",
        metadata=doc(
            "The files' text encoding: utf-8, cp949, euc-kr, gbk, gb18030, latin-1, utf-16 "
            "(byte order from its BOM), utf-16-le, ... Bytes it cannot decode are kept as "
            "\\xNN escapes.",
            _encoding,
        ),
    )
    start_at: Literal["beginning", "end"] = field(
        default="beginning",
        metadata=doc(
            "Where to start in files never seen before. `beginning`: everything still on"
            " disk, rotated files included, oldest first (a first install ships the days"
            " already logged). `end`: at first start only what is written from then on (the"
            " live file from its end, rotated files not at all)."
        ),
    )
    ignore_older: str | None = field(
        default="14d",
        metadata=doc(
            "Files never seen before and last modified longer ago than this (14d, 12h, 30m)"
            " are skipped and logged (CloudWatch refuses events older than 14 days);"
            " null: no limit.",
            _duration,
        ),
    )
    output: Literal["json", "raw"] = field(
        default="json", metadata=doc("`json`: a JSON object per event; `raw`: the masked text.")
    )
    max_line_bytes: int = field(
        default=262_144,
        metadata=doc(
            "A longer line is shipped in parts of this size.",
            lambda v: None if 1024 <= v <= 1_000_000 else "expected 1024 to 1000000",
        ),
    )
    max_record_lines: int = field(
        default=1000, metadata=doc("Lines one record (a traceback) may gather.", _positive)
    )
    max_record_bytes: int = field(
        default=524_288,
        metadata=doc(
            "Bytes one record (a traceback) may gather; further lines start a new record.",
            lambda v: None if 1024 <= v <= 1_000_000 else "expected 1024 to 1000000",
        ),
    )
    requests: RequestsConfig | None = field(
        default=None,
        metadata=doc(
            "This source's records are requests: per-route metrics (needs metrics.namespace);"
            " {} finds the fields by their usual names."
        ),
    )
    min_level: str | None = field(
        default=None,
        metadata=doc(
            "Drop records below this level (DEBUG, INFO, WARNING/WARN, ERROR, "
            "CRITICAL/FATAL, any case); records without a level are kept.",
            _level,
        ),
    )
    exclude: list[str] = field(
        default_factory=list,
        metadata=doc(
            "Regular expressions: a record whose text as written (before masking, "
            "traceback included) matches any is dropped.",
            _regexes,
        ),
    )
    include: list[str] = field(
        default_factory=list,
        metadata=doc(
            "Regular expressions: when set, only records matching one are kept.", _regexes
        ),
    )
    sample: list[SampleRule] = field(
        default_factory=list,
        metadata=doc(
            "Sampling rules; the first whose `match` finds a record decides. Kept events "
            'carry `"sampled": N` (raw output: ` …[sampled 1 in N]`).'
        ),
    )
    collapse_repeats: str | None = field(
        default=None,
        metadata=doc(
            "A window such as 10s: consecutive records identical but for their time "
            'become one event, marked `"repeated": N` (raw output: '
            "` …[repeated N times]`); it is shipped when the window ends.",
            _duration,
        ),
    )


Strategy = Literal["partial", "redact", "hash", "off"]


@dataclass(frozen=True)
class MaskRule:
    name: str = field(
        metadata=doc(
            "Names the rule: `<name>` or `<name:hash>` replaces what it matches.", _rule_name
        )
    )
    pattern: str = field(
        metadata=doc(
            "A Python regular expression, matched against the event's final text "
            "(JSON: quotes escaped; a match is cut before its first quote or backslash).",
            _regex,
        )
    )
    strategy: Literal["redact", "hash"] = field(
        default="redact", metadata=doc("`redact`: the replacement; `hash`: a keyed token.")
    )
    replacement: str | None = field(
        default=None,
        metadata=doc("Text written for a match (`redact`); default `<name>`.", _safe_text),
    )


@dataclass(frozen=True)
class MaskingConfig:
    email: Strategy = field(
        default="partial",
        metadata=doc("E-mail addresses: partial (**meon*@example.com) | redact | hash | off."),
    )
    ipv4: Strategy = field(
        default="off", metadata=doc("IPv4 addresses: partial (last octet *) | redact | hash.")
    )
    ipv6: Strategy = field(
        default="off", metadata=doc("IPv6 addresses: partial (the /48 kept) | redact | hash.")
    )
    phone: Strategy = field(
        default="off",
        metadata=doc(
            "Phone numbers (+82 10-…, (555) 123-4567, 010-…, 01012345678, 13812345678): "
            "partial (last 2 digits)."
        ),
    )
    card: Strategy = field(
        default="off",
        metadata=doc("Payment card numbers passing the Luhn check: partial (last 4 digits)."),
    )
    jwt: Strategy = field(
        default="off", metadata=doc("JSON Web Tokens: partial (header kept) | redact | hash.")
    )
    bearer: Strategy = field(
        default="off", metadata=doc("`Bearer <token>` credentials: partial (4 chars kept).")
    )
    aws_key: Strategy = field(
        default="off", metadata=doc("AWS access key ids (AKIA…, ASIA…): partial (4+4 kept).")
    )
    rrn: Strategy = field(
        default="partial",
        metadata=doc(
            "Korean resident registration numbers (YYMMDD-NNNNNNN, a real date): "
            "partial (900101-1******)."
        ),
    )
    cn_id: Strategy = field(
        default="partial",
        metadata=doc(
            "Chinese resident ID numbers (18 characters, checksum and date checked): "
            "partial (region and last 4 kept)."
        ),
    )
    url_password: Strategy = field(
        default="redact",
        metadata=doc("Passwords in URLs (postgres://app:secret@db/…): partial (***) | redact."),
    )
    private_key: Strategy = field(
        default="redact",
        metadata=doc("PEM private key blocks: the body replaced (partial = redact) | hash."),
    )
    rules: list[MaskRule] = field(
        default_factory=list, metadata=doc("Custom rules, applied after the detectors.")
    )
    keys: list[str] = field(
        default_factory=lambda: list(DEFAULT_MASK_KEYS),
        metadata=doc(
            "Values under keys ending with these names (any case; apiKey, api-key, "
            "password1, password_confirm) are redacted wherever the text holds one: JSON "
            "at any depth, key=value, headers, reprs, SQL; [] (or off) turns this off.",
            off=[],
        ),
    )
    hash_key: str | None = field(
        default=None,
        metadata=doc("Key for `hash` tokens; default $SHIPPER_HASH_KEY (required for hash)."),
    )


@dataclass(frozen=True)
class HealthConfig:
    listen: str | None = field(
        default="127.0.0.1:9880",
        metadata=doc(
            "host:port of /healthz, /readyz and /metrics; null (or off) turns it off.",
            _host_port,
            off=None,
        ),
    )


@dataclass(frozen=True)
class Config:
    sources: list[SourceConfig] = field(metadata=doc("The files to ship."))
    state_dir: Path = field(
        default=Path("/var/lib/shipper"), metadata=doc("Where checkpoints live.")
    )
    shutdown_timeout: float = field(
        default=20.0, metadata=doc("Seconds to deliver and save after SIGTERM.", _positive)
    )
    checkpoint_interval: float = field(
        default=1.0,
        metadata=doc(
            "Seconds between checkpoint saves (only when something was delivered; and at"
            " shutdown). A power loss re-sends at most the last interval's deliveries.",
            _positive,
        ),
    )
    rescan_interval: float = field(
        default=5.0,
        metadata=doc("Seconds between safety-net rescans of the watched folders.", _positive),
    )
    log_level: Literal["debug", "info", "warning", "error"] = field(
        default="info", metadata=doc("Level of the shipper's own logs.")
    )
    cloudwatch: CloudWatchConfig = field(default_factory=CloudWatchConfig, metadata=doc(""))
    batch: BatchConfig = field(default_factory=BatchConfig, metadata=doc(""))
    masking: MaskingConfig = field(default_factory=MaskingConfig, metadata=doc(""))
    health: HealthConfig = field(default_factory=HealthConfig, metadata=doc(""))
    metrics: MetricsConfig = field(default_factory=MetricsConfig, metadata=doc(""))


def reference(kind: Any = None, prefix: str = "") -> typing.Iterator[tuple[str, str, str]]:
    """(key path, default, help text) of every setting, in the schema's order."""
    kind = Config if kind is None else kind
    hints = typing.get_type_hints(kind)
    for spec in dataclasses.fields(kind):
        path = prefix + spec.name
        hint = hints[spec.name]
        optional = [a for a in typing.get_args(hint) if a is not type(None)]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        if union and len(optional) == 1 and dataclasses.is_dataclass(optional[0]):
            hint = optional[0]  # an optional section (`requests`): its keys
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is list else None
        if dataclasses.is_dataclass(hint):
            yield from reference(hint, path + ".")
        elif inner is not None and dataclasses.is_dataclass(inner):
            yield from reference(inner, path + "[].")
        else:
            if spec.default is not dataclasses.MISSING:
                default = _yaml_text(spec.default)
            elif spec.default_factory is not dataclasses.MISSING:
                default = _yaml_text(spec.default_factory())
            else:
                default = "(required)"
            yield path, default, spec.metadata.get("doc", "")


def reference_markdown() -> str:
    """The settings as a Markdown table (README's configuration reference)."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for path, default, text in reference():
        cells = [f"`{path}`", default, text]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _yaml_text(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return f"`[{', '.join(map(str, value))}]`" if value else "`[]`"
    if value == "":
        return '`""`'
    return f"`{value}`"


# --------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, env: typing.Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; a missing VAR without default raises KeyError."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise KeyError(name)
            return default
        return value

    return _VAR.sub(substitute, text)


def resolve_path(config_path: str | os.PathLike[str] | None) -> Path:
    """The config file to use: the argument, then $SHIPPER_CONFIG, then ./shipper.yaml."""
    chosen = config_path or os.environ.get("SHIPPER_CONFIG") or "shipper.yaml"
    return Path(chosen)


def load(path: str | os.PathLike[str], env: typing.Mapping[str, str] | None = None) -> Config:
    """Read, expand, decode and check a config file; raise ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path} is not UTF-8 text"], str(path)) from None
    return parse(text, base_dir=path.resolve().parent, env=env, source=str(path))


def parse(
    text: str,
    base_dir: Path,
    env: typing.Mapping[str, str] | None = None,
    source: str = "",
) -> Config:
    """Decode YAML text into a Config (paths resolved against ``base_dir``)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}not valid YAML ({problem})"], source) from None
    if raw is None:
        raw = {}
    problems: list[str] = []
    decoder = _Decoder(os.environ if env is None else env, base_dir, problems)
    config = decoder.decode(Config, raw, "")
    if not problems:
        problems.extend(_check_whole(config))
    if problems:
        raise ConfigError(problems, source)
    assert isinstance(config, Config)
    return config


def _check_whole(config: Config) -> list[str]:
    """Checks that involve more than one key."""
    problems = []
    if not config.sources:
        problems.append("sources: expected at least one source")
    seen: dict[Path, int] = {}
    for index, source in enumerate(config.sources):
        if source.path in seen:
            first = seen[source.path]
            problems.append(f"sources[{index}].path: {str(source.path)!r} is sources[{first}] too")
        seen.setdefault(source.path, index)
    for index, source in enumerate(config.sources):
        problems.extend(_check_format(f"sources[{index}]", source))
        problems.extend(_check_requests(f"sources[{index}]", source, config.metrics))
    masking = config.masking
    hashing = [f"masking.{n}" for n in MASK_DETECTORS if getattr(masking, n) == "hash"]
    hashing += [f"masking.rules[{i}]" for i, r in enumerate(masking.rules) if r.strategy == "hash"]
    if hashing and not (masking.hash_key or os.environ.get("SHIPPER_HASH_KEY")):
        problems.append(
            f"masking.hash_key: null; expected a key (or $SHIPPER_HASH_KEY) for the hash "
            f"strategy of {', '.join(hashing)}"
        )
    problems.extend(name_problems(config))
    cloudwatch = config.cloudwatch
    if cloudwatch.external_id is not None and cloudwatch.role_arn is None:
        problems.append(
            f"cloudwatch.external_id: {cloudwatch.external_id!r} without cloudwatch.role_arn; "
            "expected the role it is for"
        )
    return problems


# What makes a source's path a glob over category folders (see shipper/categories.py).
GLOB_CHARACTERS = frozenset("*?[")
CATEGORY_PLACEHOLDER = "{category}"


def is_glob(path: Path) -> bool:
    """Whether ``path`` names category folders rather than one file."""
    text = str(path)
    return CATEGORY_PLACEHOLDER in text or not GLOB_CHARACTERS.isdisjoint(text)


def _check_category(path: str, source: SourceConfig) -> list[str]:
    """A plain path names its category; a glob takes it from the folders, and only its
    last two parts (the category folder and the file name) may be patterns."""
    if not is_glob(source.path):
        return [] if source.category else [f"{path}.category: missing; required"]
    shown = str(source.path)
    if source.category:
        return [
            f"{path}.category: {source.category!r} with a glob path {shown!r}; expected no"
            " category (each folder's name is its category)"
        ]
    folder, name = source.path.parent.name, source.path.name
    if is_glob(source.path.parent.parent):
        return [
            f"{path}.path: {shown!r}; expected a pattern only in the category folder and the"
            " file name (/logs/*/*.log)"
        ]
    if CATEGORY_PLACEHOLDER in folder and folder != CATEGORY_PLACEHOLDER:
        return [f"{path}.path: {shown!r}; expected {{category}} as the whole folder name"]
    if folder != CATEGORY_PLACEHOLDER and GLOB_CHARACTERS.isdisjoint(folder):
        return [
            f"{path}.path: {shown!r}; expected the category folder to be a pattern (* or"
            " {category}), as the category is the folder's name"
        ]
    rest = (folder + "/" + name).replace(CATEGORY_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        return [f"{path}.path: {shown!r}; expected no placeholder but {{category}}"]
    return []


def _check_requests(path: str, source: SourceConfig, metrics: MetricsConfig) -> list[str]:
    """Request metrics need metrics on, and the fields only JSON output parses."""
    if source.requests is None:
        return []
    if metrics.namespace is None:
        return [f"{path}.requests: set, but metrics.namespace is null; expected a namespace"]
    if source.output == "raw":
        return [f"{path}.requests: set with output raw; expected output json (fields needed)"]
    return []


def _check_format(path: str, source: SourceConfig) -> list[str]:
    """Compile a source's format and datefmt now, so a bad one never starts the shipper."""
    if source.datefmt is not None:
        try:
            check_datefmt(source.datefmt)
        except FormatError as exc:
            return [f"{path}.datefmt: {source.datefmt!r}; {exc}"]
    try:
        build_parser(source.format, source.datefmt, source.timezone, source.style)
    except FormatError as exc:
        return [f"{path}.format: {source.format!r}; {exc}"]
    return []


# The words the docs use to turn something on or off.  YAML 1.1 reads them bare as
# booleans (`email: off` is false), so either form is taken to mean the word.
_ON_WORDS = ("on", "yes", "true")
_OFF_WORDS = ("off", "no", "false")
# A masking detector turned on (`ipv4: on`) takes its usual strategy.
_ON_MEANS = "partial"


def _means_off(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() in _OFF_WORDS)


def _word(value: Any, words: tuple[Any, ...]) -> Any:
    """``value`` as one of ``words`` when it is how YAML (or a variable) wrote one of them:
    off/no/false for ``off``, on/yes/true for a detector's usual strategy."""
    if "off" in words and _means_off(value):
        return "off"
    if _ON_MEANS in words and (
        value is True or (isinstance(value, str) and value.lower() in _ON_WORDS)
    ):
        return _ON_MEANS
    return value


def _expected_words(words: tuple[Any, ...], value: Any) -> str:
    expected = "expected one of " + " | ".join(map(str, words))
    if "off" in words and _ON_MEANS in words:
        return f"{expected} (on, yes and true mean {_ON_MEANS}; off, no and false mean off)"
    if isinstance(value, bool):
        return f"{expected} (YAML reads a bare on/off, yes/no as true/false: quote the word)"
    return expected


class _Missing:
    pass


_MISSING = _Missing()


class _Decoder:
    """Turns plain YAML data into schema dataclasses, collecting every problem."""

    def __init__(self, env: typing.Mapping[str, str], base_dir: Path, problems: list[str]):
        self.env = env
        self.base_dir = base_dir
        self.problems = problems

    def problem(self, path: str, value: Any, expected: str) -> _Missing:
        shown = "missing" if value is _MISSING else repr(value)
        self.problems.append(f"{path or '(top level)'}: {shown}; {expected}")
        return _MISSING

    def decode(self, kind: Any, value: Any, path: str) -> Any:
        if isinstance(value, str):
            try:
                value = expand_env(value, self.env)
            except KeyError as exc:
                return self.problem(
                    path, value, f"environment variable {exc.args[0]} is not set (or add :-default)"
                )
        if dataclasses.is_dataclass(kind):
            return self.decode_dataclass(kind, value, path)
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.decode(inner, value, path)
        if origin is list:
            if not isinstance(value, list):
                return self.problem(path, value, "expected a list")
            return [self.decode(args[0], item, f"{path}[{i}]") for i, item in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                return self.problem(path, value, "expected a mapping of names to values")
            decoded = {
                self.decode(args[0], key, f"{path}.{key}"): self.decode(
                    args[1], item, f"{path}.{key}"
                )
                for key, item in value.items()
            }
            return _MISSING if _MISSING in decoded or _MISSING in decoded.values() else decoded
        if origin is Literal:
            word = _word(value, args)
            if word not in args:
                return self.problem(path, value, _expected_words(args, value))
            return word
        return self.decode_scalar(kind, value, path)

    def decode_scalar(self, kind: Any, value: Any, path: str) -> Any:
        if kind is bool:
            if isinstance(value, str) and value.lower() in _ON_WORDS + _OFF_WORDS:
                return value.lower() in _ON_WORDS
            if isinstance(value, bool):
                return value
            return self.problem(path, value, "expected true or false (or yes/no, on/off)")
        if kind in (int, float):
            if isinstance(value, str):
                try:
                    value = kind(value)
                except ValueError:
                    pass
            ok = isinstance(value, (int, float) if kind is float else int)
            if not ok or isinstance(value, bool):
                return self.problem(
                    path, value, f"expected {'a number' if kind is float else 'an integer'}"
                )
            return kind(value)
        if kind is str:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            if not isinstance(value, str):
                return self.problem(path, value, "expected a string")
            return value
        if kind is Path:
            if not isinstance(value, str) or not value:
                return self.problem(path, value, "expected a path")
            return (self.base_dir / os.path.expanduser(value)).resolve()
        raise TypeError(f"schema type {kind!r} has no decoder")  # a bug in the schema

    def decode_dataclass(self, kind: Any, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return self.problem(path, value, "expected a mapping")
        prefix = f"{path}." if path else ""
        hints = typing.get_type_hints(kind)
        fields = {f.name: f for f in dataclasses.fields(kind)}
        for key in value:
            if key not in fields:
                self.problem(
                    f"{prefix}{key}",
                    value[key],
                    "unknown key; expected one of " + ", ".join(fields),
                )
        decoded: dict[str, Any] = {}
        for name, spec in fields.items():
            key_path = f"{prefix}{name}"
            if name not in value:
                required = (
                    spec.default is dataclasses.MISSING
                    and spec.default_factory is dataclasses.MISSING
                )
                if required:
                    self.problem(key_path, _MISSING, f"required ({spec.metadata.get('doc', '')})")
                continue
            off = spec.metadata.get("off", _NO_OFF)
            if off is not _NO_OFF and _means_off(value[name]):
                decoded[name] = list(off) if isinstance(off, list) else off
                continue
            item = self.decode(hints[name], value[name], key_path)
            if item is _MISSING:
                continue
            check = spec.metadata.get("check")
            message = check(item) if check and item is not None else None
            if message:
                self.problem(key_path, value[name], message)
                continue
            decoded[name] = item
        try:
            item = kind(**decoded)
        except TypeError:
            return _MISSING  # a required field was reported above
        if kind is SourceConfig:  # with the other problems: it replaces a required key's
            self.problems.extend(_check_category(path, item))
        return item
