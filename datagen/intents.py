"""The label set, its phrase banks, and how intents blur into each other.

Ambiguity is part of the data on purpose: real tickets mix two requests or say too
little to tell, and a dataset without such messages makes every model look perfect.
"""

from __future__ import annotations

from refit.datagen.phrasebank import IntentBank
from refit.datagen.phrases_drift import DRIFT_BANKS, PRIVACY
from refit.datagen.phrases_orders import (
    BILLING,
    CANCELLATION,
    ORDER_CHANGE,
    RETURNS,
    SHIPPING,
)
from refit.datagen.phrases_product import ACCOUNT_ACCESS, PRODUCT_INFO, TECHNICAL_ISSUE

INTENTS: tuple[str, ...] = (
    "billing",
    "cancellation",
    "shipping",
    "returns",
    "account_access",
    "technical_issue",
    "product_info",
    "order_change",
)
# Never part of the base data: the open-set drift that retraining has to pick up.
UNSEEN_INTENT: str = "data_privacy"

BANKS: dict[str, IntentBank] = {
    "billing": BILLING,
    "cancellation": CANCELLATION,
    "shipping": SHIPPING,
    "returns": RETURNS,
    "account_access": ACCOUNT_ACCESS,
    "technical_issue": TECHNICAL_ISSUE,
    "product_info": PRODUCT_INFO,
    "order_change": ORDER_CHANGE,
    UNSEEN_INTENT: PRIVACY,
}

# New phrasings exist for the base intents only; the unseen intent keeps its one bank.
NEW_PHRASING_BANKS: dict[str, IntentBank] = {**DRIFT_BANKS, UNSEEN_INTENT: PRIVACY}

# Requests people really combine in one message. Either side may be the label.
_MIXABLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("billing", "cancellation"),
    ("billing", "returns"),
    ("billing", "account_access"),
    ("shipping", "order_change"),
    ("shipping", "returns"),
    ("technical_issue", "account_access"),
    ("technical_issue", "returns"),
    ("product_info", "order_change"),
    ("product_info", "technical_issue"),
    ("cancellation", "order_change"),
    ("cancellation", "shipping"),
    (UNSEEN_INTENT, "cancellation"),
    (UNSEEN_INTENT, "account_access"),
)


def partners(intent: str, allowed: frozenset[str]) -> tuple[str, ...]:
    """Intents that plausibly share a message with `intent`, restricted to `allowed`.

    The restriction keeps a scenario's label set closed: base data must never pair
    a request with the unseen intent.
    """
    found: list[str] = []
    for a, b in _MIXABLE_PAIRS:
        other = b if a == intent else a if b == intent else None
        if other is not None and other in allowed:
            found.append(other)
    return tuple(found)


# Messages too vague to tell apart, with every intent a support agent would accept.
_ANY: tuple[str, ...] = INTENTS
VAGUE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("I need help with my order.", ("shipping", "order_change", "returns", "cancellation")),
    (
        "I need help with order {order}.",
        ("shipping", "order_change", "returns", "cancellation", "billing"),
    ),
    (
        "Something is wrong with my account.",
        ("account_access", "billing", "cancellation", "technical_issue"),
    ),
    (
        "I have a question about my {product}.",
        ("product_info", "technical_issue", "returns", "shipping"),
    ),
    (
        "Can someone call me about my {plan} subscription?",
        ("billing", "cancellation", "account_access", "product_info"),
    ),
    ("There's a problem with my order.", ("shipping", "order_change", "returns", "billing")),
    ("The {product} isn't what I expected.", ("returns", "technical_issue", "product_info")),
    (
        "I'm not happy with the service I've been getting.",
        ("cancellation", "billing", "shipping", "technical_issue"),
    ),
    (
        "Please get back to me about {order}, it's urgent.",
        ("shipping", "order_change", "billing", "returns", "cancellation"),
    ),
    ("Quick question about my bill and my plan.", ("billing", "cancellation", "product_info")),
    ("I'm having trouble with the app.", ("technical_issue", "account_access")),
    (
        "Is it too late to do something about order {order}?",
        ("order_change", "cancellation", "returns"),
    ),
    ("My payment and my account are both messed up.", ("billing", "account_access")),
    ("Can you look into my {product}? It's not right.", ("technical_issue", "returns", "shipping")),
    (
        "What's going on with my {plan}?",
        ("billing", "account_access", "technical_issue", "cancellation"),
    ),
    ("Hello, is anyone there? I need some help.", _ANY),
    ("I have a problem, please contact me.", _ANY),
    ("Help, please.", _ANY),
)

VAGUE_BY_INTENT: dict[str, tuple[str, ...]] = {
    intent: tuple(text for text, plausible in VAGUE if intent in plausible) for intent in BANKS
}
