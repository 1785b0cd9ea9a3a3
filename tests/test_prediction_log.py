"""The durable prediction log on SQLite and PostgreSQL: writes, durability, bounds, reads."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from servers import free_port

from monitoring.log_queue import SeqRanges
from monitoring.log_store import LogStore, create_log_engine
from monitoring.log_store import predictions as LOG_TABLE
from monitoring.prediction_log import (
    PredictionBatch,
    PredictionLog,
    PredictionLogUnavailable,
    sampled,
)
from core.errors import ConfigError
from core.settings import Settings

LABELS = ("billing", "shipping", "refund")
DRIFT_COLUMNS = ("n_unknown", "n_chars", "n_digits", "n_upper", "n_punct", "embedding")
ROOT = Path(__file__).resolve().parent.parent


def make_batch(
    n: int = 8,
    *,
    version: str = "v1",
    created: float | None = None,
    texts: list[str] | None = None,
    seed: int | None = None,
) -> PredictionBatch:
    rng = np.random.default_rng(seed)
    scores = rng.dirichlet(np.ones(len(LABELS)), size=n)
    return PredictionBatch(
        ids=[uuid.uuid4().hex for _ in range(n)],
        texts=texts if texts is not None else [f"text {i} {rng.integers(1000)}" for i in range(n)],
        labels=[LABELS[k] for k in scores.argmax(axis=1)],
        scores=scores,
        label_names=LABELS,
        model_version=version,
        created=time.time() if created is None else created,
        latency_ms=rng.uniform(1, 50, size=n),
        n_tokens=rng.integers(3, 128, size=n),
        truncated=rng.random(n) < 0.3,
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dropped(reason: str) -> float:
    return metric("refit_prediction_log_dropped_total", reason=reason)


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty prediction log database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'predictions.sqlite3'}"
    url: str = request.getfixturevalue("pg_log_url")
    return url


@pytest.fixture
def pg_log_url(postgres_url: str) -> str:
    """The session's PostgreSQL database without a prediction log table."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
    engine.dispose()
    return postgres_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'predictions.sqlite3'}"


@pytest.fixture
def open_log() -> Iterator[Callable[..., PredictionLog]]:
    """Opens and starts logs; closes every one of them after the test."""
    logs: list[PredictionLog] = []

    def open_(url: str, **options: Any) -> PredictionLog:
        log = PredictionLog(url, **options)
        log.start()
        logs.append(log)
        return log

    yield open_
    for log in logs:
        log.close()


def submit_all(log: PredictionLog, batches: list[PredictionBatch]) -> None:
    seqs = [log.submit(batch) for batch in batches]
    assert all(log.wait_durable(seq, 10) for seq in seqs)


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
from monitoring.prediction_log import PredictionBatch, PredictionLog

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
    deadline = time.monotonic() + 15
    while dropped("queue_full") - full_before + dropped("write_failed") - failed_before < 300:
        assert time.monotonic() < deadline, "queued records were never given up"
        time.sleep(0.05)
    assert dropped("write_failed") - failed_before >= 10
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


def test_sampling_keeps_the_same_half_by_id(
    sqlite_url: str, tmp_path: Path, open_log: Callable[..., PredictionLog]
) -> None:
    batch = make_batch(2000)
    expected = {pid for pid in batch.ids if sampled(pid, 0.5)}
    assert 850 <= len(expected) <= 1150
    for url in (sqlite_url, f"sqlite:///{tmp_path / 'replica.sqlite3'}"):
        log = open_log(url, sample_rate=0.5)
        assert log.wait_durable(log.submit(batch), 10)
        assert set(log.read(0, time.time() + 1, columns=["id"])["id"]) == expected

    none = open_log(f"sqlite:///{tmp_path / 'none.sqlite3'}", sample_rate=0.0)
    assert none.submit(batch) == 0
    assert none.submitted_seq == 0
    assert none.wait_durable(0, 0)
    assert none.is_durable(0)
    none.close()
    assert none.count() == 0


@pytest.mark.parametrize(
    ("mode", "stored"),
    [
        ("raw", "mail ann@example.com, order 1234567"),
        ("redacted", "mail <email>, order <number>"),
        ("hashed", None),
    ],
)
def test_text_modes(
    log_url: str, open_log: Callable[..., PredictionLog], mode: str, stored: str | None
) -> None:
    text = "mail ann@example.com, order 1234567"
    log = open_log(log_url, text_mode=mode)
    submit_all(log, [make_batch(1, texts=[text])])
    row = log.read(0, time.time() + 1).iloc[0]
    assert row["text"] == stored
    assert row["text_hash"] == hashlib.sha256(text.encode()).hexdigest()


def test_feedback_outcomes_in_order(log_url: str, open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(log_url)
    batch = make_batch(4)
    submit_all(log, [batch])
    a, b, c, d = batch.ids
    before = {o: metric("refit_feedback_items_total", outcome=o) for o in ("stored", "unchanged")}
    started = time.time()
    first = log.attach_feedback(
        [(a, "billing"), (b, "shipping"), (a, "billing"), (c, "complaint"), ("nope", "billing")],
        LABELS,
    )
    assert first == ["stored", "stored", "unchanged", "new_label", "unknown_id"]
    second = log.attach_feedback([(a, "refund"), (b, "shipping"), (d, "other")], None)
    assert second == ["updated", "unchanged", "stored"]
    assert log.attach_feedback([], LABELS) == []
    assert metric("refit_feedback_items_total", outcome="stored") - before["stored"] == 3
    assert metric("refit_feedback_items_total", outcome="unchanged") - before["unchanged"] == 2

    rows = log.read(0, time.time() + 1).set_index("id")
    assert rows.loc[[a, b, c, d], "true_label"].tolist() == [
        "refund",
        "shipping",
        "complaint",
        "other",
    ]
    assert all(started <= ts <= time.time() for ts in rows["feedback_ts"])


def test_purge_removes_only_old_rows(log_url: str, open_log: Callable[..., PredictionLog]) -> None:
    now = time.time()
    log = open_log(log_url)
    old, new = make_batch(5, created=now - 3 * 86400), make_batch(7, created=now - 0.5 * 86400)
    submit_all(log, [old, new])
    assert log.purge(now - 86400) == 5
    assert set(log.read(0, now + 1)["id"]) == set(new.ids)

    # A log that starts purges what is past its retention by itself.
    submit_all(log, [make_batch(3, created=now - 3 * 86400)])
    assert log.count() == 10
    fresh = open_log(log_url, retention_days=1)
    deadline = time.monotonic() + 10
    while fresh.count() != 7:
        assert time.monotonic() < deadline, "start() did not purge expired rows"
        time.sleep(0.05)


def test_read_by_window_and_model_version(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(log_url)
    submit_all(
        log,
        [
            make_batch(3, created=3000.0),
            make_batch(2, version="v2", created=2000.0),
            make_batch(4, created=1000.0),
            make_batch(1, created=1500.0),
        ],
    )
    everything = log.read(0, 10_000)
    assert everything["ts"].tolist() == [1000.0] * 4 + [1500.0] + [2000.0] * 2 + [3000.0] * 3
    assert log.read(1000, 2000)["ts"].tolist() == [1000.0] * 4 + [1500.0]
    assert len(log.read(1000.5, 3000)) == 3
    assert set(log.read(0, 10_000, model_version="v2")["model_version"]) == {"v2"}
    assert len(log.read(0, 10_000, model_version="v1")) == 8
    start, end = datetime.fromtimestamp(1000, UTC), datetime(1970, 1, 1, 0, 33, 20)
    assert len(log.read(start, end)) == 5  # a naive datetime counts as UTC: 2000 s

    narrow = log.read(0, 10_000, columns=["id", "ts"])
    assert list(narrow.columns) == ["id", "ts"]
    assert len(narrow) == 10
    empty = log.read(5000, 6000)
    assert empty.empty
    assert "scores" in empty.columns
    assert log.count(1000, 2000) == 5
    assert log.count(model_version="v1") == 8
    with pytest.raises(ValueError, match="unknown prediction log columns"):
        log.read(0, 1, columns=["id", "password"])


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


def test_from_settings_and_bad_configuration(tmp_path: Path) -> None:
    log = PredictionLog.from_settings(Settings(state_dir=tmp_path, log_text="hashed"))
    log.start()
    assert log.wait_durable(log.submit(make_batch(2)), 5)
    log.close()
    assert (tmp_path / "predictions.sqlite3").exists()
    for url in ("mysql://u@h/db", "sqlite://", "not a url"):
        with pytest.raises(ConfigError):
            PredictionLog(url)
    with pytest.raises(ConfigError):
        PredictionLog(f"sqlite:///{tmp_path / 'x.sqlite3'}", text_mode="masked")


def test_seq_ranges_merge_and_forget_conservatively() -> None:
    ranges = SeqRanges(max_ranges=3)
    for n in (5, 7, 6, 1, 10):
        ranges.add(n)
    assert [n for n in range(12) if n in ranges] == [1, 5, 6, 7, 10]
    assert 0 not in ranges
    assert len(ranges) == 3
    ranges.add(20)  # a fourth range: the oldest is forgotten, as "maybe failed"
    assert 1 in ranges
    assert 3 not in ranges
    assert 20 in ranges


def test_seq_ranges_intersect_as_their_members_do() -> None:
    ranges = SeqRanges(max_ranges=3)
    for n in (5, 7, 6, 10, 20, 21, 30):  # [5-7] is forgotten: 1..7 count as members
        ranges.add(n)
    members = {n for n in range(40) if n in ranges}
    for lo in range(-1, 35):
        for hi in range(lo - 1, 36):
            expected = any(lo <= n <= hi for n in members)
            assert ranges.intersects(lo, hi) == expected, (lo, hi)


def test_drift_features_are_stored_with_each_prediction(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(log_url, text_mode="hashed")
    embeddings = (np.arange(64, dtype=np.float32).reshape(2, 32) / 4).astype(np.float16)
    batch = dataclasses.replace(
        make_batch(2, texts=["Refund ORDER 12345!", "hi"]),
        unknown_tokens=np.array([1, 0]),
        embeddings=embeddings,
    )
    submit_all(log, [batch, make_batch(1, texts=["no features here"])])
    rows = log.read(0, 4e9).set_index("text_hash")
    first = rows.loc[hashlib.sha256(b"Refund ORDER 12345!").hexdigest()]
    # Counted before hashing: the log keeps no text, but still the descriptors.
    assert first["text"] is None
    assert first[["n_unknown", "n_chars", "n_digits", "n_upper", "n_punct"]].tolist() == [
        1, 19, 5, 6, 1,
    ]  # fmt: skip
    assert np.frombuffer(first["embedding"], dtype="<f2").tolist() == embeddings[0].tolist()
    bare = rows.loc[hashlib.sha256(b"no features here").hexdigest()]
    assert bare["n_chars"] == 16  # counted from the text, always
    assert np.isnan(bare["n_unknown"]) and bare["embedding"] is None  # noqa: PT018


def test_a_table_of_the_previous_schema_is_upgraded(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    engine = create_log_engine(log_url)
    old = sa.MetaData()
    columns = [
        sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in LOG_TABLE.columns
        if c.name not in DRIFT_COLUMNS
    ]
    sa.Table("predictions", old, *columns)
    old.create_all(engine)
    now = time.time()  # recent: the writer purges rows past retention on start
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (id, ts, model_version, text, text_hash, label, score,"
                " scores, latency_ms, n_tokens, truncated) VALUES ('old', :ts, 'v1', 'before',"
                " 'h', 'billing', 0.9, '{\"billing\": 0.9}', 3.0, 4, false)"
            ),
            {"ts": now - 10},
        )
    engine.dispose()
    log = open_log(log_url)
    submit_all(log, [make_batch(2, created=now)])
    rows = log.read(now - 60, now + 60)
    assert rows["id"].tolist()[0] == "old"
    assert np.isnan(rows.loc[0, "n_chars"]) and rows.loc[0, "embedding"] is None  # noqa: PT018
    assert rows.loc[1:, "n_chars"].notna().all()
    # Opening it again finds nothing to add.
    assert LogStore(log_url).missing_columns() == []


def test_all_durable_agrees_with_asking_seq_by_seq() -> None:
    from monitoring.log_queue import LogQueue

    queue: LogQueue[str] = LogQueue(max_rows=4, group_rows=100, linger_s=0.0, eager_rows=1)
    seqs = [queue.put(f"batch {i}", rows=1)[0] for i in range(6)]  # the last two do not fit
    group = queue.take(wake_by=time.monotonic())
    assert group is not None
    queue.settle(failed=[seqs[1]])
    late = queue.put("after", rows=1)[0]  # queued, not yet written
    for first in range(0, late + 1):
        for last in range(first - 1, late + 1):
            expected = all(queue.is_durable(seq) for seq in range(max(first, 1), last + 1))
            assert queue.all_durable(first, last) == expected, (first, last)
    assert queue.all_durable(seqs[2], seqs[3])
    assert not queue.all_durable(seqs[0], seqs[2])
    assert not queue.all_durable(late, late)
