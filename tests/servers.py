"""Start and stop real servers for integration tests (and the benchmarks in bench/).

Each server gets a free loopback port and its own home folder, and is stopped by
the PID of the process group it was started in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil


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
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        _kill_all(tree)

    def kill_hard(self) -> None:
        """SIGKILL the server and its workers at once: no shutdown hook runs."""
        tree = self.processes()
        _kill_all(tree)
        self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _kill_all(processes: list[psutil.Process]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=10)


def start_bentoml(env: dict[str, str], workdir: Path, *, timeout: float = 120) -> RunningServer:
    """`bentoml serve` the refit service with `env`.

    The server works on private copies of BENTOML_HOME and of refit's state folder,
    so nothing it does reaches other tests.
    """
    home = workdir / "bentoml"
    # Neither another server's metrics folder nor its prediction log comes along.
    private = shutil.ignore_patterns("prometheus*", "*.sqlite3*")
    shutil.copytree(env["BENTOML_HOME"], home, ignore=private)
    full_env = {
        **os.environ,
        "REFIT_WORKERS": "1",  # one unless a test asks for more: memory, and exact routing
        **env,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    if "REFIT_STATE_DIR" in env:
        state = workdir / "state"
        shutil.copytree(env["REFIT_STATE_DIR"], state, ignore=private)
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


# --- PostgreSQL --------------------------------------------------------------------

POSTGRES_ROOT = Path("/usr/lib/postgresql")


def postgres_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL server binaries, else those on PATH; None if absent."""
    versions = sorted(
        (path for path in POSTGRES_ROOT.glob("*/bin") if (path / "postgres").is_file()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).parent / "postgres").is_file():
        return Path(initdb).parent
    return None


@dataclass
class RunningPostgres:
    process: subprocess.Popen[bytes]
    url: str
    folder: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients.
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(
    bin_dir: Path, *, database: str = "refit", timeout: float = 60
) -> RunningPostgres:
    """A throwaway PostgreSQL server on a free loopback port, with database `database`.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` system
    user, in a temporary folder that user owns.
    """
    folder = Path(tempfile.mkdtemp(prefix="refit-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    as_user: dict[str, Any] = {}
    if user is not None:
        shutil.chown(folder, user, user)
        as_user = {"user": user, "group": user, "extra_groups": []}
    data, log = folder / "data", folder / "postgres.log"
    initdb: list[str | Path] = [bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"]
    done = subprocess.run(
        [*initdb, "--no-sync", "-E", "UTF8", "--locale=C"], capture_output=True, **as_user
    )
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{done.stderr.decode(errors='replace')[-4000:]}")
    port = free_port()
    postgres: list[str | Path] = [bin_dir / "postgres", "-D", data, "-p", str(port), "-k", folder]
    with log.open("wb") as out:
        process: subprocess.Popen[bytes] = subprocess.Popen(
            [*postgres, "-c", "listen_addresses=127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )
    server = RunningPostgres(
        process, f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}", folder, log
    )
    try:
        _create_database(server, port, database, timeout)
    except Exception:
        server.stop()
        raise
    return server


def _create_database(server: RunningPostgres, port: int, database: str, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited early:\n{server.log.read_text()[-4000:]}")
        try:
            conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=2) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- Prometheus --------------------------------------------------------------------


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
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", workdir, log)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited early:\n{server.log_text()[-4000:]}")
            try:
                if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                log_tail = server.log_text()[-4000:]
                raise TimeoutError(f"prometheus not ready in {timeout} s:\n{log_tail}")
            time.sleep(0.2)
    except Exception:
        server.stop()
        raise


def pause_postgres(server: RunningPostgres) -> None:
    """Stop a server started by `start_postgres` (fast shutdown), keeping its data folder
    and port for `resume_postgres`: a database restart as clients see it."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGINT)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def resume_postgres(server: RunningPostgres, bin_dir: Path, *, timeout: float = 60) -> None:
    """Start a paused server again on the same data folder and port, and wait until it
    accepts connections. `server.process` is the new process afterwards."""
    import psycopg

    port = int(server.url.rsplit(":", 1)[1].split("/", 1)[0])
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    data = server.folder / "data"
    postgres: list[str | Path] = [bin_dir / "postgres", "-D", data, "-p", str(port)]
    with server.log.open("ab") as out:
        server.process = subprocess.Popen(
            [*postgres, "-k", server.folder, "-c", "listen_addresses=127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )
    deadline = time.monotonic() + timeout
    conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited early:\n{server.log.read_text()[-4000:]}")
        try:
            with psycopg.connect(conninfo, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- replicas behind HAProxy ----------------------------------------------------------


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
    full_env = {
        **os.environ,
        "REFIT_WORKERS": "1",
        **env,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    port = port or free_port()
    log = workdir / "server.log"
    bentoml = str(Path(sys.executable).parent / "bentoml")
    args = [bentoml, "serve", "service.service:Classifier", "--host", "127.0.0.1"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*args, "--port", str(port)],
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


HAPROXY_CONFIG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    # A request whose replica died before answering is sent again, to another
    # replica: refused connections, and connections closed without a response.
    # The body must be buffered to be sent twice.
    option http-buffer-request
    retries 3
    retry-on conn-failure empty-response response-timeout
    option redispatch 1
frontend refit
    bind 127.0.0.1:{port}
    default_backend replicas
frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
    stats refresh 1s
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {check_ms}ms fall 2 rise 2
{servers}
"""


@dataclass
class RunningHAProxy:
    process: subprocess.Popen[bytes]
    url: str
    stats_url: str
    config: Path
    log: Path

    def server_states(self) -> dict[str, dict[str, str]]:
        """Each backend server's row of HAProxy's CSV statistics, by server name
        (`status` is UP, DOWN, ...; `stot` the sessions it took)."""
        text = httpx.get(f"{self.stats_url};csv", timeout=5).text
        header, *rows = [line for line in text.splitlines() if line]
        names = header.lstrip("# ").split(",")
        found = {}
        for row in rows:
            record = dict(zip(names, row.split(","), strict=False))
            if record["pxname"] == "replicas" and record["svname"] not in ("FRONTEND", "BACKEND"):
                found[record["svname"]] = record
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def haproxy_binary() -> str | None:
    """HAProxy's binary (Debian puts it in /usr/sbin, not always on PATH); None if absent."""
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if Path(found).is_file() else None


def start_haproxy(
    backends: dict[str, str], workdir: Path, *, check_ms: int = 500, timeout: float = 30
) -> RunningHAProxy:
    """HAProxy (Debian package `haproxy`) on a free loopback port, balancing over
    `backends` (name -> http://host:port) with `/readyz` health checks."""
    binary = haproxy_binary()
    if binary is None:
        raise FileNotFoundError("no `haproxy` (.ci/run installs the Debian package)")
    workdir.mkdir(parents=True, exist_ok=True)
    port, stats_port = free_port(), free_port()
    servers = "\n".join(
        f"    server {name} {url.removeprefix('http://')} check" for name, url in backends.items()
    )
    config = workdir / "haproxy.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(port=port, stats_port=stats_port, check_ms=check_ms, servers=servers)
    )
    log = workdir / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proxy = RunningHAProxy(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/stats", config, log
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"haproxy exited early:\n{log.read_text()[-4000:]}")
            try:
                states = proxy.server_states()
                if states and all(s["status"] == "UP" for s in states.values()):
                    return proxy
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"haproxy backends not all UP in {timeout} s")
            time.sleep(0.2)
    except Exception:
        proxy.stop()
        raise
