"""The retraining job: gather recent labelled data, retrain, gate, and keep a record.

The newest labelled data is the feedback attached to logged predictions plus any
labelled files dropped into `<state_dir>/incoming/`. Files are checked like any
training file, and moved to `incoming/used/` once a retrain has learned from them.
Every decision, including "no action" and failures, is appended to the audit log
with its reasons and numbers; `refit retrain history` prints it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from monitoring.prediction_log import PredictionLog, borrowed_log
from training.data import SUPPORTED_SUFFIXES, load_labelled
from core.errors import RefitError
from training.finetune import Progress
from retraining.challenger import RetrainResult, retrain
from core.settings import Settings

logger = logging.getLogger(__name__)


class Busy(RefitError):
    """Another check or retrain holds the lock."""


def incoming_dir(settings: Settings) -> Path:
    return settings.resolved_state_dir() / "incoming"


@contextmanager
def exclusive(settings: Settings, what: str) -> Iterator[None]:
    """Hold the one lock that keeps checks and retrains from overlapping, across processes."""
    folder = settings.resolved_state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / "retraining.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise Busy(f"another drift check or retrain is running; skipped the {what}") from exc
    try:
        yield
    finally:
        lock.release()


@dataclass
class RecentData:
    frame: pd.DataFrame
    feedback_rows: int = 0
    files: list[Path] = field(default_factory=list)


def feedback_rows(log: PredictionLog) -> pd.DataFrame:
    """Logged predictions that received a true label and kept their text."""
    rows = log.read(0, datetime.now(UTC), columns=["text", "true_label"], labelled_only=True)
    rows = rows.dropna(subset=["text", "true_label"])
    return rows.rename(columns={"true_label": "label"})[["text", "label"]]


def gather_recent(settings: Settings, log: PredictionLog) -> RecentData:
    feedback = feedback_rows(log)
    frames, files = [feedback], []
    folder = incoming_dir(settings)
    for path in sorted(folder.glob("*")) if folder.exists() else []:
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
            loaded = load_labelled(
                path, text_column=settings.text_column, label_column=settings.label_column
            )
            frames.append(loaded[["text", "label"]])
            files.append(path)
    frame = pd.concat(frames, ignore_index=True)
    return RecentData(frame, feedback_rows=len(feedback), files=files)


def _retire(files: list[Path], folder: Path) -> None:
    used = folder / "used" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    used.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.move(str(path), used / path.name)


class AuditLog:
    """An append-only JSON-lines record of every retraining decision."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.resolved_state_dir() / "retraining" / "audit.jsonl"

    def append(self, event: str, **details: Any) -> dict[str, Any]:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event}
        record.update(details)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")
        return record

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def last_retrain(self) -> datetime | None:
        times = [r["time"] for r in self.read() if r["event"] == "retrain"]
        return datetime.fromisoformat(times[-1]) if times else None


def run_retrain(
    settings: Settings,
    *,
    reason: str,
    log: PredictionLog | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
) -> RetrainResult:
    """Gather, retrain, gate, record. Raises `Busy` if a check or retrain is running."""
    audit = AuditLog(settings)
    with borrowed_log(settings, log) as reader, exclusive(settings, "retrain"):
        recent = gather_recent(settings, reader)
        note(
            f"recent labelled data: {recent.feedback_rows} feedback rows, "
            f"{len(recent.files)} incoming file(s), {len(recent.frame)} rows in all"
        )
        try:
            result = retrain(settings, recent.frame, progress=progress, note=note)
        except RefitError as exc:
            audit.append("retrain_failed", reason=reason, error=str(exc))
            raise
        audit.append("retrain", reason=reason, **result.to_dict())
        if recent.files:
            _retire(recent.files, incoming_dir(settings))
        return result
