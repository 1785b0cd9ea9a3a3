"""Rows of the prediction log, or of a reference profile, as the frame drift checks compare.

Reference profiles keep the log's column names, so one function turns either into
features, and the reference and current sides cannot be computed differently.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from refit.core.descriptors import (
    COUNT_COLUMNS,
    DESCRIPTORS,
    EMBEDDING_DIMS,
    descriptor_frame,
    unpack_embeddings,
)
from refit.monitoring.redaction import prepare_text

# Log columns a drift check reads.
LOG_COLUMNS: Final = (
    "label",
    "score",
    "text",
    "n_tokens",
    "n_unknown",
    *COUNT_COLUMNS,
    "embedding",
)
EMBEDDING_COLUMNS: Final = tuple(f"emb_{j:02d}" for j in range(EMBEDDING_DIMS))
FEATURE_COLUMNS: Final = (*DESCRIPTORS, "predicted_label", "confidence", "text", *EMBEDDING_COLUMNS)


def feature_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """`FEATURE_COLUMNS` of every row; NaN where a row lacks what a feature needs
    (rows logged before descriptors and embeddings were recorded)."""
    counts = rows.loc[:, list(COUNT_COLUMNS)].to_numpy(dtype=np.float64, na_value=np.nan)
    features = descriptor_frame(
        counts,
        rows["n_tokens"].to_numpy(dtype=np.float64),
        rows["n_unknown"].to_numpy(dtype=np.float64, na_value=np.nan),
    )
    features["predicted_label"] = rows["label"].astype(str).to_numpy()
    features["confidence"] = rows["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    features["text"] = rows["text"].to_numpy(dtype=object)
    embeddings = unpack_embeddings(rows["embedding"].tolist())
    # One concat rather than 32 inserts: pandas warns about (and slows down on) the latter.
    block = pd.DataFrame(embeddings, columns=list(EMBEDDING_COLUMNS))
    return pd.concat([features, block], axis=1)


def reference_features(profile: pd.DataFrame, text_mode: str) -> pd.DataFrame:
    """`feature_frame` of a reference profile, each feature taken from its own sample:
    text and descriptors from the `inputs` rows, model outputs from the `outputs` rows
    (see `training.reference`); the other rows hold NaN there, which Evidently skips."""
    rows = profile.assign(text=as_logged(profile["text"], text_mode))
    features = feature_frame(rows)
    inputs = profile["inputs"].to_numpy(dtype=bool)
    outputs = profile["outputs"].to_numpy(dtype=bool)
    features.loc[~inputs, list(DESCRIPTORS)] = np.nan
    features.loc[~inputs, "text"] = None
    features.loc[~outputs, ["confidence", *EMBEDDING_COLUMNS]] = np.nan
    features.loc[~outputs, "predicted_label"] = None
    return features


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows, uniformly and reproducibly chosen, in their original order."""
    if len(frame) <= max_rows:
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def texts_logged(rows: pd.DataFrame) -> bool:
    """Whether the log kept texts at all (REFIT_LOG_TEXT=hashed keeps none)."""
    return bool(rows["text"].notna().any())


def as_logged(texts: pd.Series, text_mode: str) -> pd.Series:
    """Reference texts in the form the log keeps them, so that redaction masks are not
    mistaken for drift: with `redacted` the reference is masked the same way."""
    if text_mode == "raw":
        return texts
    return texts.map(lambda text: prepare_text(str(text), text_mode))
