"""The prediction log through a database outage: records are kept and written once the
database is back; the queue bound, the confirm timeout and shutdown stay bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from log_helpers import dropped, make_batch, metric, submit_all

from refit.monitoring.log_writer import GIVE_UP_AFTER_CLOSE_S, is_outage
from refit.monitoring.prediction_log import PredictionLog
from refit.testing.postgres import (
    RunningPostgres,
    pause_postgres,
    postgres_bin_dir,
    resume_postgres,
    start_postgres,
)
from refit.testing.processes import free_port


@pytest.fixture(scope="module")
def restartable_postgres() -> Iterator[tuple[RunningPostgres, Path]]:
    """A PostgreSQL of this module's own: the tests stop and start it."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian package `postgresql`)")
    server = start_postgres(bin_dir, database="outage")
    try:
        yield server, bin_dir
    finally:
        server.stop()


class Flaky:
    """Stands in for the store's insert: refuses with a connection error while `down`."""

    def __init__(self, insert: Callable[[Any], None]) -> None:
        self._insert = insert
        self.down = threading.Event()
        self.attempts: list[float] = []

    def __call__(self, rows: Any) -> None:
        self.attempts.append(time.monotonic())
        if self.down.is_set():
            raise sa.exc.OperationalError(
                "INSERT INTO predictions ...",
                [{"text": row[3]} for row in rows],  # as SQLAlchemy shows parameters
                ConnectionError("server closed the connection unexpectedly"),
            )
        self._insert(rows)


def _flaky(log: PredictionLog, monkeypatch: pytest.MonkeyPatch) -> Flaky:
    flaky = Flaky(log._store.insert)
    monkeypatch.setattr(log._store, "insert", flaky)
    return flaky


def test_connection_errors_are_outages_data_errors_are_not() -> None:
    lost = sa.exc.OperationalError("INSERT", {}, ConnectionError("connection refused"))
    refused = sa.exc.IntegrityError("INSERT", {}, ValueError("bad row"))
    assert is_outage(lost)
    assert is_outage(sa.exc.TimeoutError("pool exhausted"))
    assert not is_outage(refused)
    assert not is_outage(TypeError("a bug of refit's own"))


def test_records_wait_out_a_postgresql_restart(
    restartable_postgres: tuple[RunningPostgres, Path], open_log: Callable[..., PredictionLog]
) -> None:
    server, bin_dir = restartable_postgres
    log = open_log(server.url)
    failed_before, full_before = dropped("write_failed"), dropped("queue_full")
    before = [log.submit(make_batch(5)) for _ in range(10)]
    assert all(log.wait_durable(seq, 10) for seq in before)

    pause_postgres(server)
    during = []
    stopped = time.monotonic()
    while time.monotonic() - stopped < 3.0:  # a steady trickle while the database is down
        during.append(log.submit(make_batch(5)))
        time.sleep(0.05)
    # A response waits its confirm timeout and goes out unconfirmed...
    assert not log.wait_durable(during[-1], 0.3)
    resume_postgres(server, bin_dir)
    after = [log.submit(make_batch(5)) for _ in range(10)]

    # ...and its records are written once the database is back.
    assert all(log.wait_durable(seq, 20) for seq in during + after)
    assert log.count() == 5 * (len(before) + len(during) + len(after))
    assert dropped("write_failed") == failed_before
    assert dropped("queue_full") == full_before


def test_the_queue_bound_holds_while_the_database_is_down(
    sqlite_url: str, open_log: Callable[..., PredictionLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(sqlite_url, queue_size=100)
    flaky = _flaky(log, monkeypatch)
    flaky.down.set()
    failed_before, full_before = dropped("write_failed"), dropped("queue_full")
    first = log.submit(make_batch(10))
    deadline = time.monotonic() + 5
    while len(flaky.attempts) < 2:  # the writer holds the first group, retrying
        assert time.monotonic() < deadline, "the writer never tried"
        time.sleep(0.01)
    started = time.perf_counter()
    seqs = [log.submit(make_batch(10)) for _ in range(29)]
    assert time.perf_counter() - started < 0.5, "submit must never wait for the database"
    assert dropped("queue_full") - full_before == 190  # 100 rows queued, 100 refused at once
    assert metric("refit_prediction_log_queue_depth") == 100
    assert not log.wait_durable(first, 0.5)

    flaky.down.clear()
    kept, refused = seqs[:10], seqs[10:]
    assert all(log.wait_durable(seq, 20) for seq in [first, *kept])
    assert not any(log.is_durable(seq) for seq in refused)
    assert log.count() == 110
    assert dropped("write_failed") == failed_before


def test_the_outage_warning_names_the_cause_but_no_prediction_text(
    sqlite_url: str,
    open_log: Callable[..., PredictionLog],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = open_log(sqlite_url)
    flaky = _flaky(log, monkeypatch)
    flaky.down.set()
    seq = log.submit(make_batch(2, texts=["my card 4111 1111 1111 1111", "call me"]))
    with caplog.at_level("WARNING", logger="monitoring"):
        assert not log.wait_durable(seq, 0.5)
        flaky.down.clear()
        assert log.wait_durable(seq, 10)
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "database unavailable (ConnectionError: server closed the connection" in warnings
    assert "holding 2 records" in warnings
    assert "database back after" in warnings
    assert "4111" not in warnings
    assert "call me" not in warnings


def test_retries_back_off_instead_of_hammering_the_database(
    sqlite_url: str, open_log: Callable[..., PredictionLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(sqlite_url)
    flaky = _flaky(log, monkeypatch)
    flaky.down.set()
    seq = log.submit(make_batch(3))
    time.sleep(3.5)
    # Pauses of 0.1, 0.2, 0.4, 0.8, 1.6 s: about six attempts in 3.5 s, not thousands.
    assert 3 <= len(flaky.attempts) <= 8, len(flaky.attempts)
    gaps = [b - a for a, b in zip(flaky.attempts, flaky.attempts[1:], strict=False)]
    assert gaps == sorted(gaps), gaps
    flaky.down.clear()
    assert log.wait_durable(seq, 10)


def test_other_errors_still_fail_the_group_at_once(
    sqlite_url: str, open_log: Callable[..., PredictionLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(sqlite_url)

    def broken(rows: Any) -> None:
        raise TypeError("a bug, not an outage")

    monkeypatch.setattr(log._store, "insert", broken)
    failed_before = dropped("write_failed")
    started = time.monotonic()
    assert not log.wait_durable(log.submit(make_batch(4)), 10)
    assert time.monotonic() - started < 2
    assert dropped("write_failed") - failed_before == 4


@pytest.mark.parametrize("started", [True, False], ids=["writer-thread", "never-started"])
def test_close_on_a_dead_database_gives_up_in_bounded_time(started: bool) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/refit"
    log = PredictionLog(url)
    if started:
        log.start()
    failed_before = dropped("write_failed")
    seqs = [log.submit(make_batch(5)) for _ in range(20)]
    began = time.monotonic()
    log.close(timeout=GIVE_UP_AFTER_CLOSE_S + 5)
    took = time.monotonic() - began
    assert took < GIVE_UP_AFTER_CLOSE_S + 3, f"close took {took:.1f} s"
    assert not any(log.is_durable(seq) for seq in seqs)
    deadline = time.monotonic() + 5
    while dropped("write_failed") - failed_before < 100:  # every record given up, counted
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_close_still_writes_when_the_database_comes_back_in_time(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(sqlite_url)
    log.start()
    flaky = _flaky(log, monkeypatch)
    flaky.down.set()
    seq = log.submit(make_batch(5))
    threading.Timer(1.0, flaky.down.clear).start()
    log.close()
    assert log.is_durable(seq)


def _gauge() -> float:
    return metric("refit_prediction_log_failing")


def test_the_log_says_it_is_failing_while_the_database_is_down(
    sqlite_url: str, open_log: Callable[..., PredictionLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(sqlite_url)
    assert log.health() == {"state": "ok"}
    assert _gauge() == 0
    flaky = _flaky(log, monkeypatch)
    flaky.down.set()
    seq = log.submit(make_batch(3))
    assert not log.wait_durable(seq, 0.5)
    health = log.health()
    assert health["state"] == "failing"
    assert health["error"] == "ConnectionError"  # the class only: a message may name a host
    assert health["failing_for_s"] >= 0
    assert _gauge() == 1
    flaky.down.clear()
    assert log.wait_durable(seq, 10)
    assert log.health() == {"state": "ok"}
    assert _gauge() == 0


def test_a_full_database_is_an_outage_not_a_loss(
    sqlite_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    """SQLite's own "database or disk is full" (a page cap stands in for the disk): the
    records wait, the log says it fails, and they are written once there is room."""
    log = open_log(sqlite_url)
    submit_all(log, [make_batch(20)])
    engine = log._store.engine
    pages = {"cap": 0}

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not pages["cap"]:
            pages["cap"] = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages['cap']}")
        cursor.close()

    sa.event.listen(engine, "connect", cap)
    engine.dispose()  # new connections, capped at the pages the file has now
    failed_before = dropped("write_failed")
    seq = log.submit(make_batch(2000))
    assert not log.wait_durable(seq, 1.0)
    assert log.health()["state"] == "failing"
    assert log.health()["error"] == "OperationalError"
    sa.event.remove(engine, "connect", cap)
    engine.dispose()
    assert log.wait_durable(seq, 20)
    assert log.health() == {"state": "ok"}
    assert dropped("write_failed") == failed_before
