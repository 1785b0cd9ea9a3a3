"""`bentoml serve` the refit service: alone on private copies of its folders, or as one
replica of several sharing a model store, state folder and prediction log."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx

from refit.testing.processes import RunningServer, free_port, launch, ready_or_stopped, wait_for

SERVICE = "refit.service.service:Classifier"


def start_bentoml(env: dict[str, str], workdir: Path, *, timeout: float = 120) -> RunningServer:
    """`bentoml serve` the refit service with `env`.

    The server works on private copies of BENTOML_HOME and of refit's state folder,
    so nothing it does reaches other tests.
    """
    home = workdir / "bentoml"
    # Neither another server's metrics folder nor its prediction log comes along.
    private = shutil.ignore_patterns("prometheus*", "*.sqlite3*")
    shutil.copytree(env["BENTOML_HOME"], home, ignore=private)
    if "REFIT_STATE_DIR" in env:
        state = workdir / "state"
        shutil.copytree(env["REFIT_STATE_DIR"], state, ignore=private)
        env = {**env, "REFIT_STATE_DIR": str(state)}
    return _serve_classifier(env, home, workdir / "server.log", free_port(), timeout)


def _serve_classifier(
    env: dict[str, str], home: Path, log: Path, port: int, timeout: float, *, append: bool = False
) -> RunningServer:
    """`bentoml serve` the refit service on `port` with `env` and BENTOML_HOME `home`,
    and wait until it is ready."""
    full_env = {
        **os.environ,
        "REFIT_WORKERS": "1",  # one unless a test asks for more: memory, and exact routing
        **env,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    # `python -m bentoml` of this interpreter: the environment refit is installed in.
    command: list[str | Path] = [sys.executable, "-m", "bentoml", "serve", SERVICE]
    process = launch(
        [*command, "--host", "127.0.0.1", "--port", str(port)], log, append=append, env=full_env
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", home, log)
    return ready_or_stopped(server, lambda: wait_ready(server, timeout))


def wait_ready(server: RunningServer, timeout: float) -> None:
    def ready() -> bool:
        return httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200

    wait_for("server", server.process, server.log, ready, timeout=timeout, pause=0.5)


def start_replica(
    env: dict[str, str], workdir: Path, *, port: int | None = None, timeout: float = 180
) -> RunningServer:
    """`bentoml serve` the refit service as one replica of several.

    Unlike `start_bentoml`, nothing is copied: the replica gets an empty BENTOML_HOME of
    its own in `workdir` (its metrics folder, which BentoML wipes at start), and shares
    whatever `env` names (REFIT_MODEL_STORE, REFIT_STATE_DIR, the prediction log) with
    the other replicas. `port`: the same port again, to restart a replica in place.
    """
    home = workdir / "bentoml"
    home.mkdir(parents=True, exist_ok=True)
    log = workdir / "server.log"
    return _serve_classifier(env, home, log, port or free_port(), timeout, append=True)
