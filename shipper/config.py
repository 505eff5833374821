"""The configuration: one declarative schema, loaded from one YAML file.

Every key is declared once, as a dataclass field with its type, default and help
text (``doc``).  The loader walks the schema, so unknown keys, wrong types and bad
values are all reported together, each with its key path and the value found.
Cross-field checks live in :func:`_check_whole`.
"""

from __future__ import annotations

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


def doc(text: str, check: typing.Callable[[Any], str | None] | None = None) -> dict[str, Any]:
    """Field metadata: help text, and an optional check returning a problem or None."""
    return {"doc": text, "check": check}


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
    if value == "number":
        return None
    try:
        datefmt_pattern(value)
    except FormatError as exc:
        return f"expected a strftime suffix such as %Y%m%d, or `number` ({exc})"
    return None if "%" in value else "expected a strftime suffix such as %Y%m%d, or `number`"


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


@dataclass(frozen=True)
class CloudWatchConfig:
    region: str = field(
        default="us-east-1", metadata=doc("AWS region of the CloudWatch Logs endpoint.")
    )
    endpoint_url: str | None = field(
        default=None, metadata=doc("Another endpoint (LocalStack, a moto server); default AWS.")
    )
    log_group: str = field(
        default="/shipper/{category}",
        metadata=doc("Log group name template.", _template),
    )
    log_stream: str = field(
        default="{hostname}",
        metadata=doc(
            "Log stream name template: {category} {hostname} {instance_id} {task_id} {container}.",
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
    request_timeout: float = field(
        default=30.0, metadata=doc("Seconds one API call may take before it is retried.", _positive)
    )
    max_backoff: float = field(
        default=20.0, metadata=doc("Longest pause between retries, in seconds.", _positive)
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


@dataclass(frozen=True)
class SourceConfig:
    category: str = field(metadata=doc("The category: names the group/stream and a field."))
    path: Path = field(metadata=doc("The live file; relative to the YAML file's folder."))
    rotated: str = field(
        default="%Y%m%d",
        metadata=doc(
            "How rotated siblings are named: a strftime suffix (`%Y%m%d` finds app.log.20240101,"
            " logrotate's dateext app.log-20240101 and a namer's app.20240101.log), or `number`"
            " for logrotate's numbered app.log.1, app.log.2 (higher is older).",
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
    start_at: Literal["beginning", "end"] = field(
        default="beginning", metadata=doc("Where to start in a file never seen before.")
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
            "at any depth, key=value, headers, reprs, SQL; [] turns this off."
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
        metadata=doc("host:port of /healthz, /readyz and /metrics; null turns it off.", _host_port),
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


def reference(kind: Any = None, prefix: str = "") -> typing.Iterator[tuple[str, str, str]]:
    """(key path, default, help text) of every setting, in the schema's order."""
    kind = Config if kind is None else kind
    hints = typing.get_type_hints(kind)
    for spec in dataclasses.fields(kind):
        path = prefix + spec.name
        hint = hints[spec.name]
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
    masking = config.masking
    hashing = [f"masking.{n}" for n in MASK_DETECTORS if getattr(masking, n) == "hash"]
    hashing += [f"masking.rules[{i}]" for i, r in enumerate(masking.rules) if r.strategy == "hash"]
    if hashing and not (masking.hash_key or os.environ.get("SHIPPER_HASH_KEY")):
        problems.append(
            f"masking.hash_key: null; expected a key (or $SHIPPER_HASH_KEY) for the hash "
            f"strategy of {', '.join(hashing)}"
        )
    return problems


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
        if origin is Literal:
            if value not in args:
                return self.problem(path, value, "expected one of " + " | ".join(map(str, args)))
            return value
        return self.decode_scalar(kind, value, path)

    def decode_scalar(self, kind: Any, value: Any, path: str) -> Any:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if isinstance(value, bool):
                return value
            return self.problem(path, value, "expected true or false")
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
            return kind(**decoded)
        except TypeError:
            return _MISSING  # a required field was reported above
