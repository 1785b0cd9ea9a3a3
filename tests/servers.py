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
from collections.abc import Callable
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
        _stop_group(self.process, signal.SIGTERM, grace=30)
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


def _stop_group(process: subprocess.Popen[bytes], first: signal.Signals, *, grace: float) -> None:
    """Send `first` to the process group of a running `process`; SIGKILL the group if the
    process has not exited `grace` seconds later."""
    if process.poll() is None:
        os.killpg(process.pid, first)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _launch(
    command: list[str | Path], log: Path, *, append: bool = False, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start `command` in a session (process group) of its own, output and errors to `log`."""
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )


def _wait_for(
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
            raise RuntimeError(f"{name} exited early:\n{_tail(log)}")
        try:
            if probe():
                return
        except retry_on:
            if reraise and time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready in {timeout} s:\n{_tail(log)}")
        time.sleep(pause)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


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
    bentoml = Path(sys.executable).parent / "bentoml"
    command: list[str | Path] = [bentoml, "serve", "service.service:Classifier"]
    process = _launch(
        [*command, "--host", "127.0.0.1", "--port", str(port)], log, append=append, env=full_env
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", home, log)
    try:
        wait_ready(server, timeout)
    except Exception:
        server.stop()
        raise
    return server


def wait_ready(server: RunningServer, timeout: float) -> None:
    def ready() -> bool:
        return httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200

    _wait_for("server", server.process, server.log, ready, timeout=timeout, pause=0.5)


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

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def stop(self) -> None:
        pause_postgres(self)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(
    bin_dir: Path, *, database: str = "refit", timeout: float = 60
) -> RunningPostgres:
    """A throwaway PostgreSQL server on a free loopback port, with database `database`.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` system
    user, in a temporary folder that user owns.
    """
    folder = Path(tempfile.mkdtemp(prefix="refit-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, log = folder / "data", folder / "postgres.log"
    initdb: list[str | Path] = [bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"]
    done = subprocess.run(
        [*initdb, "--no-sync", "-E", "UTF8", "--locale=C"], capture_output=True, **_as_postgres()
    )
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{done.stderr.decode(errors='replace')[-4000:]}")
    port = free_port()
    server = RunningPostgres(
        _launch_postgres(bin_dir, folder, port, log),
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}",
        folder,
        log,
    )
    try:
        _wait_for_postgres(server, timeout, 0.2, f'CREATE DATABASE "{database}"')
    except Exception:
        server.stop()
        raise
    return server


def _as_postgres() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, run its programs as `postgres`."""
    if os.geteuid() == 0:
        return {"user": "postgres", "group": "postgres", "extra_groups": []}
    return {}


def _launch_postgres(
    bin_dir: Path, folder: Path, port: int, log: Path, *, append: bool = False
) -> subprocess.Popen[bytes]:
    postgres: list[str | Path] = [bin_dir / "postgres", "-D", folder / "data", "-p", str(port)]
    return _launch(
        [*postgres, "-k", folder, "-c", "listen_addresses=127.0.0.1"],
        log,
        append=append,
        **_as_postgres(),
    )


def _wait_for_postgres(
    server: RunningPostgres, timeout: float, pause: float, statement: str | None = None
) -> None:
    """Wait until `server` accepts connections (and run `statement`, if given); after
    `timeout` seconds, the last connection error."""
    import psycopg

    conninfo = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"

    def connected() -> bool:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=2) as conn:
            if statement is not None:
                conn.execute(statement)
        return True

    _wait_for(
        "postgres",
        server.process,
        server.log,
        connected,
        timeout=timeout,
        pause=pause,
        retry_on=(psycopg.OperationalError,),
        reraise=True,
    )


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
    process = _launch(
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

    try:
        _wait_for("prometheus", process, log, ready, timeout=timeout, pause=0.2)
    except Exception:
        server.stop()
        raise
    return server


def pause_postgres(server: RunningPostgres) -> None:
    """Stop a server started by `start_postgres` (fast shutdown), keeping its data folder
    and port for `resume_postgres`: a database restart as clients see it."""
    # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients.
    _stop_group(server.process, signal.SIGINT, grace=30)


def resume_postgres(server: RunningPostgres, bin_dir: Path, *, timeout: float = 60) -> None:
    """Start a paused server again on the same data folder and port, and wait until it
    accepts connections. `server.process` is the new process afterwards."""
    server.process = _launch_postgres(bin_dir, server.folder, server.port, server.log, append=True)
    _wait_for_postgres(server, timeout, 0.1)


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
    log = workdir / "server.log"
    return _serve_classifier(env, home, log, port or free_port(), timeout, append=True)


# The configuration users run (README: "Replicas"); the tests add only the replicas.
HAPROXY_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy" / "haproxy.cfg"


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
        _stop_group(self.process, signal.SIGTERM, grace=10)


def haproxy_binary() -> str | None:
    """HAProxy's binary (Debian puts it in /usr/sbin, not always on PATH); None if absent."""
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if Path(found).is_file() else None


def start_haproxy(
    backends: dict[str, str],
    workdir: Path,
    *,
    check_ms: int = 500,
    maxconn: int = 64,
    queue_timeout_ms: int = 2000,
    timeout: float = 30,
) -> RunningHAProxy:
    """HAProxy (Debian package `haproxy`) with deploy/haproxy/haproxy.cfg on a free
    loopback port, in front of `backends` (name -> http://host:port); returns once
    every backend passes its `/readyz` check."""
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
    process = _launch([binary, "-db", "-f", str(HAPROXY_CONFIG), "-f", str(replicas)], log, env=env)
    proxy = RunningHAProxy(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/stats", log
    )

    def all_up() -> bool:
        states = proxy.server_states()
        return bool(states) and all(s["status"] == "UP" for s in states.values())

    try:
        _wait_for(
            "haproxy",  # ready: every backend UP
            process,
            log,
            all_up,
            timeout=timeout,
            pause=0.2,
            retry_on=(httpx.HTTPError, ValueError, KeyError),
        )
    except Exception:
        proxy.stop()
        raise
    return proxy
