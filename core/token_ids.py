"""Token ids of texts, cut at a length, as serving and evaluation feed the model.

Both paths run the Rust tokenizer on a private copy set up as transformers' call sets
it (`RustTokenizer.cutting_at`), so both give that call's ids
(tests/unit/test_token_ids.py). Several texts go through `encode_batch`, which
releases the GIL while Rust works, so that a batch overlaps other Python threads.
One text goes through `encode`, which keeps the GIL: for a short text the work takes
microseconds, and getting the GIL back can take up to the interpreter's switch
interval (5 ms) when another thread is running Python. On a serving worker, the event
loop tokenising each arriving request then waited on the model thread. Measured on a
server of the tiny model (bench/model_home.py --base tiny, two workers, one-text
requests from wrk at 64 connections), three runs each way, alternating, two 10 s
points a run: 565-658 requests/s with the batch call, 744-803 with `encode`.

A slow tokenizer (no Rust pipeline) goes through transformers' own call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from refit.core.tokenizer_file import RustTokenizer, transformers_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TokenIds:
    """`texts -> ids`, each row at most `max_length` ids, special tokens included."""

    def __init__(self, tokenizer: RustTokenizer | PreTrainedTokenizerBase, max_length: int) -> None:
        self.max_length = max_length
        self._slow: PreTrainedTokenizerBase | None = None
        if isinstance(tokenizer, RustTokenizer):
            rust: RustTokenizer | None = tokenizer
        else:
            rust = RustTokenizer.of(tokenizer)
            self._slow = tokenizer if rust is None else None
        self._rust = rust.cutting_at(max_length) if rust is not None else None

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        if self._rust is None:
            return self._slow_ids(texts)
        if len(texts) == 1:
            return [self._rust.encode(texts[0]).ids]  # a new list each call
        return [e.ids for e in self._rust.encode_batch(list(texts))]

    def _slow_ids(self, texts: Sequence[str]) -> list[list[int]]:
        assert self._slow is not None  # a tokenizer is either Rust or slow
        return transformers_ids(self._slow, texts, self.max_length)
