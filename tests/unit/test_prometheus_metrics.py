"""The metrics module: bulk histogram updates and per-batch recording."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from refit.core.backends.outputs import BatchOutput
from refit.monitoring import prometheus_metrics as metrics
from refit.monitoring.recording import PassRecorder, PredictionRecorder

BUCKETS = (0.1, 0.5, 1.0, 5.0)


def _histogram(name: str) -> tuple[Histogram, CollectorRegistry]:
    registry = CollectorRegistry()
    return Histogram(name, "test", buckets=BUCKETS, registry=registry), registry


def test_observe_many_equals_observe_one_by_one() -> None:
    values = np.array([0.05, 0.1, 0.1000001, 0.7, 1.0, 3.0, 7.5, 0.0, np.nan])
    bulk, bulk_registry = _histogram("bulk")
    single, single_registry = _histogram("bulk")
    metrics.observe_many(bulk, values)
    for value in values[~np.isnan(values)]:
        single.observe(float(value))
    assert _samples(bulk_registry) == _samples(single_registry)


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    ]


def test_observe_many_on_a_labelled_child_and_empty_input() -> None:
    registry = CollectorRegistry()
    labelled = Histogram("lab", "test", ["k"], buckets=BUCKETS, registry=registry)
    metrics.observe_many(labelled.labels("a"), np.array([]))
    metrics.observe_many(labelled.labels("a"), np.array([0.2, 0.3]))
    assert registry.get_sample_value("lab_count", {"k": "a"}) == 2
    assert registry.get_sample_value("lab_bucket", {"k": "a", "le": "0.5"}) == 2
    assert registry.get_sample_value("lab_sum", {"k": "a"}) == pytest.approx(0.5)


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_a_pass_and_a_request_move_the_counters_and_histograms_they_should() -> None:
    labels = ["a", "b", "c"]
    passes = PassRecorder(endpoint="/test", device="cpu", hourly_price=3.6)
    recorder = PredictionRecorder(endpoint="/test", labels=labels)
    texts = ["x" * 10, "y" * 300, "z" * 20]
    out = BatchOutput(
        probs=np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2]], dtype=np.float32),
        n_tokens=np.array([5, 64, 9]),
        truncated=np.array([False, True, False]),
        padded_tokens=5 + 64 + 9 + 20,
        tokenize_seconds=0.01,
        compute_seconds=0.09,
    )
    before = {
        "a": _value("refit_predictions_total", {"label": "a"}),
        "b": _value("refit_predictions_total", {"label": "b"}),
        "real": _value("refit_real_tokens_total"),
        "padded": _value("refit_padded_tokens_total"),
        "trunc": _value("refit_truncated_inputs_total"),
        "cost": _value("refit_compute_cost_usd_total", {"device": "cpu"}),
        "busy": _value("refit_compute_busy_seconds_total", {"device": "cpu"}),
        "items": _value("refit_batch_items_count"),
        "conf": _value("refit_prediction_confidence_count"),
        "chars": _value("refit_input_chars_sum"),
        "compute": _value("refit_compute_seconds_count", {"endpoint": "/test"}),
        "rechecked": _value("refit_rechecked_texts_total"),
    }
    passes.forward_pass(len(texts), int(out.n_tokens.sum()), out.padded_tokens, 0.19, 2)
    passes.busy(out.tokenize_seconds)
    recorder.requests(texts, out, [out.tokenize_seconds], [])
    assert _value("refit_predictions_total", {"label": "a"}) - before["a"] == 2
    assert _value("refit_predictions_total", {"label": "b"}) - before["b"] == 1
    assert _value("refit_real_tokens_total") - before["real"] == 78
    assert _value("refit_padded_tokens_total") - before["padded"] == 98
    assert _value("refit_truncated_inputs_total") - before["trunc"] == 1
    assert _value("refit_rechecked_texts_total") - before["rechecked"] == 2
    assert _value("refit_compute_busy_seconds_total", {"device": "cpu"}) - before[
        "busy"
    ] == pytest.approx(0.2)
    # 0.2 busy seconds at 3.6 USD an hour is 0.0002 USD.
    assert _value("refit_compute_cost_usd_total", {"device": "cpu"}) - before[
        "cost"
    ] == pytest.approx(0.0002)
    assert _value("refit_batch_items_count") - before["items"] == 1
    assert _value("refit_prediction_confidence_count") - before["conf"] == 3
    assert _value("refit_input_chars_sum") - before["chars"] == 330
    assert _value("refit_compute_seconds_count", {"endpoint": "/test"}) - before["compute"] == 1
    assert _value("refit_machine_hourly_price_usd", {"device": "cpu"}) == 3.6


def test_requests_answered_together_are_observed_per_request_and_per_text() -> None:
    recorder = PredictionRecorder(endpoint="/wait", labels=["a"])
    joined = BatchOutput(  # two one-text requests answered after one pass
        probs=np.array([[1.0], [1.0]], dtype=np.float32),
        n_tokens=np.array([3, 4]),
        truncated=np.array([False, False]),
    )
    before = _value("refit_prediction_confidence_count")
    recorder.requests(["x", "y"], joined, [0.001, 0.003], [0.01, 0.2])
    assert _value("refit_queue_wait_seconds_count", {"endpoint": "/wait"}) == 2
    assert _value("refit_queue_wait_seconds_sum", {"endpoint": "/wait"}) == pytest.approx(0.21)
    assert _value("refit_tokenize_seconds_count", {"endpoint": "/wait"}) == 2
    assert _value("refit_tokenize_seconds_sum", {"endpoint": "/wait"}) == pytest.approx(0.004)
    assert _value("refit_prediction_confidence_count") - before == 2
