"""Accuracy of a window: estimated from confidence alone, and actual where feedback exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from refit.training.calibration import Calibration, fit_calibration
from refit.training.scores import scores_with_new_labels

# The estimate stops meaning anything when the inputs are no longer what the model was
# calibrated on: texts on new topics keep confident-looking scores. Measured on the
# Debian real-text benchmark: every method tried claimed 0.48-0.69 accuracy on traffic
# from unseen sections, where the true figure was 0. When one of these signals drifts
# the estimate is marked unreliable, and the retraining trigger does not use it.
UNRELIABLE_WHEN: Final = ("embedding", "predicted_label")
_Z95: Final = 1.96
# Cross-fitting folds: a window row with feedback is calibrated by the other folds' rows.
FOLDS: Final = 5
_HASH_KEY: Final = "refit-calibrated"  # pandas wants 16 characters


@dataclass(frozen=True)
class AccuracyFigures:
    estimated_accuracy: float | None  # mean calibrated confidence (CBPE)
    estimated_margin: float | None  # half-width of its 95% interval
    actual_accuracy: float | None  # over the rows with feedback
    actual_macro_f1: float | None
    labelled_rows: int  # rows with feedback
    calibration_rows: int = 0  # labelled predictions the estimate's calibration was fitted on
    calibration_feedback_rows: int = 0  # of them, feedback rows (the rest held out at training)


@dataclass(frozen=True)
class Estimate:
    """A window's estimated accuracy, the half-width of its 95% interval, and the labelled
    rows behind it (None, None: no row of the window has a confidence)."""

    value: float | None
    margin: float | None
    calibration_rows: int
    feedback_rows: int


def labelled_rows(reference: pd.DataFrame, feedback: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows a calibration is fitted on, as `key`, `score`, `correct`, `feedback`.

    `reference`: a reference profile's frame, whose held-out rows (`outputs`) no model
    version trained on. `feedback`: logged predictions of the version with a true label
    (`id`, `label`, `score`, `true_label`), if any; a label the model does not know is a
    miss.
    Keys are the log's prediction ids, and `reference:<row>` for the reference's rows.
    """
    held_out = reference[reference["outputs"].astype(bool)]
    if feedback is None:
        feedback = pd.DataFrame({"id": [], "label": [], "score": [], "true_label": []})
    parts = [
        pd.DataFrame(
            {
                "key": [f"reference:{i}" for i in held_out.index],
                "score": held_out["score"].to_numpy(dtype=np.float64),
                "correct": (held_out["label"] == held_out["true_label"]).to_numpy(),
                "feedback": False,
            }
        ),
        pd.DataFrame(
            {
                "key": feedback["id"].astype(str).to_numpy(),
                "score": feedback["score"].to_numpy(dtype=np.float64, na_value=np.nan),
                "correct": (feedback["label"] == feedback["true_label"]).to_numpy(),
                "feedback": True,
            }
        ),
    ]
    rows = pd.concat([part for part in parts if len(part)], ignore_index=True)
    if rows.empty:
        return pd.DataFrame({"key": [], "score": [], "correct": [], "feedback": []})
    return rows[np.isfinite(rows["score"].to_numpy(dtype=np.float64))].reset_index(drop=True)


def fold_of(keys: pd.Series | Sequence[str], folds: int = FOLDS) -> np.ndarray:
    """The cross-fitting fold of each key: a fixed hash, the same in every check."""
    hashed = pd.util.hash_array(np.asarray(keys, dtype=object), hash_key=_HASH_KEY)
    return (hashed % np.uint64(folds)).astype(np.int64)


def cross_fitted(
    labelled: pd.DataFrame, window: pd.DataFrame, folds: int = FOLDS
) -> tuple[np.ndarray, Calibration | None]:
    """(each window row's calibrated confidence, the map fitted on every labelled row).

    `labelled`: `labelled_rows`. `window`: `score`, and `id` where rows can have
    feedback. A window row that is itself a labelled row is mapped by a calibration
    fitted without its fold, so no row's own label calibrates its own confidence; the
    others by the map of all labelled rows. NaN where a row has no confidence, or
    where every labelled row shares its fold.
    """
    scores = window["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    if labelled.empty:
        return np.full(len(scores), np.nan), None
    full = fit_calibration(labelled["score"], labelled["correct"])
    expected = full.apply(np.nan_to_num(scores))
    keys = window["id"].astype(str) if "id" in window else pd.Series([""] * len(window))
    own = keys.isin(set(labelled["key"])).to_numpy()
    if own.any():
        labelled_fold = fold_of(labelled["key"], folds)
        window_fold = fold_of(keys[own], folds)
        positions = np.flatnonzero(own)
        for fold in np.unique(window_fold):
            others = labelled[labelled_fold != fold]
            chosen = positions[window_fold == fold]
            if others.empty:
                expected[chosen] = np.nan
                continue
            part = fit_calibration(others["score"], others["correct"])
            expected[chosen] = part.apply(scores[chosen])
    expected[~np.isfinite(scores)] = np.nan
    return expected, full


def estimate_window(labelled: pd.DataFrame, window: pd.DataFrame, folds: int = FOLDS) -> Estimate:
    """The window's mean calibrated confidence (`cross_fitted`) and its 95% interval.

    The interval covers two sources of error: which predictions the window happened to
    hold (each row right with its calibrated probability g: variance mean g(1-g) / rows)
    and which rows the calibration was fitted on (each bin's accuracy a binomial mean
    over its rows, weighted by the window's share in the bin: `Calibration.variance`).
    As feedback adds rows the second term shrinks, and the interval narrows to the
    window's own spread.
    """
    expected, full = cross_fitted(labelled, window, folds)
    used = expected[np.isfinite(expected)]
    feedback = int(labelled["feedback"].sum()) if len(labelled) else 0
    if full is None or used.size == 0:
        return Estimate(None, None, len(labelled), feedback)
    scores = window["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    variance = float((used * (1 - used)).mean()) / used.size + full.variance(scores)
    return Estimate(float(used.mean()), _Z95 * math.sqrt(variance), len(labelled), feedback)


def estimate_reliable(drifted_signals: Sequence[str]) -> bool:
    """Whether the label-free estimate can be trusted given the signals that drifted."""
    return not any(name in UNRELIABLE_WHEN for name in drifted_signals)


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
    rows: pd.DataFrame,
    labelled: pd.DataFrame,
    model_labels: Sequence[str],
) -> AccuracyFigures:
    """Both figures for log rows with `label`, `score`, `true_label` (and `id`, to know a
    window row among the feedback rows); `labelled` is `labelled_rows`."""
    accuracy, macro_f1, labelled_count = actual_figures(
        rows["label"], rows["true_label"], model_labels
    )
    found = estimate_window(labelled, rows)
    return AccuracyFigures(
        found.value,
        found.margin,
        accuracy,
        macro_f1,
        labelled_count,
        found.calibration_rows,
        found.feedback_rows,
    )
