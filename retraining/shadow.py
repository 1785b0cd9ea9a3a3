"""The shadow replay's report: what the challenger would have answered the champion's traffic.

Pure: it compares two models' predictions on the same texts, given as one frame,
so every figure can be checked on hand-made rows; `retraining.replay` reads the
prediction log and runs the models. `ShadowReport.figures()` is what the gate's
confident-changes rule reads (`retraining.gate.ShadowFigures`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from refit.retraining.gate import ShadowFigures
from refit.training.calibration import Calibration

MAX_EXAMPLES: Final = 10
EXAMPLE_CHARS: Final = 200
# Columns of the frame `compare` reads: one row per replayed text.
FRAME_COLUMNS: Final = (
    "text",
    "champion_label",
    "champion_score",
    "challenger_label",
    "challenger_score",
    "true_label",  # None where no feedback came
    "unseen",  # the challenger did not train on the text
)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


@dataclass(frozen=True)
class Pair:
    """One figure for each model, and the challenger's minus the champion's."""

    champion: float | None
    challenger: float | None
    change: float | None

    @classmethod
    def of(cls, champion: float | None, challenger: float | None) -> Pair:
        change = None if champion is None or challenger is None else challenger - champion
        return cls(_round(champion), _round(challenger), _round(change))


@dataclass(frozen=True)
class FeedbackSupport:
    """Replayed rows with a feedback label that the challenger did not train on."""

    rows: int = 0
    disagreements: int = 0  # of those, rows where the two models disagree
    champion_right: int = 0  # ... and the champion's label is the feedback label
    challenger_right: int = 0  # ... and the challenger's is


@dataclass
class ShadowReport:
    replayed: bool
    reason: str = ""  # why there was no replay; "" when there was
    texts: str = "raw"  # what the log keeps of a text: raw, redacted or hashed
    champion_source: str = "as served"  # or "re-scored" (on redacted texts)
    rows: int = 0
    agreement: float | None = None
    agreement_by_label: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)  # per label pair, most first
    examples: list[dict[str, Any]] = field(default_factory=list)
    confident_score: float = 0.9
    # what confident_score is compared with: the champion's calibrated confidence (the
    # accuracy its calibration found at that score), or its raw score without one
    confidence_basis: str = "calibrated"
    confident_rows: int = 0
    confident_changes: int = 0
    confident_change_share: float | None = None
    mean_confidence: Pair | None = None
    estimated_accuracy: Pair | None = None  # each model's own calibration
    latency_ms_per_1000: Pair | None = None  # the same texts, timed alternately
    latency_texts: int = 0
    feedback: FeedbackSupport = field(default_factory=FeedbackSupport)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def figures(self) -> ShadowFigures:
        return ShadowFigures(
            replayed=self.replayed,
            reason=self.reason,
            confident_rows=self.confident_rows,
            confident_changes=self.confident_changes,
            support_rows=self.feedback.disagreements,
            champion_right=self.feedback.champion_right,
            challenger_right=self.feedback.challenger_right,
        )


def agreement_by_label(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per champion label: rows, and the share the challenger labels the same."""
    same = frame["champion_label"] == frame["challenger_label"]
    grouped = same.groupby(frame["champion_label"])
    return {
        str(label): {"rows": int(rows.size), "agreement": _round(rows.mean())}
        for label, rows in grouped
    }


def label_changes(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """(champion label -> challenger label) pairs that differ, with their counts."""
    changed = frame[frame["champion_label"] != frame["challenger_label"]]
    counts = changed.groupby(["champion_label", "challenger_label"]).size()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"champion": a, "challenger": b, "rows": int(n)} for (a, b), n in ordered]


def examples(frame: pd.DataFrame, limit: int = MAX_EXAMPLES) -> list[dict[str, Any]]:
    """Up to `limit` changed labels, the champion's most confident first."""
    changed = frame[frame["champion_label"] != frame["challenger_label"]]
    top = changed.sort_values("champion_score", ascending=False, kind="stable").head(limit)
    return [
        {
            "text": str(row.text)[:EXAMPLE_CHARS],
            "champion_label": row.champion_label,
            "champion_score": _round(row.champion_score),
            "challenger_label": row.challenger_label,
            "challenger_score": _round(row.challenger_score),
            "true_label": row.true_label if isinstance(row.true_label, str) else None,
        }
        for row in top.itertuples(index=False)
    ]


def feedback_support(frame: pd.DataFrame) -> FeedbackSupport:
    labelled = frame[frame["true_label"].notna() & frame["unseen"].astype(bool)]
    differ = labelled[labelled["champion_label"] != labelled["challenger_label"]]
    return FeedbackSupport(
        rows=len(labelled),
        disagreements=len(differ),
        champion_right=int((differ["champion_label"] == differ["true_label"]).sum()),
        challenger_right=int((differ["challenger_label"] == differ["true_label"]).sum()),
    )


def _estimate(calibration: Calibration | None, scores: pd.Series) -> float | None:
    values = scores.to_numpy(dtype=np.float64)
    if calibration is None or not np.isfinite(values).any():
        return None
    return calibration.estimate(values)


def compare(
    frame: pd.DataFrame,
    *,
    confident_score: float,
    calibrations: tuple[Calibration | None, Calibration | None] = (None, None),
) -> ShadowReport:
    """The report on `frame` (`FRAME_COLUMNS`), latency left out; `calibrations` are the
    champion's and the challenger's, for the change in estimated accuracy."""
    same = frame["champion_label"] == frame["challenger_label"]
    # Calibrated, so that "confident" means the same on a model that never scores 0.9
    # (an under-confident one) as on one that always does.
    raw = frame["champion_score"].to_numpy(dtype=np.float64)
    basis = "raw score" if calibrations[0] is None else "calibrated"
    sure = raw if calibrations[0] is None else calibrations[0].apply(raw)
    confident = sure >= confident_score
    confident_changes = int((confident & ~same.to_numpy()).sum())
    champion_scores = frame["champion_score"].astype(np.float64)
    challenger_scores = frame["challenger_score"].astype(np.float64)
    return ShadowReport(
        replayed=True,
        rows=len(frame),
        agreement=_round(same.mean()) if len(frame) else None,
        agreement_by_label=agreement_by_label(frame),
        changes=label_changes(frame),
        examples=examples(frame),
        confident_score=confident_score,
        confidence_basis=basis,
        confident_rows=int(confident.sum()),
        confident_changes=confident_changes,
        confident_change_share=_round(confident_changes / confident.sum())
        if confident.any()
        else None,
        mean_confidence=Pair.of(champion_scores.mean(), challenger_scores.mean()),
        estimated_accuracy=Pair.of(
            _estimate(calibrations[0], champion_scores),
            _estimate(calibrations[1], challenger_scores),
        ),
        feedback=feedback_support(frame),
    )


def _figure(raw: Any, digits: int = 3) -> str:
    ok = isinstance(raw, int | float) and not isinstance(raw, bool)
    return f"{raw:.{digits}f}" if ok else "n/a"


def _pair(raw: Any, digits: int = 3) -> str:
    pair = raw if isinstance(raw, dict) else {}
    return f"{_figure(pair.get('champion'), digits)} -> {_figure(pair.get('challenger'), digits)}"


def _confident_rule(raw: dict[str, Any]) -> str:
    score = raw.get("confident_score")
    if not isinstance(score, int | float):
        return ""
    basis = "raw score" if raw.get("confidence_basis") == "raw score" else "calibrated confidence"
    return f" ({basis} >= {score})"


def describe(raw: Any, examples_shown: int = 3) -> list[str]:
    """A few lines on a shadow report as the audit log keeps it (`ShadowReport.to_dict()`),
    for people; whatever a malformed record lacks reads as n/a."""
    if not isinstance(raw, dict):
        return []
    if not raw.get("replayed"):
        return [f"shadow replay: not replayed: {raw.get('reason') or 'no reason recorded'}"]
    by_label = raw.get("agreement_by_label")
    per_label = ", ".join(
        f"{label} {_figure(row.get('agreement'))}"
        for label, row in (by_label.items() if isinstance(by_label, dict) else [])
        if isinstance(row, dict)
    )
    lines = [
        f"shadow replay of {raw.get('rows', 'n/a')} served texts: agreement "
        f"{_figure(raw.get('agreement'))}"
        + (f" (by champion label: {per_label})" if per_label else ""),
        f"confident predictions that would change: {raw.get('confident_changes', 'n/a')} of "
        f"{raw.get('confident_rows', 'n/a')}{_confident_rule(raw)}",
    ]
    moves = [c for c in raw.get("changes") or [] if isinstance(c, dict)][:5]
    if moves:
        lines.append(
            "would relabel: "
            + ", ".join(
                f"{c.get('champion')} -> {c.get('challenger')} ({c.get('rows')})" for c in moves
            )
        )
    lines.append(
        f"mean confidence {_pair(raw.get('mean_confidence'))}; estimated accuracy "
        f"{_pair(raw.get('estimated_accuracy'))}; ms per 1,000 texts "
        f"{_pair(raw.get('latency_ms_per_1000'), 0)}"
    )
    for example in [e for e in raw.get("examples") or [] if isinstance(e, dict)][:examples_shown]:
        truth = example.get("true_label")
        lines.append(
            f'example: "{example.get("text")}" {example.get("champion_label")} '
            f"({_figure(example.get('champion_score'), 2)}) -> {example.get('challenger_label')} "
            f"({_figure(example.get('challenger_score'), 2)})"
            + (f", feedback says {truth}" if truth else "")
        )
    return lines
