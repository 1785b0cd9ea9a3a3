"""The data a version was trained on, kept in the version folder.

Retraining needs "the original training data" and "the original test split" of
the champion. Re-reading the user's file later would be fragile (moved, edited,
on another machine), so each version keeps its splits as compressed Parquet;
a retrained version carries the original test split forward unchanged, so that
every challenger is judged on the same yardstick as the first model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from refit.core.errors import ModelLoadError
from refit.training.split import DatasetSplits

SNAPSHOT_DIR = "data"


def write_snapshot(folder: Path, splits: DatasetSplits) -> None:
    target = folder / SNAPSHOT_DIR
    target.mkdir(exist_ok=True)
    for name, part in splits.parts().items():
        part.reset_index(drop=True).to_parquet(target / f"{name}.parquet", index=False)


def read_snapshot(folder: Path) -> DatasetSplits:
    source = folder / SNAPSHOT_DIR
    try:
        parts = {
            name: pd.read_parquet(source / f"{name}.parquet")
            for name in ("train", "validation", "test")
        }
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"version at {folder} has no training data snapshot ({exc}); retrain it from "
            "its data with `refit train --data ...` first"
        ) from exc
    return DatasetSplits(**parts)
