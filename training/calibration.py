"""Confidence calibration for estimating accuracy without labels.

A classifier's top probability is rarely the probability that it is right. The map
here is histogram binning: labelled predictions are cut into bins of equal size by
top probability, and each bin's accuracy is the expected accuracy of any prediction
whose confidence falls in it. Averaged over a window of unlabelled predictions, the
mapped values estimate the window's accuracy: confidence-based performance
estimation (CBPE, as in NannyML). It stays right while the relation between
confidence and correctness holds, which covariate shift usually keeps and concept
drift (the same text now meaning another label) breaks.

Why bins (`bench/calibration_bench.py` compares isotonic regression, Platt and
temperature scaling and per-class maps on both benchmarks, in bench/RESULTS.md):
each bin's value is a plain mean of its rows, so the map's own error is known bin by
bin (binomial over the bin's rows), and the interval around an estimate can weigh it
by where the window's confidences actually fall; isotonic regression's blocks can
shrink to a row or two at the ends, where that error cannot be told.

The map is fitted on rows that no model it serves trained on: at training time the
held-out rows (`training.reference`), in production those plus the feedback labels
that arrive (`monitoring.drift.estimate`). It is kept as plain numbers in JSON, so
no pickled object is ever loaded from a model folder.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike

METHOD: Final = "histogram binning of correctness on top probability"
ROWS_PER_BIN: Final = 100  # fewest rows in a bin, when there are enough for two
MAX_BINS: Final = 25


@dataclass(frozen=True)
class Calibration:
    """A step map from top probability to expected accuracy.

    Bin b holds confidences from `edges[b]` up to `edges[b + 1]` (the first bin
    reaches down to 0, the last up to 1); `values[b]` is the accuracy of the
    `counts[b]` labelled predictions it was fitted on.
    """

    edges: list[float]
    values: list[float]
    counts: list[int]
    n: int  # predictions it was fitted on
    accuracy: float  # their accuracy
    mean_confidence: float  # their mean top probability
    method: str = METHOD

    def bins(self, confidence: ArrayLike) -> np.ndarray:
        """The bin of each confidence."""
        values = np.asarray(confidence, dtype=np.float64)
        return np.searchsorted(np.asarray(self.edges[1:-1]), values, side="right")

    def apply(self, confidence: ArrayLike) -> np.ndarray:
        """Expected accuracy at each confidence."""
        return np.asarray(self.values, dtype=np.float64)[self.bins(confidence)]

    def estimate(self, confidence: ArrayLike) -> float:
        """Estimated accuracy of a set of predictions: their mean calibrated confidence."""
        values = _finite(confidence)
        if values.size == 0:
            raise ValueError("cannot estimate the accuracy of zero predictions")
        return float(self.apply(values).mean())

    def variance(self, confidence: ArrayLike) -> float:
        """Variance of `estimate(confidence)` that comes from the map's own rows: each
        bin's accuracy is a binomial mean over its rows, weighted by the share of
        `confidence` in the bin (a bin's accuracy is smoothed by one hit and one miss
        so that a bin of all hits still counts as uncertain)."""
        values = _finite(confidence)
        if values.size == 0:
            return 0.0
        share = np.bincount(self.bins(values), minlength=len(self.values)) / values.size
        counts = np.asarray(self.counts, dtype=np.float64)
        smoothed = (np.asarray(self.values) * counts + 1) / (counts + 2)
        return float((share**2 * smoothed * (1 - smoothed) / np.maximum(counts, 1)).sum())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        raw = json.loads(text)
        if "edges" not in raw:
            return _from_breakpoints(raw)
        return cls(
            edges=[float(v) for v in raw["edges"]],
            values=[float(v) for v in raw["values"]],
            counts=[int(v) for v in raw["counts"]],
            n=int(raw["n"]),
            accuracy=float(raw["accuracy"]),
            mean_confidence=float(raw["mean_confidence"]),
            method=str(raw.get("method", METHOD)),
        )

    @classmethod
    def read(cls, path: Path) -> Calibration:
        return cls.from_json(path.read_text())


def _finite(confidence: ArrayLike) -> np.ndarray:
    values = np.asarray(confidence, dtype=np.float64).reshape(-1)
    return values[np.isfinite(values)]


def _from_breakpoints(raw: dict[str, Any]) -> Calibration:
    """A map saved before binning (isotonic breakpoints `x`, `y`) as bins split halfway
    between breakpoints, its rows shared out evenly."""
    x = [float(v) for v in raw["x"]]
    y = [float(v) for v in raw["y"]]
    n = int(raw["n"])
    return Calibration(
        edges=[0.0, *((a + b) / 2 for a, b in itertools.pairwise(x)), 1.0],
        values=y,
        counts=[max(n // max(len(y), 1), 1)] * len(y),
        n=n,
        accuracy=float(raw["accuracy"]),
        mean_confidence=float(raw["mean_confidence"]),
        method="isotonic regression of correctness on top probability",
    )


def bin_count(rows: int, rows_per_bin: int = ROWS_PER_BIN, max_bins: int = MAX_BINS) -> int:
    """Bins for `rows` labelled predictions: at least `rows_per_bin` rows each, at most
    `max_bins`, and always one."""
    return int(min(max(rows // rows_per_bin, 1), max_bins))


def fit_calibration(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    rows_per_bin: int = ROWS_PER_BIN,
    max_bins: int = MAX_BINS,
) -> Calibration:
    """Fit the map on labelled predictions: top probability and whether it was right.

    Bins hold equal numbers of rows (`bin_count` of them); equal confidences always
    share a bin, so a bin can hold more rows than its share.
    """
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    hits = np.asarray(correct, dtype=bool).reshape(-1)
    if conf.size != hits.size:
        raise ValueError(f"{conf.size} confidences but {hits.size} outcomes")
    keep = np.isfinite(conf)
    conf, hits = conf[keep], hits[keep]
    if conf.size == 0:
        raise ValueError("cannot calibrate on zero predictions")
    order = np.argsort(conf, kind="stable")
    ranked = conf[order]
    wanted = bin_count(conf.size, rows_per_bin, max_bins)
    cuts = [round(conf.size * k / wanted) for k in range(1, wanted)]
    # A cut falls halfway between two neighbouring confidences; none inside a run of
    # equal ones.
    inner = sorted({(ranked[c - 1] + ranked[c]) / 2 for c in cuts if ranked[c - 1] < ranked[c]})
    edges = [0.0, *inner, 1.0]
    bins = np.searchsorted(np.asarray(inner), conf, side="right")
    counts = np.bincount(bins, minlength=len(inner) + 1)
    sums = np.bincount(bins, weights=hits.astype(np.float64), minlength=len(inner) + 1)
    return Calibration(
        edges=[float(v) for v in edges],
        values=[float(s / c) if c else 0.0 for s, c in zip(sums, counts, strict=True)],
        counts=[int(c) for c in counts],
        n=int(conf.size),
        accuracy=float(hits.mean()),
        mean_confidence=float(conf.mean()),
    )
