"""Batches, metric readings and waits shared by the prediction-log tests."""

from __future__ import annotations

import time
import uuid

import numpy as np
from prometheus_client import REGISTRY

from refit.monitoring.prediction_log import PredictionBatch, PredictionLog

LABELS = ("billing", "shipping", "refund")
DRIFT_COLUMNS = ("n_unknown", "n_chars", "n_digits", "n_upper", "n_punct", "embedding")
# Columns the first schema lacked: an older refit's table gets them added.
NEWER_COLUMNS = (*DRIFT_COLUMNS, "backend")


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


def submit_all(log: PredictionLog, batches: list[PredictionBatch]) -> None:
    seqs = [log.submit(batch) for batch in batches]
    assert all(log.wait_durable(seq, 10) for seq in seqs)


def logged_ids(log: PredictionLog, n: int) -> list[str]:
    """The ids of `n` predictions made by `make_batch` and written to `log`."""
    batch = make_batch(n)
    submit_all(log, [batch])
    return list(batch.ids)
