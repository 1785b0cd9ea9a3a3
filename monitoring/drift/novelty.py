"""Are the window's embeddings farther from the reference than the reference is from itself?

The served model's pooled last layer, projected to 32 dimensions, is logged with
every prediction. Texts on topics the model never saw land away from everything it
was trained on, and a distance test sees a minority of them where a domain
classifier cannot: if a share p of the window is new, no classifier's ROC AUC can
exceed 0.5 + p/2 (0.65 at 30%), while the distances of those rows stand out more
plainly the larger the window. On the Debian real-text benchmark (bench/real_text.py)
this test caught windows with 30% unseen-section texts in 20 of 20 windows of 500,
where the domain classifier caught none.

The test, cross-fitted so that reference and window rows are measured alike:
1. the reference rows are dealt into `folds` folds;
2. each reference row's novelty is the distance to its `k`-th nearest reference row
   outside its own fold; each window row is given a random fold and measured the same
   way, against the same share of the reference;
3. a one-sided Mann-Whitney U test asks whether the window's novelties are larger.
Its p-value is the signal's value: drift below the threshold, as for the other tests.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

K = 5
FOLDS = 5
_CHUNK = 2048  # window rows per distance block: bounds memory at 20,000-row windows


def kth_distance(points: np.ndarray, others: np.ndarray, k: int) -> np.ndarray:
    """Euclidean distance from each of `points` to its `k`-th nearest row of `others`."""
    points = np.asarray(points, dtype=np.float32)
    others = np.asarray(others, dtype=np.float32)
    k = min(k, len(others))
    squared_others = (others * others).sum(axis=1)
    found = np.empty(len(points), dtype=np.float64)
    for start in range(0, len(points), _CHUNK):
        block = points[start : start + _CHUNK]
        squared = (block * block).sum(axis=1)[:, None] + squared_others[None, :]
        squared -= 2.0 * block @ others.T
        kth = np.partition(squared, k - 1, axis=1)[:, k - 1]
        found[start : start + len(block)] = np.sqrt(np.maximum(kth, 0.0))
    return found


def novelties(
    reference: np.ndarray, current: np.ndarray, *, k: int = K, folds: int = FOLDS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(each reference row's novelty, each current row's novelty), cross-fitted."""
    rng = np.random.default_rng(seed)
    ref_fold = rng.permutation(np.arange(len(reference)) % folds)
    cur_fold = rng.integers(0, folds, size=len(current))
    ref_scores = np.empty(len(reference))
    cur_scores = np.empty(len(current))
    for fold in range(folds):
        outside = reference[ref_fold != fold]
        ref_scores[ref_fold == fold] = kth_distance(reference[ref_fold == fold], outside, k)
        cur_scores[cur_fold == fold] = kth_distance(current[cur_fold == fold], outside, k)
    return ref_scores, cur_scores


def novelty_p_value(
    reference: np.ndarray, current: np.ndarray, *, k: int = K, folds: int = FOLDS, seed: int = 0
) -> float:
    """p-value of "the current rows lie no farther from the reference than it from itself"."""
    if len(reference) < folds * (k + 1) or len(current) == 0:
        raise ValueError(
            f"novelty needs at least {folds * (k + 1)} reference rows and one current row"
        )
    ref_scores, cur_scores = novelties(reference, current, k=k, folds=folds, seed=seed)
    return float(mannwhitneyu(cur_scores, ref_scores, alternative="greater").pvalue)
