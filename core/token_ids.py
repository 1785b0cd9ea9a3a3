"""Token ids of texts, cut at a length, as serving and evaluation feed the model.

Several texts go through the tokenizer's own batch call, which releases the GIL
while Rust works, so that a batch overlaps other Python threads. One text goes
through a private copy of the Rust tokenizer, whose `encode` keeps the GIL: for a
short text the work takes microseconds, and getting the GIL back can take up to the
interpreter's switch interval (5 ms) when another thread is running Python. On a
serving worker, the event loop tokenising each arriving request then waited on the
model thread. Measured on a server of the tiny model (bench/model_home.py --base
tiny, two workers, one-text requests from wrk at 64 connections), three runs each
way, alternating, two 10 s points a run: 565-658 requests/s with the batch call,
744-803 with the copy (+25% on the mean).

The copy carries the settings the batch call puts on the backend, so both give the
same ids (tests/unit/test_token_ids.py). A copy, because that call re-applies its
own settings to the shared backend each time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TokenIds:
    """`texts -> ids`, each row at most `max_length` ids, special tokens included."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length
        self._one = _own_backend(tokenizer, max_length)

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        if len(texts) == 1 and self._one is not None:
            return [self._one.encode(texts[0]).ids]  # a new list each call
        ids: list[list[int]] = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        return ids


def _own_backend(tokenizer: PreTrainedTokenizerBase, max_length: int) -> Any | None:
    """A copy of the Rust tokenizer set up as the batch call sets it; None for a slow
    tokenizer, which has none."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    own = copy.deepcopy(backend)
    own.enable_truncation(
        max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side
    )
    own.no_padding()
    own.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return own
