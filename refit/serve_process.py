"""The process `refit serve` becomes: BentoML's server, with an exit status that tells.

`refit serve` replaces itself (exec) with `python -m refit.serve_process serve ...`,
which runs BentoML's own command line in this process: it becomes BentoML's process
manager, as `bentoml serve` would, with the same process id (workers watch it, a
supervisor signals it). The one difference is how it ends. A worker that cannot serve
at all stops the server with SIGTERM, after which BentoML exits 0 like after any stop;
here the worker's reason, left in the file named by REFIT_STOP_REASON_FILE
(`service.model.stop_reason`), turns into one error line and exit status 1. It also
says when the server is ready: BentoML listens before its workers have loaded the
model, so one line, printed once /readyz answers 200, tells a person when to send.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from refit.service.model.stop_reason import STOP_REASON_VAR, stop_reason

# What a stopped-by-a-worker server exits with; 2 is left to invalid settings, as in
# every refit command.
FAILED_START = 1
READY_POLL_S = 0.25
# A wildcard bind is polled on loopback; the line still names the address bound.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}


def main(argv: list[str]) -> int:
    """Run `bentoml <argv>` to its end; FAILED_START if a worker stopped the server."""
    fd, name = tempfile.mkstemp(prefix="refit-stop-reason-")
    os.close(fd)
    reason_file = Path(name)
    os.environ[STOP_REASON_VAR] = name  # inherited by every worker BentoML starts
    address = bound_address(argv)
    if address is not None:
        threading.Thread(target=announce_ready, args=address, daemon=True).start()
    try:
        run_bentoml(argv)
        reason = stop_reason(reason_file)
    finally:
        reason_file.unlink(missing_ok=True)
    if reason:
        print(f"error: the server stopped: {reason}", file=sys.stderr, flush=True)
        return FAILED_START
    return 0


def bound_address(argv: list[str]) -> tuple[str, int] | None:
    """(host, port) of `--host H --port P` in BentoML's arguments; None without both."""
    found: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv):
        if flag in ("--host", "--port"):
            found[flag] = value
    if set(found) != {"--host", "--port"} or not found["--port"].isdigit():
        return None
    return found["--host"], int(found["--port"])


def announce_ready(host: str, port: int, *, pause: float = READY_POLL_S) -> None:
    """Print one line once the server at host:port answers /readyz with 200; polls for
    as long as the process lives (the thread is a daemon)."""
    url = f"http://{_LOOPBACK.get(host, host)}:{port}/readyz"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    while True:
        try:
            with direct.open(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:  # not listening yet, or 503 while the workers load
            pass
        time.sleep(pause)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"ready: serving on http://{shown}:{port} (front page at /, API docs at /docs)",
        flush=True,
    )


def run_bentoml(argv: list[str]) -> None:
    """BentoML's command line in this process, as its `bentoml` script runs it, but
    returning instead of exiting (its click group's `standalone_mode=False`)."""
    from bentoml_cli.cli import cli

    cli.main(args=argv, prog_name="bentoml", standalone_mode=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
