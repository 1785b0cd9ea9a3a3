"""What /classify does with a request: compute, answer, log durably, measure.

Two ways in. With refit's scheduler (`REFIT_BATCHING=scheduler`, the default) the
request waits in the worker's queue, and the model thread answers every request a
forward pass completes together: one prediction-log record and one round of metric
updates for all of them, since per request this work cost more than a small
model's pass. The comparison modes (`bentoml`: BentoML's adaptive batching; `off`:
each request alone) call the model directly on whatever texts BentoML hands over.
Either way a successful response goes out only once its predictions are written to
the prediction log. When they are not confirmed within `REFIT_LOG_CONFIRM_TIMEOUT_S`
(the log is slow or failing), `REFIT_LOG_CONFIRM_MODE` decides: `flag` answers anyway,
marked `X-Refit-Log: unconfirmed` (`log_confirmation`) and counted; `strict` refuses
with 503 and Retry-After, so that every 200 is on record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from refit.core.backends.base import Backend
from refit.core.backends.outputs import BatchOutput
from refit.core.errors import PredictionLogUnavailable, RefitError, SchedulerClosed
from refit.monitoring import prometheus_metrics as metrics
from refit.monitoring.prediction_log import PredictionBatch, PredictionLog
from refit.monitoring.recording import (
    DEFAULT_HOURLY_PRICE,
    PassRecorder,
    PredictionRecorder,
    set_model_info,
)
from refit.service.model.predictor import ServedModel
from refit.service.scheduling.batch_policy import SchedulerConfig
from refit.service.scheduling.log_confirmation import mark_unconfirmed
from refit.service.scheduling.metrics import SchedulerMetrics
from refit.service.scheduling.scheduler import Classified, Scheduler
from refit.service.scheduling.score_guard import ScoreGuard
from refit.service.settings import Settings

ENDPOINT = "/classify"


@dataclass(frozen=True)
class ActiveModel:
    """What serves now. Replaced as a whole, so a response never mixes two versions."""

    served: ServedModel
    recorder: PredictionRecorder | None

    @property
    def classifier(self) -> Backend:
        return self.served.classifier

    @property
    def version(self) -> str:
        return self.served.version.version


@dataclass(frozen=True)
class Answer:
    """A request's response objects, and the log sequence number that must be durable
    before they go out."""

    results: list[dict[str, Any]]
    seq: int
    error: RefitError | None = None  # the request failed: raised instead of answering

    def unwrap(self) -> Answer:
        if self.error is not None:
            raise self.error
        return self


class ClassifyHandler:
    def __init__(self, served: ServedModel, settings: Settings, log: PredictionLog | None) -> None:
        self.settings = settings
        self.log = log
        self.monitoring = settings.monitoring.enabled
        self.passes = self._pass_recorder(served) if self.monitoring else None
        self.active = self._prepare(served, previous=None)
        self.scheduler: Scheduler[ActiveModel, Answer] | None = None
        self.guard = ScoreGuard()

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
        self.scheduler = Scheduler(
            lambda: self.active, config, finish=self.answer_pass, observer=observer
        )
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
        before = None if previous is None else _info(previous)
        set_model_info(_info(served), before)
        recorder = PredictionRecorder(endpoint=ENDPOINT, labels=served.classifier.labels)
        return ActiveModel(served, recorder)

    def _pass_recorder(self, served: ServedModel) -> PassRecorder:
        device = served.classifier.device
        price = self.settings.monitoring.hourly_price_usd
        hourly = DEFAULT_HOURLY_PRICE[device] if price is None else price
        # GPU figures come from whichever backend serves by then (a hot-swap replaces it).
        return PassRecorder(
            endpoint=ENDPOINT,
            device=device,
            hourly_price=hourly,
            device_stats=lambda: self.active.classifier.device_stats(),
        )

    async def classify(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One response object per text, through the scheduler."""
        assert self.scheduler is not None, "start_scheduler() first"
        metrics.IN_FLIGHT_TEXTS.inc(len(texts))
        try:
            answer = (await self.scheduler.classify(texts)).unwrap()
        finally:
            metrics.IN_FLIGHT_TEXTS.dec(len(texts))
        if self.log is not None and not await self.log.wait_durable_async(
            answer.seq, self._confirm_s
        ):
            self._unconfirmed()
        return answer.results

    def classify_now(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One response object per text, computed in this call (no refit scheduler)."""
        started = time.perf_counter()
        active = self.active  # read once: a hot-swap mid-batch must not mix versions
        out = active.classifier.predict(texts)
        if self.passes is not None:
            real = int(out.n_tokens.sum())
            self.passes.forward_pass(
                len(texts), real, out.padded_tokens, out.compute_seconds, out.rechecked
            )
        elapsed = time.perf_counter() - started
        (answer,) = self.answer_pass([Classified(texts, out, active, None, (), elapsed)])
        answer.unwrap()
        if self.log is not None and not self.log.wait_durable(answer.seq, self._confirm_s):
            self._unconfirmed()
        return answer.results

    def _unconfirmed(self) -> None:
        """A record not confirmed written. If the log has closed because this worker is
        stopping, the record will never be written, and a 200 would claim a logged
        prediction that a moment later is lost with the worker: 503, retry elsewhere.
        Otherwise, in `strict` mode, 503 with Retry-After; in `flag` mode answer anyway
        (a slow or failing database must not stop serving), saying so in a header."""
        mark_unconfirmed()
        if self.log is not None and self.log.closed:
            raise SchedulerClosed("the worker is shutting down; retry")
        if self.settings.monitoring.log_confirm_mode == "strict":
            metrics.LOG_REFUSED.inc()
            raise PredictionLogUnavailable(
                f"the predictions could not be put on record in {self._confirm_s:g} s "
                "(REFIT_LOG_CONFIRM_MODE=strict)"
            )
        metrics.LOG_UNCONFIRMED.inc()

    def log_readiness(self) -> dict[str, Any]:
        """The prediction log's part of /readyz: its health, `degraded` while it fails,
        and, in `strict` mode, `ready` false while it cannot write, since every
        response would be refused."""
        if self.log is None:
            return {"degraded": False}
        health = self.log.health()
        failing = health["state"] != "ok"
        state: dict[str, Any] = {"degraded": failing, "prediction_log": health}
        if failing and self.settings.monitoring.log_confirm_mode == "strict":
            state["ready"] = False
        return state

    @property
    def _confirm_s(self) -> float:
        return self.settings.monitoring.log_confirm_timeout_s

    def answer_pass(self, done: Sequence[Classified[ActiveModel]]) -> list[Answer]:
        """The answers of the requests one forward pass completed, in order: one log
        record, one sequence number and one round of metric updates for all of them.
        The scheduler calls it on the model thread once per pass, whose requests all
        have the round's model; `classify_now` with its one request. A request with a
        score that is not a finite number gets an error instead (`score_guard`)."""
        failing = self.guard.failing([d.output for d in done])
        if failing:
            return self._answer_finite(done, failing)
        active = done[0].model
        texts = [text for d in done for text in d.texts]
        out = done[0].output if len(done) == 1 else joined([d.output for d in done])
        ids = [uuid.uuid4().hex for _ in texts]
        labels = active.classifier.labels
        # Rounding once on the whole matrix keeps the JSON short without a per-item loop.
        probs = np.round(out.probs.astype(np.float64), 6)
        results = predictions(ids, probs, out.label_ids.tolist(), labels, active.version)
        seq = 0
        if self.log is not None:
            sizes = [len(d.texts) for d in done]
            latency_ms = np.repeat([d.elapsed_s * 1000.0 for d in done], sizes)
            batch = PredictionBatch.of_output(
                ids, texts, out, labels, active.version, latency_ms, probs, active.classifier.name
            )
            seq = self.log.submit(batch)
        if active.recorder is not None and self.passes is not None:
            tokenize = [d.output.tokenize_seconds for d in done]
            waits = [d.queue_wait_s for d in done if d.queue_wait_s is not None]
            active.recorder.requests(texts, out, tokenize, waits)
            self.passes.busy(sum(tokenize))
        answers, start = [], 0
        for d in done:
            answers.append(Answer(results[start : start + len(d.texts)], seq))
            start += len(d.texts)
        return answers

    def _answer_finite(
        self, done: Sequence[Classified[ActiveModel]], failing: list[int]
    ) -> list[Answer]:
        """Answer the requests whose scores are all finite; the others get the error."""
        texts = sum(len(done[i].texts) for i in failing)
        error = self.guard.flag(done[0].model.version, texts)
        good = [d for i, d in enumerate(done) if i not in failing]
        answers = iter(self.answer_pass(good) if good else [])
        return [Answer([], 0, error) if i in failing else next(answers) for i in range(len(done))]


def joined(outputs: Sequence[BatchOutput]) -> BatchOutput:
    """Several requests' outputs as one, rows in order; their token counts and
    seconds add up."""

    def stacked(arrays: list[np.ndarray | None]) -> np.ndarray | None:
        present = [a for a in arrays if a is not None]
        return np.concatenate(present) if len(present) == len(arrays) else None

    return BatchOutput(
        probs=np.concatenate([o.probs for o in outputs]),
        n_tokens=np.concatenate([o.n_tokens for o in outputs]),
        truncated=np.concatenate([o.truncated for o in outputs]),
        padded_tokens=sum(o.padded_tokens for o in outputs),
        tokenize_seconds=sum(o.tokenize_seconds for o in outputs),
        compute_seconds=sum(o.compute_seconds for o in outputs),
        unknown_tokens=stacked([o.unknown_tokens for o in outputs]),
        embeddings=stacked([o.embeddings for o in outputs]),
    )


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


def _info(served: ServedModel) -> tuple[str, str, str]:
    """The labels of refit_model_info for `served`: version, base model, backend."""
    base = str(served.version.metadata.get("base_model", ""))
    return served.version.version, base, served.classifier.name
