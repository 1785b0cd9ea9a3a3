"""Settle asyncio futures from another thread, with one wake-up per event loop.

`call_soon_threadsafe` writes to the loop's wake-up socket: a system call that lets
go of the GIL. A thread that settles many futures one call each must win the GIL
back after every call, and beside a busy event loop each win can take a whole switch
interval (5 ms). Settling a batch in one call per loop costs that once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

Settled = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", object]


def settle_all(settled: Iterable[Settled]) -> None:
    """Give each future its outcome (an exception is raised in its awaiter) on its own
    loop; futures already done (cancelled, timed out) are left alone."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
    for loop, future, outcome in settled:
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting now
            loop.call_soon_threadsafe(_settle, batch)


def settle(future: asyncio.Future[Any], outcome: object) -> None:
    """Set `outcome` on `future` unless it is done; call on the future's loop."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _settle(batch: list[tuple[asyncio.Future[Any], object]]) -> None:
    for future, outcome in batch:
        settle(future, outcome)
