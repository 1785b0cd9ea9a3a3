"""Replace a file's content in one step, so a reader never sees half of it."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename.

    The temporary name carries the process id: two processes writing the same file
    (a server worker and `refit watch`) never share one half-written temporary.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
