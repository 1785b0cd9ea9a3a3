"""The prediction log's writer thread: group commit, outages waited out, one bad batch isolated.

It takes everything queued (up to a group size), turns the batches into rows and
writes them in one transaction. What happens when that fails depends on why:

- the database is unreachable, restarting, locked or full (an outage): the writer keeps
  the group and tries again with a growing pause (0.1 s doubling to 5 s) until the
  database is back. New records queue meanwhile, up to the queue's bound (past it they
  are dropped and counted); a response waits for its records only its confirm timeout.
  After `close()` it tries for `GIVE_UP_AFTER_CLOSE_S` more, then drops what is left,
  so a shutdown never hangs on a dead database;
- the database refuses the data itself: the group is written again batch by batch, so
  that one bad record costs only its own batch;
- anything else: two quick retries, then the group is dropped and counted.

Every group is settled, written or failed, so that a response waiting for its records
never waits for good.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import sqlalchemy as sa

from refit.core.quiet_log import QuietLog
from refit.monitoring import prometheus_metrics as metrics
from refit.monitoring.log_engine import is_data_error
from refit.monitoring.log_queue import LogQueue, Queued
from refit.monitoring.log_records import PredictionBatch, batch_rows
from refit.monitoring.log_schema import Record
from refit.monitoring.log_store import LogStore

_logger = logging.getLogger(__name__)

_RETRY_PAUSES: Final = (0.05, 0.25)  # other errors: seconds before the 2nd and 3rd attempt
_OUTAGE_FIRST_PAUSE_S: Final = 0.1  # an outage: first pause, doubled after each attempt
_OUTAGE_MAX_PAUSE_S: Final = 5.0
GIVE_UP_AFTER_CLOSE_S: Final = 5.0  # how long a closed log still waits for its database
_PURGE_EVERY_S: Final = 3600.0

# What the queue holds per batch: the batch and the indices sampling kept (None = all).
Item = tuple[PredictionBatch, list[int] | None]


def brief(error: Exception) -> str:
    """The error in one line, without the statement and its parameters: those hold
    prediction texts, which must not reach the server's log."""
    cause = error.orig if isinstance(error, sa.exc.StatementError) else None
    shown = cause if isinstance(cause, BaseException) else error
    lines = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {lines[0] if lines else ''}"


def kind(error: Exception) -> str:
    """The error's class, the driver's own when SQLAlchemy wraps one: what may be shown
    outside the server (a message may name a host)."""
    cause = error.orig if isinstance(error, sa.exc.StatementError) else None
    return type(cause if isinstance(cause, BaseException) else error).__name__


def is_outage(error: Exception) -> bool:
    """Whether the database could not be reached or could not take the write for now
    (down, restarting, connection lost, locked, full), so that the same rows will be
    written once it is back; data errors and refit's own bugs are not outages."""
    if isinstance(error, sa.exc.DBAPIError):
        return not is_data_error(error)
    return isinstance(error, sa.exc.DisconnectionError | sa.exc.TimeoutError)


class LogWriter:
    def __init__(
        self,
        queue: LogQueue[Item],
        store: LogStore,
        *,
        text_mode: str,
        retention_s: float,
        warn: QuietLog,
    ) -> None:
        self._queue = queue
        self._store = store
        self._text_mode = text_mode
        self._retention_s = retention_s
        self._warn = warn
        self._schema_ready = False
        self._outage_since: float | None = None  # time.monotonic() of the first failure
        self._outage_pause = _OUTAGE_FIRST_PAUSE_S
        self._outage_error: Exception | None = None

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
            failed = [item for item, part in parts if self._insert(part) is not None]
        lost = sum(item.rows for item in failed)
        if lost:
            self._warn(
                "prediction log: %d records dropped, %s: %s", lost, self._store.url, brief(error)
            )
        return failed

    def _insert(self, rows: list[Record]) -> Exception | None:
        """Write `rows` in one transaction: through an outage, until the database is
        back (or the closed log gives up); other errors twice more. The last error, if
        the rows were not written."""
        if self._outage_since is not None and self._given_up():
            return self._outage_error  # closed, and the database still gone: no more tries
        quick_retries = iter(_RETRY_PAUSES)
        while True:
            try:
                self.ensure_schema()
                started = time.perf_counter()
                self._store.insert(rows)
                metrics.LOG_WRITE_SECONDS.observe(time.perf_counter() - started)
                self._outage_over()
                return None
            except Exception as exc:
                if is_data_error(exc):
                    return exc  # the same rows would be refused again
                if is_outage(exc):
                    if not self._wait_out(exc, len(rows)):
                        return exc
                    continue
                pause = next(quick_retries, None)
                if pause is None:
                    return exc
                time.sleep(pause)

    def _wait_out(self, error: Exception, holding: int) -> bool:
        """Pause before the next attempt through an outage; False once a closed log
        gives up (GIVE_UP_AFTER_CLOSE_S after close())."""
        self._outage_error = error
        self._schema_ready = False  # the database that comes back may be a new one
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._outage_pause = _OUTAGE_FIRST_PAUSE_S
            metrics.LOG_FAILING.set(1)
        self._warn(
            "prediction log: database unavailable (%s); holding %d records, retrying",
            brief(error),
            holding + self._queue.depth,
        )
        if self._given_up():
            return False
        remaining = GIVE_UP_AFTER_CLOSE_S - self._queue.closed_for()
        pause = min(self._outage_pause, remaining) if self._queue.closed else self._outage_pause
        self._queue.pause(pause)
        self._outage_pause = min(2 * self._outage_pause, _OUTAGE_MAX_PAUSE_S)
        return True

    def failing(self) -> tuple[float, Exception] | None:
        """While an outage holds writes: (seconds since its first failed attempt, the
        latest error); None while writes work."""
        since, error = self._outage_since, self._outage_error
        if since is None or error is None:
            return None
        return time.monotonic() - since, error

    def _given_up(self) -> bool:
        return self._queue.closed and self._queue.closed_for() >= GIVE_UP_AFTER_CLOSE_S

    def _outage_over(self) -> None:
        if self._outage_since is not None:
            _logger.warning(
                "prediction log: database back after %.1f s; writing the queued records",
                time.monotonic() - self._outage_since,
            )
            self._outage_since, self._outage_error = None, None
            metrics.LOG_FAILING.set(0)

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
