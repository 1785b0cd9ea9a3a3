"""Composes labelled support messages from the phrase banks and the scenario table.

One code path serves every scenario; `Scenario` rows decide the intent mix, the
channel styles, the vocabulary and how much drifted wording appears. All randomness
flows from one `random.Random` per call, so a seed fully determines the frame.
"""

from __future__ import annotations

import bisect
import operator
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

import pandas as pd

from refit.datagen.framing import (
    BACKSTORY,
    CHANNELS,
    CONNECTORS,
    GREETINGS,
    LEAD_INS,
    SIGN_OFFS,
    URGENCY,
    ChannelStyle,
)
from refit.datagen.intents import BANKS, NEW_PHRASING_BANKS, VAGUE_BY_INTENT, partners
from refit.datagen.noise import add_typos, casual, flip_label
from refit.datagen.phrasebank import IntentBank
from refit.datagen.scenarios import SCENARIO_TABLE, SCENARIOS, Scenario
from refit.datagen.vocabulary import BASE_VOCABULARY, NEW_VOCABULARY, SlotFiller

COLUMNS: tuple[str, ...] = ("text", "label", "channel", "scenario")
# Kinds of message, as recorded by `_generate_with_meta`.
PLAIN, TWO_INTENTS, VAGUE = "plain", "two_intents", "vague"


def _cumulative(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in accumulate(weights)]


def _draw(cumulative: list[float], rng: random.Random) -> int:
    # min() guards against the last cumulative weight rounding to just below 1.0.
    return min(bisect.bisect(cumulative, rng.random()), len(cumulative) - 1)


def _lower_first(template: str) -> str:
    # A second request continues a sentence ("Also, why was ..."), but "I" and a
    # slot that starts with a product name keep their capital.
    if template.startswith(("I ", "I'", "{")):
        return template
    return template[:1].lower() + template[1:]


class _Message(NamedTuple):
    text: str
    kind: str
    typos: int


@dataclass(frozen=True)
class _Style:
    """A `ChannelStyle` with its count weights turned into cumulative tables."""

    base: ChannelStyle
    context: list[float]
    backstory: list[float]
    details: list[float]

    @classmethod
    def of(cls, style: ChannelStyle) -> _Style:
        return cls(
            style,
            _cumulative(style.context),
            _cumulative(style.backstory),
            _cumulative(style.details),
        )


class _Composer:
    """Writes one message at a time for a scenario, drawing from one shared rng."""

    def __init__(self, spec: Scenario, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.labels = tuple(k for k, w in spec.intent_weights.items() if w > 0)
        allowed = frozenset(self.labels)
        self.partners = {intent: partners(intent, allowed) for intent in self.labels}
        self.others = {i: tuple(o for o in self.labels if o != i) for i in self.labels}
        self.styles = {channel: _Style.of(spec.styles[channel]) for channel in CHANNELS}

    def message(self, intent: str, channel: str) -> _Message:
        """One message expressing `intent`, with how it was made."""
        rng, spec = self.rng, self.spec
        vocabulary = NEW_VOCABULARY if rng.random() < spec.new_vocabulary else BASE_VOCABULARY
        banks = NEW_PHRASING_BANKS if rng.random() < spec.new_phrasing else BANKS
        style = self.styles[channel]
        bank = banks[intent]

        roll, kind = rng.random(), PLAIN
        if roll < spec.two_intents and self.partners[intent]:
            kind = TWO_INTENTS
        elif roll < spec.two_intents + spec.vague and VAGUE_BY_INTENT[intent]:
            kind = VAGUE

        story_bank: IntentBank | None = bank
        if kind == VAGUE:
            # Intent-specific backstory would give the answer away.
            core, story_bank = rng.choice(VAGUE_BY_INTENT[intent]), None
        elif kind == TWO_INTENTS:
            other = banks[rng.choice(self.partners[intent])]
            first, second = self._core(bank, style), self._core(other, style)
            if rng.random() < 0.5:
                first, second = second, first
            core = self._join(first, second, channel)
            # Either request may have prompted the backstory; do not tie it to the label.
            story_bank = bank if rng.random() < 0.5 else other
        else:
            core = self._core(bank, style)

        stray = None
        if story_bank is not None and rng.random() < spec.stray_context:
            stray = rng.choice(banks[rng.choice(self.others[intent])].context)
        template = self._frame(core, story_bank, stray, channel, style)
        text = template.format_map(SlotFiller(rng, vocabulary))
        text, typos = self._roughen(text, style.base)
        return _Message(text, kind, typos)

    def _core(self, bank: IntentBank, style: _Style) -> str:
        if style.base.fragment and self.rng.random() < style.base.fragment:
            return self.rng.choice(bank.fragments)
        return self.rng.choice(bank.requests)

    def _join(self, first: str, second: str, channel: str) -> str:
        connector = self.rng.choice(CONNECTORS[channel])
        if channel == "chat":
            return first.rstrip(".?!") + connector + _lower_first(second)
        return f"{first} {connector} {_lower_first(second)}"

    def _sample(self, pool: Sequence[str], cumulative: list[float]) -> list[str]:
        count = _draw(cumulative, self.rng)
        return self.rng.sample(pool, min(count, len(pool))) if count else []

    def _frame(
        self, core: str, bank: IntentBank | None, stray: str | None, channel: str, style: _Style
    ) -> str:
        rng, base = self.rng, style.base
        story = self._sample(bank.context, style.context) if bank else []
        story += self._sample(BACKSTORY, style.backstory)
        if stray:
            story.append(stray)
        rng.shuffle(story)
        request = [core, *(self._sample(bank.details, style.details) if bank else [])]
        if rng.random() < base.lead_in:
            request.insert(0, rng.choice(LEAD_INS))
        if rng.random() < base.urgency:
            request.append(rng.choice(URGENCY[channel]))
        greeting = rng.choice(GREETINGS[channel]) if rng.random() < base.greeting else None
        sign_off = rng.choice(SIGN_OFFS[channel]) if rng.random() < base.sign_off else None

        if base.paragraphs:
            # Emails: long stories break into two paragraphs, as people write them.
            middle = [" ".join(story[:3]), " ".join(story[3:]), " ".join(request)]
            if rng.random() < base.request_first:
                middle = middle[2:] + middle[:2]
            blocks = [greeting, *middle, sign_off]
            return "\n\n".join(block for block in blocks if block)
        body = [*request, *story] if rng.random() < base.request_first else [*story, *request]
        return " ".join(part for part in (greeting, *body, sign_off) if part)

    def _roughen(self, text: str, style: ChannelStyle) -> tuple[str, int]:
        rng = self.rng
        if style.lowercase or style.slang:
            text = casual(text, rng, lowercase=style.lowercase, shorthand=style.slang)
        if rng.random() < style.typo:
            # Longer messages collect more slips.
            count = 1 + (rng.random() < 0.35) + len(text) // 300
            return add_typos(text, count, rng)
        return text, 0


def _check(rows: int, scenario: str) -> tuple[int, Scenario]:
    if scenario not in SCENARIO_TABLE:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    try:
        # operator.index accepts numpy integers but refuses floats and strings.
        count = operator.index(rows)
    except TypeError:
        count = 0
    if isinstance(rows, bool) or count < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    return count, SCENARIO_TABLE[scenario]


def _generate_with_meta(rows: int, *, scenario: str = "base", seed: int = 0) -> pd.DataFrame:
    """`generate` plus how each row was made, for tests and data audits.

    Extra columns: ``intent`` (the label before label noise), ``kind`` (plain,
    two_intents or vague), ``noisy_label`` and ``typos`` (misspelt words).
    """
    rows, spec = _check(rows, scenario)
    # The scenario name is part of the seed, so scenarios are independent draws.
    rng = random.Random(f"refit.synthetic:{scenario}:{seed}")
    composer = _Composer(spec, rng)

    labels = composer.labels
    intents = rng.choices(labels, weights=[spec.intent_weights[k] for k in labels], k=rows)
    channels = rng.choices(CHANNELS, weights=[spec.channel_weights[c] for c in CHANNELS], k=rows)

    texts: list[str] = []
    kinds: list[str] = []
    final_labels: list[str] = []
    noisy: list[bool] = []
    typos: list[int] = []
    for intent, channel in zip(intents, channels, strict=True):
        message = composer.message(intent, channel)
        flipped = rng.random() < spec.label_noise
        texts.append(message.text)
        kinds.append(message.kind)
        typos.append(message.typos)
        final_labels.append(flip_label(intent, labels, rng) if flipped else intent)
        noisy.append(flipped)

    return pd.DataFrame(
        {
            "text": texts,
            "label": final_labels,
            "channel": channels,
            "scenario": [scenario] * rows,
            "intent": intents,
            "kind": kinds,
            "noisy_label": noisy,
            "typos": typos,
        }
    )


def generate(rows: int, *, scenario: str = "base", seed: int = 0) -> pd.DataFrame:
    """A labelled customer-support dataset of exactly `rows` rows.

    Columns: ``text``, ``label`` (the intent), ``channel`` (chat, email or web_form, a
    slice for per-segment metrics) and ``scenario``. The same arguments always give
    the same frame. ``scenario`` is one of `SCENARIOS`; the drifted ones keep the
    columns and label meaning of ``base`` and change only what their name says.

    Raises:
        ValueError: `rows` is below 1 or `scenario` is not one of `SCENARIOS`.
    """
    return _generate_with_meta(rows, scenario=scenario, seed=seed).loc[:, list(COLUMNS)]
