"""Start a server in a process group of its own, wait until it answers, stop it by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import psutil


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


def ready_or_stopped(server: S, wait: Callable[[], object]) -> S:
    """`server` once `wait()` returns; if `wait` raises, the server is stopped first, so
    that a failed start leaves no process behind."""
    try:
        wait()
    except BaseException:
        server.stop()
        raise
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    url: str
    home: Path
    log: Path

    def processes(self) -> list[psutil.Process]:
        """The server process and everything it started.

        BentoML's workers run in process groups of their own, so signalling the
        server's group alone would leave them running.
        """
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL for whatever is left of the tree."""
        tree = self.processes()
        stop_group(self.process, signal.SIGTERM, grace=30)
        kill_all(tree)

    def kill_hard(self) -> None:
        """SIGKILL the server and its workers at once: no shutdown hook runs."""
        tree = self.processes()
        kill_all(tree)
        self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def kill_all(processes: list[psutil.Process]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=10)


def stop_group(process: subprocess.Popen[bytes], first: signal.Signals, *, grace: float) -> None:
    """Send `first` to the process group of a running `process`; SIGKILL the group if the
    process has not exited `grace` seconds later."""
    if process.poll() is None:
        os.killpg(process.pid, first)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def launch(
    command: list[str | Path], log: Path, *, append: bool = False, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start `command` in a session (process group) of its own, output and errors to `log`."""
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )


def wait_for(
    name: str,
    process: subprocess.Popen[bytes],
    log: Path,
    probe: Callable[[], bool],
    *,
    timeout: float,
    pause: float,
    retry_on: tuple[type[Exception], ...] = (httpx.HTTPError,),
    reraise: bool = False,
) -> None:
    """Call `probe` every `pause` seconds until it returns True.

    RuntimeError `<name> exited early` (with the log's tail) if `process` exits first;
    after `timeout` seconds TimeoutError, or with `reraise` the probe's last error.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{tail(log)}")
        try:
            if probe():
                return
        except retry_on:
            if reraise and time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready in {timeout} s:\n{tail(log)}")
        time.sleep(pause)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]
