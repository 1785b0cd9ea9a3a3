"""The durable prediction log: every prediction served, written by one background thread.

The service hands over one `PredictionBatch` per adaptive batch. `submit` only
appends it to a bounded in-memory queue, so serving never waits for, and never
fails because of, the database. A writer thread takes everything queued and
writes it in one transaction (group commit), then marks the batches' sequence
numbers durable. A response that must not go out before its predictions are on
record waits for its sequence number, with a timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from refit.core.errors import ConfigError, PredictionLogUnavailable
from refit.core.quiet_log import QuietLog
from refit.monitoring import prometheus_metrics as metrics
from refit.monitoring.log_check import check_sqlite_file, damaged_message, sqlite_path
from refit.monitoring.log_queue import LogQueue
from refit.monitoring.log_records import PredictionBatch, sampled
from refit.monitoring.log_schema import COLUMNS
from refit.monitoring.log_store import LogStore, epoch, frame
from refit.monitoring.log_writer import Item, LogWriter, brief, is_outage, kind
from refit.monitoring.redaction import TEXT_MODES
from refit.monitoring.settings import MonitoringContext

__all__ = ["PredictionBatch", "PredictionLog", "sampled"]

_logger = logging.getLogger(__name__)

_MAX_GROUP_ROWS: Final = 5000  # rows in one write transaction
_EAGER_ROWS: Final = 1000  # this many queued rows are written without waiting
_DAY_S: Final = 86400.0


@contextlib.contextmanager
def borrowed_log(
    settings: MonitoringContext, log: PredictionLog | None = None
) -> Iterator[PredictionLog]:
    """`log` when the caller has one (left open), else one on the settings' URL, closed after."""
    if log is not None:
        yield log
        return
    opened = PredictionLog(settings.monitoring.resolved_log_url(settings.core))
    try:
        yield opened
    finally:
        opened.close()


class PredictionLog:
    """Bounded, asynchronous, durable log of predictions, with feedback attached later."""

    def __init__(
        self,
        url: str,
        *,
        text_mode: str = "raw",
        sample_rate: float = 1.0,
        retention_days: float = 30.0,
        queue_size: int = 20000,
        flush_interval_ms: int = 20,
    ) -> None:
        if text_mode not in TEXT_MODES:
            raise ConfigError(f"log text mode {text_mode!r} is not one of {', '.join(TEXT_MODES)}")
        if not 0.0 <= sample_rate <= 1.0 or retention_days <= 0 or queue_size < 1:
            raise ConfigError("log sample rate must be in [0, 1], retention and queue size > 0")
        self._store = LogStore(url)
        self._sqlite_file = sqlite_path(url)
        self._sample_rate = sample_rate
        self._queue: LogQueue[Item] = LogQueue(
            queue_size, _MAX_GROUP_ROWS, flush_interval_ms / 1000.0, _EAGER_ROWS
        )
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._warn = QuietLog(_logger)
        self._writer = LogWriter(
            self._queue,
            self._store,
            text_mode=text_mode,
            retention_s=retention_days * _DAY_S,
            warn=self._warn,
        )

    @classmethod
    def from_settings(cls, settings: MonitoringContext) -> PredictionLog:
        return cls(
            settings.monitoring.resolved_log_url(settings.core),
            text_mode=settings.monitoring.log_text,
            sample_rate=settings.monitoring.log_sample_rate,
            retention_days=settings.monitoring.log_retention_days,
            queue_size=settings.monitoring.log_queue_size,
            flush_interval_ms=settings.monitoring.log_flush_interval_ms,
        )

    # --- the service-facing side: once started, never waits for the database, never raises

    def start(self) -> None:
        """Check the log, create the table if needed and start the writer, which purges
        expired rows first.

        PredictionLogUnavailable when the log cannot work at all: a damaged SQLite file
        (`log_check`), or a database that refuses the table for another reason than an
        outage (permissions). A database that is down, full or locked is reported, not
        raised: writes retry, and `health()` says the log is failing meanwhile.
        """
        with self._start_lock:
            if self._thread is not None or self._queue.closed:
                return
        self._open()
        with self._start_lock:
            if self._thread is not None or self._queue.closed:
                return
            metrics.LOG_FAILING.set(0)
            self._thread = threading.Thread(
                target=self._writer.run, name="prediction-log-writer", daemon=True
            )
            self._thread.start()

    def _open(self) -> None:
        """Raise if the log cannot work at all; an outage is only reported."""
        if self._sqlite_file is not None:
            check_sqlite_file(self._sqlite_file, "open")
        try:
            self._writer.ensure_schema()
        except Exception as exc:
            if not is_outage(exc):
                message = f"prediction log {self._store.url} cannot be opened: {brief(exc)}"
                if self._sqlite_file is not None:  # SQLite refuses its own file: damage
                    message = damaged_message(self._sqlite_file, brief(exc))
                raise PredictionLogUnavailable(message) from exc
            self._warn("prediction log %s unavailable at start: %s", self._store.url, exc)

    def submit(self, batch: PredictionBatch) -> int:
        """Queue a batch; its sequence number, or 0 when sampling keeps none of it.

        A batch that does not fit in the queue is dropped at once and counted; its
        sequence number never becomes durable.
        """
        try:
            keep = None
            if self._sample_rate < 1.0:
                keep = [i for i, p in enumerate(batch.ids) if sampled(str(p), self._sample_rate)]
            rows = len(batch.ids) if keep is None else len(keep)
            if rows == 0:
                return 0
            seq, queued = self._queue.put((batch, keep), rows)
            if not queued:
                reason = "write_failed" if self._queue.closed else "queue_full"
                metrics.LOG_DROPPED.labels(reason=reason).inc(rows)
            return seq
        except Exception as exc:  # a malformed batch must not fail the request
            self._warn("prediction log: batch refused: %r", exc)
            return self._queue.new_failed_seq()

    @property
    def submitted_seq(self) -> int:
        """Highest sequence number handed out so far (0 before the first)."""
        return self._queue.last_seq

    def is_durable(self, seq: int) -> bool:
        """True once the batch of `seq` is committed; always for 0 (nothing to write)."""
        return self._queue.is_durable(seq)

    def wait_durable(self, seq: int, timeout: float) -> bool:
        """Block up to `timeout` s until `seq` is committed; False if dropped or still pending."""
        return self._queue.wait(seq, timeout)

    def health(self) -> dict[str, Any]:
        """`{"state": "ok"}` while writes work. While they fail (the database is down,
        full or locked, and the writer holds the records to retry them): "failing", for
        how long, the error's class (never its message, which may name a host) and the
        records waiting."""
        failing = self._writer.failing()
        if failing is None:
            return {"state": "ok"}
        seconds, error = failing
        return {
            "state": "failing",
            "failing_for_s": round(seconds, 1),
            "error": kind(error),
            "waiting_records": self._queue.depth,
        }

    @property
    def closed(self) -> bool:
        """No record submitted from now on will be written (the worker is stopping)."""
        return self._queue.closed

    async def wait_durable_async(self, seq: int, timeout: float) -> bool:
        """`wait_durable` for asyncio code: the event loop runs on while this waits."""
        return await self._queue.wait_async(seq, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer and release connections. Idempotent."""
        with self._start_lock:
            if self._queue.closed:
                return
            self._queue.close()
            thread = self._thread
        if thread is None:
            self._writer.run(purge=False)  # never started: write the queue from here
        else:
            thread.join(timeout)
            if thread.is_alive():
                _logger.warning("prediction log: writer still busy after %.1f s", timeout)
        self._store.dispose()

    # --- reading and feedback: synchronous; PredictionLogUnavailable on DB errors ----

    def attach_feedback(
        self,
        items: Sequence[tuple[str, str]],
        known_labels: Collection[str] | None,
        max_new_labels: int | None = None,
    ) -> list[str]:
        """Attach true labels by prediction id, in one transaction, each change kept in
        the audit table. One outcome per item, in order: stored, updated, unchanged,
        new_label (stored, but not a label of `known_labels`), refused (a new label
        past `max_new_labels` distinct new labels in the log) or unknown_id."""
        pairs = [(str(pid), str(label)) for pid, label in items]
        if not pairs:
            return []
        with self._database("feedback not recorded"):
            outcomes = self._store.attach_feedback(pairs, known_labels, max_new_labels)
        for outcome, n in Counter(outcomes).items():
            metrics.FEEDBACK.labels(outcome=outcome).inc(n)
        return outcomes

    def feedback_history(self, prediction_id: str) -> list[tuple[str | None, str]]:
        """(old label, new label) of every change feedback made to one prediction."""
        with self._database("prediction log not readable"):
            return self._store.feedback_history(prediction_id)

    def read(
        self,
        start: float | datetime,
        end: float | datetime,
        *,
        model_version: str | None = None,
        columns: Sequence[str] | None = None,
        labelled_only: bool = False,
        newest: int | None = None,
    ) -> pd.DataFrame:
        """Rows with start <= ts < end (unix seconds or datetimes; naive ones are UTC),
        ordered by ts; `scores` as dicts. `labelled_only`: rows with feedback only.
        `newest`: only that many rows, the newest, newest first."""
        names = list(COLUMNS if columns is None else columns)
        unknown = sorted(set(names) - set(COLUMNS))
        if unknown:
            raise ValueError(f"unknown prediction log columns {unknown}; known: {COLUMNS}")
        with self._database("prediction log not readable"):
            chunks = self._store.read_chunks(
                epoch(start), epoch(end), model_version, names, labelled_only, newest
            )
            return frame(chunks, names)

    def count(
        self,
        start: float | datetime | None = None,
        end: float | datetime | None = None,
        *,
        model_version: str | None = None,
    ) -> int:
        """Rows with start <= ts < end; a bound left out is open."""
        lo = None if start is None else epoch(start)
        hi = None if end is None else epoch(end)
        with self._database("prediction log not readable"):
            return self._store.count(lo, hi, model_version)

    def purge(self, older_than: float | datetime) -> int:
        """Delete rows with ts < older_than; how many went."""
        with self._database("prediction log purge failed"):
            return self._store.purge(epoch(older_than))

    @contextlib.contextmanager
    def _database(self, failure: str) -> Iterator[None]:
        """Database errors as PredictionLogUnavailable, whose message names no host
        or SQL (it may reach an HTTP client); the cause stays chained for the logs."""
        try:
            self._writer.ensure_schema()
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise PredictionLogUnavailable(f"{failure}: {type(exc).__name__}") from exc
