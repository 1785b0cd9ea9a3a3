"""The prediction log's table and every SQL statement run against it.

SQLAlchemy Core keeps one code path for SQLite (the default, one file per
deployment) and PostgreSQL (several replicas sharing one log). Only the
connection set-up and the insert-or-ignore statement differ between the two.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from refit.monitoring.feedback_rules import NewLabelRoom, feedback_outcomes
from refit.monitoring.log_engine import create_log_engine, safe_url
from refit.monitoring.log_schema import (
    RECORD_COLUMNS,
    Record,
    feedback_events,
    metadata,
    predictions,
)

_READ_CHUNK = 50_000
_PURGE_CHUNK = 20_000
_ID_CHUNK = 500  # ids per IN (...) list, well below every driver's parameter limit


def epoch(moment: float | datetime) -> float:
    """Unix seconds; a naive datetime is taken to be UTC, as every `ts` in the log is."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(moment)


class LogStore:
    """SQL access to the `predictions` table of one database."""

    def __init__(self, url: str) -> None:
        self.engine = create_log_engine(url)
        self.url = safe_url(url)
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        # Insert-or-ignore: a group retried after a lost commit acknowledgement
        # must not fail on the ids that did get written.
        self._insert = dialect.insert(predictions).on_conflict_do_nothing(index_elements=["id"])
        # SQLite gets the statement's SQL straight from its driver's executemany: twice
        # the rows per second of Core's per-row parameter processing. PostgreSQL keeps
        # Core, whose multi-row VALUES batches are as fast.
        self._driver_sql: str | None = None
        if self.engine.dialect.name == "sqlite":
            compiled = self._insert.compile(dialect=self.engine.dialect, column_keys=RECORD_COLUMNS)
            self._driver_sql = str(compiled)

    def ensure_schema(self) -> None:
        try:
            metadata.create_all(self.engine)
        except sa.exc.DBAPIError:
            # Workers starting together race to create the table. The loser's error
            # comes once the winner has committed, so a second look finds the table.
            metadata.create_all(self.engine)
        self._add_missing_columns()
        self._add_missing_indexes()

    def _add_missing_indexes(self) -> None:
        """Indexes a newer refit declares on a table an older one created."""
        for index in predictions.indexes:
            # Another worker may create it meanwhile; checkfirst finds it next time.
            with contextlib.suppress(sa.exc.DBAPIError):
                index.create(self.engine, checkfirst=True)

    def _add_missing_columns(self) -> None:
        """Upgrade a table an older refit created: add the columns it lacks.

        Every added column is nullable, so old rows simply have no value there.
        Workers starting together may race; a column that appeared meanwhile is fine.
        """
        for column in self.missing_columns():
            kind = column.type.compile(dialect=self.engine.dialect)
            name = self.engine.dialect.identifier_preparer.quote(column.name)
            try:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
            except sa.exc.DBAPIError:
                if column.name in self._existing_columns():
                    continue
                raise

    def missing_columns(self) -> list[sa.Column[Any]]:
        existing = self._existing_columns()
        return [column for column in predictions.columns if column.name not in existing]

    def _existing_columns(self) -> set[str]:
        return {column["name"] for column in sa.inspect(self.engine).get_columns("predictions")}

    def insert(self, rows: Sequence[Record]) -> None:
        """Write `rows` in one transaction; ids already present are skipped."""
        with self.engine.begin() as conn:
            if self._driver_sql is not None:
                conn.exec_driver_sql(self._driver_sql, list(rows))
            else:
                params = [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in rows]
                conn.execute(self._insert, params)

    def read_chunks(
        self,
        start: float,
        end: float,
        model_version: str | None,
        columns: Sequence[str],
        labelled_only: bool = False,
        newest: int | None = None,
    ) -> Iterator[Sequence[sa.Row[Any]]]:
        """Rows in (ts, id) order; with `newest`, only that many of the newest, newest
        first (the (model_version, ts) index serves it without a sort)."""
        where = _window(start, end, model_version)
        if labelled_only:
            where.append(predictions.c.true_label.is_not(None))
        stmt = sa.select(*(predictions.c[name] for name in columns)).where(*where)
        if newest is None:
            stmt = stmt.order_by(predictions.c.ts, predictions.c.id)
        else:
            stmt = stmt.order_by(predictions.c.ts.desc(), predictions.c.id.desc()).limit(newest)
        with self.engine.connect() as conn:
            # stream_results: PostgreSQL uses a server-side cursor, so a million rows
            # never sit in the driver and in Python objects at once.
            result = conn.execution_options(stream_results=True, yield_per=_READ_CHUNK).execute(
                stmt
            )
            yield from result.partitions()

    def count(self, start: float | None, end: float | None, model_version: str | None) -> int:
        stmt = sa.select(sa.func.count()).select_from(predictions)
        stmt = stmt.where(*_window(start, end, model_version))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def purge(self, before: float) -> int:
        """Delete rows with `ts < before`, in short transactions so writers are not
        locked out for long."""
        oldest = (
            sa.select(predictions.c.id)
            .where(predictions.c.ts < before)
            .limit(_PURGE_CHUNK)
            .scalar_subquery()
        )
        stmt = sa.delete(predictions).where(predictions.c.id.in_(oldest))
        deleted = 0
        while True:
            with self.engine.begin() as conn:
                gone = conn.execute(stmt).rowcount
            deleted += gone
            if gone < _PURGE_CHUNK:
                return deleted

    def attach_feedback(
        self,
        items: Sequence[tuple[str, str]],
        known_labels: Collection[str] | None,
        max_new_labels: int | None = None,
    ) -> list[str]:
        """Record true labels in one transaction, each change in the audit table too;
        the outcome of each item, in order."""
        with self.engine.begin() as conn:
            current = self._true_labels(conn, [pid for pid, _ in items])
            room, given = None, self._labels_given(conn)  # also for the confusable check
            if known_labels is not None and max_new_labels is not None:
                room = NewLabelRoom(given - set(known_labels), max_new_labels)
            outcomes, changes = feedback_outcomes(items, current, known_labels, room, given)
            if changes:
                now = time.time()
                stmt = (
                    sa.update(predictions)
                    .where(predictions.c.id == sa.bindparam("pid"))
                    .values(true_label=sa.bindparam("true"), feedback_ts=now)
                )
                conn.execute(stmt, [{"pid": pid, "true": label} for pid, label in changes.items()])
                events = [
                    {
                        "prediction_id": pid,
                        "ts": now,
                        "old_label": current.get(pid),
                        "new_label": new,
                    }
                    for pid, new in changes.items()
                ]
                conn.execute(sa.insert(feedback_events), events)
        return outcomes

    def _labels_given(self, conn: Connection) -> set[str]:
        """Every distinct label feedback has set (an index-only scan)."""
        stmt = sa.select(predictions.c.true_label).where(predictions.c.true_label.is_not(None))
        return {row[0] for row in conn.execute(stmt.distinct())}

    def feedback_history(self, prediction_id: str) -> list[tuple[str | None, str]]:
        """(old label, new label) of every change feedback made to one prediction, in order."""
        stmt = (
            sa.select(feedback_events.c.old_label, feedback_events.c.new_label)
            .where(feedback_events.c.prediction_id == prediction_id)
            .order_by(feedback_events.c.seq)
        )
        with self.engine.connect() as conn:
            return [(row.old_label, row.new_label) for row in conn.execute(stmt)]

    def _true_labels(self, conn: Connection, ids: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), _ID_CHUNK):
            stmt = sa.select(predictions.c.id, predictions.c.true_label).where(
                predictions.c.id.in_(unique[i : i + _ID_CHUNK])
            )
            if conn.dialect.name == "postgresql":
                # Row locks make concurrent feedback on one id report stored/updated exactly.
                stmt = stmt.with_for_update()
            found.update((row.id, row.true_label) for row in conn.execute(stmt))
        return found

    def dispose(self) -> None:
        self.engine.dispose()


def _window(
    start: float | None, end: float | None, model_version: str | None
) -> list[sa.ColumnElement[bool]]:
    where = []
    if start is not None:
        where.append(predictions.c.ts >= start)
    if end is not None:
        where.append(predictions.c.ts < end)
    if model_version is not None:
        where.append(predictions.c.model_version == model_version)
    return where


# Read as float64: real floats, and the nullable counts (NaN where a row has none).
_FLOATS: Final = (
    "ts", "score", "latency_ms", "feedback_ts",
    "n_unknown", "n_chars", "n_digits", "n_upper", "n_punct",
)  # fmt: skip


def frame(chunks: Iterator[Sequence[sa.Row[Any]]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows read in chunks as one DataFrame; `scores` parsed to dicts when present."""
    # One small frame per chunk: converting a chunk at a time keeps the peak memory
    # near the final frame's size instead of also holding every row as a tuple.
    parts = [pd.DataFrame.from_records(chunk, columns=list(columns)) for chunk in chunks]
    if not parts:
        return _empty(columns)
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if "scores" in df.columns:
        df["scores"] = [json.loads(s) for s in df["scores"]]
    for name in _FLOATS:
        if name in df.columns:
            df[name] = df[name].astype("float64")
    if "truncated" in df.columns:
        df["truncated"] = df["truncated"].astype(bool)
    return df


_DTYPES: Final = {"n_tokens": "int64", "truncated": "bool"} | {name: "float64" for name in _FLOATS}


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=_DTYPES.get(name, "object")) for name in columns})
