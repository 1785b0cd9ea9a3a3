"""Candidate two-sample tests for the embedding drift signal (bench/embedding_signal.py).

Each takes (reference rows, window rows) and returns a p-value of "the window comes
from the reference's distribution"; the signal drifts below the test's `ALPHA`.

* `knn`: refit's cross-fitted k-NN novelty with a one-sided Mann-Whitney U test
  (monitoring/drift/novelty.py), today's test.
* `mmd`: refit's MMD permutation test (monitoring/drift/mmd.py: Gaussian kernel, median
  bandwidth, 500 relabellings; Gretton et al., 2012). Its smallest p-value is 1/501,
  hence its threshold 0.01, the service's default.
* `c2st`: classifier two-sample test: a logistic regression telling window from
  reference, its out-of-fold scores compared with a one-sided Mann-Whitney U test
  (Lopez-Paz & Oquab, 2017).
* `ks_max` / `ks_entropy`: Kolmogorov-Smirnov on the top probability or on the entropy
  of the output distribution (Rabanser et al., 2019: "Failing loudly").

alibi-detect implements MMD and classifier tests too, but with TensorFlow or PyTorch
backends and pins of its own; these few lines need numpy, scipy and scikit-learn only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import ks_2samp, mannwhitneyu
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from refit.monitoring.drift.mmd import mmd_p_value
from refit.monitoring.drift.novelty import novelty_p_value

Test = Callable[[np.ndarray, np.ndarray], float]


def knn(reference: np.ndarray, current: np.ndarray) -> float:
    return novelty_p_value(reference.astype(np.float32), current.astype(np.float32))


def mmd(reference: np.ndarray, current: np.ndarray) -> float:
    return mmd_p_value(reference.astype(np.float32), current.astype(np.float32))


def c2st(reference: np.ndarray, current: np.ndarray, seed: int = 0) -> float:
    rows = np.concatenate([reference, current]).astype(np.float64)
    target = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    model = LogisticRegression(max_iter=500, class_weight="balanced")
    scores = cross_val_predict(model, rows, target, cv=5, method="decision_function")
    return float(
        mannwhitneyu(scores[target == 1], scores[target == 0], alternative="greater").pvalue
    )


def _entropy(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(probs.astype(np.float64), 1e-12, 1.0)
    return -(probs * np.log(probs)).sum(axis=1)


def ks_max(reference: np.ndarray, current: np.ndarray) -> float:
    return float(ks_2samp(reference.max(axis=1), current.max(axis=1)).pvalue)


def ks_entropy(reference: np.ndarray, current: np.ndarray) -> float:
    return float(ks_2samp(_entropy(reference), _entropy(current)).pvalue)


# name -> (test, alpha)
TESTS: dict[str, tuple[Test, float]] = {
    "knn": (knn, 0.001),
    "mmd": (mmd, 0.01),
    "c2st": (c2st, 0.001),
    "ks_max": (ks_max, 0.001),
    "ks_entropy": (ks_entropy, 0.001),
}
OUTPUT_TESTS = ("ks_max", "ks_entropy")  # only for the output distribution ("probs")
