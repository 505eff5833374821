"""Named internal events: each call logs one event and updates its metrics.

Every happening the operator may care about has one function here, named after the
event it logs (``file_rotated`` logs ``file.rotated``), so the log and the metrics
can never disagree about what happened.
"""

from __future__ import annotations

import functools
import time

from prometheus_client import Counter, Gauge

from shipper import logs, metrics


# The counters counted after every read step and every delivery, by their labels:
# looked up once (prometheus_client's ``labels`` checks and locks on every call).
# They are never removed, so a child kept here is always the one exported.
@functools.cache
def _read_counters(category: str) -> tuple[Counter, Counter]:
    return metrics.LINES_READ.labels(category), metrics.BYTES_READ.labels(category)


@functools.cache
def _delivery_metrics(group: str, stream: str) -> tuple[Counter, Counter, Gauge]:
    return (
        metrics.RECORDS_SHIPPED.labels(group, stream),
        metrics.BYTES_SHIPPED.labels(group, stream),
        metrics.LAST_DELIVERY.labels(group, stream),
    )


def file_opened(category: str, path: str, offset: int, reason: str) -> None:
    logs.get().info("file.opened", category=category, path=path, offset=offset, reason=reason)


def file_rotated(category: str, path: str, renamed_to: str) -> None:
    logs.get().info("file.rotated", category=category, path=path, renamed_to=renamed_to)


def file_truncated(category: str, path: str, size: int, offset: int) -> None:
    logs.get().warning("file.truncated", category=category, path=path, size=size, offset=offset)


def file_closed(category: str, path: str, offset: int, reason: str) -> None:
    logs.get().info("file.closed", category=category, path=path, offset=offset, reason=reason)


def file_error(category: str, path: str, error: str) -> None:
    logs.get().warning("file.error", category=category, path=path, error=error)


def file_skipped(category: str, path: str, reason: str) -> None:
    logs.get().info("file.skipped", category=category, path=path, reason=reason)


def lines_read(category: str, lines: int, nbytes: int) -> None:
    lines_counter, bytes_counter = _read_counters(category)
    lines_counter.inc(lines)
    bytes_counter.inc(nbytes)


def records_dropped(category: str, reason: str, count: int) -> None:
    metrics.RECORDS_DROPPED.labels(category, reason).inc(count)


def line_split(category: str, path: str, offset: int, limit: int) -> None:
    logs.get().warning("line.split", category=category, path=path, offset=offset, limit_bytes=limit)


def line_unterminated(category: str, path: str, offset: int, size: int, withheld: int) -> None:
    logs.get().warning(
        "line.unterminated",
        category=category,
        path=path,
        offset=offset,
        bytes=size,
        withheld_chars=withheld,
    )


def metrics_emitted(category: str, events: int) -> None:
    logs.get().debug("metrics.emitted", category=category, events=events)


def time_unreadable(category: str, path: str, offset: int, text: str) -> None:
    metrics.PARSE_FALLBACKS.labels(category).inc()
    logs.get().debug(
        "record.time_unreadable", category=category, path=path, offset=offset, text=text
    )


def format_mismatch(
    category: str, lines: int, path: str, offset: int, example: str | None, since: int
) -> None:
    """``lines`` lines of a source did not match its format; logged (with the first one,
    which ends at ``offset``, and how many did not match ``since`` the last log) only
    when the caller gives an ``example``: at most once a minute a source."""
    metrics.FORMAT_MISMATCHES.labels(category).inc(lines)
    if example is not None:
        logs.get().warning(
            "format.mismatch",
            category=category,
            path=path,
            offset=offset,
            example=example,
            lines=since,
        )


def batch_delivered(
    group: str,
    stream: str,
    events: int,
    nbytes: int,
    seconds: float,
    already_accepted: bool = False,
) -> None:
    """A batch is stored (``already_accepted``: by an earlier try whose answer was lost)."""
    records, bytes_shipped, last_delivery = _delivery_metrics(group, stream)
    records.inc(events)
    bytes_shipped.inc(nbytes)
    last_delivery.set(time.time())
    logs.get().info(
        "batch.delivered",
        log_group=group,
        log_stream=stream,
        events=events,
        bytes=nbytes,
        seconds=round(seconds, 3),
        **({"already_accepted": True} if already_accepted else {}),
    )


def put_retry(group: str, stream: str, error: str, detail: str, attempt: int, delay: float) -> None:
    metrics.PUT_RETRIES.labels(error).inc()
    logs.get().warning(
        "put.retry",
        log_group=group,
        log_stream=stream,
        error=error,
        detail=detail,
        attempt=attempt,
        delay=round(delay, 3),
    )


def events_rejected(
    reason: str, count: int, group: str, stream: str, where: list[str], detail: str = ""
) -> None:
    """Events CloudWatch will not (or did not) store; ``where`` names file:offset of each."""
    metrics.RECORDS_REJECTED.labels(reason).inc(count)
    logs.get().warning(
        "events.rejected",
        reason=reason,
        count=count,
        log_group=group,
        log_stream=stream,
        where=where[:20],
        **({"detail": detail} if detail else {}),
    )


def credentials_refreshed(group: str, stream: str, error: str) -> None:
    """New credentials were found after ``error``; the client now signs with them."""
    logs.get().info("credentials.refreshed", log_group=group, log_stream=stream, error=error)


def credentials_refresh_failed(group: str, stream: str, error: str, problem: str) -> None:
    """After ``error``, asking for new credentials failed (``problem``): retried later."""
    logs.get().warning(
        "credentials.refresh_failed",
        log_group=group,
        log_stream=stream,
        error=error,
        problem=problem,
    )


def credentials_missing(problem: str) -> None:
    """The credential chain found nothing (yet): deliveries wait and ask again."""
    logs.get().warning("credentials.missing", problem=problem)


def region_resolved(region: str, found_in: str) -> None:
    logs.get().info("region.resolved", region=region, found_in=found_in)


def retention_set(group: str, days: int) -> None:
    logs.get().info("retention.set", log_group=group, retention_days=days)


def retention_retry(group: str, error: str, detail: str, attempt: int, delay: float) -> None:
    """PutRetentionPolicy failed on a group the shipper created: tried again after ``delay``."""
    logs.get().warning(
        "retention.retry",
        log_group=group,
        error=error,
        detail=detail,
        attempt=attempt,
        delay=round(delay, 3),
    )


def stream_created(group: str, stream: str, created_group: bool) -> None:
    logs.get().info(
        "stream.created", log_group=group, log_stream=stream, created_group=created_group
    )


def sequence_token_corrected(group: str, stream: str) -> None:
    logs.get().info("sequence_token.corrected", log_group=group, log_stream=stream)


def checkpoint_corrupt(path: str, reason: str, moved_to: str) -> None:
    logs.get().error("checkpoint.corrupt", path=path, reason=reason, moved_to=moved_to)


def checkpoint_recovered(path: str, source: str, copy: str) -> None:
    logs.get().warning("checkpoint.recovered", path=path, recovered_from=source, copy=copy)


def checkpoint_error(path: str, error: str) -> None:
    """A checkpoint save failed; the saved document is as it was, and the next interval
    tries again."""
    metrics.CHECKPOINT_SAVE_FAILURES.inc()
    logs.get().error("checkpoint.save_failed", path=path, error=error)


def shipper_started(sources: int, version: str) -> None:
    logs.get().info("shipper.started", sources=sources, version=version)


def shipper_stopping(signal: str) -> None:
    logs.get().info("shipper.stopping", signal=signal)


def task_crashed(task: str, error: str) -> None:
    logs.get().error("task.crashed", task=task, error=error)


def reader_stuck(source: str, seconds: float) -> None:
    """A reload asked a source's reader to stop and it was still running ``seconds``
    later: the source keeps its reader and its old settings until it stops."""
    logs.get().error("reader.stuck", source=source, seconds=seconds)


def shipper_stopped(clean: bool, undelivered: int) -> None:
    logs.get().info("shipper.stopped", clean=clean, undelivered_events=undelivered)


def health_listening(host: str, port: int) -> None:
    logs.get().info("health.listening", host=host, port=port, url=f"http://{host}:{port}/")


def config_reloaded(path: str, added: list[str], removed: list[str], changed: list[str]) -> None:
    """SIGHUP applied a new config; the lists name the sources by their live path."""
    logs.get().info("config.reloaded", path=path, added=added, removed=removed, changed=changed)


def config_reload_failed(path: str, problems: list[str]) -> None:
    """SIGHUP found a config that cannot be used; the running one stays."""
    logs.get().error("config.reload_failed", path=path, problems=problems)


def config_restart_required(path: str, keys: list[str]) -> None:
    """Keys changed that only a restart applies; their running values stay until then."""
    logs.get().warning("config.restart_required", path=path, keys=keys)


def category_found(category: str, path: str) -> None:
    logs.get().info("category.found", category=category, path=path)


def category_refused(glob: str, category: str, problem: str) -> None:
    logs.get().error("category.refused", glob=glob, category=category, problem=problem)


def category_gone(category: str, path: str) -> None:
    logs.get().info("category.gone", category=category, path=path)


def category_none_yet(glob: str) -> None:
    logs.get().warning("category.none_yet", glob=glob)
