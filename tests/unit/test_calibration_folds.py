"""Cross-fitted calibration: every train and validation row is scored by a fold model
that did not train on it, and the version's map is fitted on those and the test split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refit.core.backends.base import Backend
from refit.core.registry import ModelVersion
from refit.service.settings import Settings
from refit.training import calibration_folds
from refit.training.calibration_folds import fold_of, out_of_fold, top_scores
from refit.training.finetune import FineTuneResult, TrainingConfig
from refit.training.reference import ReferenceProfile
from refit.training.snapshot import read_snapshot
from refit.training.split import DatasetSplits
from refit.training.train import train


def test_folds_come_from_the_normalised_text_so_copies_share_one() -> None:
    texts = pd.Series(["Refund please", "refund   PLEASE", "where is my parcel", "x"] * 3)
    folds = fold_of(texts, 3)
    assert folds.tolist() == fold_of(texts, 3).tolist()  # the same every run
    assert folds[0] == folds[1]
    assert set(folds.tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_of(texts, 1)


def test_no_row_is_scored_by_a_model_that_trained_on_it(
    monkeypatch: pytest.MonkeyPatch, tiny_base_model: Path
) -> None:
    rows = pd.DataFrame(
        {
            # Digits are normalised away, so the texts differ by their letters.
            "text": [f"{a} {b}" for a in "abcdef" for b in "ghijklmnop"],
            "label": ["a", "b", "c"] * 20,
        }
    )
    splits = DatasetSplits(train=rows.iloc[:48], validation=rows.iloc[48:], test=rows.iloc[:0])
    trained_on: list[set[str]] = []
    real_fine_tune = calibration_folds.fine_tune

    def recording(texts: list[str], *args: object, **kwargs: object) -> FineTuneResult:
        trained_on.append(set(texts))
        return real_fine_tune(texts, *args, **kwargs)  # type: ignore[arg-type]

    def scorer(model: Backend, seen: pd.DataFrame) -> pd.DataFrame:
        assert not set(seen["text"]) & trained_on[-1]  # the model never saw these rows
        return top_scores(model, seen)

    monkeypatch.setattr(calibration_folds, "fine_tune", recording)
    config = TrainingConfig(1, 1e-3, 16, 32, 0, "cpu")
    scored = out_of_fold(
        splits, folds=3, base_model=str(tiny_base_model), config=config, max_length=32,
        scorer=scorer,
    )  # fmt: skip
    assert len(trained_on) == 3
    assert sorted(scored["text"]) == sorted(rows["text"])  # every row, once
    assert (scored["fold"].to_numpy() == fold_of(scored["text"], 3)).all()
    assert set(scored["split"]) == {"train", "validation"}
    assert scored["score"].between(0, 1).all()


@pytest.fixture(scope="module")
def cross_fitted(
    tmp_path_factory: pytest.TempPathFactory, tiny_settings: Callable[..., Settings]
) -> ModelVersion:
    state = tmp_path_factory.mktemp("folds-state")
    return train(tiny_settings(state, "cross-fitted", calibration_folds=2)).version


def test_a_cross_fitted_version_calibrates_on_its_test_split_and_every_other_row(
    cross_fitted: ModelVersion,
) -> None:
    splits = read_snapshot(cross_fitted.path)
    calibration = ReferenceProfile.read(cross_fitted.path).calibration
    everything = len(splits.train) + len(splits.validation) + len(splits.test)
    assert calibration.n == everything
    assert cross_fitted.metadata["calibration_rows"] == everything
    held_out = len(splits.validation) + len(splits.test)
    assert calibration.n > held_out  # what it would have had without folds
    assert np.isfinite(calibration.values).all()
