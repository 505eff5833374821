"""The Prometheus metrics the shipper exports on /metrics.

They live in a registry of their own, so that only the shipper's figures are
exported and tests can read them without the process-wide default registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

LINES_READ = Counter(
    "shipper_lines_read", "Lines read from watched files.", ["category"], registry=REGISTRY
)
BYTES_READ = Counter(
    "shipper_bytes_read", "Bytes read from watched files.", ["category"], registry=REGISTRY
)
RECORDS_SHIPPED = Counter(
    "shipper_records_shipped",
    "Events CloudWatch accepted.",
    ["log_group", "log_stream"],
    registry=REGISTRY,
)
BYTES_SHIPPED = Counter(
    "shipper_bytes_shipped",
    "Message bytes CloudWatch accepted (UTF-8, without the per-event overhead).",
    ["log_group", "log_stream"],
    registry=REGISTRY,
)
RECORDS_REJECTED = Counter(
    "shipper_records_rejected",
    "Events not stored, by reason (too_old, too_new, expired, too_large, empty, invalid).",
    ["reason"],
    registry=REGISTRY,
)
RECORDS_DROPPED = Counter(
    "shipper_records_dropped",
    "Records the source's filters dropped, by reason (level, exclude, include, sample, repeat).",
    ["category", "reason"],
    registry=REGISTRY,
)
PUT_RETRIES = Counter(
    "shipper_put_retries", "PutLogEvents calls retried, by error.", ["error"], registry=REGISTRY
)
PARSE_FALLBACKS = Counter(
    "shipper_parse_fallbacks",
    "Records whose time could not be read and took another time instead.",
    ["category"],
    registry=REGISTRY,
)
FORMAT_MISMATCHES = Counter(
    "shipper_format_mismatches",
    "Lines the source's format did not match, each shipped as an event of its own.",
    ["category"],
    registry=REGISTRY,
)
LAG_BYTES = Gauge(
    "shipper_checkpoint_lag_bytes",
    "Bytes of a file written but not yet delivered and saved in the checkpoint.",
    ["category", "path"],
    registry=REGISTRY,
)
LAST_DELIVERY = Gauge(
    "shipper_last_delivery_timestamp_seconds",
    "Unix time of the last successful delivery.",
    ["log_group", "log_stream"],
    registry=REGISTRY,
)
FILES_WATCHED = Gauge(
    "shipper_files_watched", "Files being followed.", ["category"], registry=REGISTRY
)
CHECKPOINT_SAVE_FAILURES = Counter(
    "shipper_checkpoint_save_failures",
    "Checkpoint saves that failed (full disk, read-only folder); each is tried again.",
    registry=REGISTRY,
)
