"""CPU time of process trees, read from /proc: what one load point cost each part.

On a machine whose cores the server shares with its load generator and its proxy,
goodput alone cannot tell a server that wastes time under overload from one that
is starved by the processes around it. A started server (its workers included) and
HAProxy are each a tree of processes under one PID, so the tree's CPU time over a
point is that part's whole cost.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int, proc: Path = Path("/proc")) -> float:
    """User and system CPU seconds of `root` and its live descendants."""
    children: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, int] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        # The command name may hold spaces and parentheses: the fields start after
        # the last ')'. Then: state ppid pgrp ... utime (12th) stime (13th).
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        children[int(fields[1])].append(pid)
        ticks[pid] = int(fields[11]) + int(fields[12])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total / TICKS_PER_S


class CpuMeter:
    """CPU seconds each named process tree used between `start()` and `read()`."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: tree_cpu_s(pid) for name, pid in self.roots.items()}

    def read(self) -> dict[str, float]:
        return {
            name: tree_cpu_s(pid) - self._start.get(name, 0.0) for name, pid in self.roots.items()
        }
