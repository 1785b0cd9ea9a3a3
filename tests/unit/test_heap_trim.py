"""Freed heap memory goes back to the OS when the model thread has a moment."""

from __future__ import annotations

import psutil
import pytest

from refit.service.model.heap_trim import BUSY_INTERVAL_S, IDLE_INTERVAL_S, HeapTrimmer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_when_idle_and_rarely_under_unbroken_load() -> None:
    clock, calls = Clock(), []
    heap = HeapTrimmer(lambda: calls.append(clock.now), clock)
    assert not heap.after_round(idle=True)  # just started
    clock.now += IDLE_INTERVAL_S
    assert heap.after_round(idle=True)
    clock.now += IDLE_INTERVAL_S
    assert not heap.after_round(idle=False)  # busy: waits longer
    clock.now += BUSY_INTERVAL_S - IDLE_INTERVAL_S
    assert heap.after_round(idle=False)
    assert not heap.after_round(idle=True)  # just trimmed
    assert calls == [105.0, 135.0]
    assert heap.trims == 2


def test_without_malloc_trim_it_does_nothing() -> None:
    heap = HeapTrimmer(clock=Clock())
    heap._trim = None  # a C library without malloc_trim (musl, macOS)
    assert not heap.available
    assert not heap.after_round(idle=True)


def test_glibcs_trim_gives_freed_memory_back() -> None:
    heap = HeapTrimmer()
    if not heap.available:
        pytest.skip("this C library has no malloc_trim")
    process = psutil.Process()
    # Many small blocks, freed but for every 64th: the heap cannot shrink from its top,
    # so only a trim returns the free pages in between.
    blocks = [bytearray(4000) for _ in range(100_000)]
    kept = blocks[::64]
    del blocks
    before = process.memory_info().rss
    assert heap._trim is not None
    heap._trim()
    after = process.memory_info().rss
    assert before - after > 100 * 2**20, (before, after)
    del kept
