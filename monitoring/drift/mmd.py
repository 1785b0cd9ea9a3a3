"""Do the window's embeddings come from the reference's distribution? An MMD permutation test.

The k-NN novelty test (`novelty.py`) asks whether window rows lie *farther* from the
reference than the reference from itself. Fine-tuning pulls every input toward one
of the known classes, so texts on a new topic that resembles the known ones in form can
land inside the known clusters of the fine-tuned space: no farther from the
reference, only elsewhere among it (more of them near one class's edge, fewer near
another's). The maximum mean discrepancy (Gretton et al., 2012) compares the whole
distributions instead, so it sees a window that fills the same space differently
(`tests/unit/test_drift_mmd.py`). On real text it is an option, not the default: with
man-page NAME lines projected by a PCA, unseen sections were caught in 4 of 20 windows
of 500 by the novelty test and in 20 of 20 by MMD, but on the logged 32 numbers MMD
caught fewer windows holding 30% new topics (docs/drift.md, "Which embedding signal").

The test:
1. a Gaussian kernel over the pooled rows, its bandwidth the median squared distance
   between them (the usual heuristic: no setting to tune per model);
2. the statistic is the (biased) squared MMD between window and reference;
3. its p-value is the share of `PERMUTATIONS` random relabellings of the pooled rows
   whose statistic is at least as large (plus one, so it is never 0).

Each side is sampled down to `MAX_ROWS` (seeded) first: the kernel matrix grows with
the square of the rows, and the reference bounds the power anyway.
"""

from __future__ import annotations

import numpy as np

PERMUTATIONS = 500
MAX_ROWS = 2000
MIN_ROWS = 20


def _sampled(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    return rows[np.sort(rng.choice(len(rows), size=limit, replace=False))]


def gaussian_kernel(rows: np.ndarray) -> np.ndarray:
    """exp(-|x - y|^2 / median |x - y|^2) over every pair of `rows`, float32."""
    rows = rows.astype(np.float64)
    squared = (rows * rows).sum(axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2.0 * rows @ rows.T, 0.0)
    bandwidth = float(np.median(distances[np.triu_indices(len(rows), 1)]))
    return np.exp(-distances / max(bandwidth, 1e-12)).astype(np.float32)


def mmd_statistics(kernel: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Squared MMD for each column of `labels` (1: a window row, 0: a reference row).

    With weights +1/m on the m window rows and -1/n on the n reference rows, w'Kw is the
    biased estimate of MMD^2; it orders relabellings as the unbiased estimate does.
    """
    labels = labels.astype(np.float32)
    window = labels.sum(axis=0)
    weights = labels / window - (1.0 - labels) / (len(labels) - window)
    return np.einsum("ij,ij->j", weights, kernel @ weights)


def mmd_p_value(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    permutations: int = PERMUTATIONS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> float:
    """Permutation p-value of "reference and current rows come from one distribution"."""
    if min(len(reference), len(current)) < MIN_ROWS:
        raise ValueError(f"MMD needs at least {MIN_ROWS} rows on each side")
    rng = np.random.default_rng(seed)
    reference = _sampled(np.asarray(reference, dtype=np.float32), max_rows, rng)
    current = _sampled(np.asarray(current, dtype=np.float32), max_rows, rng)
    kernel = gaussian_kernel(np.concatenate([reference, current]))
    total, size = len(kernel), len(current)
    labels = np.zeros((total, permutations + 1), dtype=np.float32)
    labels[len(reference) :, 0] = 1.0  # column 0: the real split
    for column in range(1, permutations + 1):
        labels[rng.permutation(total)[:size], column] = 1.0
    statistics = mmd_statistics(kernel, labels)
    return float((1 + (statistics[1:] >= statistics[0]).sum()) / (permutations + 1))
