"""Tokenising an arriving request: on the event loop when quick, in a thread when not.

Tokenising runs at about a million characters a second on a 2-core machine, so the
largest request the limits allow (262,144 characters) would hold the worker's event
loop for about a quarter of a second, and every small request arriving meanwhile
would wait behind it. A request over `OFF_LOOP_CHARS` is tokenised in a thread
instead: the tokenizer's batch call lets go of the GIL, so the loop goes on reading,
admitting and answering other requests. Smaller ones stay on the loop, where a
hand-off to a thread would cost more than the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from refit.core.backends.base import PassModel
from refit.core.backends.outputs import Encoded

OFF_LOOP_CHARS = 16_384  # about 16 ms of tokenising


async def encode(encoder: PassModel, texts: Sequence[str]) -> Encoded:
    """`encoder.encode(texts)`, in a thread when the texts are long."""
    if sum(len(text) for text in texts) > OFF_LOOP_CHARS:
        return await asyncio.to_thread(encoder.encode, texts)
    return encoder.encode(texts)
