"""A throwaway PostgreSQL server, and stopping and starting it as clients see a restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refit.testing.processes import free_port, launch, ready_or_stopped, stop_group, wait_for

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
    create = f'CREATE DATABASE "{database}"'
    return ready_or_stopped(server, lambda: _wait_for_postgres(server, timeout, 0.2, create))


def _as_postgres() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, run its programs as `postgres`."""
    if os.geteuid() == 0:
        return {"user": "postgres", "group": "postgres", "extra_groups": []}
    return {}


def _launch_postgres(
    bin_dir: Path, folder: Path, port: int, log: Path, *, append: bool = False
) -> subprocess.Popen[bytes]:
    postgres: list[str | Path] = [bin_dir / "postgres", "-D", folder / "data", "-p", str(port)]
    return launch(
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

    wait_for(
        "postgres",
        server.process,
        server.log,
        connected,
        timeout=timeout,
        pause=pause,
        retry_on=(psycopg.OperationalError,),
        reraise=True,
    )


def pause_postgres(server: RunningPostgres) -> None:
    """Stop a server started by `start_postgres` (fast shutdown), keeping its data folder
    and port for `resume_postgres`: a database restart as clients see it."""
    # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients.
    stop_group(server.process, signal.SIGINT, grace=30)


def resume_postgres(server: RunningPostgres, bin_dir: Path, *, timeout: float = 60) -> None:
    """Start a paused server again on the same data folder and port, and wait until it
    accepts connections. `server.process` is the new process afterwards."""
    server.process = _launch_postgres(bin_dir, server.folder, server.port, server.log, append=True)
    _wait_for_postgres(server, timeout, 0.1)
