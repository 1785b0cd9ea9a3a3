"""Give freed heap memory back to the operating system between forward passes.

glibc keeps memory that torch frees on CPU (activations of every batch shape) in its
heap rather than returning it, so a worker's resident memory climbs under load of
mixed shapes and never comes down: 493 MB grew to 1,020 MB in a minute of mixed
batches, and `malloc_trim(0)` took it back to 610 MB in about 10 ms. A fixed
mmap threshold (`MALLOC_MMAP_THRESHOLD_`) also stopped the growth but cost 7-11% of
throughput. So the model thread trims: whenever its queue is empty, at most once
every `IDLE_INTERVAL_S`, and under unbroken load once every `BUSY_INTERVAL_S`.
Where the C library has no `malloc_trim` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from typing import Final

IDLE_INTERVAL_S: Final = 5.0
BUSY_INTERVAL_S: Final = 30.0


def _libc_trim() -> Callable[[], object] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


class HeapTrimmer:
    def __init__(
        self,
        trim: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._trim = trim if trim is not None else _libc_trim()
        self._clock = clock
        self._last = clock()
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def after_round(self, idle: bool) -> bool:
        """Trim if it is due; `idle`: nothing is queued. Whether it trimmed."""
        if self._trim is None:
            return False
        now = self._clock()
        due = IDLE_INTERVAL_S if idle else BUSY_INTERVAL_S
        if now - self._last < due:
            return False
        self._trim()
        self._last = self._clock()
        self.trims += 1
        return True
