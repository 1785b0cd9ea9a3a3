"""A real Prometheus with a given configuration, its storage in a folder of the caller's."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from refit.testing.processes import RunningServer, free_port, launch, ready_or_stopped, wait_for


def start_prometheus(config_text: str, workdir: Path, *, timeout: float = 30) -> RunningServer:
    """Run the `prometheus` binary with `config_text` as its configuration.

    Its storage lives in `workdir`, so every call starts with an empty database.
    Relative paths in the configuration (rule files) resolve against `workdir`.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("no `prometheus` on PATH (.ci/run installs the Debian package)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(config_text)
    port = free_port()
    log = workdir / "prometheus.log"
    process = launch(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log,
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", workdir, log)

    def ready() -> bool:
        return httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200

    return ready_or_stopped(
        server, lambda: wait_for("prometheus", process, log, ready, timeout=timeout, pause=0.2)
    )
