"""The outcome of one drift check, as returned to callers and kept as a JSON summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from refit.monitoring.drift.estimate_text import estimate_words
from refit.monitoring.drift.signals import SignalResult, Status


@dataclass(frozen=True)
class DriftResult:
    status: Status  # "ok", "drift" or "not_enough_data"
    checked_at: datetime  # UTC
    model_version: str
    window: str  # as given, e.g. "1h"
    window_start: datetime
    window_end: datetime
    window_size: int  # predictions logged in the window
    compared_rows: int  # of them, rows the Evidently report compared (sampled above a cap)
    reference_rows: int
    signals: list[SignalResult] = field(default_factory=list)
    estimated_accuracy: float | None = None
    estimated_margin: float | None = None  # the estimate's 95% interval: +/- this
    # False when a signal drifted that breaks the estimate (new topics, a new label mix).
    estimate_reliable: bool = True
    actual_accuracy: float | None = None
    actual_macro_f1: float | None = None
    labelled_rows: int = 0
    # Labelled predictions the estimate's calibration was fitted on (held-out rows of the
    # training data and feedback), and how many of them were feedback.
    calibration_rows: int = 0
    calibration_feedback_rows: int = 0
    html_path: Path | None = None
    json_path: Path | None = None
    seconds: float = 0.0
    message: str = ""

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    @property
    def drifted_signals(self) -> list[str]:
        return [signal.name for signal in self.signals if signal.drifted]

    def estimate_words(self) -> tuple[str, str]:
        """The estimate as the report and the CLI write it, and why not to trust it."""
        return estimate_words(
            self.estimated_accuracy,
            self.estimated_margin,
            self.estimate_reliable,
            self.drifted_signals,
            self.calibration_rows,
        )

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        for name in ("checked_at", "window_start", "window_end"):
            raw[name] = raw[name].isoformat()
        for name in ("html_path", "json_path"):
            raw[name] = None if raw[name] is None else str(raw[name])
        raw["drifted_signals"] = self.drifted_signals
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriftResult:
        values = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for name in ("checked_at", "window_start", "window_end"):
            values[name] = datetime.fromisoformat(values[name])
        for name in ("html_path", "json_path"):
            values[name] = None if values.get(name) is None else Path(values[name])
        values["signals"] = [SignalResult.from_dict(s) for s in values.get("signals", [])]
        return cls(**values)
