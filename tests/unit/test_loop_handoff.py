"""Futures settled from another thread: outcomes arrive, one wake-up per loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from refit.core.loop_handoff import settle_all


def test_a_batch_is_settled_with_one_wake_up_and_done_futures_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> tuple[list[object], int]:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        real = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> asyncio.Handle:
            nonlocal wake_ups
            wake_ups += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        ok, failed, gone = loop.create_future(), loop.create_future(), loop.create_future()
        gone.cancel()  # its client left before the answer
        batch = [(loop, ok, 7), (loop, failed, ValueError("no")), (loop, gone, 8)]
        thread = threading.Thread(target=settle_all, args=(batch,))
        thread.start()
        thread.join()
        outcomes = await asyncio.wait_for(
            asyncio.gather(ok, failed, return_exceptions=True), timeout=10
        )
        return list(outcomes), wake_ups

    (value, error), wake_ups = asyncio.run(scenario())
    assert value == 7
    assert isinstance(error, ValueError)
    assert wake_ups == 1


def test_a_closed_loop_is_skipped_without_an_error() -> None:
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    settle_all([(loop, future, 1)])  # nobody waits on a closed loop any more
    assert not future.done()


def test_each_loop_gets_its_own_futures() -> None:
    made = [asyncio.new_event_loop() for _ in range(2)]
    try:
        futures = [loop.create_future() for loop in made]
        settle_all([(loop, f, i) for i, (loop, f) in enumerate(zip(made, futures, strict=True))])
        for i, (loop, f) in enumerate(zip(made, futures, strict=True)):
            assert loop.run_until_complete(asyncio.wait_for(f, 10)) == i
    finally:
        for loop in made:
            loop.close()
