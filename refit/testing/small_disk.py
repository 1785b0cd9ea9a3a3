"""A small filesystem of its own to fill up: a real full disk for the prediction log.

A tmpfs mount of a few megabytes: SQLite on it meets the kernel's own ENOSPC, as on a
full volume, while nothing else the test or the server writes shares it. Mounting
needs root (CAP_SYS_ADMIN); `SmallDisk.mount` says why it cannot, for a visible skip.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

_CHUNK = 1 << 16
_PAGE = 4096


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    @classmethod
    def mount(cls, path: Path, size_mb: int) -> SmallDisk | str:
        """A tmpfs of `size_mb` MiB mounted at `path`, or why it cannot be."""
        if os.geteuid() != 0:
            return "mounting a tmpfs needs root; CI runs these tests as root"
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
        return cls(path)

    def fill(self) -> int:
        """Write a file until the disk is full, to the last page; the bytes written."""
        written = 0
        with self.filler.open("ab", buffering=0) as out:
            for size in (_CHUNK, _PAGE, 512):
                while True:
                    try:
                        written += out.write(b"\0" * size) or 0
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount, lazily if a process still holds a file there."""
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", str(self.path)], capture_output=True, check=True)
            return
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
