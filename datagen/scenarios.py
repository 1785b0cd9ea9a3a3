"""The scenario table: base data and the drifts that monitoring must catch.

Every scenario is a row of parameters fed to the one generator. Adding a drift means
adding a row here, never a new code path, so all scenarios keep the same columns,
noise and ambiguity as the base data except for what the row changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from refit.datagen.framing import BASE_STYLES, LONG_STYLES, ChannelStyle
from refit.datagen.intents import INTENTS, UNSEEN_INTENT


@dataclass(frozen=True)
class Scenario:
    """Parameters of one scenario; weights need not sum to one."""

    intent_weights: Mapping[str, float]
    channel_weights: Mapping[str, float]
    styles: Mapping[str, ChannelStyle] = field(default_factory=lambda: BASE_STYLES)
    # Share of messages about the new product line rather than the base one.
    new_vocabulary: float = 0.0
    # Share of messages worded with the drifted phrase banks.
    new_phrasing: float = 0.0
    # Ambiguity and annotation noise cap what any model can score.
    two_intents: float = 0.045
    vague: float = 0.05
    label_noise: float = 0.03
    # Share of messages whose backstory also mentions something typical of another
    # intent ("I returned a lamp last month. Now ..."), so that no single sentence
    # can be trusted to give the label away.
    stray_context: float = 0.2


# Roughly what a consumer-electronics help desk sees on an ordinary week.
BASE_INTENT_WEIGHTS: dict[str, float] = {
    "billing": 0.15,
    "cancellation": 0.11,
    "shipping": 0.16,
    "returns": 0.12,
    "account_access": 0.11,
    "technical_issue": 0.14,
    "product_info": 0.11,
    "order_change": 0.10,
}
BASE_CHANNEL_WEIGHTS: dict[str, float] = {"chat": 0.46, "web_form": 0.36, "email": 0.18}


def _outage_weights() -> dict[str, float]:
    # An outage: the app is down, so people report it and then cannot sign in.
    spiking = {"technical_issue": 0.45, "account_access": 0.20}
    rest = [intent for intent in INTENTS if intent not in spiking]
    return {**spiking, **{intent: 0.35 / len(rest) for intent in rest}}


def _with_unseen(share: float) -> dict[str, float]:
    total = sum(BASE_INTENT_WEIGHTS.values())
    scaled = {k: v / total * (1 - share) for k, v in BASE_INTENT_WEIGHTS.items()}
    return {**scaled, UNSEEN_INTENT: share}


SCENARIO_TABLE: dict[str, Scenario] = {
    "base": Scenario(BASE_INTENT_WEIGHTS, BASE_CHANNEL_WEIGHTS),
    "new_vocabulary": Scenario(
        BASE_INTENT_WEIGHTS, BASE_CHANNEL_WEIGHTS, new_vocabulary=0.85, new_phrasing=0.7
    ),
    "long_messages": Scenario(
        BASE_INTENT_WEIGHTS,
        {"chat": 0.3, "web_form": 0.35, "email": 0.35},
        styles=LONG_STYLES,
    ),
    "intent_mix": Scenario(_outage_weights(), BASE_CHANNEL_WEIGHTS),
    "unseen_intent": Scenario(_with_unseen(0.3), BASE_CHANNEL_WEIGHTS),
}

SCENARIOS: tuple[str, ...] = tuple(SCENARIO_TABLE)
