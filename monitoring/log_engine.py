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


def create_log_engine(url: str) -> Engine:
    """An engine for a `sqlite:///` or `postgresql+psycopg://` URL; connects lazily."""
    try:
        parsed = sa.make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                raise ConfigError("the prediction log needs a SQLite file, not an in-memory db")
            _private_file(Path(parsed.database).expanduser())
            engine = sa.create_engine(parsed)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if backend == "postgresql":
            # A dead host must not hold the writer for the OS's minutes-long default.
            return sa.create_engine(parsed, connect_args={"connect_timeout": 5}, pool_size=4)
    except ConfigError:
        raise
    except Exception as exc:  # malformed URL, driver not installed, ...
        raise ConfigError(f"prediction log URL {safe_url(url)}: {exc}") from exc
    raise ConfigError(
        f"prediction log URL {safe_url(url)}: only sqlite:/// and postgresql+psycopg:// "
        "are supported"
    )


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
