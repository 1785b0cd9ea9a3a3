"""The champion/challenger gate on hand-made figures."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from refit.retraining.gate import GateRules, Scores, ShadowFigures, judge

RULES = GateRules(
    min_gain_recent=0.02,
    max_loss_original=0.01,
    max_latency_ratio=1.5,
    max_confident_changes=0.10,
    confident_score=0.9,
    min_support_rows=10,
)
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


BETTER = Scores(0.85, 0.905, 0.110)


@pytest.mark.parametrize(
    ("shadow", "promote", "verdict"),
    [
        # 10 of 100 confident predictions change: exactly the tolerated share.
        (ShadowFigures(True, "", 100, 10), True, "(10.0%; may be <= 10.0%)"),
        # 11 of 100, and no feedback on the disagreements.
        (ShadowFigures(True, "", 100, 11), False, "not supported"),
        # 30 of 100; the challenger is right on 12 labelled disagreements, the champion on 3.
        (ShadowFigures(True, "", 100, 30, 20, 3, 12), True, "supported"),
        # Right more often than the champion, but on too few rows to count as support.
        (ShadowFigures(True, "", 100, 30, 12, 0, 9), False, "not supported"),
        # Right on enough rows, but the champion is right as often.
        (ShadowFigures(True, "", 100, 30, 30, 15, 15), False, "not supported"),
        # Without a replay there is nothing to hold against the challenger.
        (ShadowFigures(False, "a hashed log"), True, "not replayed: a hashed log"),
    ],
)
def test_the_confident_changes_rule(shadow: ShadowFigures, promote: bool, verdict: str) -> None:
    decision = judge(CHAMPION, BETTER, RULES, shadow)
    assert decision.promote is promote
    assert decision.reasons[0] == ("all rules pass" if promote else "failed: confident changes")
    assert decision.reasons[-1].startswith("shadow replay:")
    assert verdict in decision.reasons[-1]


def test_gate_macro_f1_averages_over_the_classes_the_frame_holds() -> None:
    """A challenger that predicts a label the test split lacks is charged the miss in
    its true class's recall, not a whole extra class of F1 0."""
    from refit.retraining.scoring import macro_f1

    class Fixed:
        def __init__(self, guesses: list[int]) -> None:
            self.labels = ["a", "b", "new"]
            self.guesses = guesses

        def predict(self, texts: list[str]) -> Any:
            return SimpleNamespace(label_ids=np.array(self.guesses))

    frame = pd.DataFrame({"text": list("wxyz"), "label": ["a", "a", "b", "b"]})
    perfect = macro_f1(Fixed([0, 0, 1, 1]), frame)  # type: ignore[arg-type]
    one_stray = macro_f1(Fixed([0, 2, 1, 1]), frame)  # type: ignore[arg-type]
    assert perfect == pytest.approx(1.0)
    # a: precision 1, recall 1/2 -> 2/3; b: 1; averaged over a and b only.
    assert one_stray == pytest.approx((2 / 3 + 1) / 2)
    unseen = pd.DataFrame({"text": ["u", "v"], "label": ["new", "other"]})
    assert macro_f1(Fixed([2, 2]), unseen) == pytest.approx((2 / 3 + 0) / 2)  # type: ignore[arg-type]


def test_the_joint_model_is_reported_beside_the_challenger_and_decides_nothing() -> None:
    joint = Scores(0.88, 0.91, 0.0)
    decision = judge(CHAMPION, BETTER, RULES, joint=joint)
    assert decision.promote
    assert decision.reasons[-1] == (
        "yardstick: the joint model (base model trained on the same rows) has recent data "
        "macro-F1 0.8800 (challenger -0.0300), original test 0.9100 (challenger -0.0050)"
    )
    assert decision.to_dict()["joint"] == {
        "recent_macro_f1": 0.88, "original_macro_f1": 0.91, "batch_seconds": 0.0
    }  # fmt: skip
    assert judge(CHAMPION, BETTER, RULES).to_dict()["joint"] is None
