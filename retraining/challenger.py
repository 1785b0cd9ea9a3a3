"""Train a challenger: the champion's own data plus recent labelled rows.

The champion's splits come from its snapshot, so the original file is not needed.
Recent rows are split in turn: most join training and validation, and a held-out
share (`REFIT_RETRAIN_HOLDOUT_FRACTION`) is kept for the gate. The original test
split is carried forward unchanged, the same yardstick every time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from refit.core.errors import TrainingError
from refit.core.registry import ModelVersion
from refit.retraining.recent_data import fresh_rows
from refit.retraining.settings import RetrainingContext
from refit.training.data import validate_labelled
from refit.training.epochs import Progress
from refit.training.snapshot import read_snapshot
from refit.training.split import DatasetSplits, split_dataset
from refit.training.train import fit_and_register, prepare_frame

logger = logging.getLogger(__name__)


@dataclass
class Challenger:
    version: ModelVersion
    holdout: pd.DataFrame  # recent rows neither model trained on
    original_test: pd.DataFrame  # the champion's test split, carried forward
    sizes: dict[str, int] = field(default_factory=dict)


def combined_splits(
    settings: RetrainingContext, original: DatasetSplits, recent: pd.DataFrame
) -> tuple[DatasetSplits, pd.DataFrame]:
    """(the challenger's splits, the recent rows held out for the gate)."""
    parts = split_dataset(
        recent,
        validation_fraction=settings.training.validation_fraction,
        test_fraction=settings.retraining.retrain_holdout_fraction,
        seed=settings.training.seed,
    )
    splits = DatasetSplits(
        train=pd.concat([original.train, parts.train], ignore_index=True),
        validation=pd.concat([original.validation, parts.validation], ignore_index=True),
        test=original.test,
    )
    return splits, parts.test


def train_challenger(
    settings: RetrainingContext,
    champion: ModelVersion,
    recent: pd.DataFrame,
    *,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
) -> Challenger:
    """Fine-tune and register (not promote) a challenger; TrainingError if too little is new."""
    original = read_snapshot(champion.path)
    recent = fresh_rows(validate_labelled(recent, source="recent labelled data"), original)
    minimum = settings.retraining.retrain_min_rows
    if len(recent) < minimum:
        raise TrainingError(
            f"only {len(recent)} new labelled rows; retraining needs "
            f"REFIT_RETRAIN_MIN_ROWS={minimum}"
        )
    splits, holdout = combined_splits(settings, original, recent)
    sizes = {
        "original_train": len(original.train),
        "recent_train": len(splits.train) - len(original.train),
        "recent_validation": len(splits.validation) - len(original.validation),
        "recent_holdout": len(holdout),
        "original_test": len(original.test),
    }
    note("retraining on " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    from_champion = settings.retraining.retrain_from == "champion"
    start = str(champion.path) if from_champion else settings.training.base_model
    source = f"retrained from {champion.tag} with {len(recent)} new labelled rows"
    prepared = prepare_frame(pd.concat(splits.parts().values(), ignore_index=True), splits, source)
    balance = settings.retraining.retrain_balance_classes
    trained = fit_and_register(
        settings, prepared, start, progress=progress, note=note, balance_classes=balance
    )
    return Challenger(trained.version, holdout, original.test, sizes)
