"""Classification metrics for a text classifier, overall and per slice of the data.

Pure functions over predictions already made: no model, tokenizer or I/O, so the CLI,
the training loop and monitoring can all score predictions the same way.

Decisions worth knowing:

* Predicted labels outside `labels` never crash. They count as wrong: they lower
  accuracy, micro-F1 and the recall of the true class, are nobody's false positive,
  and have no column in the confusion matrix (so a row can sum to less than its support).
* True labels outside `labels` are a caller error (`ValueError`): they have no row.
* Macro-F1 averages over the labels that occur in the data scored (as truth or as
  prediction). A label absent from a slice still gets a `per_class` entry (support 0,
  all zeros) but does not drag the slice's macro-F1 down, which would otherwise flag
  every slice that merely lacks a class as weak.
* Empty input raises `ValueError`, for ECE too: returning 0.0 would read as "perfectly
  calibrated" on a dashboard when nothing was measured.
* Nothing is rounded here; rounding is the renderer's job, and `format_metric` is the
  one place that does it, so a figure reads the same in the CLI and in the model card.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

# Upper word-count bound (inclusive) of each length bucket; the last bucket is open.
_LENGTH_BUCKETS: tuple[tuple[int, str], ...] = (
    (8, "1-8 words"),
    (30, "9-30 words"),
    (80, "31-80 words"),
)
_LONGEST_BUCKET = "81+ words"

# Absorbs float noise in "at least `gap` below", e.g. 0.85 - 0.80 == 0.04999999999999993.
_GAP_TOLERANCE = 1e-9

# Decimal places a figure is shown with, wherever it is shown; 3 for any other metric.
_METRIC_DIGITS: dict[str, int] = {
    "loss": 4,
    "train_loss": 4,
    "validation_loss": 4,
    "validation_macro_f1": 4,
}
_DEFAULT_DIGITS = 3


class ClassMetrics(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class ClassificationMetrics(BaseModel):
    n: int
    accuracy: float
    macro_f1: float
    micro_f1: float
    weighted_f1: float
    ece: float
    per_class: dict[str, ClassMetrics]
    labels: list[str]
    confusion_matrix: list[list[int]]

    @property
    def truth_macro_f1(self) -> float:
        """Macro-F1 over the classes the truth holds only. `macro_f1` also averages in
        each label that was only predicted, at F1 0, so comparing two models with
        different label sets on one yardstick charges the one that knows more labels
        a whole class per stray prediction; here such a miss counts only in the recall
        of the text's true class."""
        return float(np.mean([c.f1 for c in self.per_class.values() if c.support > 0]))


class SliceMetrics(BaseModel):
    column: str
    value: str
    metrics: ClassificationMetrics
    # Slices below `min_slice_size` are reported but too noisy to be called weak.
    small: bool = False


class EvaluationReport(BaseModel):
    overall: ClassificationMetrics
    slices: list[SliceMetrics]
    weakest_slices: list[SliceMetrics]


def _confidences(confidence: ArrayLike) -> np.ndarray:
    values = np.asarray(confidence, dtype=float).reshape(-1)
    if not np.all(np.isfinite(values)) or np.any((values < 0.0) | (values > 1.0)):
        raise ValueError("confidence values must be finite and within [0, 1]")
    return values


def expected_calibration_error(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int = 15
) -> float:
    """ECE of the top-label confidence (Guo et al. 2017) over `n_bins` equal-width bins.

    Bin k holds confidences in [k/n_bins, (k+1)/n_bins); 1.0 joins the last bin.
    Raises `ValueError` on empty input rather than claiming perfect calibration.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    conf = _confidences(confidence)
    hits = np.asarray(correct, dtype=bool).reshape(-1)
    if conf.shape != hits.shape:
        raise ValueError(f"confidence has {conf.size} values but correct has {hits.size}")
    if conf.size == 0:
        raise ValueError("cannot compute calibration error of zero predictions")
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    conf_sums = np.bincount(bins, weights=conf, minlength=n_bins)
    hit_sums = np.bincount(bins, weights=hits.astype(float), minlength=n_bins)
    # Per bin, count * |acc - conf| == |hits - conf sum|, so empty bins add nothing.
    return float(np.abs(hit_sums - conf_sums).sum() / conf.size)


def _check_labels(y_true: Sequence[str], labels: Sequence[str]) -> list[str]:
    label_list = list(labels)
    if not label_list:
        raise ValueError("labels must not be empty")
    if len(set(label_list)) != len(label_list):
        raise ValueError(f"labels must be unique, got {label_list}")
    unknown = sorted(set(y_true) - set(label_list))
    if unknown:
        raise ValueError(f"y_true has labels not in labels: {unknown[:10]}")
    return label_list


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    confidence: ArrayLike,
    labels: Sequence[str],
) -> ClassificationMetrics:
    """Accuracy, F1 averages, per-class scores, confusion matrix and ECE of one prediction set."""
    true = list(y_true)
    pred = list(y_pred)
    conf = _confidences(confidence)
    _check_lengths(len(true), {"y_pred": len(pred), "confidence": conf.size})
    if not true:
        raise ValueError("cannot compute metrics of zero predictions")
    label_list = _check_labels(true, labels)

    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=label_list, average=None, zero_division=0
    )
    with warnings.catch_warnings():
        # sklearn warns on a 1x1 matrix in case `labels` was forgotten; it never is here.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        matrix = confusion_matrix(true, pred, labels=label_list)
    correct = np.array([t == p for t, p in zip(true, pred, strict=True)])

    # Out-of-label predictions join the label set here so that they count as wrong
    # predictions in micro precision too, keeping micro-F1 equal to accuracy.
    known = set(label_list)
    extra = list(dict.fromkeys(p for p in pred if p not in known))
    _, _, micro_f1, _ = precision_recall_fscore_support(
        true, pred, labels=label_list + extra, average="micro", zero_division=0
    )
    present = (support > 0) | (matrix.sum(axis=0) > 0)

    return ClassificationMetrics(
        n=len(true),
        accuracy=float(correct.mean()),
        macro_f1=float(f1[present].mean()),
        micro_f1=float(micro_f1),
        weighted_f1=float(np.average(f1, weights=support)),
        ece=expected_calibration_error(conf, correct),
        per_class={
            label: ClassMetrics(precision=float(p), recall=float(r), f1=float(f), support=int(s))
            for label, p, r, f, s in zip(label_list, precision, recall, f1, support, strict=True)
        },
        labels=label_list,
        confusion_matrix=matrix.astype(int).tolist(),
    )


def length_bucket(texts: Sequence[str]) -> list[str]:
    """Bucket each text by whitespace word count; an empty text joins the shortest bucket."""
    buckets: list[str] = []
    for text in texts:
        words = len(text.split())
        name = next((b for limit, b in _LENGTH_BUCKETS if words <= limit), _LONGEST_BUCKET)
        buckets.append(name)
    return buckets


def _check_lengths(n: int, others: Mapping[str, int]) -> None:
    for name, length in others.items():
        if length != n:
            raise ValueError(f"{name} has {length} items but y_true has {n}")


def _natural_key(value: str) -> list[tuple[int, int | str]]:
    # Orders "9-30 words" before "31-80 words", which plain string sorting would not.
    parts = re.split(r"(\d+)", value)
    return [(0, int(p)) if p.isdigit() else (1, p) for p in parts]


def _slice_metrics(
    column: str,
    values: list[str],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    labels: list[str],
    min_slice_size: int,
) -> list[SliceMetrics]:
    true, pred, conf = arrays
    keys = np.array(values, dtype=object)
    result = []
    for value in sorted(set(values), key=_natural_key):
        mask = keys == value
        metrics = classification_metrics(
            true[mask].tolist(), pred[mask].tolist(), conf[mask], labels
        )
        result.append(
            SliceMetrics(
                column=column, value=value, metrics=metrics, small=metrics.n < min_slice_size
            )
        )
    return result


def evaluate_predictions(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    confidence: ArrayLike,
    labels: Sequence[str],
    *,
    slices: Mapping[str, Sequence[str]] | None = None,
    min_slice_size: int = 20,
    gap: float = 0.05,
) -> EvaluationReport:
    """Overall metrics, the same per value of each slice column, and the weakest slices.

    Every slice is reported; those with fewer than `min_slice_size` examples are marked
    `small` and never count as weakest. A slice is weakest when its macro-F1 is at least
    `gap` below the overall macro-F1; `weakest_slices` lists them worst first.
    """
    true = np.array(list(y_true), dtype=object)
    pred = np.array(list(y_pred), dtype=object)
    conf = _confidences(confidence)
    columns = {name: [str(v) for v in values] for name, values in (slices or {}).items()}
    _check_lengths(
        len(true),
        {"y_pred": len(pred), "confidence": conf.size}
        | {f"slices[{name!r}]": len(values) for name, values in columns.items()},
    )
    overall = classification_metrics(true.tolist(), pred.tolist(), conf, labels)

    label_list = list(labels)
    slice_results: list[SliceMetrics] = []
    for column, values in columns.items():
        slice_results += _slice_metrics(
            column, values, (true, pred, conf), label_list, min_slice_size
        )

    threshold = overall.macro_f1 - gap + _GAP_TOLERANCE
    weakest = sorted(
        (s for s in slice_results if not s.small and s.metrics.macro_f1 <= threshold),
        key=lambda s: s.metrics.macro_f1,
    )
    return EvaluationReport(overall=overall, slices=slice_results, weakest_slices=weakest)


def scores_with_new_labels(
    truth: Sequence[str], predicted: Sequence[str], model_labels: Sequence[str]
) -> ClassificationMetrics:
    """Accuracy and F1 when the truth may hold labels the model never learned.

    Feedback and recent data can bring new labels: each counts as a class of its own
    in the macro average, and every row carrying one as a miss.
    """
    labels = list(dict.fromkeys([*model_labels, *truth]))
    # Confidence plays no part in accuracy or F1; a constant keeps the helper happy.
    return classification_metrics(list(truth), list(predicted), np.ones(len(truth)), labels)


def format_metric(name: str, value: float | None) -> str:
    """`value` as the metric `name` is shown everywhere (CLI tables, model card, logs).

    Pass the full-precision value: formatting an already rounded one rounds twice
    (ECE 0.02049 stored as 0.0205 reads 0.021, not 0.020). Missing or NaN reads "-".
    """
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{_METRIC_DIGITS.get(name, _DEFAULT_DIGITS)}f}"
