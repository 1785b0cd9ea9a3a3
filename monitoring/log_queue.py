"""The prediction log's bounded queue and the durability of what passes through it.

Every accepted batch gets a sequence number. The writer takes queued items in
order, in groups, and settles each group as written or failed; callers ask
whether, or wait until, their sequence number was written. Nothing here touches
the database, so the bookkeeping is the same whatever the backend.
"""

from __future__ import annotations

import asyncio
import threading
import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from refit.core.loop_handoff import settle, settle_all
from refit.monitoring import prometheus_metrics as metrics

T = TypeVar("T")


class SeqRanges:
    """A set of positive integers kept as sorted, disjoint, closed ranges.

    Failures come in runs (a dropped group, a full queue), so ranges stay few. Past
    `max_ranges` the oldest are forgotten, and every number up to them then counts
    as a member: "maybe dropped" must never read as "written".
    """

    def __init__(self, max_ranges: int = 10_000) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        self._max = max_ranges
        self._forgotten_upto = 0

    def add(self, n: int) -> None:
        i = bisect_right(self._lo, n)  # ranges before i start at or below n
        if i and self._hi[i - 1] >= n:
            return
        joins_left = bool(i) and self._hi[i - 1] == n - 1
        joins_right = i < len(self._lo) and self._lo[i] == n + 1
        if joins_left and joins_right:
            self._hi[i - 1] = self._hi[i]
            del self._lo[i], self._hi[i]
        elif joins_left:
            self._hi[i - 1] = n
        elif joins_right:
            self._lo[i] = n
        else:
            self._lo.insert(i, n)
            self._hi.insert(i, n)
            if len(self._lo) > self._max:
                self._forgotten_upto = self._hi[0]
                del self._lo[0], self._hi[0]

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int):
            return False
        if 0 < n <= self._forgotten_upto:
            return True
        i = bisect_right(self._lo, n)
        return bool(i) and n <= self._hi[i - 1]

    def __len__(self) -> int:
        return len(self._lo)


@dataclass
class Queued(Generic[T]):
    seq: int
    payload: T
    rows: int
    since: float  # time.monotonic() when queued


_Waiter = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[bool]"]


class LogQueue(Generic[T]):
    """At most `max_rows` rows waiting; groups of at most `group_rows` handed out."""

    def __init__(self, max_rows: int, group_rows: int, linger_s: float, eager_rows: int) -> None:
        self._max_rows = max_rows
        self._group_rows = group_rows
        self._linger = linger_s
        self._eager_rows = eager_rows
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # wakes the writer
        self._done = threading.Condition(self._lock)  # wakes threads waiting for durability
        self._queue: deque[Queued[T]] = deque()
        self._rows = 0
        self._seq = 0
        self._in_flight: list[int] = []  # seqs of the group being written, ascending
        self._failed = SeqRanges()
        self._sync_waiting = 0
        self._async_waiting: dict[int, _Waiter] = {}  # by id of the future
        self.closed = False
        self._closed_at = 0.0  # time.monotonic() of close()

    # --- producers and waiters ---------------------------------------------------

    def put(self, payload: T, rows: int) -> tuple[int, bool]:
        """Queue `payload` of `rows` rows: (its seq, whether it fit). Never blocks long."""
        with self._lock:
            self._seq += 1
            fits = not self.closed and self._rows + rows <= self._max_rows
            if fits:
                self._queue.append(Queued(self._seq, payload, rows, time.monotonic()))
                self._rows += rows
                self._work.notify()
            else:
                self._failed.add(self._seq)
            seq, depth = self._seq, self._rows
        metrics.LOG_QUEUE_DEPTH.set(depth)
        return seq, fits

    def new_failed_seq(self) -> int:
        with self._lock:
            self._seq += 1
            self._failed.add(self._seq)
            return self._seq

    @property
    def depth(self) -> int:
        """Rows queued, not counting the group being written."""
        with self._lock:
            return self._rows

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def is_durable(self, seq: int) -> bool:
        with self._lock:
            return self._state(seq) is True

    def wait(self, seq: int, timeout: float) -> bool:
        with self._lock:
            if self._state(seq) is None:
                self._sync_waiting += 1
                self._work.notify()  # somebody waits: the writer should not linger
                try:
                    self._done.wait_for(lambda: self._state(seq) is not None, max(timeout, 0.0))
                finally:
                    self._sync_waiting -= 1
            return self._state(seq) is True

    async def wait_async(self, seq: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        with self._lock:  # held only for bookkeeping, never across I/O
            state = self._state(seq)
            if state is not None:
                return state
            future: asyncio.Future[bool] = loop.create_future()
            self._async_waiting[id(future)] = (seq, loop, future)
            self._work.notify()
        # A timer on the future itself: lighter than asyncio.wait_for, which wraps it
        # in a second future and callbacks, once per request.
        timer = loop.call_later(max(timeout, 0.0), settle, future, False)
        try:
            return await future
        finally:
            timer.cancel()
            with self._lock:  # timed out or cancelled: settle() has not removed it
                self._async_waiting.pop(id(future), None)

    def close(self) -> None:
        """Refuse new items; the writer empties the queue, then `take` returns None."""
        with self._lock:
            if not self.closed:
                self.closed, self._closed_at = True, time.monotonic()
            self._work.notify_all()

    def closed_for(self) -> float:
        """Seconds since `close()`; 0 while open."""
        with self._lock:
            return time.monotonic() - self._closed_at if self.closed else 0.0

    def pause(self, seconds: float) -> None:
        """The writer's wait between two attempts: `seconds`, cut short if the queue
        closes meanwhile (shutdown should not wait out a long backoff)."""
        with self._lock:
            was_closed = self.closed
            self._work.wait_for(lambda: self.closed and not was_closed, max(seconds, 0.0))

    def _state(self, seq: int) -> bool | None:
        """True: written; False: dropped or never issued; None: still to be written."""
        if seq <= 0:
            return True
        if seq > self._seq or seq in self._failed:
            return False
        if self._in_flight:
            pending_from = self._in_flight[0]
        elif self._queue:
            pending_from = self._queue[0].seq
        else:
            return True
        # Groups are written in queue order, so every seq below the oldest pending
        # one is settled; above it only the dropped ones, handled above, are.
        return True if seq < pending_from else None

    # --- the writer ------------------------------------------------------------------

    def take(self, wake_by: float) -> list[Queued[T]] | None:
        """The next group; [] if nothing is due by `wake_by` (monotonic); None once
        closed and empty."""
        with self._lock:
            while True:
                now = time.monotonic()
                if self._queue:
                    due = self._queue[0].since + self._linger
                    eager = self.closed or self._rows >= self._eager_rows
                    if eager or self._sync_waiting or self._async_waiting or now >= due:
                        break
                    # Lingering gathers more rows per commit while nobody is waiting.
                    wait = min(due, wake_by) - now
                elif self.closed:
                    return None
                else:
                    wait = wake_by - now
                if wait <= 0:
                    return []
                self._work.wait(wait)
            group: list[Queued[T]] = []
            rows = 0
            while self._queue and (not group or rows + self._queue[0].rows <= self._group_rows):
                group.append(self._queue.popleft())
                rows += group[-1].rows
            self._rows -= rows
            self._in_flight = [item.seq for item in group]
            depth = self._rows
        metrics.LOG_QUEUE_DEPTH.set(depth)
        return group

    def settle(self, failed: list[int]) -> None:
        """End the group in flight: `failed` seqs were dropped, the rest written."""
        ready = []
        with self._lock:
            for seq in failed:
                self._failed.add(seq)
            self._in_flight = []
            self._done.notify_all()
            for key, (seq, loop, future) in list(self._async_waiting.items()):
                state = self._state(seq)
                if state is not None:
                    ready.append((loop, future, state))
                    del self._async_waiting[key]
        settle_all(ready)  # one wake-up per loop, not per waiter
