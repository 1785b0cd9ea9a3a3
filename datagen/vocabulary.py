"""Slot values for the synthetic support messages, and the filler that puts them in.

Templates name slots such as ``{product}`` or ``{order}``. Product names and jargon
come from a `Vocabulary`, so the ``new_vocabulary`` scenario can swap in a product
line the base data never mentions while reusing every template. Identifiers (order
numbers, amounts, dates) are generated rather than listed, so a model cannot learn
an intent from a memorised order number.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Vocabulary:
    """The nouns a product line brings with it; everything a drift could rename."""

    products: tuple[str, ...]
    plans: tuple[str, ...]
    features: tuple[str, ...]
    payments: tuple[str, ...]
    errors: tuple[str, ...]
    platforms: tuple[str, ...]
    carriers: tuple[str, ...]


# A fictional smart-home brand: devices, an optional subscription, and an app.
BASE_VOCABULARY = Vocabulary(
    products=(
        "Lumo Hub",
        "Lumo Hub Pro",
        "Lumo Cam 2",
        "Lumo Cam Outdoor",
        "Lumo Doorbell",
        "Lumo Thermostat",
        "Lumo Plug Mini",
        "Lumo Motion Sensor",
        "Lumo Smart Lock",
        "Lumo Light Strip",
    ),
    plans=("Lumo Plus", "Lumo Premium", "Lumo Basic", "Lumo Family"),
    features=(
        "motion alerts",
        "cloud recording",
        "schedules",
        "geofencing",
        "night vision",
        "two-way audio",
        "energy reports",
        "guest access",
    ),
    payments=("Visa card", "Mastercard", "PayPal", "Apple Pay", "gift card", "debit card"),
    errors=("E-1042", "E-2210", "E-3007", "ERR_SYNC_TIMEOUT", "code 503", "E-0419"),
    platforms=("iPhone", "Android", "iPad", "Windows", "Mac", "the web app", "Chrome"),
    carriers=("UPS", "FedEx", "DHL", "USPS", "Royal Mail"),
)

# A later product line with its own jargon. None of these strings may occur in base
# data: the drift tests rely on the base model never having seen them.
NEW_VOCABULARY = Vocabulary(
    products=(
        "Vela Beacon",
        "Vela Mesh Node",
        "Vela Glass",
        "Vela Band",
        "Vela Dash",
        "Vela Orb",
    ),
    plans=("Vela Circle", "Vela Circle Family", "Vela Studio"),
    features=("Quiet Zones", "AutoScene", "Presence Mesh", "Vela Rewind", "Halo Sync"),
    payments=("Klarna", "Afterpay", "Vela Pay", "crypto wallet", "SEPA direct debit"),
    errors=("VX-SYNCFAIL", "MESH_HANDSHAKE_LOST", "VX-4404", "HALO_AUTH_DENIED"),
    platforms=("Vela OS", "Wear OS", "the smart TV app", "HarmonyOS"),
    carriers=("InPost", "Evri", "DPD", "a same-day courier"),
)

_PRICES = (4.99, 9.99, 12.5, 19.99, 24.0, 29.99, 39.0, 49.99, 79.0, 129.99, 199.0, 249.99)
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Weekday names only: templates say "on {date}" and "since {date}", which rules out
# "yesterday" or "last week".
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FIRST_NAMES = (
    "Maria", "James", "Aisha", "Tom", "Priya", "Lukas", "Sofia", "Daniel", "Mei", "Omar",
    "Emma", "Carlos", "Hannah", "Kwame", "Julia", "Ben", "Yuki", "Fatima", "Oliver", "Ines",
)  # fmt: skip
_SURNAMES = (
    "Novak", "Smith", "Okafor", "Garcia", "Chen", "Müller", "Patel", "Rossi", "Kim", "Dubois",
)  # fmt: skip
_STREETS = ("Harbour Road", "Elm Street", "Kingsway", "Mill Lane", "Park Avenue", "Rue Dupont")
_EMAIL_DOMAINS = ("example.com", "mail.example.org", "example.net")


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _date(rng: random.Random) -> str:
    # Mix the ways people really write dates, so no single format becomes a feature.
    style = rng.random()
    if style < 0.35:
        return f"{rng.choice(_MONTH_NAMES)} {_ordinal(rng.randint(1, 28))}"
    if style < 0.6:
        return rng.choice(_WEEKDAYS)
    if style < 0.8:
        return f"{rng.randint(1, 12)}/{rng.randint(1, 28)}"
    return f"the {_ordinal(rng.randint(1, 28))}"


def _amount(rng: random.Random) -> str:
    price = rng.choice(_PRICES) * rng.choice((1, 1, 1, 2, 3))
    return f"{rng.choice(('$', '$', '€', '£'))}{price:.2f}"


def _email(rng: random.Random) -> str:
    name = rng.choice(_FIRST_NAMES).lower()
    return f"{name}{rng.randint(1, 99)}@{rng.choice(_EMAIL_DOMAINS)}"


def _second_product(slots: SlotFiller) -> str:
    # "the X or the X" reads as a bug in the generator, not as a customer question.
    first = slots["product"]
    products = slots.vocabulary.products
    pick = slots.rng.choice(products)
    return pick if pick != first else products[(products.index(pick) + 1) % len(products)]


_GENERATED: dict[str, Callable[[random.Random], str]] = {
    "order": lambda r: f"#{r.choice('ABCDEFGHKMNPRSTW')}{r.randint(10000, 99999)}",
    "amount": _amount,
    "amount2": _amount,
    "date": _date,
    # Backstory dates are independent of the request's date.
    "when": _date,
    "days": lambda r: str(r.randint(2, 21)),
    "months": lambda r: str(r.randint(2, 36)),
    "count": lambda r: str(r.randint(2, 6)),
    "last4": lambda r: f"{r.randint(0, 9999):04d}",
    "ticket": lambda r: f"CS-{r.randint(100000, 999999)}",
    "tracking": lambda r: f"1Z{r.randint(10**9, 10**10 - 1)}",
    "email": _email,
    "name": lambda r: r.choice(_FIRST_NAMES),
    "agent": lambda r: r.choice(_FIRST_NAMES),
    "surname": lambda r: r.choice(_SURNAMES),
    "address": lambda r: f"{r.randint(2, 180)} {r.choice(_STREETS)}",
}

_FROM_VOCABULARY: dict[str, Callable[[Vocabulary], tuple[str, ...]]] = {
    "product": lambda v: v.products,
    "plan": lambda v: v.plans,
    "feature": lambda v: v.features,
    "payment": lambda v: v.payments,
    "error": lambda v: v.errors,
    "platform": lambda v: v.platforms,
    "carrier": lambda v: v.carriers,
}


class SlotFiller(dict[str, str]):
    """Lazily drawn slot values for one message, used with `str.format_map`.

    Values are drawn on first use and then remembered, so a message that names its
    product twice names the same product, and a template pays only for the slots it
    actually has.
    """

    def __init__(self, rng: random.Random, vocabulary: Vocabulary) -> None:
        super().__init__()
        self.rng = rng
        self.vocabulary = vocabulary

    def __missing__(self, key: str) -> str:
        if key == "product2":
            value = _second_product(self)
        elif key in _FROM_VOCABULARY:
            value = self.rng.choice(_FROM_VOCABULARY[key](self.vocabulary))
        else:
            value = _GENERATED[key](self.rng)
        self[key] = value
        return value


SLOT_NAMES: frozenset[str] = frozenset({*_GENERATED, *_FROM_VOCABULARY, "product2"})
