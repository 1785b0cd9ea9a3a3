"""Texts to token ids, and token ids to a padded batch: the same code for every backend.

Tokenising is not a backend's business: two backends given the same texts must see
the same ids, or a comparison between them measures the tokenizer too. A backend
receives what `TextEncoder.encode` made and pads it with `padded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refit.core.backends.outputs import Encoded
from refit.core.load_errors import load_step
from refit.core.token_ids import TokenIds
from refit.core.tokenizer_file import RustTokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TextEncoder:
    """`texts -> Encoded`: token ids cut at `max_length`, with what drift checks count."""

    def __init__(self, tokenizer: RustTokenizer | PreTrainedTokenizerBase, max_length: int) -> None:
        self.max_length = max_length
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self._unk_id = tokenizer.unk_token_id
        # One id past max_length, so that truncation can be detected.
        self._token_ids = TokenIds(tokenizer, max_length + 1)

    @classmethod
    def from_folder(cls, folder: Path | str, max_length: int) -> TextEncoder:
        """The folder's tokenizer.json, read without transformers (`tokenizer_file.py`);
        transformers' AutoTokenizer for a folder without one."""
        with load_step("tokenizer", folder):  # any failure: a ModelLoadError naming no path
            read = RustTokenizer.read(folder)
            if read is not None:
                return cls(read, max_length)
            from transformers import AutoTokenizer

            return cls(AutoTokenizer.from_pretrained(folder), max_length)

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Tokenise `texts` in one tokenizer call.

        A row longer than `max_length` is cut back to it, keeping its final [SEP],
        which is what the tokenizer's own truncation would give.
        """
        ids = self._token_ids(texts)
        raw = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        keep = self.max_length
        rows = [row if len(row) <= keep else [*row[: keep - 1], row[-1]] for row in ids]
        return Encoded(
            rows=rows,
            lengths=np.minimum(raw, keep),
            truncated=raw > keep,
            unknown_tokens=self._count_unknown(ids),
        )

    def _count_unknown(self, ids: list[list[int]]) -> np.ndarray:
        unk = self._unk_id
        if unk is None:
            return np.zeros(len(ids), dtype=np.int64)
        return np.fromiter((row.count(unk) for row in ids), dtype=np.int64, count=len(ids))


def padded(
    rows: Sequence[Sequence[int]], lengths: np.ndarray, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """`(input_ids, attention_mask)`, int64, each `(len(rows), longest)`; row i is `rows[i]`."""
    width = int(lengths.max())
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    for i, (row, length) in enumerate(zip(rows, lengths, strict=True)):
        input_ids[i, :length] = row
    mask = (np.arange(width) < lengths[:, None]).astype(np.int64)
    return input_ids, mask
