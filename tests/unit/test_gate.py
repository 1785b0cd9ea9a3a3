"""The champion/challenger gate on hand-made figures."""

from __future__ import annotations

import pytest

from retraining.gate import GateRules, Scores, judge

RULES = GateRules(min_gain_recent=0.02, max_loss_original=0.01, max_latency_ratio=1.5)
CHAMPION = Scores(recent_macro_f1=0.70, original_macro_f1=0.90, batch_seconds=0.100)


def test_a_clearly_better_challenger_is_promoted() -> None:
    decision = judge(CHAMPION, Scores(0.85, 0.905, 0.110), RULES)
    assert decision.promote
    assert decision.reasons[0] == "all rules pass"
    assert "+0.1500" in decision.reasons[1]


@pytest.mark.parametrize(
    ("challenger", "failed"),
    [
        (Scores(0.715, 0.90, 0.1), "recent gain"),  # +0.015 < +0.02
        (Scores(0.90, 0.885, 0.1), "original loss"),  # lost 0.015 > 0.01
        (Scores(0.90, 0.90, 0.16), "latency"),  # x1.6 > x1.5
        (Scores(0.60, 0.80, 0.3), "recent gain, original loss, latency"),
    ],
)
def test_each_rule_can_refuse(challenger: Scores, failed: str) -> None:
    decision = judge(CHAMPION, challenger, RULES)
    assert not decision.promote
    assert decision.reasons[0] == f"failed: {failed}"


def test_boundaries_pass() -> None:
    # Exactly the margin, exactly the tolerated loss, exactly the latency budget.
    decision = judge(CHAMPION, Scores(0.72, 0.89, 0.15), RULES)
    assert decision.promote, decision.reasons


def test_decision_serialises_with_its_numbers() -> None:
    record = judge(CHAMPION, Scores(0.9, 0.9, 0.1), RULES).to_dict()
    assert record["promote"] is True
    assert record["champion"] == {
        "recent_macro_f1": 0.70,
        "original_macro_f1": 0.90,
        "batch_seconds": 0.100,
    }
