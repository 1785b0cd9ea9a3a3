"""Where benchmark results go: a dated section in bench/RESULTS.md, with the machine and
the commit they were measured on."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def machine() -> str:
    """Cores and CPU model, e.g. "2 cores, AMD EPYC 7B13"."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def commit() -> str:
    """The commit, marked when the working tree has changes on top of it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head} (with uncommitted changes)" if git("status", "--porcelain") else head


def record(name: str, text: str) -> None:
    """Append `text` under a heading naming the benchmark, the time, machine and commit."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with RESULTS.open("a") as log:
        log.write(f"\n## {name} {stamp} — {machine()} — commit {commit()}\n\n{text.rstrip()}\n")


def publish(name: str, text: str, *, keep: bool = True) -> None:
    """Print a benchmark's `text`, and append it to RESULTS.md (`record`) when `keep`."""
    print(text)
    if keep:
        record(name, text)


def points_parser(doc: str, counts: str, default: str, unit: str) -> argparse.ArgumentParser:
    """The arguments of a benchmark described by `doc` that measures one point per count
    of `unit`s (the option `counts`, e.g. "--writers"), each for --seconds, and records
    the results unless --no-record."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument(counts, default=default, help=f"comma-separated {unit} counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per point")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    return parser
