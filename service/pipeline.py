"""What /classify does with one adaptive batch: predict, measure, log, answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitoring.prediction_log import PredictionBatch, PredictionLog
from monitoring.recording import DEFAULT_HOURLY_PRICE, BatchRecorder, set_model_info
from service.admission import WORKER, ArrivedText
from service.predictor import ServedModel
from service.settings import Settings


def arrival_times(texts: Sequence[str], now: float) -> tuple[np.ndarray, np.ndarray]:
    """(arrival time of every text's request, arrival time of each request).

    A text inherits the stamp of its request's first text; texts that came without
    one (direct calls, not over HTTP) count as arriving `now`.
    """
    arrived = np.empty(len(texts), dtype=np.float64)
    requests: list[float] = []
    current = now
    for i, text in enumerate(texts):
        if type(text) is ArrivedText:
            current = text.arrived
            requests.append(current)
        arrived[i] = current
    return arrived, np.asarray(requests)


def batch_recorder(served: ServedModel, settings: Settings) -> BatchRecorder:
    """The metrics recorder for `served` (its labels, its device's price)."""
    device = served.classifier.device.type
    price = settings.monitoring.hourly_price_usd
    return BatchRecorder(
        endpoint="/classify",
        labels=served.classifier.labels,
        device=device,
        hourly_price=DEFAULT_HOURLY_PRICE[device] if price is None else price,
    )


@dataclass(frozen=True)
class ActiveModel:
    """What serves now. Replaced as a whole, so a batch never mixes two versions."""

    served: ServedModel
    recorder: BatchRecorder | None


class ClassifyPipeline:
    def __init__(self, served: ServedModel, settings: Settings, log: PredictionLog | None) -> None:
        self.settings = settings
        self.log = log
        self.active = self._prepare(served, previous=None)

    @property
    def served(self) -> ServedModel:
        return self.active.served

    def _prepare(self, served: ServedModel, previous: ServedModel | None) -> ActiveModel:
        if not self.settings.monitoring.enabled:
            return ActiveModel(served, None)
        recorder = batch_recorder(served, self.settings)
        before = None
        if previous is not None:
            before = (previous.version.version, _base_model(previous))
        set_model_info(served.version.version, _base_model(served), before)
        return ActiveModel(served, recorder)

    def activate(self, served: ServedModel) -> ServedModel:
        """Serve `served` from the next batch on; returns the model it replaced."""
        previous = self.active.served
        self.active = self._prepare(served, previous)  # one reference swap: atomic
        return previous

    def classify(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One response object per text, in order; metrics and log records as a side effect."""
        started = time.perf_counter()
        active = self.active  # read once: a hot-swap mid-batch must not mix versions
        served, recorder = active.served, active.recorder
        arrived, requests = arrival_times(texts, started)
        if recorder is not None:
            recorder.queue_waits(started - requests)
        out = served.classifier.predict(texts)
        labels = served.classifier.labels
        version = served.version.version
        # Rounding once on the whole matrix keeps the JSON short without a per-item loop.
        probs = np.round(out.probs.astype(np.float64), 6)
        rows = probs.tolist()
        top = out.label_ids.tolist()
        ids = [uuid.uuid4().hex for _ in texts]
        results = [
            {
                "id": pid,
                "label": labels[k],
                "score": row[k],
                "scores": dict(zip(labels, row, strict=True)),
                "model_version": version,
            }
            for pid, k, row in zip(ids, top, rows, strict=True)
        ]
        finished = time.perf_counter()
        if self.log is not None:
            self.log.submit(
                PredictionBatch(
                    ids=ids,
                    texts=texts,
                    labels=[labels[k] for k in top],
                    scores=probs,
                    label_names=labels,
                    model_version=version,
                    created=time.time(),
                    latency_ms=(finished - arrived) * 1000.0,
                    n_tokens=out.n_tokens,
                    truncated=out.truncated,
                    unknown_tokens=out.unknown_tokens,
                    embeddings=out.embeddings,
                )
            )
        busy = time.perf_counter() - started
        if recorder is not None:
            recorder.batch(
                texts, out, extra_seconds=busy - out.tokenize_seconds - out.compute_seconds
            )
        WORKER.batch_done(len(texts), busy)
        return results


def _base_model(served: ServedModel) -> str:
    return str(served.version.metadata.get("base_model", ""))
