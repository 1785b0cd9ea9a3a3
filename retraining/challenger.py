"""Train a challenger: the champion's own data plus recent labelled rows.

The champion's splits come from its snapshot, so the original file is not needed.
Recent rows are split in turn: most join training and validation, and a held-out
share (`REFIT_RETRAIN_HOLDOUT_FRACTION`) is kept for the gate. The original test
split is carried forward unchanged, the same yardstick every time.

What a challenger learns from, in full: every training and validation row of the
champion (replayed, not only the recent rows), the recent rows' training share, rare
classes oversampled to the median class (`REFIT_RETRAIN_BALANCE_CLASSES`), starting
from the champion's weights with its head carried over to any new labels
(`training.label_head`), for `REFIT_EPOCHS` epochs.

Its own yardstick is the joint model (`train_joint`): the base model fine-tuned on the
same splits with the same recipe, as if the champion had been trained on everything
from the start. A challenger should come close to it for a fraction of nothing more;
`REFIT_RETRAIN_JOINT_YARDSTICK` trains one beside each challenger and the gate's report
shows both (it doubles the cost of a retrain).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from refit.core.backends.base import Backend
from refit.core.errors import TrainingError
from refit.core.registry import ModelVersion
from refit.retraining.recent_data import fresh_rows
from refit.retraining.settings import RetrainingContext
from refit.training.data import validate_labelled
from refit.training.epochs import Progress
from refit.training.finetune import TrainingConfig
from refit.training.prepared import prepare_frame
from refit.training.snapshot import read_snapshot
from refit.training.split import DatasetSplits, split_dataset
from refit.training.train import fine_tuned_classifier, fit_and_register

logger = logging.getLogger(__name__)


@dataclass
class Challenger:
    version: ModelVersion
    holdout: pd.DataFrame  # recent rows neither model trained on
    original_test: pd.DataFrame  # the champion's test split, carried forward
    sizes: dict[str, int] = field(default_factory=dict)
    splits: DatasetSplits | None = None  # what it trained (and picked its epoch) on
    seconds: float = 0.0  # fine-tuning time


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
    seconds = trained.result.seconds
    return Challenger(trained.version, holdout, original.test, sizes, splits, seconds)


def train_joint(
    settings: RetrainingContext, challenger: Challenger, *, progress: Progress | None = None
) -> tuple[Backend, float]:
    """(the joint model, its fine-tuning seconds): `REFIT_BASE_MODEL` fine-tuned on the
    challenger's own splits with the challenger's recipe (epochs, class balance), kept in
    memory and never registered. What the challenger should match."""
    if challenger.splits is None:
        raise TrainingError("the challenger's splits are unknown: no joint model to train")
    splits = challenger.splits
    config = TrainingConfig.from_settings(settings.training, settings.core.device)
    balance = settings.retraining.retrain_balance_classes
    started = time.perf_counter()
    _, model = fine_tuned_classifier(
        splits,
        base_model=settings.training.base_model,
        config=dataclasses.replace(config, balance_classes=balance),
        max_length=settings.training.max_length,
        progress=progress,
    )
    return model, time.perf_counter() - started
