"""Gauges read from state files other processes write: the latest drift check and the
retraining scheduler's state.

The service's `__metrics__` fills them at each scrape (`monitoring.drift.export`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# The latest drift check, as gauges in a registry of their own. A check runs in
# another process (cron, the CLI, a scheduler) and leaves a JSON summary; the
# service's `__metrics__` fills these from it at each scrape. A plain Gauge would not
# do: in BentoML's multiprocess mode it is written to per-worker files and exported
# once per worker with a `pid` label, and it cannot be unset, so "no feedback in the
# window" would read as an actual accuracy of 0. Every series carries the checked
# model version.
DRIFT_GAUGES: Final = {
    "refit_drift_score": "Latest drift check: score of each signal, higher is more drift "
    "(-log10 of a p-value; a distance or a domain classifier's ROC AUC as they are).",
    "refit_drift_threshold": "Latest drift check: threshold of each signal on the score's "
    "scale; the signal drifted when its score is above it.",
    "refit_drift_detected": "1 when the latest drift check found drift, else 0 (also 0 "
    "when the window was too small for a verdict).",
    "refit_drift_estimated_accuracy": "Accuracy estimated without labels (mean calibrated "
    "confidence) over the latest drift check's window.",
    "refit_drift_estimate_calibration_rows": "Labelled predictions the latest drift check's "
    "accuracy estimate was calibrated on: rows held out at training plus feedback labels "
    "(feedback: refit_drift_estimate_calibration_feedback_rows).",
    "refit_drift_estimate_calibration_feedback_rows": "Of the latest accuracy estimate's "
    "calibration rows, those that came from feedback.",
    "refit_drift_estimate_reliable": "1 when the latest check's accuracy estimate can be "
    "trusted, 0 when the embedding or predicted-label signal drifted (new topics or a new "
    "label mix: the estimate then says nothing; judge by feedback).",
    "refit_drift_actual_accuracy": "Accuracy over the predictions of the latest drift "
    "check's window that received feedback; absent without feedback.",
    "refit_drift_window_size": "Predictions logged in the latest drift check's window.",
    "refit_drift_last_check_timestamp_seconds": "Unix time of the latest drift check.",
}


class DriftGauges(Collector):
    """The `DRIFT_GAUGES` series of one drift summary (`DriftResult.to_dict()`)."""

    def __init__(self) -> None:
        self.summary: Mapping[str, Any] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        summary = self.summary
        if summary is None:
            return
        version = str(summary["model_version"])
        families = {
            name: GaugeMetricFamily(name, text, labels=_drift_labels(name))
            for name, text in DRIFT_GAUGES.items()
        }
        for signal in summary.get("signals", []):
            if signal.get("score") is not None:
                labels = [str(signal["name"]), version]
                families["refit_drift_score"].add_metric(labels, float(signal["score"]))
                families["refit_drift_threshold"].add_metric(
                    labels, float(signal["score_threshold"])
                )
        checked = datetime.fromisoformat(str(summary["checked_at"])).timestamp()
        plain = {
            "refit_drift_detected": 1.0 if summary["status"] == "drift" else 0.0,
            "refit_drift_estimated_accuracy": summary.get("estimated_accuracy"),
            "refit_drift_estimate_calibration_rows": summary.get("calibration_rows"),
            "refit_drift_estimate_calibration_feedback_rows": summary.get(
                "calibration_feedback_rows"
            ),
            "refit_drift_estimate_reliable": float(summary.get("estimate_reliable", True)),
            "refit_drift_actual_accuracy": summary.get("actual_accuracy"),
            "refit_drift_window_size": summary.get("window_size"),
            "refit_drift_last_check_timestamp_seconds": checked,
        }
        for name, value in plain.items():
            if value is not None:
                families[name].add_metric([version], float(value))
        yield from families.values()


def _drift_labels(name: str) -> list[str]:
    per_signal = name in ("refit_drift_score", "refit_drift_threshold")
    return ["signal", "model_version"] if per_signal else ["model_version"]


class WatchGauges(Collector):
    """The `refit watch` scheduler's state file (`retraining.schedule.WatchState`) as gauges."""

    def __init__(self) -> None:
        self.state: Mapping[str, Any] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = self.state
        if state is None:
            return
        for key, name, text in (
            (
                "last_check",
                "refit_watch_last_check_timestamp_seconds",
                "Unix time of the scheduler's latest drift check.",
            ),
            (
                "next_run",
                "refit_watch_next_run_timestamp_seconds",
                "Unix time of the scheduler's next round.",
            ),
        ):
            if state.get(key):
                yield GaugeMetricFamily(
                    name, text, value=datetime.fromisoformat(str(state[key])).timestamp()
                )
        for key, text in (
            ("checks", "Drift checks the scheduler completed."),
            ("failures", "Scheduler rounds that failed (check or retrain errors)."),
            ("retrains", "Retrains the scheduler ran, promoted or not."),
        ):
            yield CounterMetricFamily(f"refit_watch_{key}", text, value=float(state.get(key, 0)))


DRIFT_REGISTRY = CollectorRegistry(auto_describe=False)
DRIFT = DriftGauges()
WATCH = WatchGauges()
DRIFT_REGISTRY.register(DRIFT)
DRIFT_REGISTRY.register(WATCH)
