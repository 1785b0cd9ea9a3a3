"""The calibration methods calibration_bench.py compares, each fitted on labelled scored
rows (`score`, `label`, `true_label`, `probs`, `correct`) and applied to a window.

Only histogram binning is refit's own (`refit.training.calibration`); the others are
the usual alternatives, built on scikit-learn and SciPy, for comparison:

* isotonic: scikit-learn's isotonic regression of correctness on top probability,
  with the interval refit used before (binomial variance of the calibration set's
  accuracy over all its rows);
* platt: a logistic regression of correctness on the logit of the top probability;
* temperature: one temperature for the logits (log-probabilities), fitted by the
  likelihood of the true labels; the top probability is then recomputed. It needs every
  class's probability, which the prediction log keeps but a reference profile does not;
* temperature, then binning: binning of correctness on the temperature-scaled top
  probability (the temperature fitted on the same rows), so the bins rank rows by a
  confidence that uses every class's probability;
* per-class binning: one binning map per predicted label that has enough rows, the
  pooled map for the others.

For the methods without bins, the calibration's share of the interval is the mean of
g(1-g) over the calibration rows, divided by their number: the variance of their mean
residual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logit, softmax
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from refit.training.calibration import ROWS_PER_BIN, Calibration, fit_calibration

_EPS = 1e-6


class Fitted:
    """A fitted map: calibrated confidence per row, and the map's share of the variance
    of a window's mean."""

    def apply(self, rows: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def variance(self, rows: pd.DataFrame) -> float:
        raise NotImplementedError


@dataclass
class Binned(Fitted):
    calibration: Calibration

    def apply(self, rows: pd.DataFrame) -> np.ndarray:
        return self.calibration.apply(rows["score"])

    def variance(self, rows: pd.DataFrame) -> float:
        return self.calibration.variance(rows["score"])


@dataclass
class Smooth(Fitted):
    """A map without bins, with the residual-variance interval term."""

    map: Callable[[pd.DataFrame], np.ndarray]
    calibration_variance: float

    def apply(self, rows: pd.DataFrame) -> np.ndarray:
        return self.map(rows)

    def variance(self, rows: pd.DataFrame) -> float:
        return self.calibration_variance


def _residual_variance(values: np.ndarray) -> float:
    return float((values * (1 - values)).mean()) / max(values.size, 1)


def isotonic(rows: pd.DataFrame) -> Fitted:
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(rows["score"], rows["correct"].astype(float))
    accuracy = float(rows["correct"].mean())
    return Smooth(
        lambda w: model.predict(w["score"].to_numpy()), accuracy * (1 - accuracy) / len(rows)
    )


def binning(rows: pd.DataFrame, rows_per_bin: int = ROWS_PER_BIN) -> Fitted:
    return Binned(fit_calibration(rows["score"], rows["correct"], rows_per_bin=rows_per_bin))


def platt(rows: pd.DataFrame) -> Fitted:
    def feature(frame: pd.DataFrame) -> np.ndarray:
        return logit(np.clip(frame["score"].to_numpy(), _EPS, 1 - _EPS)).reshape(-1, 1)

    model = LogisticRegression(C=1e6).fit(feature(rows), rows["correct"].astype(int))
    fitted = model.predict_proba(feature(rows))[:, 1]
    return Smooth(lambda w: model.predict_proba(feature(w))[:, 1], _residual_variance(fitted))


def _log_probs(frame: pd.DataFrame) -> np.ndarray:
    return np.log(np.clip(np.stack(frame["probs"].to_numpy()).astype(np.float64), 1e-12, 1))


def _temperature(rows: pd.DataFrame, labels: list[str]) -> float:
    """The temperature that maximises the likelihood of the rows' true labels."""
    index = {label: i for i, label in enumerate(labels)}
    known = rows[rows["true_label"].isin(index)]
    logits = _log_probs(known)
    truth = known["true_label"].map(index).to_numpy()

    def loss(t: float) -> float:
        return float(-log_softmax(logits / t, axis=1)[np.arange(len(truth)), truth].mean())

    return float(minimize_scalar(loss, bounds=(0.05, 20.0), method="bounded").x)


def _scaled_top(frame: pd.DataFrame, t: float) -> np.ndarray:
    return softmax(_log_probs(frame) / t, axis=1).max(axis=1)


def temperature(rows: pd.DataFrame, labels: list[str]) -> Fitted:
    t = _temperature(rows, labels)
    return Smooth(lambda w: _scaled_top(w, t), _residual_variance(_scaled_top(rows, t)))


@dataclass
class ScaledBinned(Fitted):
    """Binning on the temperature-scaled top probability."""

    t: float
    calibration: Calibration

    def apply(self, rows: pd.DataFrame) -> np.ndarray:
        return self.calibration.apply(_scaled_top(rows, self.t))

    def variance(self, rows: pd.DataFrame) -> float:
        return self.calibration.variance(_scaled_top(rows, self.t))


def temperature_binning(rows: pd.DataFrame, labels: list[str]) -> Fitted:
    t = _temperature(rows, labels)
    return ScaledBinned(t, fit_calibration(_scaled_top(rows, t), rows["correct"]))


@dataclass
class PerClass(Fitted):
    pooled: Calibration
    by_label: dict[str, Calibration]

    def _each(self, rows: pd.DataFrame) -> list[tuple[np.ndarray, Calibration]]:
        labels = rows["label"].astype(str).to_numpy()
        found = []
        for label in np.unique(labels):
            found.append((labels == label, self.by_label.get(label, self.pooled)))
        return found

    def apply(self, rows: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(rows))
        scores = rows["score"].to_numpy()
        for mask, calibration in self._each(rows):
            out[mask] = calibration.apply(scores[mask])
        return out

    def variance(self, rows: pd.DataFrame) -> float:
        scores = rows["score"].to_numpy()
        return sum(
            (mask.mean() ** 2) * calibration.variance(scores[mask])
            for mask, calibration in self._each(rows)
        )


def per_class(rows: pd.DataFrame, min_rows: int = 2 * ROWS_PER_BIN) -> Fitted:
    pooled = fit_calibration(rows["score"], rows["correct"])
    by_label = {
        str(label): fit_calibration(part["score"], part["correct"])
        for label, part in rows.groupby("label")
        if len(part) >= min_rows
    }
    return PerClass(pooled, by_label)


def methods(labels: list[str], probabilities: bool) -> dict[str, Callable[[pd.DataFrame], Fitted]]:
    """Every method; temperature scaling only where rows keep every class's probability."""
    found: dict[str, Callable[[pd.DataFrame], Fitted]] = {
        "isotonic (before)": isotonic,
        "binning": binning,
        "binning, 50 rows a bin": lambda rows: binning(rows, 50),
        "platt": platt,
        "per-class binning": per_class,
    }
    if probabilities:
        found["temperature"] = lambda rows: temperature(rows, labels)
        found["temperature, then binning"] = lambda rows: temperature_binning(rows, labels)
    return found
