"""A worker that cannot serve at all stops the whole server, and leaves the reason.

No version loads, or the prediction log cannot work: BentoML's process manager
(circus) would start such a worker again and again behind an open port. So the worker
logs one error and asks the process manager, its parent, to stop every worker and exit
(`core.compat.bentoml.stop_server`).

BentoML then exits with status 0, as after any SIGTERM, and a supervisor would take
the stop for a clean one. So `refit serve` names a file in REFIT_STOP_REASON_FILE; the
worker writes its reason there before it asks, and once BentoML returns, the process
`refit serve` became exits non-zero with that reason (`refit/serve_process.py`). Under
plain `bentoml serve` the variable is unset: the server still stops, with status 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from refit.core.compat.bentoml import is_worker_process, stop_server

logger = logging.getLogger(__name__)

STOP_REASON_VAR = "REFIT_STOP_REASON_FILE"


def stop_server_because(message: str) -> None:
    """In a BentoML worker: log `message`, leave it for `refit serve` and stop the server.
    Anywhere else (tests, the CLI) nothing: the caller's exception says it."""
    if not is_worker_process():
        return
    logger.error("%s; stopping the server", message)
    path = os.environ.get(STOP_REASON_VAR)
    if path:
        with contextlib.suppress(OSError):  # the reason is a courtesy; stopping is not
            Path(path).write_text(message + "\n")
    stop_server()  # circus, the worker's parent: every worker stops, and it exits


def stop_reason(path: Path) -> str:
    """What a worker left in `path` before it stopped the server; "" if nothing."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[0] if lines else ""
