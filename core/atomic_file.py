"""refit's own state files: replaced in one step or appended a line at a time, and
readable by their owner only (they hold texts, labels and decisions)."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename.

    The temporary name carries the process id: two processes writing the same file
    (a server worker and `refit watch`) never share one half-written temporary.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, PRIVATE)  # an older temporary left behind may have had other bits
    os.replace(tmp, path)


def append_line(path: Path, line: str) -> None:
    """Append one line (a newline is added) in a single write, creating the file private."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE)
    with os.fdopen(fd, "a") as out:
        out.write(line + "\n")


def make_private(path: Path) -> None:
    """Restrict a file another library wrote (a report) to its owner."""
    os.chmod(path, PRIVATE)
