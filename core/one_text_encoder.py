"""Tokenising one text in the calling thread, holding the GIL.

A fast tokenizer's batch call (what `tokenizer(texts)` runs) releases the GIL
while Rust works, so that a batch can overlap other Python threads. For one short
text that work takes microseconds, and getting the GIL back can take up to the
interpreter's switch interval (5 ms) when another thread is running Python: on a
serving worker, the event loop tokenising each arriving request then waits on the
model thread. `Tokenizer.encode` keeps the GIL. Measured on a server of the tiny
model (bench/model_home.py --base tiny, two workers, one-text requests from wrk at
64 connections), three runs each way, alternating, two 10 s points a run: 565-658
requests/s with the batch call, 744-803 with this one (+25% on the mean).

The copy carries the settings `tokenizer(texts, truncation=True, max_length=n)`
puts on the backend, so both give the same ids (tests/unit/test_one_text_encoder.py).
A copy, because that call re-applies its settings to the shared backend each time.
"""

from __future__ import annotations

import copy
from typing import Protocol

from transformers import PreTrainedTokenizerBase


class OneTextEncoder(Protocol):
    def __call__(self, text: str) -> list[int]: ...


def one_text_encoder(tokenizer: PreTrainedTokenizerBase, max_length: int) -> OneTextEncoder | None:
    """`text -> ids` equal to `tokenizer([text], truncation=True, max_length=max_length)`'s
    row; None for a tokenizer without a Rust backend (a slow tokenizer)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    own = copy.deepcopy(backend)
    own.enable_truncation(
        max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side
    )
    own.no_padding()
    own.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))

    def encode(text: str) -> list[int]:
        return list(own.encode(text).ids)

    return encode
