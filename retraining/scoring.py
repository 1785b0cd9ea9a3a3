"""Measuring champion and challenger on the gate's yardsticks.

Both models are judged by the code that serves them, each on the backend that will
serve it (`core.backends`, loaded as a server loads it: `retraining.job.gate`):
macro-F1 on held-out recent data and on the champion's original test split, and
the median time to classify a fixed batch.
"""

from __future__ import annotations

import statistics
import time

import pandas as pd

from refit.core.backends.base import Backend
from refit.retraining.gate import Scores
from refit.training.scores import scores_with_new_labels

# Texts timed to compare the two models' latency; the same texts every time.
LATENCY_BATCH = 64
_LATENCY_RUNS = 5


def macro_f1(classifier: Backend, frame: pd.DataFrame) -> float:
    """Macro-F1 over the classes `frame` holds, the same classes for both models
    (`ClassificationMetrics.truth_macro_f1`: on the Debian benchmark's original test,
    a challenger that had learned six new sections read 0.757 instead of 0.834 with
    every stray new-label prediction counted as a class of its own)."""
    out = classifier.predict(frame["text"].tolist())
    predicted = [classifier.labels[i] for i in out.label_ids]
    # Recent data may hold labels the champion never learned: each counts, at F1 0.
    truth = frame["label"].tolist()
    return scores_with_new_labels(truth, predicted, classifier.labels).truth_macro_f1


def batch_seconds(champion: Backend, challenger: Backend, texts: list[str]) -> tuple[float, float]:
    """Median time of each model to classify `texts`, timed alternately.

    Taking turns spreads whatever else the machine does over both models alike;
    timing one model's runs and then the other's let a burst of outside load land on
    one side only and fail the gate's latency rule.
    """
    runs: dict[int, list[float]] = {0: [], 1: []}
    models = (champion, challenger)
    for model in models:
        model.predict(texts)  # warm: the first calls pay for allocations
    for _ in range(_LATENCY_RUNS):
        for side, model in enumerate(models):
            started = time.perf_counter()
            model.predict(texts)
            runs[side].append(time.perf_counter() - started)
    return statistics.median(runs[0]), statistics.median(runs[1])


def score_both(
    champion: Backend,
    challenger: Backend,
    recent: pd.DataFrame,
    original: pd.DataFrame,
) -> tuple[Scores, Scores]:
    """Both models on the gate's yardsticks: (champion's scores, challenger's)."""
    batch = original["text"].tolist()[:LATENCY_BATCH]
    seconds = batch_seconds(champion, challenger, batch)
    return (
        Scores(macro_f1(champion, recent), macro_f1(champion, original), seconds[0]),
        Scores(macro_f1(challenger, recent), macro_f1(challenger, original), seconds[1]),
    )
