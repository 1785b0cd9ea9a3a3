"""The process `refit serve` becomes: BentoML's server, with an exit status that tells.

`refit serve` replaces itself (exec) with `python -m refit.serve_process serve ...`,
which runs BentoML's own command line in this process: it becomes BentoML's process
manager, as `bentoml serve` would, with the same process id (workers watch it, a
supervisor signals it). The one difference is how it ends. A worker that cannot serve
at all stops the server with SIGTERM, after which BentoML exits 0 like after any stop;
here the worker's reason, left in the file named by REFIT_STOP_REASON_FILE
(`service.model.stop_reason`), turns into one error line and exit status 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from refit.service.model.stop_reason import STOP_REASON_VAR, stop_reason

# What a stopped-by-a-worker server exits with; 2 is left to invalid settings, as in
# every refit command.
FAILED_START = 1


def main(argv: list[str]) -> int:
    """Run `bentoml <argv>` to its end; FAILED_START if a worker stopped the server."""
    fd, name = tempfile.mkstemp(prefix="refit-stop-reason-")
    os.close(fd)
    reason_file = Path(name)
    os.environ[STOP_REASON_VAR] = name  # inherited by every worker BentoML starts
    try:
        run_bentoml(argv)
        reason = stop_reason(reason_file)
    finally:
        reason_file.unlink(missing_ok=True)
    if reason:
        print(f"error: the server stopped: {reason}", file=sys.stderr, flush=True)
        return FAILED_START
    return 0


def run_bentoml(argv: list[str]) -> None:
    """BentoML's command line in this process, as its `bentoml` script runs it, but
    returning instead of exiting (its click group's `standalone_mode=False`)."""
    from bentoml_cli.cli import cli

    cli.main(args=argv, prog_name="bentoml", standalone_mode=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
