"""The figures the front page shows, gathered from the files other processes write.

The served version comes from the worker; its test score from the registry's
metadata; when it became champion from the promotion log; the drift verdict from
`reports/latest.json` (re-read only when it changes); the report links from the
reports folder; the retraining decisions from the tail of the audit log. Every
value that came from a file is kept as data here and escaped only where it is
rendered, and a malformed file yields an empty section, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from refit.core.registry import ModelVersion, Registry
from refit.core.settings import CoreSettings
from refit.monitoring.drift.estimate_text import estimate_words
from refit.monitoring.drift.export import LatestSummary
from refit.monitoring.drift.history import reports_dir
from refit.retraining.audit import audit_path
from refit.retraining.shadow import describe as describe_shadow
from refit.service.pages.files import REPORT_NAME, VERSION_NAME
from refit.service.pages.live_rates import LiveRates

REPORT_RUNS = 5
AUDIT_RECORDS = 5
# The audit log only grows: read its end, enough for many records.
_TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class ServedInfo:
    version: str
    tag: str
    test_macro_f1: float | None
    champion_since: str | None  # time of the newest promotion to this version
    champion_now: bool
    card_url: str | None
    backend: str | None = None  # the inference backend answering, e.g. "onnx-int8"


@dataclass(frozen=True)
class SignalRow:
    name: str
    value: float | None
    threshold: float | None


@dataclass(frozen=True)
class EmbeddingSignal:
    """The embedding signal of a check: what it compares and how, its score and threshold
    on the "higher is more drift" scale (-log10 of a p-value)."""

    about: str
    method: str
    score: float | None
    score_threshold: float | None
    drifted: bool | None


@dataclass(frozen=True)
class DriftView:
    status: str  # ok, drift, not_enough_data
    checked_at: str
    model_version: str
    window: str
    window_size: int | None
    estimated_accuracy: float | None
    estimated_margin: float | None  # +/- of its 95% interval
    estimate_reliable: bool  # False when a drifted signal breaks the estimate
    actual_accuracy: float | None
    drifted: list[SignalRow]
    signals_checked: int
    message: str = ""
    calibration_rows: int | None = None  # labelled predictions behind the estimate
    embedding: EmbeddingSignal | None = None

    def estimate_words(self) -> tuple[str, str]:
        """The estimate as every page and command writes it, and why not to trust it."""
        drifted = [signal.name for signal in self.drifted]
        return estimate_words(
            self.estimated_accuracy,
            self.estimated_margin,
            self.estimate_reliable,
            drifted,
            self.calibration_rows,
        )


@dataclass(frozen=True)
class ReportRun:
    stem: str
    html: str | None  # file names inside the reports folder
    json: str | None


@dataclass(frozen=True)
class AuditRow:
    time: str
    event: str
    outcome: str
    reasons: list[str]
    shadow: list[str] = field(default_factory=list)  # a retrain's shadow replay, described


@dataclass(frozen=True)
class PageData:
    generated_at: datetime
    served: ServedInfo | None
    live: LiveRates | None
    drift: DriftView | None
    reports: list[ReportRun] = field(default_factory=list)
    retraining: list[AuditRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON twin of the page (`/status.json`)."""
        raw = asdict(self)
        raw["generated_at"] = self.generated_at.isoformat(timespec="seconds")
        if self.live is not None:
            raw["live"]["traffic"] = self.live.traffic
        return raw


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strings(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def served_info(
    version: ModelVersion, registry: Registry, backend: str | None = None
) -> ServedInfo:
    history = registry.history()
    promotions = [e for e in history if isinstance(e, dict) and e.get("tag") == version.tag]
    card = version.path / "model_card.md"
    linkable = VERSION_NAME.fullmatch(version.version) is not None and card.is_file()
    return ServedInfo(
        version=version.version,
        tag=version.tag,
        test_macro_f1=_number(version.metadata.get("test_macro_f1")),
        champion_since=str(promotions[-1].get("time")) if promotions else None,
        champion_now=registry.champion_tag() == version.tag,
        card_url=f"/models/{quote(version.version, safe='')}/card" if linkable else None,
        backend=backend,
    )


def drift_view(summary: dict[str, Any] | None) -> DriftView | None:
    """The verdict of a drift summary (`DriftResult.to_dict()`); None if unusable."""
    if not summary or not isinstance(summary.get("status"), str):
        return None
    signals = [s for s in summary.get("signals") or [] if isinstance(s, dict)]
    drifted = [
        SignalRow(str(s.get("name", "?")), _number(s.get("value")), _number(s.get("threshold")))
        for s in signals
        if s.get("drifted") is True
    ]
    size = _number(summary.get("window_size"))
    calibration = _number(summary.get("calibration_rows"))
    return DriftView(
        status=summary["status"],
        checked_at=str(summary.get("checked_at", "")),
        model_version=str(summary.get("model_version", "")),
        window=str(summary.get("window", "")),
        window_size=None if size is None else int(size),
        estimated_accuracy=_number(summary.get("estimated_accuracy")),
        estimated_margin=_number(summary.get("estimated_margin")),
        estimate_reliable=summary.get("estimate_reliable") is not False,
        actual_accuracy=_number(summary.get("actual_accuracy")),
        drifted=drifted,
        signals_checked=len(signals),
        message=str(summary.get("message") or ""),
        calibration_rows=None if calibration is None else int(calibration),
        embedding=embedding_signal(signals),
    )


def embedding_signal(signals: list[dict[str, Any]]) -> EmbeddingSignal | None:
    """The embedding signal of a summary's signals; None if it has none."""
    found = next((s for s in signals if s.get("kind") == "embedding"), None)
    if found is None:
        return None
    drifted = found.get("drifted")
    return EmbeddingSignal(
        about=str(found.get("about") or ""),
        method=str(found.get("method", "")),
        score=_number(found.get("score")),
        score_threshold=_number(found.get("score_threshold")),
        drifted=drifted if isinstance(drifted, bool) else None,
    )


def report_runs(folder: Path, limit: int = REPORT_RUNS) -> list[ReportRun]:
    """The newest runs with a report in `folder`, newest first (names sort by time)."""
    try:
        names = [p.name for p in folder.iterdir() if REPORT_NAME.fullmatch(p.name)]
    except OSError:
        return []
    by_stem: dict[str, dict[str, str]] = {}
    for name in names:
        stem, _, suffix = name.rpartition(".")
        by_stem.setdefault(stem, {})[suffix] = name
    stems = sorted(by_stem, reverse=True)[:limit]
    return [ReportRun(s, by_stem[s].get("html"), by_stem[s].get("json")) for s in stems]


def tail_records(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` JSON records of a JSON-lines file; unreadable lines skipped."""
    try:
        with path.open("rb") as source:
            size = source.seek(0, 2)
            source.seek(max(0, size - _TAIL_BYTES))
            lines = source.read().splitlines()
    except OSError:
        return []
    if size > _TAIL_BYTES:
        lines = lines[1:]  # probably cut in the middle
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records[-count:]


def audit_row(record: dict[str, Any]) -> AuditRow:
    """One audit record as `refit retrain history` reads it: outcome and reasons."""
    event = str(record.get("event", ""))
    outcome = str(record.get("action") or ("promoted" if record.get("promoted") else ""))
    if event == "retrain" and not record.get("promoted"):
        outcome = "champion kept"
    elif event.endswith("_failed"):
        outcome = "failed"
    decision = record.get("decision")
    gate = decision.get("reasons") if isinstance(decision, dict) else None
    reasons = _strings(record.get("reasons") or gate)
    if record.get("reason"):
        reasons = [f"trigger: {record['reason']}", *reasons]
    if record.get("error"):
        reasons.append(f"error: {record['error']}")
    shadow = describe_shadow(record.get("shadow"))
    return AuditRow(str(record.get("time", "")), event, outcome, reasons, shadow)


class PageSources:
    """Where a server's front page reads its figures from."""

    def __init__(self, core: CoreSettings) -> None:
        self.registry = Registry.from_settings(core)
        self.reports = reports_dir(core.resolved_state_dir())
        self.latest = LatestSummary(self.reports)
        self.audit = audit_path(core)

    def gather(
        self,
        served: Callable[[], ModelVersion | None],
        live: Callable[[], LiveRates | None],
        backend: Callable[[], str | None] = lambda: None,
    ) -> PageData:
        version = served()
        return PageData(
            generated_at=datetime.now(UTC),
            served=None if version is None else served_info(version, self.registry, backend()),
            live=live(),
            drift=drift_view(self.latest.get()),
            reports=report_runs(self.reports),
            retraining=[audit_row(r) for r in tail_records(self.audit, AUDIT_RECORDS)][::-1],
        )
