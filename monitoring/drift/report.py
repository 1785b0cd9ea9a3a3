"""The Evidently report of a drift check, and the signal values read back from it.

One `Report` holds every signal: a `ValueDrift` per column (the descriptors, the
predicted label, the confidence and the raw text, the last with Evidently's TF-IDF
domain classifier), each with the method and threshold of its `SignalSpec`, so that
nothing depends on Evidently's size-dependent defaults; and one embedding metric.
`DataDriftPreset` is not used: its headline verdict is Evidently's share-of-columns
rule ("Dataset drift is detected ... threshold 0.5"), which is not refit's and could
contradict the summary the report opens with (`monitoring.drift.report_page`).

The embedding metric is refit's nearest-neighbour novelty test by default
(`EmbeddingNovelty`, monitoring/drift/novelty.py), or Evidently's embedding domain
classifier (`EmbeddingDomainDrift`, `ModelDriftMethod`). Evidently's own
`EmbeddingsDrift` metric is not used: for its plot it fits a t-SNE of up to 5,000
points on every run, which took 50 s of a 2-core machine for 1,500 rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import SingleValue, SingleValueCalculation, SingleValueMetric
from evidently.core.report import Context, Snapshot
from evidently.legacy.metrics.data_drift.embedding_drift_methods import (
    DriftMethod,
    ModelDriftMethod,
)
from evidently.metrics import ValueDrift
from evidently.tests import gte, lte

from refit.monitoring.drift import stattests  # noqa: F401  (registers chi2_homogeneity)
from refit.monitoring.drift.features import EMBEDDING_COLUMNS
from refit.monitoring.drift.mmd import mmd_p_value
from refit.monitoring.drift.novelty import novelty_p_value
from refit.monitoring.drift.signals import SignalResult, SignalSpec, evaluate

# Below this many rows on either side a signal is not computed (its column is empty
# or nearly: too few rows for any test to mean anything).
MIN_ROWS_PER_SIGNAL = 20


class EmbeddingDomainDrift(SingleValueMetric):
    """ROC AUC of Evidently's domain classifier telling current from reference embeddings."""

    columns: list[str]
    method: DriftMethod


class EmbeddingDomainDriftCalculation(SingleValueCalculation[EmbeddingDomainDrift]):
    def calculate(
        self, context: Context, current_data: Dataset, reference_data: Dataset | None
    ) -> SingleValue:
        if reference_data is None:
            raise ValueError("embedding drift needs reference data")
        columns = list(self.metric.columns)
        current = current_data.as_dataframe()[columns].dropna().reset_index(drop=True)
        reference = reference_data.as_dataframe()[columns].dropna().reset_index(drop=True)
        # The method adds a target column to the frames it gets: give it copies.
        score, _, _ = self.metric.method(current.copy(), reference.copy())
        return self.result(float(score))

    def display_name(self) -> str:
        return "Embedding drift: domain classifier ROC AUC"


class EmbeddingNovelty(SingleValueMetric):
    """p-value that the window's embeddings lie no farther from the reference than the
    reference from itself (cross-fitted k-NN distances, one-sided Mann-Whitney)."""

    columns: list[str]


class EmbeddingNoveltyCalculation(SingleValueCalculation[EmbeddingNovelty]):
    def calculate(
        self, context: Context, current_data: Dataset, reference_data: Dataset | None
    ) -> SingleValue:
        if reference_data is None:
            raise ValueError("embedding novelty needs reference data")
        columns = list(self.metric.columns)
        current = current_data.as_dataframe()[columns].dropna().to_numpy(dtype="float32")
        reference = reference_data.as_dataframe()[columns].dropna().to_numpy(dtype="float32")
        return self.result(novelty_p_value(reference, current))

    def display_name(self) -> str:
        return "Embedding novelty: p-value (k-NN distance to the reference)"


class EmbeddingMMD(SingleValueMetric):
    """Permutation p-value that the window's embeddings and the reference's come from one
    distribution (maximum mean discrepancy, Gaussian kernel)."""

    columns: list[str]


class EmbeddingMMDCalculation(SingleValueCalculation[EmbeddingMMD]):
    def calculate(
        self, context: Context, current_data: Dataset, reference_data: Dataset | None
    ) -> SingleValue:
        if reference_data is None:
            raise ValueError("embedding MMD needs reference data")
        columns = list(self.metric.columns)
        current = current_data.as_dataframe()[columns].dropna().to_numpy(dtype="float32")
        reference = reference_data.as_dataframe()[columns].dropna().to_numpy(dtype="float32")
        return self.result(mmd_p_value(reference, current))

    def display_name(self) -> str:
        return "Embedding MMD: permutation p-value (Gaussian kernel)"


EMBEDDING_METRICS = (":EmbeddingDomainDrift", ":EmbeddingNovelty", ":EmbeddingMMD")


def _embedding_metric(spec: SignalSpec) -> Any:
    columns = list(EMBEDDING_COLUMNS)
    if spec.method == "mmd":
        return EmbeddingMMD(columns=columns, tests=[gte(spec.threshold)])
    if spec.method == "knn":
        return EmbeddingNovelty(columns=columns, tests=[gte(spec.threshold)])
    method = ModelDriftMethod(threshold=spec.threshold)
    return EmbeddingDomainDrift(columns=columns, method=method, tests=[lte(spec.threshold)])


def _data_definition(specs: Sequence[SignalSpec]) -> DataDefinition:
    numeric = [s.column for s in specs if s.kind == "numeric"]
    embeddings = any(s.kind == "embedding" for s in specs)
    return DataDefinition(
        numerical_columns=numeric + (list(EMBEDDING_COLUMNS) if embeddings else []),
        categorical_columns=[s.column for s in specs if s.kind == "categorical"],
        text_columns=[s.column for s in specs if s.kind == "text"],
        embeddings={"embedding": list(EMBEDDING_COLUMNS)} if embeddings else None,
    )


def build_report(specs: Sequence[SignalSpec]) -> Report:
    """The Evidently report computing every signal of `specs`, with explicit methods."""
    metrics: list[Any] = [
        _embedding_metric(spec)
        if spec.kind == "embedding"
        else ValueDrift(column=spec.column, method=spec.method, threshold=spec.threshold)
        for spec in specs
    ]
    return Report(metrics, include_tests=True)


def computable(
    specs: Sequence[SignalSpec], reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[SignalSpec], dict[str, str]]:
    """The specs with enough rows on both sides, and why each other one is left out."""
    kept, skipped = [], {}
    for spec in specs:
        columns = list(EMBEDDING_COLUMNS) if spec.kind == "embedding" else [spec.column]
        sizes = [int(frame[columns].notna().all(axis=1).sum()) for frame in (reference, current)]
        if min(sizes) < MIN_ROWS_PER_SIGNAL:
            skipped[spec.name] = (
                f"too few rows with {spec.name}: {sizes[0]} in the reference, {sizes[1]} current"
            )
        else:
            kept.append(spec)
    return kept, skipped


def run_report(
    specs: Sequence[SignalSpec],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    skipped: dict[str, str] | None = None,
) -> tuple[Snapshot | None, list[SignalResult]]:
    """Run the report on two feature frames; the snapshot and one result per spec."""
    skipped = dict(skipped or {})
    runnable, too_small = computable(
        [s for s in specs if s.name not in skipped], reference, current
    )
    skipped.update(too_small)
    snapshot = None
    values: dict[str, float] = {}
    if runnable:
        try:
            snapshot = _run(runnable, reference, current)
        except Exception:
            # One signal Evidently cannot compute (say, texts whose every word is a
            # stop word) must not cost the others: find it, and run without it.
            failed = _failing(runnable, reference, current)
            skipped.update(failed)
            runnable = [spec for spec in runnable if spec.name not in failed]
            snapshot = _run(runnable, reference, current) if runnable else None
    if snapshot is not None:
        values = signal_values(snapshot.dict(), runnable)
    results = [evaluate(spec, values.get(spec.name), skipped.get(spec.name, "")) for spec in specs]
    return snapshot, results


def _run(specs: Sequence[SignalSpec], reference: pd.DataFrame, current: pd.DataFrame) -> Snapshot:
    definition = _data_definition(specs)
    with warnings.catch_warnings():
        # sklearn's domain classifiers warn about convergence on every run.
        warnings.simplefilter("ignore")
        return build_report(specs).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )


def _failing(
    specs: Sequence[SignalSpec], reference: pd.DataFrame, current: pd.DataFrame
) -> dict[str, str]:
    """Each spec whose report fails on its own, with the reason."""
    failed = {}
    for spec in specs:
        try:
            _run([spec], reference, current)
        except Exception as exc:
            failed[spec.name] = f"Evidently failed: {type(exc).__name__}: {exc}"[:300]
    return failed


def signal_values(snapshot: dict[str, Any], specs: Sequence[SignalSpec]) -> dict[str, float]:
    """Each spec's value from a snapshot's metrics, by signal name."""
    by_column = {s.column: s.name for s in specs if s.kind != "embedding"}
    embedding = next((s.name for s in specs if s.kind == "embedding"), None)
    values: dict[str, float] = {}
    for metric in snapshot["metrics"]:
        kind = str(metric["config"].get("type", ""))
        if kind.endswith(":ValueDrift") and metric["config"]["column"] in by_column:
            values[by_column[metric["config"]["column"]]] = float(metric["value"])
        elif kind.endswith(EMBEDDING_METRICS) and embedding:
            values[embedding] = float(metric["value"])
    return values
