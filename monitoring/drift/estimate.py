"""Accuracy of a window: estimated from confidence alone, and actual where feedback exists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.calibration import Calibration
from training.scores import scores_with_new_labels


@dataclass(frozen=True)
class AccuracyFigures:
    estimated_accuracy: float | None  # mean calibrated confidence (CBPE)
    actual_accuracy: float | None  # over the rows with feedback
    actual_macro_f1: float | None
    labelled_rows: int  # rows with feedback


def estimated_accuracy(calibration: Calibration, confidence: pd.Series) -> float | None:
    """Mean calibrated confidence of the window; None when no row has a confidence."""
    values = confidence.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).any():
        return None
    return calibration.estimate(values)


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
    return AccuracyFigures(
        estimated_accuracy(calibration, rows["score"]), accuracy, macro_f1, labelled
    )
