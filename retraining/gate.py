"""The champion/challenger gate: promote a retrained model only when it is really better.

Pure: it compares numbers measured elsewhere, so every rule is testable on
hand-made figures and every decision can be replayed from the audit log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from refit.retraining.settings import RetrainingSettings

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
    # ... and may change at most this share of the champion's confident predictions
    # (calibrated confidence >= confident_score) in the shadow replay, unless feedback
    # supports it:
    max_confident_changes: float
    confident_score: float
    # Support: on labelled rows the challenger did not train on where the two disagree,
    # the challenger is right at least this often, and more often than the champion.
    min_support_rows: int

    @classmethod
    def from_settings(cls, retraining: RetrainingSettings) -> GateRules:
        r = retraining
        return cls(
            r.gate_min_gain,
            r.gate_max_loss,
            r.gate_max_latency_ratio,
            r.gate_max_confident_changes,
            r.gate_confident_score,
            r.gate_shadow_min_support,
        )


@dataclass(frozen=True)
class Scores:
    """One model measured on the gate's three yardsticks."""

    recent_macro_f1: float
    original_macro_f1: float
    batch_seconds: float  # median time to classify the fixed latency batch


@dataclass(frozen=True)
class ShadowFigures:
    """What the shadow replay found, as far as the confident-changes rule reads it.

    `confident_*`: replayed predictions the champion made with a score of at least
    the rules' `confident_score`, and how many of them the challenger labels
    otherwise. `support_rows`: replayed rows with a feedback label, which the
    challenger did not train on, where the two models disagree; `*_right`: how many
    of those each model got right.
    """

    replayed: bool
    reason: str = ""  # why there was no replay
    confident_rows: int = 0
    confident_changes: int = 0
    support_rows: int = 0
    champion_right: int = 0
    challenger_right: int = 0

    @property
    def confident_change_share(self) -> float:
        return self.confident_changes / self.confident_rows if self.confident_rows else 0.0


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    champion: Scores | None = None
    challenger: Scores | None = None
    # The joint model (base model trained on the challenger's rows), where one was trained.
    joint: Scores | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "champion": asdict(self.champion) if self.champion else None,
            "challenger": asdict(self.challenger) if self.challenger else None,
            "joint": asdict(self.joint) if self.joint else None,
        }


def judge(
    champion: Scores,
    challenger: Scores,
    rules: GateRules,
    shadow: ShadowFigures | None = None,
    joint: Scores | None = None,
) -> GateDecision:
    """Promote only if every rule passes; the reasons say which held and which failed.

    `joint`, the joint model's scores where one was trained, is reported against the
    challenger's and decides nothing.

    Without a shadow replay (`shadow` None or not replayed) the confident-changes
    rule passes, and its reason says why there was nothing to compare.
    """
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
    shadow_ok, shadow_reason = confident_changes_rule(
        shadow or ShadowFigures(False, "no shadow replay was run"), rules
    )
    reasons.append(shadow_reason)
    verdicts = {
        "recent gain": gain_ok,
        "original loss": loss_ok,
        "latency": latency_ok,
        "confident changes": shadow_ok,
    }
    failed = [name for name, ok in verdicts.items() if not ok]
    summary = "all rules pass" if not failed else "failed: " + ", ".join(failed)
    if joint is not None:
        reasons.append(joint_reason(challenger, joint))
    return GateDecision(not failed, [summary, *reasons], champion, challenger, joint)


def joint_reason(challenger: Scores, joint: Scores) -> str:
    """How the challenger compares with the joint model, the base model trained on the
    same rows (informative: no rule reads it)."""
    recent = challenger.recent_macro_f1 - joint.recent_macro_f1
    original = challenger.original_macro_f1 - joint.original_macro_f1
    return (
        f"yardstick: the joint model (base model trained on the same rows) has recent data "
        f"macro-F1 {joint.recent_macro_f1:.4f} (challenger {recent:+.4f}), original test "
        f"{joint.original_macro_f1:.4f} (challenger {original:+.4f})"
    )


def confident_changes_rule(shadow: ShadowFigures, rules: GateRules) -> tuple[bool, str]:
    """(passes, reason): refuse a challenger that would relabel too many of the
    champion's confident predictions, unless held-out feedback says it is right to."""
    if not shadow.replayed:
        return True, f"shadow replay: not replayed: {shadow.reason}"
    share = shadow.confident_change_share
    head = (
        f"shadow replay: {shadow.confident_changes} of {shadow.confident_rows} confident "
        f"champion predictions (confidence >= {rules.confident_score}) would change ({share:.1%}; "
        f"may be <= {rules.max_confident_changes:.1%}"
    )
    if share <= rules.max_confident_changes + _EPS:
        return True, head + ")"
    supported = (
        shadow.challenger_right >= rules.min_support_rows
        and shadow.challenger_right > shadow.champion_right
    )
    evidence = (
        f"on {shadow.support_rows} labelled rows where the models disagree and the challenger "
        f"did not train, the challenger is right {shadow.challenger_right} times, the champion "
        f"{shadow.champion_right}"
    )
    if supported:
        return True, f"{head} unless feedback supports it): supported: {evidence}"
    return False, (
        f"{head} unless feedback supports it): not supported: {evidence} (needs >= "
        f"the challenger right on >= {rules.min_support_rows} of them and more often than "
        "the champion)"
    )
