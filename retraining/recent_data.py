"""The newest labelled data a challenger learns from.

Feedback attached to logged predictions, plus labelled files dropped into
`<state_dir>/incoming/` (checked like any training file, and moved to
`incoming/used/` once a retrain has learned from them). Rows whose text the
champion already trained on are not counted again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from refit.core.settings import CoreSettings
from refit.monitoring.prediction_log import PredictionLog
from refit.training.data import SUPPORTED_SUFFIXES, load_labelled
from refit.training.normalize import normalized
from refit.training.settings import TrainingSettings
from refit.training.split import DatasetSplits


@dataclass
class RecentData:
    frame: pd.DataFrame  # text, label
    feedback_rows: int = 0
    files: list[Path] = field(default_factory=list)


def incoming_dir(core: CoreSettings) -> Path:
    return core.resolved_state_dir() / "incoming"


def feedback_rows(log: PredictionLog) -> pd.DataFrame:
    """Logged predictions that received a true label and kept their text."""
    rows = log.read(0, datetime.now(UTC), columns=["text", "true_label"], labelled_only=True)
    rows = rows.dropna(subset=["text", "true_label"])
    return rows.rename(columns={"true_label": "label"})[["text", "label"]]


def gather_recent(core: CoreSettings, training: TrainingSettings, log: PredictionLog) -> RecentData:
    feedback = feedback_rows(log)
    frames, files = [feedback], []
    folder = incoming_dir(core)
    for path in sorted(folder.glob("*")) if folder.exists() else []:
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
            loaded = load_labelled(
                path, text_column=training.text_column, label_column=training.label_column
            )
            frames.append(loaded[["text", "label"]])
            files.append(path)
    frame = pd.concat(frames, ignore_index=True)
    return RecentData(frame, feedback_rows=len(feedback), files=files)


def retire(files: list[Path], core: CoreSettings) -> None:
    """Move incoming files a retrain learned from out of the way, under a dated folder."""
    used = incoming_dir(core) / "used" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    used.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.move(str(path), used / path.name)


def fresh_rows(recent: pd.DataFrame, known: DatasetSplits) -> pd.DataFrame:
    """Recent rows whose text the champion's data does not already hold.

    Feedback used by an earlier retrain is in the champion's snapshot; counting it
    again would put training texts into the held-out slice.
    """
    seen = set(normalized(pd.concat([p["text"] for p in known.parts().values()])))
    keep = [key not in seen for key in normalized(recent["text"])]
    return recent[keep].reset_index(drop=True)
