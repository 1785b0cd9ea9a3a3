"""A long request is tokenised off the event loop, so small requests arriving meanwhile
are not held behind it (issue 25, case 10)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np

from refit.core.backends.outputs import Encoded, PassOutput
from refit.service.scheduling.encoding import OFF_LOOP_CHARS, encode


class _Encoder:
    """Records the thread each call ran on; a long call waits until `release` is set."""

    overhead_tokens = 48

    def __init__(self) -> None:
        self.threads: dict[str, str] = {}
        self.release = threading.Event()

    def encode(self, texts: Sequence[str]) -> Encoded:
        key = "long" if sum(map(len, texts)) > OFF_LOOP_CHARS else "short"
        self.threads[key] = threading.current_thread().name
        if key == "long":
            assert self.release.wait(10)
        n = len(texts)
        ones = np.ones(n, dtype=np.int64)
        return Encoded([[1]] * n, ones, np.zeros(n, dtype=bool), 0 * ones)

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        raise NotImplementedError


def test_a_short_request_is_tokenised_while_a_long_one_still_is() -> None:
    encoder = _Encoder()

    async def scenario() -> list[str]:
        order: list[str] = []

        async def request(name: str, texts: list[str]) -> None:
            await encode(encoder, texts)
            order.append(name)

        long = asyncio.create_task(request("long", ["x" * 4000] * 64))
        await asyncio.sleep(0.05)  # the long one is being tokenised now
        await request("short", ["where is my parcel"])
        encoder.release.set()
        await long
        return order

    assert asyncio.run(scenario()) == ["short", "long"]
    assert encoder.threads["short"] == "MainThread"  # on the loop: a thread costs more
    assert encoder.threads["long"] != "MainThread"
