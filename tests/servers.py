"""Start and stop real servers for integration tests.

Each server gets a free loopback port and its own home folder, and is stopped by
the PID of the process group it was started in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


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

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_bentoml(env: dict[str, str], workdir: Path, *, timeout: float = 120) -> RunningServer:
    """`bentoml serve` the refit service with `env`.

    The server works on private copies of BENTOML_HOME and of refit's state folder,
    so nothing it does reaches other tests.
    """
    home = workdir / "bentoml"
    shutil.copytree(env["BENTOML_HOME"], home, ignore=shutil.ignore_patterns("prometheus*"))
    full_env = {**os.environ, **env, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    if "REFIT_STATE_DIR" in env:
        state = workdir / "state"
        shutil.copytree(env["REFIT_STATE_DIR"], state)
        full_env["REFIT_STATE_DIR"] = str(state)
    port = free_port()
    log = workdir / "server.log"
    bentoml = str(Path(sys.executable).parent / "bentoml")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                bentoml,
                "serve",
                "service.service:Classifier",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", home, log)
    try:
        wait_ready(server, timeout)
    except Exception:
        server.stop()
        raise
    return server


def wait_ready(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log_text()[-4000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server not ready in {timeout} s:\n{server.log_text()[-4000:]}")
