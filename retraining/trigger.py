"""When drift checks call for retraining: the trigger policy, as a pure function.

Retrain when drift was found in K consecutive checks, or when the model's
accuracy (measured on feedback labels where there are enough, estimated
otherwise) falls below a floor; never within a cooldown after the last retrain.
Checks that could not judge ("not enough data", failures) neither extend nor break
a streak, and only checks since the last retrain count: they judge the current
champion, not its predecessor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from refit.monitoring.drift.result import DriftResult
from refit.retraining.settings import RetrainingSettings


@dataclass(frozen=True)
class TriggerRules:
    consecutive_drift: int
    accuracy_floor: float
    cooldown: timedelta

    @classmethod
    def from_settings(cls, retraining: RetrainingSettings) -> TriggerRules:
        return cls(
            consecutive_drift=retraining.retrain_after_drift_checks,
            accuracy_floor=retraining.retrain_accuracy_floor,
            cooldown=timedelta(hours=retraining.retrain_cooldown_hours),
        )


@dataclass(frozen=True)
class CheckOutcome:
    time: datetime
    status: str  # "ok", "drift", "not_enough_data" or "failed"
    estimated_accuracy: float | None = None
    actual_accuracy: float | None = None

    @classmethod
    def of(cls, result: DriftResult) -> CheckOutcome:
        """A drift check's outcome; an estimate the check marked unreliable is left out,
        because on new topics it stays high while the true accuracy collapses."""
        estimate = result.estimated_accuracy if result.estimate_reliable else None
        return cls(result.checked_at, result.status, estimate, result.actual_accuracy)


@dataclass
class TriggerDecision:
    action: str  # "retrain" or "none"
    reasons: list[str] = field(default_factory=list)


def _drift_streak(checks: Sequence[CheckOutcome]) -> int:
    streak = 0
    for check in reversed(checks):
        if check.status == "drift":
            streak += 1
        elif check.status == "ok":
            break
    return streak


def _accuracy(check: CheckOutcome) -> tuple[str, float] | None:
    if check.actual_accuracy is not None:
        return "actual", check.actual_accuracy
    if check.estimated_accuracy is not None:
        return "estimated", check.estimated_accuracy
    return None


def decide(
    checks: Sequence[CheckOutcome],
    *,
    now: datetime,
    last_retrain: datetime | None,
    rules: TriggerRules,
) -> TriggerDecision:
    """Retrain or not, with the reasons; `checks` oldest first."""
    if last_retrain is not None and now - last_retrain < rules.cooldown:
        until = last_retrain + rules.cooldown
        return TriggerDecision("none", [f"cooling down after the last retrain until {until}"])
    relevant = [c for c in checks if last_retrain is None or c.time > last_retrain]
    reasons: list[str] = []
    streak = _drift_streak(relevant)
    drifting = streak >= rules.consecutive_drift
    reasons.append(
        f"drift in the last {streak} consecutive check(s); retraining needs "
        f"{rules.consecutive_drift}"
    )
    judged = [c for c in relevant if _accuracy(c) is not None]
    too_low = False
    if judged:
        kind, value = _accuracy(judged[-1])  # type: ignore[misc]
        too_low = value < rules.accuracy_floor
        relation = "below" if too_low else "at or above"
        floor = rules.accuracy_floor
        reasons.append(f"{kind} accuracy {value:.3f} is {relation} the floor {floor}")
    else:
        reasons.append("no accuracy figure yet")
    return TriggerDecision("retrain" if drifting or too_low else "none", reasons)
