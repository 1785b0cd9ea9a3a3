"""Drift signals and the verdict over them: pure functions, no I/O and no Evidently.

A signal is one thing compared between the reference profile and the current
window (a descriptor, the predicted label, the confidence, the raw text, the
embeddings) with one Evidently method and one threshold. Methods disagree on which
way is drift: a p-value drifts when it falls below its threshold, a distance or a
domain classifier's ROC AUC when it rises above. Each result therefore also carries
a *score* oriented so that higher always means more drift (-log10 of a p-value, the
value itself otherwise), which is what dashboards and alerts compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from refit.core.descriptors import DESCRIPTORS
from refit.monitoring.settings import MonitoringContext

Kind = Literal["numeric", "categorical", "text", "embedding"]
Status = Literal["ok", "drift", "not_enough_data"]

# Evidently methods whose value is a p-value; every other method used here gives a
# distance or a ROC AUC, where larger means more different.
P_VALUE_METHODS: Final = frozenset(
    {"ks", "anderson", "mannw", "chisquare", "z", "chi2_homogeneity", "knn", "mmd"}
)
TEXT_METHOD: Final = "abs_text_content_drift"  # TF-IDF domain classifier, ROC AUC
# Embeddings: refit's nearest-neighbour novelty test (a p-value, monitoring/drift/novelty.py),
# its MMD permutation test (a p-value, monitoring/drift/mmd.py) or Evidently's embedding
# domain classifier (a ROC AUC).
EMBEDDING_METHODS: Final = {"knn": "knn", "mmd": "mmd", "domain_classifier": "model"}
# What the embedding signal compares and how, as the report and the front page say it.
EMBEDDING_REPRESENTATION: Final = (
    "the served model's mean-pooled last layer, projected to 32 dimensions (logged per prediction)"
)
EMBEDDING_TESTS: Final = {
    "mmd": "MMD, Gaussian kernel, permutation p-value",
    "knn": "5-NN novelty, one-sided Mann-Whitney p-value",
    "model": "Evidently's domain classifier, ROC AUC",
}
# A p-value of exactly 0 (underflow) still needs a finite score.
_SMALLEST_P: Final = 1e-300


@dataclass(frozen=True)
class SignalSpec:
    name: str
    column: str  # column of the feature frame (for embeddings: their name)
    kind: Kind
    method: str
    threshold: float
    about: str = ""  # what is compared and how, where the name alone does not say

    @property
    def p_value(self) -> bool:
        return self.method in P_VALUE_METHODS


@dataclass(frozen=True)
class SignalResult:
    """One signal of one check. `value` is None when the signal could not be computed
    (then `note` says why) and it takes no part in the verdict."""

    name: str
    kind: Kind
    method: str
    value: float | None  # what Evidently computed: p-value, distance or ROC AUC
    threshold: float  # on `value`
    score: float | None  # oriented: higher is more drift
    score_threshold: float  # on `score`
    drifted: bool | None
    note: str = ""
    about: str = ""  # SignalSpec.about; empty in summaries written before it existed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SignalResult:
        return cls(**raw)


def drift_number(value: float | None, digits: int = 3, missing: str = "-") -> str:
    """A drift figure as the CLI and the report page show it: fixed point, or
    scientific where fixed point would read 0 (a p-value of 2e-9 is not 0.000)."""
    if value is None:
        return missing
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def signal_specs(settings: MonitoringContext) -> list[SignalSpec]:
    """Every signal a check computes, with its method and threshold from settings."""
    numeric, threshold = settings.drift.drift_numeric_method, settings.drift.drift_numeric_threshold
    specs = [SignalSpec(name, name, "numeric", numeric, threshold) for name in DESCRIPTORS]
    specs += [
        SignalSpec(
            "predicted_label",
            "predicted_label",
            "categorical",
            settings.drift.drift_label_method,
            settings.drift.drift_label_threshold,
        ),
        SignalSpec("confidence", "confidence", "numeric", numeric, threshold),
    ]
    specs.append(
        SignalSpec("text", "text", "text", TEXT_METHOD, settings.drift.drift_text_threshold)
    )
    method = EMBEDDING_METHODS[settings.drift.drift_embedding_method]
    threshold = settings.drift.embedding_threshold()
    about = f"{EMBEDDING_REPRESENTATION}; {EMBEDDING_TESTS[method]}"
    specs.append(SignalSpec("embedding", "embedding", "embedding", method, threshold, about))
    return specs


def oriented(value: float, p_value: bool) -> float:
    """A value on the "higher is more drift" scale: -log10 for a p-value."""
    if p_value:
        return -math.log10(min(max(value, _SMALLEST_P), 1.0)) + 0.0  # +0.0: no -0.0
    return value


def evaluate(spec: SignalSpec, value: float | None, note: str = "") -> SignalResult:
    """The result of `spec` given the value Evidently computed (None: not computed)."""
    score_threshold = oriented(spec.threshold, spec.p_value)
    if value is None or not math.isfinite(value):
        if not note:
            note = "not computed" if value is None else "undefined here (one category only?)"
        return SignalResult(
            spec.name, spec.kind, spec.method, None, spec.threshold, None, score_threshold,
            None, note, spec.about,
        )  # fmt: skip
    drifted = value < spec.threshold if spec.p_value else value > spec.threshold
    return SignalResult(
        spec.name, spec.kind, spec.method, float(value), spec.threshold,
        oriented(float(value), spec.p_value), score_threshold, drifted, note, spec.about,
    )  # fmt: skip


def verdict(results: Sequence[SignalResult], window_size: int, min_window_size: int) -> Status:
    """ "drift" when any computed signal drifted, "ok" when none did, and
    "not_enough_data" below the minimum window or when no signal could be computed."""
    computed = [result for result in results if result.drifted is not None]
    if window_size < min_window_size or not computed:
        return "not_enough_data"
    return "drift" if any(result.drifted for result in computed) else "ok"
