"""HAProxy in front of replicas, with the configuration users run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from refit.testing.processes import free_port, launch, ready_or_stopped, stop_group, wait_for


@dataclass
class RunningHAProxy:
    process: subprocess.Popen[bytes]
    url: str
    stats_url: str
    log: Path

    def replicas_stats(self) -> dict[str, dict[str, str]]:
        """The `replicas` backend's rows of HAProxy's CSV statistics, by `svname`: one
        per server (`status` is UP, DOWN, ...; `stot` the sessions it took), and
        `BACKEND` for the whole (`qcur`: requests waiting in its queue)."""
        text = httpx.get(f"{self.stats_url};csv", timeout=5).text
        header, *rows = [line for line in text.splitlines() if line]
        names = header.lstrip("# ").split(",")
        records = (dict(zip(names, row.split(","), strict=False)) for row in rows)
        return {r["svname"]: r for r in records if r["pxname"] == "replicas"}

    def server_states(self) -> dict[str, dict[str, str]]:
        """Each backend server's row of the statistics, by server name."""
        rows = self.replicas_stats()
        return {name: r for name, r in rows.items() if name not in ("FRONTEND", "BACKEND")}

    def stop(self) -> None:
        stop_group(self.process, signal.SIGTERM, grace=10)


def haproxy_binary() -> str | None:
    """HAProxy's binary (Debian puts it in /usr/sbin, not always on PATH); None if absent."""
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if Path(found).is_file() else None


def start_haproxy(
    backends: dict[str, str],
    workdir: Path,
    *,
    config: Path,
    check_ms: int = 500,
    maxconn: int = 64,
    queue_timeout_ms: int = 2000,
    timeout: float = 30,
) -> RunningHAProxy:
    """HAProxy (Debian package `haproxy`) with `config` (deploy/haproxy/haproxy.cfg, the
    configuration users run) on a free loopback port, in front of `backends` (name ->
    http://host:port); returns once every backend passes its `/readyz` check."""
    binary = haproxy_binary()
    if binary is None:
        raise FileNotFoundError("no `haproxy` (.ci/run installs the Debian package)")
    workdir.mkdir(parents=True, exist_ok=True)
    port, stats_port = free_port(), free_port()
    servers = "".join(
        f"    server {name} {url.removeprefix('http://')}\n" for name, url in backends.items()
    )
    replicas = workdir / "replicas.cfg"
    replicas.write_text(f"backend replicas\n{servers}")
    env = {
        **os.environ,
        "LB_BIND": f"127.0.0.1:{port}",
        "LB_STATS_BIND": f"127.0.0.1:{stats_port}",
        "LB_MAXCONN": str(maxconn),
        "LB_QUEUE_TIMEOUT": f"{queue_timeout_ms}ms",
        "LB_CHECK_INTERVAL": f"{check_ms}ms",
    }
    log = workdir / "haproxy.log"
    process = launch([binary, "-db", "-f", str(config), "-f", str(replicas)], log, env=env)
    proxy = RunningHAProxy(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/stats", log
    )
    return ready_or_stopped(proxy, lambda: _wait_until_every_backend_is_up(proxy, timeout))


def _wait_until_every_backend_is_up(proxy: RunningHAProxy, timeout: float) -> None:
    def all_up() -> bool:
        states = proxy.server_states()
        return bool(states) and all(s["status"] == "UP" for s in states.values())

    retry_on = (httpx.HTTPError, ValueError, KeyError)
    wait_for("haproxy", proxy.process, proxy.log, all_up, timeout=timeout, pause=0.2,
             retry_on=retry_on)  # fmt: skip
