"""Recent request rates, latency and cost, from this server's own Prometheus metrics.

No Prometheus server is needed: a background thread reads the metrics where the
worker writes them every few seconds (BentoML's multiprocess folder, so the figures
are the sum over this server's workers; the in-process registry when there is no
such folder, as in tests) and keeps the samples of the last minute. A figure is the
difference between the newest sample and the oldest one still in the window:
counters give rates, the latency histogram's bucket counts give quantiles the way
Prometheus' `histogram_quantile` interpolates them.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

ENDPOINT = "/classify"
WINDOW_S = 60.0
INTERVAL_S = 5.0
# A page asking for figures takes a fresh sample when the newest is older than this.
FRESH_S = 1.0


@dataclass(frozen=True)
class Sample:
    """Cumulative counts at one moment (monotonic seconds)."""

    at: float
    requests: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative
    errors: dict[str, float] = field(default_factory=dict)  # reason -> count
    refusals: dict[str, float] = field(default_factory=dict)  # cause -> count
    predictions: float = 0.0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class LiveRates:
    """Figures over the last `window_s` seconds; None where there was nothing to measure."""

    window_s: float
    requests: int
    requests_per_s: float
    predictions_per_s: float
    p50_s: float | None
    p99_s: float | None
    error_rate: float | None
    errors_by_reason: dict[str, int]
    refusal_rate: float | None
    refusals_by_cause: dict[str, int]
    cost_per_1k_usd: float | None

    @property
    def traffic(self) -> bool:
        return self.requests > 0


def _add(target: dict[Any, float], key: Any, value: float) -> None:
    target[key] = target.get(key, 0.0) + value


def sample_from(samples: Iterable[Any], at: float) -> Sample:
    """A `Sample` from Prometheus samples (name, labels, value), summed over workers."""
    totals = {"requests": 0.0, "predictions": 0.0, "cost_usd": 0.0}
    buckets: dict[float, float] = {}
    errors: dict[str, float] = {}
    refusals: dict[str, float] = {}
    for name, labels, value in samples:
        ours = labels.get("endpoint") == ENDPOINT
        if name == "refit_request_duration_seconds_count" and ours:
            totals["requests"] += value
        elif name == "refit_request_duration_seconds_bucket" and ours:
            _add(buckets, float(labels["le"]), value)
        elif name == "refit_request_errors_total" and ours:
            _add(errors, labels.get("reason", "other"), value)
        elif name == "refit_refusals_total":
            _add(refusals, labels.get("cause", "other"), value)
        elif name == "refit_predictions_total":
            totals["predictions"] += value
        elif name == "refit_compute_cost_usd_total":
            totals["cost_usd"] += value
    return Sample(at=at, buckets=buckets, errors=errors, refusals=refusals, **totals)


def bucket_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of cumulative bucket counts, interpolated within its bucket.

    As Prometheus does: linear between the bucket's bounds (0 below the first), and
    the largest finite bound when the quantile falls in the +Inf bucket.
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _delta(new: dict[Any, float], old: dict[Any, float]) -> dict[Any, float]:
    """Per-key increase; a key whose counter went down (a restart) counts from zero."""
    return {k: v - old.get(k, 0.0) if v >= old.get(k, 0.0) else v for k, v in new.items()}


def _increase(new: float, old: float) -> float:
    return new - old if new >= old else new


def compute_rates(old: Sample, new: Sample) -> LiveRates:
    """What happened between two samples."""
    window = max(new.at - old.at, 0.0)
    requests = _increase(new.requests, old.requests)
    predictions = _increase(new.predictions, old.predictions)
    errors = {k: round(v) for k, v in _delta(new.errors, old.errors).items() if v > 0}
    refusals = {k: round(v) for k, v in _delta(new.refusals, old.refusals).items() if v > 0}
    buckets = _delta(new.buckets, old.buckets)
    cost = _increase(new.cost_usd, old.cost_usd)
    per_s = 1 / window if window > 0 else 0.0
    return LiveRates(
        window_s=round(window, 1),
        requests=round(requests),
        requests_per_s=requests * per_s,
        predictions_per_s=predictions * per_s,
        p50_s=bucket_quantile(0.5, buckets) if requests > 0 else None,
        p99_s=bucket_quantile(0.99, buckets) if requests > 0 else None,
        error_rate=sum(errors.values()) / requests if requests > 0 else None,
        errors_by_reason=errors,
        refusal_rate=sum(refusals.values()) / requests if requests > 0 else None,
        refusals_by_cause=refusals,
        cost_per_1k_usd=1000 * cost / predictions if predictions > 0 else None,
    )


def read_metrics() -> list[tuple[str, dict[str, str], float]]:
    """Every counter and histogram sample this server's workers recorded.

    The multiprocess folder BentoML gives its workers when there is one (gauges
    skipped: nothing here needs them), else this process's default registry.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.path.isdir(folder):
        files = [
            *glob.glob(os.path.join(folder, "counter_*.db")),
            *glob.glob(os.path.join(folder, "histogram_*.db")),
        ]
        families = MultiProcessCollector.merge(files, accumulate=True)
    else:
        families = REGISTRY.collect()
    return [(s.name, s.labels, s.value) for family in families for s in family.samples]


class RateSampler:
    """Samples kept for the last `window_s` seconds, taken every `interval_s` by a
    daemon thread started on first use."""

    def __init__(
        self,
        read: Callable[[], Iterable[Any]] = read_metrics,
        *,
        window_s: float = WINDOW_S,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read, self.clock = read, clock
        self.window_s, self.interval_s = window_s, interval_s
        self.samples: deque[Sample] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling in the background (once; later calls do nothing)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="refit-live-rates", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # a torn metrics file must not end the sampling
                logger.warning("live rates: metrics not sampled: %r", exc)
            self._stop.wait(self.interval_s)

    def sample(self) -> Sample:
        """Take a sample now and forget those older than the window."""
        taken = sample_from(self.read(), self.clock())
        with self._lock:
            self.samples.append(taken)
            while self.samples and taken.at - self.samples[0].at > self.window_s:
                self.samples.popleft()
        return taken

    def rates(self) -> LiveRates | None:
        """Figures over the last minute (a fresh sample against the oldest kept one);
        None until there are two samples to compare."""
        with self._lock:
            newest = self.samples[-1] if self.samples else None
        if newest is None or self.clock() - newest.at > FRESH_S:
            newest = self.sample()
        with self._lock:
            oldest = self.samples[0]
        if oldest is newest:
            return None
        return compute_rates(oldest, newest)
