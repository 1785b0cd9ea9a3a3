"""What the prediction log keeps and gives back: sampling, text modes, feedback, windows."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from log_helpers import LABELS, NEWER_COLUMNS, logged_ids, make_batch, metric, submit_all

from refit.core.errors import ConfigError
from refit.monitoring.log_engine import create_log_engine
from refit.monitoring.log_schema import predictions as LOG_TABLE
from refit.monitoring.log_store import LogStore
from refit.monitoring.prediction_log import PredictionLog, sampled
from refit.service.settings import Settings


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
    a, b, c, d = logged_ids(log, 4)
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
    newest = log.read(0, 10_000, model_version="v1", newest=5)  # what a shadow replay reads
    assert newest["ts"].tolist() == [3000.0] * 3 + [1500.0, 1000.0]
    assert len(log.read(0, 10_000, newest=100)) == 10


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
        if c.name not in NEWER_COLUMNS
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
    submit_all(log, [dataclasses.replace(make_batch(2, created=now), backend="onnx-int8")])
    rows = log.read(now - 60, now + 60, columns=["id", "n_chars", "embedding", "backend"])
    assert rows["id"].tolist()[0] == "old"
    assert np.isnan(rows.loc[0, "n_chars"]) and rows.loc[0, "embedding"] is None  # noqa: PT018
    assert rows.loc[1:, "n_chars"].notna().all()
    # Which backend answered: unknown for rows an older refit wrote.
    assert rows["backend"].tolist() == [None, "onnx-int8", "onnx-int8"]
    # Opening it again finds nothing to add.
    assert LogStore(log_url).missing_columns() == []


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
