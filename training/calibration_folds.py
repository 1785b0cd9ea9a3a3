"""Out-of-fold scores, so that the accuracy estimate's calibration can use every label.

The calibration map (`training.calibration`) must be fitted on predictions of rows the
model did not learn from: a model is surer of its own training rows than of anything
new, and a map fitted on them promises accuracy the model will not have. The
held-out rows alone are few (a fifth of the data at most), and the map inherits their
sampling luck: on the Debian benchmark the held-out split's accuracy sat 0.022 below
the same distribution's, and every estimate read about 0.02 low.

Cross-fitting widens that to every row. The train and validation rows are cut into
K folds by a hash of their normalised text (copies share a fold); K fold models, the
version's own recipe on all but one fold, each score the fold they did not see. Those
out-of-fold predictions join the version's test split, scored by the version itself:
no row is scored by a model that trained on it. It costs K more fine-tunings of
slightly smaller data (`REFIT_CALIBRATION_FOLDS`); the fold models are thrown away.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from refit.core.backends.base import Backend
from refit.core.backends.encoding import TextEncoder
from refit.core.backends.torch_backend import TorchBackend
from refit.training.finetune import TrainingConfig, fine_tune
from refit.training.normalize import normalized
from refit.training.settings import TrainingContext
from refit.training.split import DatasetSplits


def fold_of(texts: pd.Series, folds: int) -> np.ndarray:
    """A fold in [0, folds) per text, from a hash of its normalised form."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, not {folds}")
    keys = pd.util.hash_array(np.asarray(normalized(texts), dtype=object), categorize=False)
    return (keys % np.uint64(folds)).astype(np.int64)


Scorer = Callable[[Backend, pd.DataFrame], pd.DataFrame]


def top_scores(model: Backend, rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` (text, label) as the calibration reads them: true_label, the predicted
    label and its probability (score)."""
    out = model.predict(rows["text"].tolist())
    return pd.DataFrame(
        {
            "text": rows["text"].to_numpy(),
            "true_label": rows["label"].to_numpy(),
            "label": np.asarray(model.labels)[out.label_ids],
            "score": out.confidence.astype(np.float64),
        }
    )


def out_of_fold(
    splits: DatasetSplits,
    *,
    folds: int,
    base_model: str,
    config: TrainingConfig,
    max_length: int,
    scorer: Scorer = top_scores,
    note: Callable[[str], None] = lambda _: None,
) -> pd.DataFrame:
    """The train and validation rows, each scored by `scorer` with the fold model that
    did not train on it, plus columns split and fold.

    Each fold model picks its best epoch on its own held-out fold, as the version picked
    its own on the validation split.
    """
    rows = pd.concat(
        [splits.train.assign(split="train"), splits.validation.assign(split="validation")],
        ignore_index=True,
    )
    fold = fold_of(rows["text"], folds)
    parts = []
    for k in range(folds):
        inside, outside = rows[fold != k], rows[fold == k]
        if outside.empty or inside["label"].nunique() < 2:
            continue
        # A label only the held-out fold has cannot be predicted by its fold model:
        # fine_tune refuses such a validation set, so those rows wait for other folds.
        seen = outside[outside["label"].isin(set(inside["label"]))]
        result = fine_tune(
            inside["text"].tolist(),
            inside["label"].tolist(),
            seen["text"].tolist(),
            seen["label"].tolist(),
            base_model=base_model,
            config=config,
        )
        model = TorchBackend(
            result.model, TextEncoder(result.tokenizer, max_length), device=result.model.device
        )
        part = scorer(model, seen).reset_index(drop=True)
        parts.append(part.assign(split=seen["split"].to_numpy(), fold=k))
        note(f"calibration fold {k + 1}/{folds}: scored {len(seen)} rows it did not train on")
    if not parts:
        raise ValueError("no fold could be scored: too few rows or labels to cross-fit")
    return pd.concat(parts, ignore_index=True)


def cross_fitted_scores(
    settings: TrainingContext,
    splits: DatasetSplits,
    base_model: str,
    config: TrainingConfig,
    note: Callable[[str], None],
) -> pd.DataFrame | None:
    """`out_of_fold` for a new version, as REFIT_CALIBRATION_FOLDS asks, or None: not
    asked for, or the version did not start from the base model (a challenger from the
    champion starts from weights that learned from these rows)."""
    folds = settings.training.calibration_folds
    if not folds or base_model != settings.training.base_model:
        return None
    return out_of_fold(
        splits,
        folds=folds,
        base_model=base_model,
        config=config,
        max_length=settings.training.max_length,
        note=note,
    )
