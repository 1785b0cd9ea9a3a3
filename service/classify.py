"""What /classify does with a request: compute, answer, log durably, measure.

Two ways in. With refit's scheduler (`REFIT_BATCHING=scheduler`, the default) the
request waits in the worker's queue for the model thread and comes back with its
own rows, its queue wait and the model version that computed it. The comparison
modes (`bentoml`: BentoML's adaptive batching; `off`: each request alone) call the
model directly on whatever texts BentoML hands over. Either way a successful
response goes out only once its predictions are written to the prediction log (or
`REFIT_LOG_CONFIRM_TIMEOUT_S` has passed, which is counted).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import SchedulerClosed
from core.inference import BatchOutput, TextClassifier
from monitoring import prometheus_metrics as metrics
from monitoring.prediction_log import PredictionBatch, PredictionLog
from monitoring.recording import (
    DEFAULT_HOURLY_PRICE,
    PassRecorder,
    PredictionRecorder,
    set_model_info,
)
from service.batch_policy import SchedulerConfig
from service.predictor import ServedModel
from service.scheduler import Scheduler
from service.scheduler_metrics import SchedulerMetrics
from service.settings import Settings

ENDPOINT = "/classify"


@dataclass(frozen=True)
class ActiveModel:
    """What serves now. Replaced as a whole, so a response never mixes two versions."""

    served: ServedModel
    recorder: PredictionRecorder | None

    @property
    def classifier(self) -> TextClassifier:
        return self.served.classifier

    @property
    def version(self) -> str:
        return self.served.version.version


class ClassifyHandler:
    def __init__(self, served: ServedModel, settings: Settings, log: PredictionLog | None) -> None:
        self.settings = settings
        self.log = log
        self.monitoring = settings.monitoring.enabled
        self.passes = _pass_recorder(served, settings) if self.monitoring else None
        self.active = self._prepare(served, previous=None)
        self.scheduler: Scheduler[ActiveModel] | None = None

    @property
    def served(self) -> ServedModel:
        return self.active.served

    def start_scheduler(self) -> None:
        """Start this worker's queue and model thread (measures throughput first)."""
        serving = self.settings.serving
        config = SchedulerConfig(
            max_batch_size=serving.max_batch_size,
            max_batch_tokens=serving.max_batch_tokens,
            latency_budget_s=serving.max_latency_ms / 1000,
            max_held_texts=serving.max_in_flight_texts,
        )
        observer = SchedulerMetrics(self.passes) if self.passes is not None else None
        self.scheduler = Scheduler(lambda: self.active, config, observer=observer)
        self.scheduler.start()
        if observer is not None:
            observer.follow(self.scheduler)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()

    def activate(self, served: ServedModel) -> ServedModel:
        """Serve `served` from the next round on; returns the model it replaced."""
        previous = self.active.served
        self.active = self._prepare(served, previous)  # one reference swap: atomic
        return previous

    def _prepare(self, served: ServedModel, previous: ServedModel | None) -> ActiveModel:
        if not self.monitoring:
            return ActiveModel(served, None)
        before = None if previous is None else (previous.version.version, _base(previous))
        set_model_info(served.version.version, _base(served), before)
        recorder = PredictionRecorder(endpoint=ENDPOINT, labels=served.classifier.labels)
        return ActiveModel(served, recorder)

    async def classify(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One response object per text, through the scheduler."""
        assert self.scheduler is not None, "start_scheduler() first"
        started = time.perf_counter()
        metrics.IN_FLIGHT_TEXTS.inc(len(texts))
        try:
            done = await self.scheduler.classify(texts)
        finally:
            metrics.IN_FLIGHT_TEXTS.dec(len(texts))
        results, seq = self._answer(texts, done.output, done.model, started, done.queue_wait_s)
        if self.log is not None and not await self.log.wait_durable_async(seq, self._confirm_s):
            self._unconfirmed()
        return results

    def classify_now(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One response object per text, computed in this call (no refit scheduler)."""
        started = time.perf_counter()
        active = self.active  # read once: a hot-swap mid-batch must not mix versions
        out = active.classifier.predict(texts)
        if self.passes is not None:
            real = int(out.n_tokens.sum())
            self.passes.forward_pass(len(texts), real, out.padded_tokens, out.compute_seconds)
        results, seq = self._answer(texts, out, active, started, None)
        if self.log is not None and not self.log.wait_durable(seq, self._confirm_s):
            self._unconfirmed()
        return results

    def _unconfirmed(self) -> None:
        """A record not confirmed written: answer anyway (a slow or failing database must
        not stop serving), unless the log has closed because this worker is stopping;
        then the record will never be written, and a 200 would claim a logged
        prediction that a moment later is lost with the worker: 503, retry elsewhere."""
        if self.log is not None and self.log.closed:
            raise SchedulerClosed("the worker is shutting down; retry")
        metrics.LOG_UNCONFIRMED.inc()

    @property
    def _confirm_s(self) -> float:
        return self.settings.monitoring.log_confirm_timeout_s

    def _answer(
        self,
        texts: Sequence[str],
        out: BatchOutput,
        active: ActiveModel,
        started: float,
        queue_wait_s: float | None,
    ) -> tuple[list[dict[str, Any]], int]:
        """The response objects, and the log sequence number that must be durable first."""
        ids = [uuid.uuid4().hex for _ in texts]
        labels = active.classifier.labels
        # Rounding once on the whole matrix keeps the JSON short without a per-item loop.
        probs = np.round(out.probs.astype(np.float64), 6)
        results = predictions(ids, probs, out.label_ids.tolist(), labels, active.version)
        seq = 0
        if self.log is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            batch = PredictionBatch.of_output(
                ids, texts, out, labels, active.version, elapsed_ms, probs
            )
            seq = self.log.submit(batch)
        if active.recorder is not None and self.passes is not None:
            active.recorder.request(texts, out, queue_wait_s)
            self.passes.busy(out.tokenize_seconds)
        return results, seq


def predictions(
    ids: list[str], probs: np.ndarray, top: list[int], labels: Sequence[str], version: str
) -> list[dict[str, Any]]:
    """The JSON objects of one response, one per text, in order."""
    return [
        {
            "id": pid,
            "label": labels[k],
            "score": row[k],
            "scores": dict(zip(labels, row, strict=True)),
            "model_version": version,
        }
        for pid, k, row in zip(ids, top, probs.tolist(), strict=True)
    ]


def _pass_recorder(served: ServedModel, settings: Settings) -> PassRecorder:
    device = served.classifier.device.type
    price = settings.monitoring.hourly_price_usd
    hourly = DEFAULT_HOURLY_PRICE[device] if price is None else price
    return PassRecorder(endpoint=ENDPOINT, device=device, hourly_price=hourly)


def _base(served: ServedModel) -> str:
    return str(served.version.metadata.get("base_model", ""))
