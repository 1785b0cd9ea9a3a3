"""The built-in dataset generator: reproducible, realistic, and drifted as promised."""

from __future__ import annotations

import random
import re
import string
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from refit.datagen import INTENTS, SCENARIOS, UNSEEN_INTENT, generate
from refit.datagen.framing import BACKSTORY, CONNECTORS, GREETINGS, SIGN_OFFS, URGENCY
from refit.datagen.generator import _generate_with_meta
from refit.datagen.intents import BANKS, NEW_PHRASING_BANKS, VAGUE
from refit.datagen.noise import add_typos
from refit.datagen.vocabulary import NEW_VOCABULARY, SLOT_NAMES

COLUMNS = ["text", "label", "channel", "scenario"]


def _words(frame: pd.DataFrame) -> pd.Series:
    return frame["text"].str.split().str.len()


def _fixed_prefix(template: str) -> str:
    """The part of a template before its first slot, lowercased."""
    return template.split("{")[0].strip().lower()


def test_public_constants() -> None:
    assert SCENARIOS == ("base", "new_vocabulary", "long_messages", "intent_mix", "unseen_intent")
    assert len(INTENTS) >= 8
    assert len(set(INTENTS)) == len(INTENTS)
    assert UNSEEN_INTENT not in INTENTS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_arguments_give_the_same_frame(scenario: str) -> None:
    first = generate(400, scenario=scenario, seed=11)
    second = generate(400, scenario=scenario, seed=11)
    pd.testing.assert_frame_equal(first, second)


def test_global_random_state_is_neither_used_nor_changed() -> None:
    random.seed(1)
    before = random.getstate()
    first = generate(200, seed=3)
    assert random.getstate() == before
    random.seed(2)
    pd.testing.assert_frame_equal(first, generate(200, seed=3))


def test_different_seeds_give_different_rows() -> None:
    first = generate(500, seed=1)
    second = generate(500, seed=2)
    assert (first["text"] != second["text"]).mean() > 0.9
    assert not first["label"].equals(second["label"])


@pytest.mark.parametrize("rows", [1, 2, 37, 1500])
def test_exact_row_count(rows: int) -> None:
    frame = generate(rows, seed=5)
    assert len(frame) == rows
    assert list(frame.index) == list(range(rows))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_columns_and_values(scenario: str) -> None:
    frame = generate(600, scenario=scenario, seed=4)
    assert list(frame.columns) == COLUMNS
    for column in COLUMNS:
        assert frame[column].map(type).eq(str).all(), column
    assert (frame["text"].str.strip().str.len() > 0).all()
    assert set(frame["channel"]) == {"chat", "email", "web_form"}
    assert set(frame["scenario"]) == {scenario}
    allowed = {*INTENTS, UNSEEN_INTENT} if scenario == "unseen_intent" else set(INTENTS)
    assert set(frame["label"]) <= allowed
    # A leftover slot means a template named a value the generator does not know.
    assert not frame["text"].str.contains(r"[{}]").any()


def test_every_base_intent_is_present() -> None:
    labels = generate(2000, seed=0)["label"]
    assert set(labels) == set(INTENTS)
    # No intent may be so rare that a stratified split starves it.
    assert labels.value_counts(normalize=True).min() > 0.05


def test_label_noise_is_present_but_bounded() -> None:
    frame = _generate_with_meta(6000, seed=8)
    noisy = frame["noisy_label"]
    assert 0.015 < noisy.mean() < 0.05
    assert (frame.loc[noisy, "label"] != frame.loc[noisy, "intent"]).all()
    assert (frame.loc[~noisy, "label"] == frame.loc[~noisy, "intent"]).all()
    assert set(frame["label"]) == set(INTENTS)


def test_ambiguity_is_present_but_bounded() -> None:
    frame = _generate_with_meta(6000, seed=9)
    shares = frame["kind"].value_counts(normalize=True)
    assert 0.02 < shares["two_intents"] < 0.08
    assert 0.02 < shares["vague"] < 0.08
    assert 0.06 < shares["two_intents"] + shares["vague"] < 0.13
    # A vague row must stay vague: none of an intent's own backstory or details.
    telltales = [
        prefix
        for bank in BANKS.values()
        for phrase in (*bank.context, *bank.details)
        if len(prefix := _fixed_prefix(phrase)) >= 15
    ]
    pattern = "|".join(re.escape(t) for t in telltales)
    plain = frame.loc[frame["kind"] == "plain", "text"].str.lower()
    assert plain.str.contains(pattern).mean() > 0.2  # the check can see them at all
    vague = frame.loc[frame["kind"] == "vague", "text"].str.lower()
    assert not vague.str.contains(pattern).any()


def test_typos_are_present_and_most_common_in_chat() -> None:
    frame = _generate_with_meta(6000, seed=10)
    with_typos = frame["typos"].gt(0).groupby(frame["channel"]).mean()
    assert 0.2 < with_typos["chat"] < 0.6
    assert with_typos["chat"] > with_typos["web_form"] > with_typos["email"] > 0.02


def test_add_typos_keeps_identifiers_and_word_count() -> None:
    text = "Please refund order #A48213 because the charge of $49.99 was a mistake"
    changed = 0
    for seed in range(50):
        noisy, count = add_typos(text, 2, random.Random(seed))
        assert count == 2
        assert len(noisy.split(" ")) == len(text.split(" "))
        assert "#A48213" in noisy
        assert "$49.99" in noisy
        changed += noisy != text
    assert changed == 50
    assert add_typos("ok #A1 $2", 3, random.Random(0)) == ("ok #A1 $2", 0)


def test_lengths_span_fragments_to_paragraphs() -> None:
    frame = generate(3000, seed=1)
    words = _words(frame)
    assert (words <= 5).mean() > 0.03
    assert (words >= 60).mean() > 0.02
    by_channel = words.groupby(frame["channel"]).median()
    assert by_channel["chat"] < by_channel["web_form"] < by_channel["email"]


def test_long_messages_are_several_times_longer() -> None:
    base = _words(generate(1500, seed=2)).median()
    long = _words(generate(1500, scenario="long_messages", seed=2)).median()
    assert long >= 2.5 * base


def test_intent_mix_is_dominated_by_an_outage() -> None:
    shares = generate(3000, scenario="intent_mix", seed=3)["label"].value_counts(normalize=True)
    assert shares.index[0] == "technical_issue"
    assert shares.iloc[0] >= 0.35
    assert shares["account_access"] > generate(3000, seed=3)["label"].eq("account_access").mean()


def test_unseen_intent_appears_only_in_its_scenario() -> None:
    drifted = _generate_with_meta(3000, scenario="unseen_intent", seed=6)
    assert 0.2 <= (drifted["intent"] == UNSEEN_INTENT).mean() <= 0.4
    assert 0.2 <= (drifted["label"] == UNSEEN_INTENT).mean() <= 0.4
    for scenario in SCENARIOS:
        if scenario != "unseen_intent":
            frame = _generate_with_meta(2000, scenario=scenario, seed=6)
            assert UNSEEN_INTENT not in set(frame["label"]) | set(frame["intent"])


def test_new_vocabulary_never_leaks_into_base() -> None:
    new_terms = [
        term.lower()
        for field in fields(NEW_VOCABULARY)
        for term in getattr(NEW_VOCABULARY, field.name)
    ]
    pattern = "|".join(re.escape(term) for term in new_terms)
    base = generate(4000, seed=7)["text"].str.lower()
    assert not base.str.contains(pattern).any()
    drifted = generate(2000, scenario="new_vocabulary", seed=7)
    products = "|".join(re.escape(p.lower()) for p in NEW_VOCABULARY.products)
    assert drifted["text"].str.lower().str.contains(products).mean() > 0.3
    assert set(drifted["label"]) == set(INTENTS)


def test_new_vocabulary_rewords_the_requests() -> None:
    # Drift must change the wording, not only the product names: few drifted rows
    # may contain a base request verbatim.
    base_requests = [
        re.escape(prefix)
        for intent in INTENTS
        for request in BANKS[intent].requests
        if len(prefix := _fixed_prefix(request)) > 20
    ]
    pattern = "|".join(base_requests)
    drifted = generate(2000, scenario="new_vocabulary", seed=8)["text"].str.lower()
    base = generate(2000, seed=8)["text"].str.lower()
    assert drifted.str.contains(pattern).mean() < 0.5 * base.str.contains(pattern).mean()


def _templates() -> list[str]:
    found: list[str] = []
    for bank in (*BANKS.values(), *NEW_PHRASING_BANKS.values()):
        found += [*bank.requests, *bank.fragments, *bank.context, *bank.details]
    found += [text for text, _ in VAGUE]
    found += BACKSTORY
    for table in (GREETINGS, SIGN_OFFS, URGENCY, CONNECTORS):
        found += [phrase for phrases in table.values() for phrase in phrases]
    return found


def test_every_template_names_only_known_slots() -> None:
    # Rare templates may not be drawn in any test sample; check them all directly.
    for template in _templates():
        for _, slot, spec, conversion in string.Formatter().parse(template):
            if slot is not None:
                assert slot in SLOT_NAMES, (template, slot)
                assert not spec, template
                assert conversion is None, template


def test_vague_messages_name_only_known_intents() -> None:
    for _, plausible in VAGUE:
        assert len(plausible) >= 2
        assert set(plausible) <= set(INTENTS)


@pytest.mark.parametrize("scenario", ["", "Base", "drift", "long"])
def test_unknown_scenario_is_refused_with_the_choices(scenario: str) -> None:
    with pytest.raises(ValueError, match="new_vocabulary") as excinfo:
        generate(10, scenario=scenario)
    assert all(name in str(excinfo.value) for name in SCENARIOS)


@pytest.mark.parametrize("rows", [0, -5, 2.5, True])
def test_row_count_must_be_a_positive_integer(rows: object) -> None:
    with pytest.raises(ValueError, match="rows"):
        generate(rows)  # type: ignore[arg-type]


def test_numpy_integers_are_row_counts() -> None:
    # Callers often pass sizes computed with numpy; they must not need an int() cast.
    frame = generate(np.int64(3), seed=np.int64(1))  # type: ignore[arg-type]
    assert len(frame) == 3
