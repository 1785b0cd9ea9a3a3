"""Every Prometheus metric refit exports, declared in one place.

They are plain `prometheus_client` metrics: inside a BentoML worker they land in
BentoML's multiprocess folder and appear on the service's `/metrics` beside
BentoML's own, counters and histograms summed across workers. Label values come
from fixed sets (endpoint routes, the model's labels, error reasons), so no
label can grow without bound.

The gauges of the latest drift check and of the retraining scheduler, which come
from files other processes write, are in `monitoring.state_gauges`.

Recording happens once per batch, never once per text: `observe_many` adds a
whole array to a histogram in one pass, so a GPU serving tens of thousands of
texts a second does not spend its CPU on metric calls.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from refit.core.errors import ERROR_REASONS

# Latency buckets from 1 ms to 30 s: batching spreads requests over that whole range.
_LATENCY = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.35, 0.5,
    0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_BATCH_ITEMS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_BATCH_TOKENS = (16, 64, 256, 1024, 4096, 16384, 65536, 262144)
_CHARS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_TOKENS = (4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
_FRACTION = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

# --- latency -------------------------------------------------------------------
REQUEST_SECONDS = Histogram(
    "refit_request_duration_seconds",
    "Time from a request's arrival to its response, by endpoint.",
    ["endpoint"],
    buckets=_LATENCY,
)
QUEUE_WAIT_SECONDS = Histogram(
    "refit_queue_wait_seconds",
    "Time a request waited in the queue for the model to start on it.",
    ["endpoint"],
    buckets=_LATENCY,
)
TOKENIZE_SECONDS = Histogram(
    "refit_tokenize_seconds",
    "Time to tokenize one request's texts (one batch's without refit's scheduler).",
    ["endpoint"],
    buckets=_LATENCY,
)
COMPUTE_SECONDS = Histogram(
    "refit_compute_seconds",
    "Time the model took for one forward pass.",
    ["endpoint"],
    buckets=_LATENCY,
)

# --- batches and inputs --------------------------------------------------------
BATCH_ITEMS = Histogram(
    "refit_batch_items", "Texts in one forward pass of the model.", buckets=_BATCH_ITEMS
)
BATCH_TOKENS = Histogram(
    "refit_batch_tokens", "Real (unpadded) tokens in one forward pass.", buckets=_BATCH_TOKENS
)
BATCH_PADDED_TOKENS = Histogram(
    "refit_batch_padded_tokens",
    "Token positions one forward pass computed, padding included.",
    buckets=_BATCH_TOKENS,
)
PADDING_EFFICIENCY = Histogram(
    "refit_batch_padding_efficiency",
    "Real tokens divided by padded tokens, per forward pass (1.0 = no padding).",
    buckets=_FRACTION,
)
REAL_TOKENS = Counter("refit_real_tokens", "Tokens fed to the model, padding excluded.")
PADDED_TOKENS = Counter("refit_padded_tokens", "Token positions computed, padding included.")
RECHECKED_TEXTS = Counter(
    "refit_rechecked_texts",
    "Texts the int8 backend answered again on the fp32 graph: their top two labels were "
    "closer than the version's recheck margin.",
)
INPUT_CHARS = Histogram("refit_input_chars", "Characters per input text.", buckets=_CHARS)
INPUT_TOKENS = Histogram(
    "refit_input_tokens", "Tokens per input text after truncation.", buckets=_TOKENS
)
TRUNCATED = Counter("refit_truncated_inputs", "Inputs cut to the model's max length.")

# --- predictions -----------------------------------------------------------------
PREDICTIONS = Counter("refit_predictions", "Predictions made, by predicted label.", ["label"])
CONFIDENCE = Histogram(
    "refit_prediction_confidence",
    "Probability of the predicted label.",
    buckets=(0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0),
)
MODEL_INFO = Gauge(
    "refit_model_info",
    "1 for the model version a worker serves and the backend serving it, 0 for what it served "
    "before.",
    ["version", "base_model", "backend"],
    multiprocess_mode="max",
)

NON_FINITE_SCORES = Counter(
    "refit_model_non_finite_scores",
    "Texts a model version scored NaN or inf, answered 500 and not logged, by version.",
    ["version"],
)
MODEL_SWAPS = Counter(
    "refit_model_swaps",
    "Attempts to switch the served model without a restart, by outcome (swapped, refused).",
    ["outcome"],
)
MODEL_LOAD_SECONDS = Histogram(
    "refit_model_load_seconds",
    "Time to load, check and warm up a model version before serving it.",
    buckets=(0.5, 1, 2, 5, 10, 20, 60, 120),
)
MODEL_FALLBACK = Gauge(
    "refit_model_fallback",
    "1 while a worker serves version `serving` because the champion `champion` cannot be "
    "loaded (at startup or at a hot-swap); 0 once it serves the champion again.",
    ["champion", "serving"],
    multiprocess_mode="max",
)

# --- errors and load shedding ----------------------------------------------------
ERRORS = Counter(
    "refit_request_errors",
    "Failed requests by endpoint and reason (validation, overload, model, timeout, other).",
    ["endpoint", "reason"],
)
HEAD_REFUSALS = Counter(
    "refit_request_head_refusals",
    "Connections refused while their request head arrived, before any route saw them, by "
    "reason: url (414, over REFIT_MAX_URL_BYTES), header_size, header_count, head_size (431).",
    ["reason"],
)
IN_FLIGHT_TEXTS = Gauge(
    "refit_in_flight_texts",
    "Texts accepted and not yet answered (queued or computing), summed over workers.",
    multiprocess_mode="livesum",
)
QUEUE_TEXTS = Gauge(
    "refit_queue_texts",
    "Texts waiting in refit's scheduler queues for the model, summed over workers.",
    multiprocess_mode="livesum",
)
QUEUE_TOKENS = Gauge(
    "refit_queue_tokens",
    "Real tokens waiting in refit's scheduler queues, summed over workers.",
    multiprocess_mode="livesum",
)
REFUSALS = Counter(
    "refit_refusals",
    "Requests the scheduler did not serve, by cause: over_budget and queue_full (429 on "
    "arrival), deadline (503, dropped uncomputed), model_error (500), cancelled (the client "
    "left), closed (the worker was stopping).",
    ["cause"],
)
THROUGHPUT_TOKENS = Gauge(
    "refit_scheduler_tokens_per_second",
    "The throughput each worker's scheduler admits by: real tokens per second of model time.",
    multiprocess_mode="liveall",
)

# --- cost ------------------------------------------------------------------------
BUSY_SECONDS = Counter(
    "refit_compute_busy_seconds", "Seconds spent tokenizing and running the model.", ["device"]
)
COST_USD = Counter(
    "refit_compute_cost_usd",
    "Busy seconds priced at the machine's hourly price (REFIT_HOURLY_PRICE_USD).",
    ["device"],
)
HOURLY_PRICE = Gauge(
    "refit_machine_hourly_price_usd",
    "Configured hourly price of the machine serving the model.",
    ["device"],
    multiprocess_mode="max",
)

# --- GPU ---------------------------------------------------------------------------
GPU_MEMORY_BYTES = Gauge(
    "refit_gpu_memory_allocated_bytes",
    "GPU memory held by tensors in a worker.",
    ["device"],
    multiprocess_mode="livesum",
)
GPU_UTILIZATION = Gauge(
    "refit_gpu_utilization_ratio",
    "Share of the last sample period the GPU was busy (NVML).",
    ["device"],
    multiprocess_mode="livemax",
)

# --- prediction log ---------------------------------------------------------------
LOG_QUEUE_DEPTH = Gauge(
    "refit_prediction_log_queue_depth",
    "Prediction records waiting to be written.",
    multiprocess_mode="livesum",
)
LOG_WRITTEN = Counter("refit_prediction_log_written", "Prediction records written durably.")
LOG_DROPPED = Counter(
    "refit_prediction_log_dropped",
    "Prediction records dropped, by reason (queue_full, write_failed).",
    ["reason"],
)
LOG_UNCONFIRMED = Counter(
    "refit_prediction_log_unconfirmed_responses",
    "Responses sent before their predictions were confirmed written (log slow or failing); "
    "each carries the header X-Refit-Log: unconfirmed.",
)
LOG_REFUSED = Counter(
    "refit_prediction_log_refused_responses",
    "Requests answered 503 because their predictions were not confirmed written in time "
    "(REFIT_LOG_CONFIRM_MODE=strict).",
)
LOG_FAILING = Gauge(
    "refit_prediction_log_failing",
    "1 while a worker's prediction log cannot write (database down, full or locked; the "
    "records wait in memory and are retried), 0 once a write succeeds.",
    multiprocess_mode="livemax",
)
LOG_WRITE_SECONDS = Histogram(
    "refit_prediction_log_write_seconds",
    "Time to write one group of records to the prediction log.",
    buckets=_LATENCY,
)
FEEDBACK = Counter(
    "refit_feedback_items",
    "Feedback items received, by outcome (stored, updated, unchanged, new_label, refused, "
    "unknown_id).",
    ["outcome"],
)

LOG_DROP_REASONS: Final = ("queue_full", "write_failed")
FEEDBACK_OUTCOMES: Final = (
    "stored", "updated", "unchanged", "new_label", "refused", "unknown_id"
)  # fmt: skip
SWAP_OUTCOMES: Final = ("swapped", "refused")
HEAD_REFUSAL_REASONS: Final = ("url", "header_size", "header_count", "head_size")
REFUSAL_CAUSES: Final = (
    "over_budget",
    "queue_full",
    "deadline",
    "model_error",
    "cancelled",
    "closed",
)


def create_series(endpoints: tuple[str, ...]) -> None:
    """Create every labelled series at zero, so that the first event shows up in `rate`.

    A counter series born at 1 loses that first increase: Prometheus sees no
    earlier sample to take a difference from, and a single burst never alerts.
    """
    for endpoint in endpoints:
        for reason in ERROR_REASONS:
            ERRORS.labels(endpoint, reason)
    for reason in LOG_DROP_REASONS:
        LOG_DROPPED.labels(reason)
    for outcome in FEEDBACK_OUTCOMES:
        FEEDBACK.labels(outcome)
    for outcome in SWAP_OUTCOMES:
        MODEL_SWAPS.labels(outcome)
    for cause in REFUSAL_CAUSES:
        REFUSALS.labels(cause)
    for reason in HEAD_REFUSAL_REASONS:
        HEAD_REFUSALS.labels(reason)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Add every value of `values` to an unlabelled histogram (or a labelled child).

    Equivalent to calling `observe` once per value, but one bucket increment per
    bucket instead of per value. It relies on prometheus_client storing
    per-bucket (not cumulative) counts in `_buckets`; `test_metrics_module`
    checks that against `observe`.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(values.sum()))
