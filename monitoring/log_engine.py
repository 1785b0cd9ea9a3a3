"""Connecting to the prediction log's database: SQLite (one file, WAL) or PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from refit.core.errors import ConfigError

# SQLite waits this long for another process's write lock before giving up.
_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching to WAL needs a lock another worker may hold.
    cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    # In WAL mode with synchronous=NORMAL a commit is in the WAL file when it
    # returns, so it survives the process being killed (not a power cut).
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


URL_VAR = "REFIT_PREDICTION_LOG_URL"


def url_problem(url: str) -> str | None:
    """Why `url` cannot work as a prediction log whatever the database does, or None.

    Only the URL's form: a database that is down, full or locked may come back.
    """
    try:
        parsed = sa.make_url(url)
        backend, port = parsed.get_backend_name(), parsed.port
    except Exception:  # the parser's message may quote any part, the password too
        return "not a URL of the form dialect+driver://user:password@host:port/database"
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return "the prediction log needs a SQLite file (sqlite:///path), not an in-memory db"
        return None
    if backend != "postgresql":
        return "only sqlite:///path and postgresql+psycopg://user@host/db are supported"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is not a TCP port"
    return None


def unusable(url: str, why: object) -> ConfigError:
    """The error for a log URL that cannot work: one line, naming the variable, no password."""
    return ConfigError(f"{URL_VAR}={safe_url(url)} cannot work: {why}")


def require_usable_url(url: str) -> None:
    """ConfigError, naming REFIT_PREDICTION_LOG_URL, if the URL's form cannot work.
    Reads nothing and connects nowhere: cheap enough for a module's import."""
    problem = url_problem(url)
    if problem is not None:
        raise unusable(url, problem)


def create_log_engine(url: str) -> Engine:
    """An engine for a `sqlite:///` or `postgresql+psycopg://` URL; connects lazily.

    ConfigError, naming REFIT_PREDICTION_LOG_URL, for a URL that cannot work: its form,
    a driver that is not installed, a SQLite file that cannot be created.
    """
    require_usable_url(url)
    try:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            _private_file(Path(str(parsed.database)).expanduser())
            engine = sa.create_engine(parsed)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # A dead host must not hold the writer for the OS's minutes-long default.
        return sa.create_engine(parsed, connect_args={"connect_timeout": 5}, pool_size=4)
    except Exception as exc:  # driver not installed, file not creatable, ...
        raise unusable(url, f"{type(exc).__name__}: {exc}") from exc


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds raw texts); SQLite
    gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def safe_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable)"


def is_data_error(error: Exception) -> bool:
    """Whether the database refused the data itself, rather than being unreachable,
    locked or full: then writing the same rows again fails again."""
    if not isinstance(error, sa.exc.DBAPIError) or error.connection_invalidated:
        return False
    return not isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError)
