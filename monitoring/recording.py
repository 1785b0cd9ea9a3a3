"""Turn served work into metric updates: a handful of calls per forward pass and per
group of requests answered together, never one per text (arrays go into histograms
in one call)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from refit.core.backends.base import DeviceStats
from refit.core.backends.outputs import BatchOutput
from refit.monitoring import prometheus_metrics as metrics

# Defaults of REFIT_HOURLY_PRICE_USD: a 2-vCPU cloud instance, and a one-GPU
# H100-class instance, on-demand, in USD per hour (late-2026 list prices, rounded).
DEFAULT_HOURLY_PRICE = {"cpu": 0.10, "cuda": 4.00}


class PassRecorder:
    """What the model does, pass by pass: shape, padding, compute time and its cost."""

    def __init__(
        self,
        *,
        endpoint: str,
        device: str,
        hourly_price: float,
        device_stats: Callable[[], DeviceStats | None] = lambda: None,
    ) -> None:
        self.device = device
        self._device_stats = device_stats  # the serving backend's GPU figures
        self._usd_per_second = hourly_price / 3600.0
        self._compute = metrics.COMPUTE_SECONDS.labels(endpoint)
        self._busy = metrics.BUSY_SECONDS.labels(device)
        self._cost = metrics.COST_USD.labels(device)
        self._next_gpu_sample = 0.0
        metrics.HOURLY_PRICE.labels(device).set(hourly_price)

    def forward_pass(
        self, texts: int, real_tokens: int, padded_tokens: int, seconds: float, rechecked: int = 0
    ) -> None:
        self._compute.observe(seconds)
        if rechecked:
            metrics.RECHECKED_TEXTS.inc(rechecked)
        self.busy(seconds)
        metrics.BATCH_ITEMS.observe(texts)
        metrics.BATCH_TOKENS.observe(real_tokens)
        metrics.BATCH_PADDED_TOKENS.observe(padded_tokens)
        metrics.REAL_TOKENS.inc(real_tokens)
        metrics.PADDED_TOKENS.inc(padded_tokens)
        if padded_tokens:
            metrics.PADDING_EFFICIENCY.observe(real_tokens / padded_tokens)
        if self.device == "cuda":
            self._sample_gpu()

    def busy(self, seconds: float) -> None:
        """Compute time, forward passes or tokenising, and what it costs."""
        self._busy.inc(seconds)
        self._cost.inc(seconds * self._usd_per_second)

    def _sample_gpu(self) -> None:
        """GPU memory and utilisation, at most once a second (NVML calls are not free)."""
        now = time.monotonic()
        if now < self._next_gpu_sample:
            return
        self._next_gpu_sample = now + 1.0
        stats = self._device_stats()
        if stats is None:
            return
        metrics.GPU_MEMORY_BYTES.labels(str(stats.index)).set(stats.memory_bytes)
        if stats.utilization is not None:  # None: NVML missing or not permitted
            metrics.GPU_UTILIZATION.labels(str(stats.index)).set(stats.utilization)


class PredictionRecorder:
    """What one model version answered: inputs, labels, confidence, queue wait."""

    def __init__(self, *, endpoint: str, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self._tokenize = metrics.TOKENIZE_SECONDS.labels(endpoint)
        self._queue = metrics.QUEUE_WAIT_SECONDS.labels(endpoint)
        self._per_label = [metrics.PREDICTIONS.labels(label) for label in self.labels]

    def requests(
        self,
        texts: Sequence[str],
        out: BatchOutput,
        tokenize_seconds: Sequence[float],
        queue_waits: Sequence[float],
    ) -> None:
        """Requests answered together: `texts` and `out` hold all their rows, the
        sequences one figure per request (no queue waits without refit's scheduler)."""
        metrics.observe_many(self._tokenize, np.asarray(tokenize_seconds))
        metrics.observe_many(self._queue, np.asarray(queue_waits))
        metrics.observe_many(metrics.INPUT_TOKENS, out.n_tokens)
        metrics.observe_many(
            metrics.INPUT_CHARS, np.fromiter(map(len, texts), dtype=np.float64, count=len(texts))
        )
        truncated = int(out.truncated.sum())
        if truncated:
            metrics.TRUNCATED.inc(truncated)
        counts = np.bincount(out.label_ids, minlength=len(self.labels))
        for child, count in zip(self._per_label, counts.tolist(), strict=True):
            if count:
                child.inc(count)
        metrics.observe_many(metrics.CONFIDENCE, out.confidence)


def set_model_info(serving: tuple[str, str, str], previous: tuple[str, str, str] | None) -> None:
    """Mark what this worker serves (1) and what it replaced (0), each as (version, base
    model, backend)."""
    if previous is not None:
        metrics.MODEL_INFO.labels(*previous).set(0)
    metrics.MODEL_INFO.labels(*serving).set(1)
