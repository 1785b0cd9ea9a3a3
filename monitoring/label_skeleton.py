"""When two labels look alike: a label's skeleton, after Unicode's confusable detection.

Feedback labels become classes of the next model. A label that differs from an existing
one only by a full-width form ("ｂｉｌｌｉｎｇ"), a letter of another script that looks
the same (Cyrillic "а" in "bаlling") or letter case would become a second class
holding the same meaning. Two labels are confusable when their skeletons are equal and
the labels are not: the skeleton is the NFKC form (full-width and compatibility forms
folded), each character of the table below replaced by the Latin letter it looks
like, then case-folded.

The table is the common cross-script part of Unicode's confusables data (UTS #39):
Cyrillic and Greek letters drawn like Latin ones, dotless i, and the digits 0 and 1.
It is small on purpose: the `confusable_homoglyphs` package answers another question
(does one string mix scripts), and the full data set would be a dependency to keep up
to date for the few characters that fit the label pattern and fool a reader.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Each pair: characters, and the Latin letters they are read as (same length).
_PAIRS = (
    # Cyrillic, capital then small
    ("АВЕЅІЈКМНОРСТХУ", "ABESIJKMHOPCTXY"),
    ("аеѕіјһорсхуԁԛԝӏ", "aesijhopcxydqwl"),
    # Greek, capital then small
    ("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX"),
    ("αικνορτυχϲϳ", "aikvoptuxcj"),
    # Latin look-alikes and digits
    ("ıɑɡ01", "iagol"),
)
CONFUSABLE = str.maketrans("".join(a for a, _ in _PAIRS), "".join(b for _, b in _PAIRS))


def normal_label(label: str) -> str:
    """The form a label is stored in: NFKC (full-width letters become ASCII ones)."""
    return unicodedata.normalize("NFKC", label)


def skeleton(label: str) -> str:
    """What `label` looks like: equal skeletons, confusable labels."""
    return normal_label(label).translate(CONFUSABLE).casefold().translate(CONFUSABLE)


class LabelBook:
    """Labels that exist, by skeleton, to find the one a new label would be confused with.

    `trusted` labels (the model's) always pass and are the ones named first; `others`
    (labels feedback gave) pass only if no trusted label looks like them.
    """

    def __init__(self, trusted: Iterable[str] = (), others: Iterable[str] = ()) -> None:
        self._trusted = set(trusted)
        self._by_skeleton: dict[str, str] = {}
        for label in [*sorted(self._trusted), *sorted(others)]:
            self.add(label)

    def add(self, label: str) -> None:
        self._by_skeleton.setdefault(skeleton(label), label)

    def confused_with(self, label: str) -> str | None:
        """The existing label `label` looks like but is not; None if it is new or exists."""
        if label in self._trusted:
            return None
        twin = self._by_skeleton.get(skeleton(label))
        return None if twin is None or twin == label else twin
