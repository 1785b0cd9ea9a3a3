"""The champion/challenger gate: promote a retrained model only when it is really better.

Pure: it compares numbers measured elsewhere, so every rule is testable on
hand-made figures and every decision can be replayed from the audit log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from retraining.settings import RetrainingSettings

# Figures are differences of floats: a rule met exactly must not fail on rounding.
_EPS = 1e-9


@dataclass(frozen=True)
class GateRules:
    # The challenger must beat the champion's macro-F1 on recent labelled data by this.
    min_gain_recent: float
    # ... and may lose at most this much macro-F1 on the original test split.
    max_loss_original: float
    # ... and its time on a fixed batch may be at most this multiple of the champion's.
    max_latency_ratio: float

    @classmethod
    def from_settings(cls, retraining: RetrainingSettings) -> GateRules:
        r = retraining
        return cls(r.gate_min_gain, r.gate_max_loss, r.gate_max_latency_ratio)


@dataclass(frozen=True)
class Scores:
    """One model measured on the gate's three yardsticks."""

    recent_macro_f1: float
    original_macro_f1: float
    batch_seconds: float  # median time to classify the fixed latency batch


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    champion: Scores | None = None
    challenger: Scores | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "champion": asdict(self.champion) if self.champion else None,
            "challenger": asdict(self.challenger) if self.challenger else None,
        }


def judge(champion: Scores, challenger: Scores, rules: GateRules) -> GateDecision:
    """Promote only if every rule passes; the reasons say which held and which failed."""
    reasons: list[str] = []
    gain = challenger.recent_macro_f1 - champion.recent_macro_f1
    gain_ok = gain >= rules.min_gain_recent - _EPS
    reasons.append(
        f"recent data macro-F1 {champion.recent_macro_f1:.4f} -> "
        f"{challenger.recent_macro_f1:.4f} ({gain:+.4f}; needs >= +{rules.min_gain_recent})"
    )
    loss = champion.original_macro_f1 - challenger.original_macro_f1
    loss_ok = loss <= rules.max_loss_original + _EPS
    reasons.append(
        f"original test macro-F1 {champion.original_macro_f1:.4f} -> "
        f"{challenger.original_macro_f1:.4f} ({-loss:+.4f}; may lose <= {rules.max_loss_original})"
    )
    ratio = challenger.batch_seconds / champion.batch_seconds if champion.batch_seconds else 1.0
    latency_ok = ratio <= rules.max_latency_ratio + _EPS
    reasons.append(
        f"latency on the fixed batch {champion.batch_seconds * 1000:.1f} ms -> "
        f"{challenger.batch_seconds * 1000:.1f} ms (x{ratio:.2f}; may be <= "
        f"x{rules.max_latency_ratio})"
    )
    verdicts = {"recent gain": gain_ok, "original loss": loss_ok, "latency": latency_ok}
    failed = [name for name, ok in verdicts.items() if not ok]
    summary = "all rules pass" if not failed else "failed: " + ", ".join(failed)
    return GateDecision(not failed, [summary, *reasons], champion, challenger)
