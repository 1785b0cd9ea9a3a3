"""The retraining trigger policy on hand-made check histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from refit.monitoring.drift.result import DriftResult
from refit.retraining.trigger import CheckOutcome, TriggerRules, decide

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
RULES = TriggerRules(consecutive_drift=2, accuracy_floor=0.8, cooldown=timedelta(hours=6))


def checks(*statuses: str, estimated: float | None = 0.9) -> list[CheckOutcome]:
    return [
        CheckOutcome(T0 + timedelta(minutes=15 * i), s, estimated_accuracy=estimated)
        for i, s in enumerate(statuses)
    ]


def at_end(history: list[CheckOutcome]) -> datetime:
    return history[-1].time + timedelta(minutes=1)


def test_k_consecutive_drifts_trigger_a_retrain() -> None:
    history = checks("ok", "drift", "drift")
    decision = decide(history, now=at_end(history), last_retrain=None, rules=RULES)
    assert decision.action == "retrain"
    assert "last 2 consecutive" in decision.reasons[0]


def test_an_ok_check_breaks_the_streak_but_no_data_does_not() -> None:
    broken = checks("drift", "ok", "drift")
    assert decide(broken, now=at_end(broken), last_retrain=None, rules=RULES).action == "none"
    bridged = checks("drift", "not_enough_data", "failed", "drift")
    assert decide(bridged, now=at_end(bridged), last_retrain=None, rules=RULES).action == "retrain"


def test_accuracy_below_the_floor_triggers_even_without_drift() -> None:
    history = checks("ok", "ok", estimated=0.72)
    decision = decide(history, now=at_end(history), last_retrain=None, rules=RULES)
    assert decision.action == "retrain"
    assert "estimated accuracy 0.720 is below the floor 0.8" in decision.reasons[1]


def test_actual_accuracy_wins_over_the_estimate() -> None:
    history = [CheckOutcome(T0, "ok", estimated_accuracy=0.6, actual_accuracy=0.85)]
    decision = decide(history, now=T0 + timedelta(minutes=1), last_retrain=None, rules=RULES)
    assert decision.action == "none"
    assert "actual accuracy 0.850" in decision.reasons[1]


def test_cooldown_blocks_and_older_checks_stop_counting() -> None:
    history = checks("drift", "drift", "drift")
    retrained = history[1].time + timedelta(seconds=1)
    soon = retrained + timedelta(hours=1)
    decision = decide(history, now=soon, last_retrain=retrained, rules=RULES)
    assert decision.action == "none"
    assert "cooling down" in decision.reasons[0]
    later = retrained + timedelta(hours=7)
    # Only the one drift after the retrain counts: not enough for K = 2.
    assert decide(history, now=later, last_retrain=retrained, rules=RULES).action == "none"


def test_no_checks_means_no_action() -> None:
    decision = decide([], now=T0, last_retrain=None, rules=RULES)
    assert decision.action == "none"
    assert decision.reasons[-1] == "no accuracy figure yet"


def check_result(estimate_reliable: bool, actual: float | None = None) -> DriftResult:
    return DriftResult(
        "drift", T0, "v1", "1h", T0 - timedelta(hours=1), T0, 500, 500, 2000,
        estimated_accuracy=0.6,
        estimate_reliable=estimate_reliable,
        actual_accuracy=actual,
    )  # fmt: skip


def test_an_estimate_marked_unreliable_is_not_read_as_accuracy() -> None:
    # On topics the model never saw the estimate stays high while the truth collapses.
    assert CheckOutcome.of(check_result(True)).estimated_accuracy == 0.6
    assert CheckOutcome.of(check_result(False)).estimated_accuracy is None
    assert CheckOutcome.of(check_result(False, actual=0.4)).actual_accuracy == 0.4
    one = [CheckOutcome.of(check_result(False))]
    assert decide(one, now=T0, last_retrain=None, rules=RULES).action == "none"
    one = [CheckOutcome.of(check_result(True))]
    decision = decide(one, now=T0, last_retrain=None, rules=RULES)
    assert decision.action == "retrain"
    assert "estimated" in "; ".join(decision.reasons)
