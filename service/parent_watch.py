"""Workers exit when the server that started them is gone, however it went.

BentoML runs each worker in a process group of its own, so `kill -9` of the
server's group, an OOM kill or a crash of the server process leaves the workers
running: they hold the port, the next `refit serve` fails, and their metrics go
nowhere. Each worker therefore watches its parent process and, once that parent
is gone (the worker was re-parented), writes out what its prediction log still
holds and exits.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

POLL_S = 0.5


def watch_parent(on_orphaned: Callable[[], None], poll_s: float = POLL_S) -> threading.Thread:
    """Start a daemon thread that calls `on_orphaned`, then exits the process, once the
    parent that exists now is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(poll_s)
        logger.error("the server process %d is gone; this worker exits", parent)
        try:
            on_orphaned()
        finally:
            os._exit(0)

    thread = threading.Thread(target=watch, name="refit-parent-watch", daemon=True)
    thread.start()
    return thread
