"""Workers exit when the server that started them is gone, however it went.

BentoML runs each worker in a process group of its own, so `kill -9` of the
server's group, an OOM kill or a crash of the server process leaves the workers
running: they hold the port, the next `refit serve` fails, and their metrics go
nowhere. Each worker therefore watches its parent process and, once that parent
is gone (the worker was re-parented), writes out what its prediction log still
holds and exits.

Watching the parent alone has a hole: a worker still loading when the server dies
is re-parented before it starts watching, and would then watch its new parent for
ever (seen under CPU load in `tests/server/test_process_life.py`). So the parent is
read when this module is imported, early in the worker's life, and `refit serve`
also names its own process in `REFIT_SERVER_PID` before it becomes BentoML's
arbiter: a worker whose named server is gone exits however late it looked.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

POLL_S = 0.5
SERVER_PID_VAR = "REFIT_SERVER_PID"
_PARENT_AT_IMPORT = os.getppid()


def watch_parent(on_orphaned: Callable[[], None], poll_s: float = POLL_S) -> threading.Thread:
    """Start a daemon thread that calls `on_orphaned`, then exits the process, once this
    worker is orphaned (`orphaned`)."""
    parent, server = _PARENT_AT_IMPORT, named_server()

    def watch() -> None:
        while not orphaned(parent, server):
            threading.Event().wait(poll_s)
        logger.error("the server process %d is gone; this worker exits", server or parent)
        try:
            on_orphaned()
        finally:
            os._exit(0)

    thread = threading.Thread(target=watch, name="refit-parent-watch", daemon=True)
    thread.start()
    return thread


def named_server() -> int | None:
    """The server process `refit serve` named in the environment, if any."""
    value = os.environ.get(SERVER_PID_VAR, "")
    return int(value) if value.isdigit() else None


def orphaned(parent: int, server: int | None) -> bool:
    """Whether the parent this worker started with, or the server named for it, is gone."""
    return os.getppid() != parent or (server is not None and not running(server))


def running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (dead, not yet reaped) is not (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")
