"""The prediction log's tables, the same on SQLite and PostgreSQL: the predictions, and
every label feedback set on them."""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("text_hash", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    # Floats are double precision, so that what is read back equals what was written;
    # NULL stands for NaN, which SQLite cannot store.
    sa.Column("score", sa.Double, nullable=True),
    sa.Column("scores", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=True),
    sa.Column("n_tokens", sa.Integer, nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False),
    # What drift checks compare, computed before redaction (`core.descriptors`).
    # Counts are small integers: one or two bytes each in SQLite. NULL in rows
    # written before these columns existed.
    sa.Column("n_unknown", sa.Integer, nullable=True),
    sa.Column("n_chars", sa.Integer, nullable=True),
    sa.Column("n_digits", sa.Integer, nullable=True),
    sa.Column("n_upper", sa.Integer, nullable=True),
    sa.Column("n_punct", sa.Integer, nullable=True),
    sa.Column("embedding", sa.LargeBinary, nullable=True),  # 32 float16, 64 bytes
    # The inference backend that answered (`core.backends`: "onnx-int8", "torch-traced",
    # ...); NULL in rows written before this column existed.
    sa.Column("backend", sa.Text, nullable=True),
    sa.Column("true_label", sa.Text, nullable=True),
    sa.Column("feedback_ts", sa.Double, nullable=True),
    sa.Index("ix_predictions_ts", "ts"),
    sa.Index("ix_predictions_model_version_ts", "model_version", "ts"),
    # Finds the labels feedback brought (the cap on new labels) without a full scan.
    sa.Index("ix_predictions_true_label", "true_label"),
)
# Every label feedback set, in order: the audit trail of what retraining will learn.
feedback_events = sa.Table(
    "feedback_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.Text, nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("old_label", sa.Text, nullable=True),
    sa.Column("new_label", sa.Text, nullable=False),
    sa.Index("ix_feedback_events_prediction_id", "prediction_id"),
)
COLUMNS: Final = tuple(c.name for c in predictions.columns)
# The columns a new record fills, in the order of a `Record`; feedback fills the rest.
RECORD_COLUMNS: Final = COLUMNS[: COLUMNS.index("true_label")]
Record = tuple[Any, ...]
