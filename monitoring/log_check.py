"""Whether a SQLite prediction log is whole, checked before a server writes to it.

A damaged file cannot be written: every record would be dropped and counted as a
failed write while clients got 200, and writing on might make it worse. So a server
does not start on one; the error names the file and what to do, and the file is
left exactly as it was (the checks open it read-only).

Two depths, by cost:

- `open`: SQLite reads the header and the schema. Milliseconds whatever the size;
  finds a file that is not SQLite and one cut short (the page count in its header is
  past its end). Every worker runs it when it opens the log.
- `quick`: `PRAGMA quick_check` reads every page once. Measured on this project's
  machine, an 88 MB log: 0.2-0.5 s with the file in the page cache, 3.5 s from a cold
  disk, so about 2.5-40 s per GB. `refit serve` runs it once per start, before BentoML
  starts any worker (REFIT_LOG_START_CHECK=open skips it on very large logs).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final, Literal

import sqlalchemy as sa

from refit.core.errors import PredictionLogUnavailable
from refit.monitoring.log_engine import create_log_engine, url_problem

Depth = Literal["open", "quick"]
_SHOWN_PROBLEMS: Final = 3


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite log URL; None for another backend or a URL that cannot work."""
    if url_problem(url) is not None:
        return None
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(str(parsed.database)).expanduser()


def check_log(url: str, depth: Depth) -> None:
    """Raise if the log at `url` cannot work: ConfigError for the URL (naming
    REFIT_PREDICTION_LOG_URL), PredictionLogUnavailable for a damaged SQLite file.

    A database that is only unreachable now passes: the writer waits it out.
    """
    create_log_engine(url).dispose()  # the URL's form, the driver, the SQLite file's folder
    path = sqlite_path(url)
    if path is not None:
        check_sqlite_file(path, depth)


def check_sqlite_file(path: Path, depth: Depth) -> None:
    """PredictionLogUnavailable, naming `path` and the remedy, if the file is damaged.

    An empty or missing file is a new log, not a damaged one.
    """
    if not path.exists() or path.stat().st_size == 0:
        return
    problem = _problem(path, depth)
    if problem is not None:
        raise PredictionLogUnavailable(damaged_message(path, problem))


def damaged_message(path: Path, problem: str) -> str:
    """One line: the file, what is wrong, and what to do (move aside, recover)."""
    aside = f"{path}.damaged"
    return (
        f"the prediction log {path} is damaged ({problem}); refit will not write to it. "
        f"Stop every server using it, move it aside to start a new log (mv {path} {aside}; "
        f"mv {path}-wal {aside}-wal if there is one; rm -f {path}-shm), and recover its "
        f'rows with: sqlite3 {aside} ".recover" | sqlite3 {path}.recovered'
    )


def _problem(path: Path, depth: Depth) -> str | None:
    # Read-only: the check must never change the file it judges. The WAL of a server
    # killed earlier is read as SQLite reads it, without being written back.
    uri = f"file:{path}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
    except sqlite3.Error as exc:
        return f"cannot be opened: {exc}"
    try:
        # Reading the schema makes SQLite check the header and the file's length.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if depth == "quick":
            found = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if found != ["ok"]:
                shown = "; ".join(found[:_SHOWN_PROBLEMS])
                more = f" and {len(found) - _SHOWN_PROBLEMS} more" if len(found) > 3 else ""
                return f"quick_check: {shown}{more}"
    except sqlite3.OperationalError:
        return None  # locked or busy, not damaged: the writer retries such errors
    except sqlite3.DatabaseError as exc:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return str(exc)
    finally:
        conn.close()
    return None
