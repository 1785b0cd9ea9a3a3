"""Where drift checks keep their reports, and reading them back.

`<state_dir>/reports/` holds, per run, `drift-<UTC time>-<model version>.json` (the
summary) and `.html` (Evidently's report), so that names sort by time. `latest.json`
is a copy of the newest summary, replaced atomically, so that the metrics export
reads one small file and never lists the folder.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Final

from refit.core.atomic_file import write_atomic
from refit.monitoring.drift.result import DriftResult

LATEST: Final = "latest.json"
_PREFIX: Final = "drift-"


def reports_dir(state_dir: Path) -> Path:
    return state_dir / "reports"


def report_paths(folder: Path, checked_at: datetime, model_version: str) -> tuple[Path, Path]:
    """(HTML, JSON) paths of a run; the time is UTC to the second."""
    stem = f"{_PREFIX}{checked_at.strftime('%Y%m%dT%H%M%SZ')}-{model_version}"
    return folder / f"{stem}.html", folder / f"{stem}.json"


def write_summary(result: DriftResult, folder: Path) -> Path:
    """Write the run's JSON summary and make it the latest; the summary's path."""
    if result.json_path is None:
        raise ValueError("the result has no json_path to write to")
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.to_dict(), indent=2)
    write_atomic(result.json_path, text)
    write_atomic(folder / LATEST, text)
    return result.json_path


def list_runs(folder: Path, limit: int | None = None) -> list[DriftResult]:
    """Past runs, newest first; unreadable summaries are skipped."""
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob(f"{_PREFIX}*.json"), reverse=True)
    runs: list[DriftResult] = []
    for path in paths:
        if limit is not None and len(runs) >= limit:
            break
        try:
            runs.append(DriftResult.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return runs
