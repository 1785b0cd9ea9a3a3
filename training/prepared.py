"""The data a training run learns from: the user's labelled file or the built-in
generated set, split into train, validation and test, and audited (duplicates,
conflicting labels, leakage between splits), with its fingerprint and a name for its
source. `refit train` prepares it from a file; the retraining job from splits it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from refit import datagen
from refit.training.data import load_labelled, validate_labelled
from refit.training.quality import QualityReport, audit, fingerprint, leakage
from refit.training.settings import TrainingSettings
from refit.training.split import DatasetSplits, split_dataset

GENERATED_SOURCE = "built-in generated customer-support messages"


@dataclass
class PreparedData:
    frame: pd.DataFrame
    source: str
    splits: DatasetSplits
    quality: QualityReport
    fingerprint: str
    leakage: dict[str, int]


def load_training_frame(data: Path | None, training: TrainingSettings) -> tuple[pd.DataFrame, str]:
    """The user's labelled file, or the built-in dataset when none is given."""
    if data is not None:
        frame = load_labelled(
            data,
            text_column=training.text_column,
            label_column=training.label_column,
            min_examples_per_class=training.min_examples_per_class,
        )
        return frame, str(data)
    rows, seed = training.generated_rows, training.seed
    generated = datagen.generate(rows, scenario="base", seed=seed)
    frame = validate_labelled(
        generated.drop(columns=["scenario"]),
        source="<generated>",
        min_examples_per_class=training.min_examples_per_class,
    )
    return frame, f"{GENERATED_SOURCE} ({rows} rows, seed {seed})"


def prepare_data(data: Path | None, training: TrainingSettings) -> PreparedData:
    frame, source = load_training_frame(data, training)
    splits = split_dataset(
        frame,
        validation_fraction=training.validation_fraction,
        test_fraction=training.test_fraction,
        seed=training.seed,
    )
    return prepare_frame(frame, splits, source)


def prepare_frame(frame: pd.DataFrame, splits: DatasetSplits, source: str) -> PreparedData:
    """Audit an already split frame (the retraining job brings its own splits)."""
    return PreparedData(
        frame=frame,
        source=source,
        splits=splits,
        quality=audit(frame),
        fingerprint=fingerprint(frame),
        leakage=leakage(splits),
    )
