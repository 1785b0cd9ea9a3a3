"""Writing the prediction log on SQLite and PostgreSQL: every batch, durability, bounds."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from log_helpers import LABELS, dropped, make_batch, metric, submit_all
from paths import ROOT

from refit.core.errors import PredictionLogUnavailable
from refit.monitoring.prediction_log import PredictionBatch, PredictionLog
from refit.testing.processes import free_port


def test_concurrent_batches_are_all_written_and_read_back(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(log_url)
    batches = [make_batch(16, seed=i) for i in range(120)]
    written_before = metric("refit_prediction_log_written_total")
    seqs: list[int] = []

    def submitter(part: list[PredictionBatch]) -> None:
        seqs.extend(log.submit(batch) for batch in part)

    threads = [threading.Thread(target=submitter, args=(batches[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 121))
    assert log.submitted_seq == 120
    assert all(log.wait_durable(seq, 10) for seq in seqs)
    assert log.count() == 16 * 120
    assert metric("refit_prediction_log_written_total") - written_before == 16 * 120

    df = log.read(0, time.time() + 1)
    assert list(df["ts"]) == sorted(df["ts"])
    assert df["truncated"].dtype == bool
    assert df["n_tokens"].dtype == np.int64
    rows = df.set_index("id")
    for batch in batches:
        for i, pid in enumerate(batch.ids):
            row = rows.loc[pid]
            assert row["ts"] == batch.created
            assert row["model_version"] == "v1"
            assert row["text"] == batch.texts[i]
            assert row["text_hash"] == hashlib.sha256(batch.texts[i].encode()).hexdigest()
            assert row["label"] == batch.labels[i]
            assert row["score"] == batch.scores[i].max()
            assert row["scores"] == dict(zip(LABELS, batch.scores[i].tolist(), strict=True))
            assert row["latency_ms"] == batch.latency_ms[i]
            assert row["n_tokens"] == batch.n_tokens[i]
            assert row["truncated"] == batch.truncated[i]
            assert row["true_label"] is None
            assert np.isnan(row["feedback_ts"])


CHILD = """
import sys, time, uuid
import numpy as np
from refit.monitoring.prediction_log import PredictionBatch, PredictionLog

log = PredictionLog(sys.argv[1])
log.start()
while True:
    ids = [uuid.uuid4().hex for _ in range(4)]
    batch = PredictionBatch(
        ids=ids, texts=["killed mid-stream"] * 4, labels=["a"] * 4,
        scores=np.full((4, 2), 0.5), label_names=["a", "b"], model_version="v1",
        created=time.time(), latency_ms=np.ones(4), n_tokens=np.ones(4, dtype=int),
        truncated=np.zeros(4, dtype=bool),
    )
    if log.wait_durable(log.submit(batch), 10):
        sys.stdout.write("".join(pid + "\\n" for pid in ids))
        sys.stdout.flush()
"""


def test_confirmed_predictions_survive_kill_9(log_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, log_url],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
    )
    assert child.stdout is not None
    confirmed: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while len(confirmed) < 300 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            confirmed.append(line.decode().strip())
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        rest = child.stdout.read().decode()
        child.wait(timeout=10)
    # Whatever the child printed before it died was confirmed too.
    confirmed += [line for line in rest.splitlines() if len(line) == 32]
    assert len(confirmed) >= 300, "the child confirmed too few predictions before the deadline"
    assert child.returncode == -signal.SIGKILL

    fresh = PredictionLog(log_url)
    try:
        stored = set(fresh.read(0, time.time() + 1, columns=["id"])["id"])
    finally:
        fresh.close()
    missing = set(confirmed) - stored
    assert not missing, f"{len(missing)} confirmed predictions lost"


def test_full_queue_drops_instead_of_blocking(
    sqlite_url: str, open_log: Callable[..., PredictionLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(sqlite_url, queue_size=100)
    entered, release = threading.Event(), threading.Event()
    insert = log._store.insert

    def stuck_insert(rows: Any) -> None:
        entered.set()
        release.wait(10)
        insert(rows)

    monkeypatch.setattr(log._store, "insert", stuck_insert)
    first = log.submit(make_batch(10))
    assert entered.wait(5), "the writer never started writing"
    assert not log.wait_durable(first, 0.1), "durable before its transaction committed"
    full_before = dropped("queue_full")

    started = time.perf_counter()
    seqs = [log.submit(make_batch(10)) for _ in range(15)]
    assert time.perf_counter() - started < 0.5
    queued, refused = seqs[:10], seqs[10:]
    assert dropped("queue_full") - full_before == 50
    assert metric("refit_prediction_log_queue_depth") == 100
    assert not log.wait_durable(queued[0], 0.2)
    started = time.perf_counter()
    assert not log.wait_durable(refused[0], 5)
    assert time.perf_counter() - started < 0.1, "a dropped batch must not be waited for"
    assert not asyncio.run(log.wait_durable_async(queued[-1], 0.1))

    release.set()
    assert log.wait_durable(queued[-1], 10)
    assert log.is_durable(first)
    assert not any(log.is_durable(seq) for seq in refused)
    assert log.count() == 110


def test_unreachable_database_never_raises_on_the_serving_path(
    open_log: Callable[..., PredictionLog],
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/refit"
    log = open_log(url, queue_size=100)  # start() reports the failure, does not raise
    full_before, failed_before = dropped("queue_full"), dropped("write_failed")
    written_before = metric("refit_prediction_log_written_total")

    started = time.perf_counter()
    seqs = [log.submit(make_batch(10)) for _ in range(30)]
    assert time.perf_counter() - started < 0.5
    assert not log.wait_durable(seqs[0], 5)
    assert not asyncio.run(log.wait_durable_async(seqs[-1], 0.1))
    # The writer keeps the group it holds and retries until the database is back
    # (test_log_outage.py); the queue keeps its bound, and what does not fit is
    # dropped at once: at most the queue (100 rows) and one group are kept.
    assert 100 <= dropped("queue_full") - full_before <= 200
    assert dropped("write_failed") == failed_before
    assert not any(log.is_durable(seq) for seq in seqs)
    assert metric("refit_prediction_log_written_total") == written_before
    with pytest.raises(PredictionLogUnavailable):
        log.attach_feedback([("x", "billing")], LABELS)
    with pytest.raises(PredictionLogUnavailable):
        log.read(0, 1)
    log.close()


def test_async_wait_leaves_the_event_loop_free(
    sqlite_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(sqlite_url)

    async def main() -> tuple[bool, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        ok = all([await log.wait_durable_async(log.submit(make_batch(4)), 5) for _ in range(20)])
        task.cancel()
        return ok, ticks

    ok, ticks = asyncio.run(main())
    assert ok
    assert ticks > 0
    assert log.count() == 80


def test_close_writes_what_is_queued_and_is_idempotent(log_url: str) -> None:
    # A long flush interval: nothing is written before close() unless close flushes.
    log = PredictionLog(log_url, flush_interval_ms=10_000)
    log.start()
    seqs = [log.submit(make_batch(5)) for _ in range(20)]
    log.close()
    log.close()
    assert all(log.is_durable(seq) for seq in seqs)
    late = log.submit(make_batch(5))
    assert late
    assert not log.is_durable(late)

    never_started = PredictionLog(log_url)
    seq = never_started.submit(make_batch(5))
    never_started.close()
    assert never_started.is_durable(seq)

    reopened = PredictionLog(log_url)
    assert reopened.count() == 105
    reopened.close()


def test_writer_survives_bad_batches_and_duplicates(
    sqlite_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(sqlite_url)
    good = make_batch(6)
    broken = PredictionBatch(**{**good.__dict__, "ids": [uuid.uuid4().hex], "labels": []})
    assert not log.wait_durable(log.submit(broken), 5)
    submit_all(log, [good, good])  # a retried batch: its ids are already there
    assert log.count() == 6


def test_texts_databases_refuse_are_stored_cleaned(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    texts = ["nul\x00inside", "lone \ud800 surrogate"]
    batch = make_batch(2, texts=texts)
    nan = make_batch(1)
    nan = PredictionBatch(
        **{
            **nan.__dict__,
            "labels": ["billing"],
            "scores": np.array([[np.nan, 0.5, 0.5]]),
            "latency_ms": np.array([np.nan]),
        }
    )
    submit_all(log := open_log(log_url), [batch, nan])
    rows = log.read(0, time.time() + 1).set_index("id")
    assert rows.loc[batch.ids, "text"].tolist() == ["nul\ufffdinside", "lone ? surrogate"]
    assert rows.loc[batch.ids[0], "text_hash"] == hashlib.sha256(b"nul\x00inside").hexdigest()
    assert np.isnan(rows.loc[nan.ids[0], "score"])
    assert np.isnan(rows.loc[nan.ids[0], "latency_ms"])


def test_a_refused_record_costs_only_its_own_batch(
    pg_log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    # PostgreSQL refuses NUL characters (SQLite stores them): a label with one is refused.
    log = open_log(pg_log_url, flush_interval_ms=10_000)  # the three batches form one group
    good, bad, also_good = make_batch(3), make_batch(1), make_batch(2)
    bad = PredictionBatch(**{**bad.__dict__, "labels": ["bill\x00ing"]})
    seqs = [log.submit(batch) for batch in (good, bad, also_good)]
    assert [log.wait_durable(seq, 10) for seq in seqs] == [True, False, True]
    assert log.count() == 5
