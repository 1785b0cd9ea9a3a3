"""Run a classifier over labelled data and measure it, overall and per slice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from refit.core.backends.base import Backend
from refit.training.data import load_labelled
from refit.training.scores import EvaluationReport, evaluate_predictions, length_bucket
from refit.training.settings import TrainingContext

# Columns with more distinct values than this are identifiers or free text, not
# groups worth a row in the slice table.
_MAX_SLICE_VALUES = 30
_CHUNK = 512


def slice_columns(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Length buckets, plus every low-cardinality column the data carries."""
    slices = {"length": length_bucket(frame["text"].tolist())}
    for column in frame.columns:
        if column in ("text", "label"):
            continue
        values = frame[column]
        if values.nunique(dropna=False) <= _MAX_SLICE_VALUES:
            slices[str(column)] = values.astype(str).tolist()
    return slices


def evaluate_frame(
    classifier: Backend,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None = None,
) -> EvaluationReport:
    """Predict every row of a validated frame and compare with its labels.

    `progress`, when given, is called with the number of rows done after each chunk.
    """
    texts = frame["text"].tolist()
    predicted: list[str] = []
    confidence: list[float] = []
    for start in range(0, len(texts), _CHUNK):
        out = classifier.predict(texts[start : start + _CHUNK])
        predicted.extend(classifier.labels[i] for i in out.label_ids)
        confidence.extend(out.confidence.tolist())
        if progress is not None:
            progress(len(predicted))
    return evaluate_predictions(
        frame["label"].tolist(),
        predicted,
        confidence,
        list(classifier.labels),
        slices=slice_columns(frame),
    )


def evaluate_file(
    classifier: Backend,
    path: Path,
    settings: TrainingContext,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Evaluate on a user's labelled file; labels the model lacks are refused up front.

    `progress`, when given, is called with (rows done, rows in all).
    """
    frame = load_labelled(
        path,
        text_column=settings.training.text_column,
        label_column=settings.training.label_column,
        known_labels=classifier.labels,
    )
    if progress is None:
        return evaluate_frame(classifier, frame)
    notify, total = progress, len(frame)
    return evaluate_frame(classifier, frame, lambda done: notify(done, total))
