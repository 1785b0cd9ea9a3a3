"""The prediction log's writer thread: group commit, retries, and one bad batch isolated.

It takes everything queued (up to a group size), turns the batches into rows and
writes them in one transaction, retrying briefly. When the database refuses the
data itself, the group is written again batch by batch so that one bad record
costs only its own batch. Every group is settled, written or failed, so that a
response waiting for its records never waits for good.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from monitoring import prometheus_metrics as metrics
from monitoring.log_engine import is_data_error
from monitoring.log_queue import LogQueue, Queued, QuietWarning
from monitoring.log_records import PredictionBatch, batch_rows
from monitoring.log_schema import Record
from monitoring.log_store import LogStore

_logger = logging.getLogger(__name__)

_RETRY_PAUSES: Final = (0.05, 0.25)  # seconds before the 2nd and the 3rd write attempt
_PURGE_EVERY_S: Final = 3600.0

# What the queue holds per batch: the batch and the indices sampling kept (None = all).
Item = tuple[PredictionBatch, list[int] | None]


class LogWriter:
    def __init__(
        self,
        queue: LogQueue[Item],
        store: LogStore,
        *,
        text_mode: str,
        retention_s: float,
        warn: QuietWarning,
    ) -> None:
        self._queue = queue
        self._store = store
        self._text_mode = text_mode
        self._retention_s = retention_s
        self._warn = warn
        self._schema_ready = False

    def run(self, purge: bool = True) -> None:
        """Write queued groups until the queue closes; purge expired rows hourly."""
        next_purge = time.monotonic() if purge else float("inf")
        while True:
            try:
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + _PURGE_EVERY_S
                    self._purge_expired()
                group = self._queue.take(next_purge)
                if group is None:
                    return
                if group:
                    self._write(group)
            except Exception as exc:  # the writer must outlive any one failure
                self._warn("prediction log writer: %r", exc, exc_info=True)
                time.sleep(0.1)

    def _write(self, group: list[Queued[Item]]) -> None:
        failed = group  # until shown otherwise
        try:
            parts: list[tuple[Queued[Item], list[Record]]] = []
            unusable = []
            for item in group:
                try:
                    parts.append((item, batch_rows(*item.payload, self._text_mode)))
                except Exception as exc:  # one malformed batch must not sink its group
                    self._warn("prediction log: cannot record a batch: %r", exc)
                    unusable.append(item)
            failed = unusable + self._store_parts(parts)
        finally:
            # Settle even after an unexpected error: an unsettled group would keep
            # every later sequence number pending for good.
            self._queue.settle([item.seq for item in failed])
        dropped = sum(item.rows for item in failed)
        if dropped:
            metrics.LOG_DROPPED.labels(reason="write_failed").inc(dropped)
        if dropped < sum(item.rows for item in group):
            metrics.LOG_WRITTEN.inc(sum(item.rows for item in group) - dropped)

    def _store_parts(self, parts: list[tuple[Queued[Item], list[Record]]]) -> list[Queued[Item]]:
        """Write every part in one transaction; the parts that could not be written."""
        rows = [row for _, part in parts for row in part]
        error = self._insert(rows) if rows else None
        if error is None:
            return []
        failed = [item for item, _ in parts]
        if len(parts) > 1 and is_data_error(error):
            # The database works but refused some record: write batch by batch, so
            # that one bad record costs only its own batch.
            failed = []
            for item, part in parts:
                try:
                    self._store.insert(part)
                except Exception:
                    failed.append(item)
        lost = sum(item.rows for item in failed)
        if lost:
            self._warn("prediction log: %d records dropped, %s: %s", lost, self._store.url, error)
        return failed

    def _insert(self, rows: list[Record]) -> Exception | None:
        """Write `rows` in one transaction, retrying briefly; the last error, if all failed."""
        error: Exception | None = None
        for pause in (0.0, *_RETRY_PAUSES):
            time.sleep(pause)
            try:
                self.ensure_schema()
                started = time.perf_counter()
                self._store.insert(rows)
                metrics.LOG_WRITE_SECONDS.observe(time.perf_counter() - started)
                return None
            except Exception as exc:
                error = exc
                if is_data_error(exc):
                    break  # the same rows would be refused again
        return error

    def _purge_expired(self) -> None:
        try:
            self.ensure_schema()
            gone = self._store.purge(time.time() - self._retention_s)
            if gone:
                _logger.info("prediction log: %d records past retention deleted", gone)
        except Exception as exc:
            self._warn("prediction log: purge failed: %s", exc)

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            self._store.ensure_schema()
            self._schema_ready = True
