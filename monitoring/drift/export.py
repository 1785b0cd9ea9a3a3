"""The latest drift check as Prometheus text, for the service's `/metrics`.

Called on every scrape, so it must be cheap: it stats one file (`latest.json`) and
parses it again only when its modification time or size changed. Nothing here
imports Evidently, which a serving worker has no use for.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from refit.monitoring import state_gauges
from refit.monitoring.drift.history import LATEST, reports_dir

logger = logging.getLogger(__name__)


class LatestSummary:
    """A JSON state file (by default a reports folder's newest drift summary), re-read
    only when it changed."""

    def __init__(self, folder: Path, name: str = LATEST) -> None:
        self.path = folder / name
        self._stamp: tuple[int, int] | None = None
        self._summary: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._summary = self._read()
                self._stamp = stamp
            return self._summary

    def _read(self) -> dict[str, Any] | None:
        try:
            summary = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            # A scrape must never fail because of a drift file; the gauges just vanish.
            logger.warning("state file %s unreadable: %s", self.path, exc)
            return None
        return summary if isinstance(summary, dict) else None


_sources: dict[Path, LatestSummary] = {}
_export_lock = threading.Lock()


def _source(path: Path) -> LatestSummary:
    if path not in _sources:
        _sources[path] = LatestSummary(path.parent, path.name)
    return _sources[path]


def drift_exposition(state_dir: Path, watch_state: Path) -> str:
    """Prometheus text of the latest drift check's and of the scheduler's gauges.

    Both come from files other processes write (`state_dir`'s drift reports and the
    retraining scheduler's `watch_state`); "" for what does not exist yet.
    """
    with _export_lock:
        drift = _source(reports_dir(state_dir) / LATEST)
        scheduler = _source(watch_state)
        try:
            state_gauges.DRIFT.summary = drift.get()
            state_gauges.WATCH.state = scheduler.get()
            return generate_latest(state_gauges.DRIFT_REGISTRY).decode("utf-8")
        except Exception as exc:  # a malformed file must not break the scrape
            logger.warning("drift and watch gauges not exported: %r", exc)
            return ""
