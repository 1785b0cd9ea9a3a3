"""Accuracy of a window: estimated from confidence alone, and actual where feedback exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from refit.training.calibration import Calibration
from refit.training.scores import scores_with_new_labels

# The estimate stops meaning anything when the inputs are no longer what the model was
# calibrated on: texts on new topics keep confident-looking scores. Measured on the
# Debian real-text benchmark: every method tried claimed 0.48-0.69 accuracy on traffic
# from unseen sections, where the true figure was 0. When one of these signals drifts
# the estimate is marked unreliable, and the retraining trigger does not use it.
UNRELIABLE_WHEN: Final = ("embedding", "predicted_label")
_Z95: Final = 1.96


@dataclass(frozen=True)
class AccuracyFigures:
    estimated_accuracy: float | None  # mean calibrated confidence (CBPE)
    estimated_margin: float | None  # half-width of its 95% interval
    actual_accuracy: float | None  # over the rows with feedback
    actual_macro_f1: float | None
    labelled_rows: int  # rows with feedback


def estimated_accuracy(
    calibration: Calibration, confidence: pd.Series
) -> tuple[float | None, float | None]:
    """(mean calibrated confidence of the window, the half-width of its 95% interval);
    (None, None) when no row has a confidence.

    The interval covers two sources of error: which predictions the window happened to
    hold (the calibrated confidences g, variance mean g(1-g) / rows) and which rows the
    calibration was fitted on (its accuracy's binomial variance over its rows). On the
    real-text benchmark it held the true accuracy in 93.5-96% of resampled windows.
    """
    values = confidence.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    expected = calibration.apply(values)
    variance = float((expected * (1 - expected)).mean()) / values.size
    variance += calibration.accuracy * (1 - calibration.accuracy) / max(calibration.n, 1)
    return float(expected.mean()), _Z95 * math.sqrt(variance)


def estimate_reliable(drifted_signals: Sequence[str]) -> bool:
    """Whether the label-free estimate can be trusted given the signals that drifted."""
    return not any(name in UNRELIABLE_WHEN for name in drifted_signals)


def estimate_words(
    estimate: float | None, margin: float | None, reliable: bool, drifted: Sequence[str] = ()
) -> tuple[str, str]:
    """How the estimate reads wherever refit shows it (CLI, report, front page): the figure
    with its 95% interval, e.g. "0.810 ± 0.021", and "" or why not to trust it."""
    if estimate is None:
        return "n/a", ""
    text = f"{estimate:.3f}" + ("" if margin is None else f" ± {margin:.3f}")
    if reliable:
        return text, ""
    where = f" in {', '.join(drifted)}" if drifted else ""
    return text, f"unreliable: the inputs drifted{where}; only feedback can tell"


def actual_figures(
    predicted: pd.Series, true: pd.Series, model_labels: Sequence[str]
) -> tuple[float | None, float | None, int]:
    """(accuracy, macro-F1, rows) over the rows with a true label.

    A true label the model does not know (feedback can bring new ones) counts as a
    miss, and as a class of its own in the macro average.
    """
    labelled = true.notna().to_numpy()
    if not labelled.any():
        return None, None, 0
    truth = true[labelled].astype(str).tolist()
    guess = predicted[labelled].astype(str).tolist()
    metrics = scores_with_new_labels(truth, guess, model_labels)
    return metrics.accuracy, metrics.macro_f1, len(truth)


def accuracy_figures(
    rows: pd.DataFrame, calibration: Calibration, model_labels: Sequence[str]
) -> AccuracyFigures:
    """Both figures for log rows with `label`, `score` and `true_label`."""
    accuracy, macro_f1, labelled = actual_figures(rows["label"], rows["true_label"], model_labels)
    estimate, margin = estimated_accuracy(calibration, rows["score"])
    return AccuracyFigures(estimate, margin, accuracy, macro_f1, labelled)
