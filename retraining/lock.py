"""The one lock that keeps drift checks and retrains from overlapping, across processes.

A `refit watch`, a second one, a Kubernetes CronJob and a `refit retrain` by hand
may all reach for the same state folder; whoever finds the lock taken skips its
round instead of racing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from refit.core.errors import Busy
from refit.core.settings import CoreSettings


@contextmanager
def exclusive(core: CoreSettings, what: str) -> Iterator[None]:
    """Hold the lock for `what`; Busy at once if another process holds it."""
    folder = core.resolved_state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / "retraining.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise Busy(f"another drift check or retrain is running; skipped the {what}") from exc
    try:
        yield
    finally:
        lock.release()
