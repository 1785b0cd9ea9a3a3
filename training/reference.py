"""The reference profile: what a model version saw at training time, kept for drift checks.

Every new version folder gets `reference.parquet` and `calibration.json`, so that a
drift check never re-reads (or even needs) the raw training set. The profile holds
rows with the same columns the prediction log keeps (text, predicted label, top
probability, token and [UNK] counts, character counts, pooled embedding from the
model's own encoder) plus the true label, from two samples:

* `inputs`: a uniform sample of the whole labelled dataset, at most
  `drift_reference_rows`. What the texts look like (descriptors, words) is compared
  against these: the larger of the two samples of what users write.
* `outputs`: held-out rows (validation and test), at most `drift_reference_rows`.
  What the model makes of the texts (predicted label, confidence, embedding) is
  compared against these only: on training rows the fine-tuned model is more sure
  of itself than on anything new, and every live window would look drifted.

A row can be in both samples. The calibration map of the accuracy estimate is
fitted on the `outputs` rows (`training.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from refit.core.descriptors import COUNT_COLUMNS, char_counts, pack_embeddings
from refit.core.errors import NoReferenceProfile
from refit.training.calibration import Calibration, fit_calibration
from refit.training.split import DatasetSplits

if TYPE_CHECKING:  # torch and transformers stay out of drift checks, which only read
    from refit.core.backends.base import Backend
    from refit.core.backends.outputs import BatchOutput

REFERENCE_FILE: Final = "reference.parquet"
CALIBRATION_FILE: Final = "calibration.json"
# Columns of the reference frame; the same names as the prediction log's, where
# `label` is the predicted label and `score` its probability.
COLUMNS: Final = (
    "text",
    "label",
    "score",
    "true_label",
    "split",
    "inputs",
    "outputs",
    "n_tokens",
    "n_unknown",
    *COUNT_COLUMNS,
    "embedding",
)
_CHUNK = 256


@dataclass(frozen=True)
class ReferenceProfile:
    frame: pd.DataFrame  # `COLUMNS`
    calibration: Calibration

    def write(self, folder: Path) -> None:
        self.frame.loc[:, list(COLUMNS)].to_parquet(folder / REFERENCE_FILE, index=False)
        (folder / CALIBRATION_FILE).write_text(self.calibration.to_json())

    @classmethod
    def read(cls, folder: Path, *, version: str = "") -> ReferenceProfile:
        paths = (folder / REFERENCE_FILE, folder / CALIBRATION_FILE)
        if not all(path.is_file() for path in paths):
            name = f"model version {version}" if version else f"model folder {folder}"
            raise NoReferenceProfile(
                f"{name} has no reference profile ({REFERENCE_FILE}, {CALIBRATION_FILE}); "
                "it was trained before drift checks existed: retrain it with `refit train`"
            )
        frame = pd.read_parquet(paths[0])
        return cls(frame, Calibration.read(paths[1]))


def score_rows(classifier: Backend, texts: Sequence[str]) -> pd.DataFrame:
    """The log's view of `texts`: what the service would record for each of them."""
    outputs = [
        classifier.predict(list(texts[start : start + _CHUNK]))
        for start in range(0, len(texts), _CHUNK)
    ]
    probs = np.concatenate([out.probs for out in outputs]) if outputs else np.empty((0, 1))
    frame = pd.DataFrame(
        {
            "text": list(texts),
            "label": [classifier.labels[k] for k in probs.argmax(axis=1)],
            "score": probs.max(axis=1) if len(probs) else [],
            "n_tokens": _joined(outputs, lambda out: out.n_tokens),
            "n_unknown": _joined(outputs, lambda out: out.unknown_tokens),
        }
    )
    counts = char_counts(list(texts))
    for j, name in enumerate(COUNT_COLUMNS):
        frame[name] = counts[:, j]
    embeddings = _joined(outputs, lambda out: out.embeddings)
    frame["embedding"] = pack_embeddings(embeddings) if embeddings.size else None
    return frame


def _joined(
    outputs: list[BatchOutput], part: Callable[[BatchOutput], np.ndarray | None]
) -> np.ndarray:
    pieces = [part(out) for out in outputs]
    if not pieces or any(piece is None for piece in pieces):
        return np.zeros(0)
    return np.concatenate([piece for piece in pieces if piece is not None])


def score_pool(classifier: Backend, frame: pd.DataFrame) -> pd.DataFrame:
    """Log-like rows for a labelled frame (`text`, `label`): what the service would
    record, with the true label as feedback. `classifier` must capture embeddings."""
    rows = score_rows(classifier, frame["text"].astype(str).tolist())
    rows["true_label"] = frame["label"].astype(str).to_numpy()
    return rows


def build_profile(
    classifier: Backend,
    splits: DatasetSplits,
    *,
    max_rows: int,
    seed: int,
    cross_fitted: pd.DataFrame | None = None,
) -> ReferenceProfile:
    """Choose both samples, score them once, and fit the calibration.

    `classifier` must capture embeddings (`capture_embeddings=True`). `cross_fitted`:
    out-of-fold scores of the train and validation rows (`calibration_folds`); the map
    is then fitted on them and the test split's rows, the only ones scored here that no
    model of either kind chose an epoch on or trained on.
    """
    everything = pd.concat(
        [part.assign(split=name) for name, part in splits.parts().items()], ignore_index=True
    )
    held_out = (everything["split"] != "train").to_numpy()
    if not held_out.any():
        raise ValueError("no held-out rows to build a reference profile from")
    rng = np.random.default_rng(seed)
    inputs = _sample_mask(np.ones(len(everything), dtype=bool), max_rows, rng)
    outputs = _sample_mask(held_out, max_rows, rng)
    chosen = everything[inputs | outputs].reset_index(drop=True)
    scored = score_pool(classifier, chosen)
    if scored["embedding"].isna().any():
        raise ValueError("the classifier must capture embeddings for a reference profile")
    scored["split"] = chosen["split"].to_numpy()
    scored["inputs"] = inputs[inputs | outputs]
    scored["outputs"] = outputs[inputs | outputs]
    judged = scored[scored["outputs"]]
    if cross_fitted is not None:
        judged = pd.concat([judged[judged["split"] == "test"], cross_fitted], ignore_index=True)
    calibration = fit_calibration(judged["score"], judged["label"] == judged["true_label"])
    return ReferenceProfile(scored.loc[:, list(COLUMNS)], calibration)


def _sample_mask(eligible: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of at most `size` of the `eligible` positions, chosen uniformly."""
    positions = np.flatnonzero(eligible)
    if len(positions) > size:
        positions = rng.choice(positions, size=size, replace=False)
    mask = np.zeros(len(eligible), dtype=bool)
    mask[positions] = True
    return mask
