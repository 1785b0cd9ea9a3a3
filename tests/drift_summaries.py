"""Hand-made drift check results, and their summaries written where a server reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from refit.monitoring.drift.history import report_paths, reports_dir, write_summary
from refit.monitoring.drift.result import DriftResult
from refit.monitoring.drift.signals import SignalResult

# Drift in the embeddings, none in the length.
EMBEDDING_DRIFT = [
    SignalResult("embedding", "embedding", "model", 0.71, 0.6, 0.71, 0.6, True),
    SignalResult("n_chars", "numeric", "ks", 0.5, 0.001, 0.301, 3.0, False),
]


def drift_result(
    folder: Path, checked: datetime, *, rows: int, version: str = "v1", **fields: Any
) -> DriftResult:
    """A check at `checked` of the hour before it, `rows` predictions all compared, with
    its report paths in `folder`; `fields`: status, reference rows, signals, accuracy."""
    html, summary = report_paths(folder, checked, version)
    return DriftResult(
        checked_at=checked,
        model_version=version,
        window="1h",
        window_start=checked - timedelta(hours=1),
        window_end=checked,
        window_size=rows,
        compared_rows=rows,
        html_path=html,
        json_path=summary,
        **fields,
    )


def write_embedding_drift(
    state_dir: Path, *, ago: timedelta, rows: int, version: str = "v1", **more: Any
) -> DriftResult:
    """A check `ago` before now that found drift in the embeddings, its summary written in
    `state_dir`'s reports, where the server's export and front page read it."""
    folder = reports_dir(state_dir)
    checked = datetime.now(UTC).replace(microsecond=0) - ago
    result = drift_result(
        folder,
        checked,
        version=version,
        rows=rows,
        status="drift",
        reference_rows=3400,
        signals=EMBEDDING_DRIFT,
        estimated_accuracy=0.81,
        actual_accuracy=0.78,
        **more,
    )
    write_summary(result, folder)
    return result
