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

from monitoring import metrics
from monitoring.drift.history import LATEST, reports_dir
from training.settings import Settings

logger = logging.getLogger(__name__)


class LatestSummary:
    """The newest drift summary of a reports folder, re-read only when it changed."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LATEST
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
            logger.warning("drift summary %s unreadable: %s", self.path, exc)
            return None
        return summary if isinstance(summary, dict) else None


_sources: dict[Path, LatestSummary] = {}
_export_lock = threading.Lock()


def drift_exposition(settings: Settings) -> str:
    """Prometheus text of the latest drift check's gauges ("" before the first check)."""
    folder = reports_dir(settings.resolved_state_dir())
    with _export_lock:
        source = _sources.setdefault(folder, LatestSummary(folder))
        try:
            metrics.DRIFT.summary = source.get()
            return generate_latest(metrics.DRIFT_REGISTRY).decode("utf-8")
        except Exception as exc:  # a malformed summary must not break the scrape
            logger.warning("drift gauges not exported: %r", exc)
            return ""
