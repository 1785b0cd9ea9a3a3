"""A log line at most once per interval, counting the ones held back.

For conditions that repeat for as long as they last (a database down for an hour, an
overloaded worker refusing thousands of requests): the log gets one line a minute,
not one per occurrence, and metrics count every occurrence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any


class QuietLog:
    """Logs at `level` at most once per `every` seconds of `clock`."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int = logging.WARNING,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger, self._level, self._every, self._clock = logger, level, every, clock
        self._last = -float("inf")
        self._held_back = 0
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: Any, exc_info: BaseException | bool = False) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last < self._every:
                self._held_back += 1
                return
            self._last, held_back, self._held_back = now, self._held_back, 0
        if held_back:
            message += " (%d like it held back)"
            args = (*args, held_back)
        self._logger.log(self._level, message, *args, exc_info=exc_info)
