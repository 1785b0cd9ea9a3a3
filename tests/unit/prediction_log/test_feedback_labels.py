"""Feedback labels in NFKC form, and refused when they only look like an existing label:
homoglyphs of another script, full-width forms, letter case (issue 25, case 11)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from log_helpers import LABELS, logged_ids

from refit.core.errors import ConfusableLabel
from refit.monitoring.feedback_rules import feedback_outcomes
from refit.monitoring.label_skeleton import LabelBook, skeleton
from refit.monitoring.prediction_log import PredictionLog
from refit.service.schemas import FeedbackItem

LOOK_ALIKES = {
    "b\u0456lling": "billing",  # Cyrillic і
    "\u0455hipping": "shipping",  # Cyrillic ѕ
    "r\u0435fund": "refund",  # Cyrillic е
    "\u0455h\u0456pp\u0456ng": "shipping",  # Cyrillic ѕ and і
    "billin\u0261": "billing",  # Latin script g
    "Billing": "billing",
    "SHIPPING": "shipping",
    "bi11ing": "billing",
    "REFU\u039dD": "refund",  # Greek capital nu
}


@pytest.mark.parametrize(("label", "twin"), LOOK_ALIKES.items())
def test_a_look_alike_of_a_model_label_is_named_with_it(label: str, twin: str) -> None:
    assert skeleton(label) == skeleton(twin)
    assert LabelBook(LABELS).confused_with(label) == twin


@pytest.mark.parametrize("label", ["billing", "fraud", "gift cards", "billing_v2", "shipped"])
def test_a_model_label_or_a_different_label_passes(label: str) -> None:
    assert LabelBook(LABELS).confused_with(label) is None


def test_a_full_width_label_is_stored_as_the_ascii_it_stands_for() -> None:
    outcomes, changes = feedback_outcomes(
        [
            ("1", "\uff42\uff49\uff4c\uff4c\uff49\uff4e\uff47"),
            ("2", "\uff46\uff52\uff41\uff55\uff44"),
        ],
        {"1": None, "2": None},
        known_labels=LABELS,
    )
    assert outcomes == ["stored", "new_label"]
    assert changes == {"1": "billing", "2": "fraud"}
    assert (
        FeedbackItem(id="a", label="\uff42\uff49\uff4c\uff4c\uff49\uff4e\uff47").label == "billing"
    )


@pytest.mark.parametrize(
    ("items", "given", "named"),
    [
        ([("1", "b\u0456lling")], (), "'billing'"),
        ([("1", "fr\u0430ud")], ("fraud",), "'fraud'"),  # a label feedback gave before
        ([("1", "fraud"), ("2", "Fraud")], (), "'fraud'"),  # one given earlier in the request
    ],
    ids=["model label", "logged label", "same request"],
)
def test_a_confusable_label_is_refused_naming_the_label_it_looks_like(
    items: list[tuple[str, str]], given: tuple[str, ...], named: str
) -> None:
    current = dict.fromkeys([pid for pid, _ in items])
    with pytest.raises(ConfusableLabel, match=named) as refused:
        feedback_outcomes(items, current, known_labels=LABELS, given=given)
    assert refused.value.status == 422


def test_a_confusable_label_stores_nothing_of_its_request(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(log_url)
    a, b, c = logged_ids(log, 3)
    assert log.attach_feedback([(a, "fraud")], LABELS, 5) == ["new_label"]
    with pytest.raises(ConfusableLabel, match="'fraud'"):
        log.attach_feedback([(b, "billing"), (c, "fr\u0430ud")], LABELS, 5)
    assert log.feedback_history(b) == []
    assert log.attach_feedback([(c, "fraud")], LABELS, 5) == ["new_label"]
