"""What every backend hands back: texts tokenised once, one pass's rows, a batch's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Encoded:
    """Texts tokenised once, ready for any number of later forward passes."""

    rows: list[list[int]]  # token ids fed to the model, at most max_length each
    lengths: np.ndarray  # (n,) int64, len(rows[i])
    truncated: np.ndarray  # (n,) bool, the text was longer than max_length
    unknown_tokens: np.ndarray  # (n,) int64, [UNK] tokens per text

    def split(self, sizes: Sequence[int]) -> list[Encoded]:
        """Consecutive parts of `sizes` texts each: one batch call's texts, handed back
        to the requests they came from."""
        parts, start = [], 0
        for size in sizes:
            end = start + size
            parts.append(
                Encoded(
                    self.rows[start:end],
                    self.lengths[start:end],
                    self.truncated[start:end],
                    self.unknown_tokens[start:end],
                )
            )
            start = end
        return parts


@dataclass(frozen=True)
class PassOutput:
    """What one forward pass returns, row i belonging to the pass's row i."""

    probs: np.ndarray  # (k, n_labels) float32
    embeddings: np.ndarray | None  # (k, EMBEDDING_DIMS) float16, when captured
    rechecked: int = 0  # rows answered again by a second graph (int8's close calls on fp32)


@dataclass(frozen=True)
class BatchOutput:
    """Model outputs for a batch, row i belonging to input text i."""

    probs: np.ndarray  # (n, n_labels) float32, rows sum to 1
    n_tokens: np.ndarray  # (n,) int, tokens fed to the model after truncation
    truncated: np.ndarray  # (n,) bool, the text was longer than max_length
    padded_tokens: int = 0  # token positions computed, padding included
    tokenize_seconds: float = 0.0
    compute_seconds: float = 0.0
    unknown_tokens: np.ndarray | None = None  # (n,) int, [UNK] tokens per text
    # (n, EMBEDDING_DIMS) float16: the encoder's mean-pooled last layer, projected
    embeddings: np.ndarray | None = None
    rechecked: int = 0  # texts answered again on fp32 (`PassOutput.rechecked`)

    @property
    def label_ids(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)
