"""The scheduler's measurements as Prometheus metrics."""

from __future__ import annotations

from refit.monitoring import prometheus_metrics as metrics
from refit.monitoring.recording import PassRecorder
from refit.service.scheduling.batch_policy import PassInfo
from refit.service.scheduling.observer import Cause, Observer
from refit.service.scheduling.scheduler import Scheduler


class SchedulerMetrics(Observer):
    """Queue depth, forward passes and refusals; queue waits are recorded per request
    with the predictions (`service.scheduling.classify`)."""

    def __init__(self, passes: PassRecorder) -> None:
        self.passes = passes
        self._scheduler: Scheduler | None = None  # type: ignore[type-arg]

    def follow(self, scheduler: Scheduler) -> None:  # type: ignore[type-arg]
        """Export `scheduler`'s throughput estimate, which admission works from."""
        self._scheduler = scheduler
        self._export_rate()

    def queue_depth(self, texts: int, tokens: int) -> None:
        metrics.QUEUE_TEXTS.set(texts)
        metrics.QUEUE_TOKENS.set(tokens)

    def forward_pass(self, info: PassInfo) -> None:
        self.passes.forward_pass(
            info.texts, info.tokens, info.padded_tokens, info.seconds, info.rechecked
        )
        self._export_rate()

    def refused(self, cause: Cause, texts: int) -> None:
        metrics.REFUSALS.labels(cause).inc()

    def _export_rate(self) -> None:
        rate = self._scheduler.tokens_per_s if self._scheduler is not None else None
        if rate is not None:
            metrics.THROUGHPUT_TOKENS.set(rate)
