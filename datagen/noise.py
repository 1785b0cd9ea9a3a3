"""The imperfections of real support traffic: typos, chat shorthand, wrong labels.

Without them a classifier learns the generator's spelling instead of the intent,
and scores far better here than it ever would on real tickets.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    # Fat-finger typos hit a key next to the intended one, not a random letter.
    # Each row sits half a key further right than the one above it.
    position = {
        key: (r, c + 0.5 * r) for r, row in enumerate(_KEYBOARD_ROWS) for c, key in enumerate(row)
    }
    return {
        key: "".join(
            other
            for other, (r2, x2) in position.items()
            if other != key and abs(r2 - r) <= 1 and abs(x2 - x) <= 1
        )
        for key, (r, x) in position.items()
    }


_NEIGHBOURS = _keyboard_neighbours()

_SHORTHAND = {
    "please": "pls",
    "you": "u",
    "your": "ur",
    "thanks": "thx",
    "i'm": "im",
    "don't": "dont",
    "can't": "cant",
    "won't": "wont",
    "it's": "its",
    "what's": "whats",
    "where's": "wheres",
    "doesn't": "doesnt",
    "didn't": "didnt",
    "haven't": "havent",
    "hasn't": "hasnt",
    "isn't": "isnt",
    "i've": "ive",
    "i'd": "id",
    "because": "bc",
    "really": "rly",
    "tomorrow": "tmrw",
}
_SHORTHAND_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(word) for word in _SHORTHAND) + r")\b", re.IGNORECASE
)


def _mangle(word: str, rng: random.Random) -> str:
    # The first letter is kept: people rarely mistype it, and readers rely on it.
    j = rng.randint(1, len(word) - 2)
    kind = rng.random()
    if kind < 0.3:
        return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    if kind < 0.55:
        return word[:j] + word[j + 1 :]
    if kind < 0.75:
        return word[:j] + word[j] + word[j:]
    near = _NEIGHBOURS.get(word[j].lower())
    if not near:
        return word[:j] + word[j + 1 :]
    return word[:j] + rng.choice(near) + word[j + 1 :]


def add_typos(text: str, count: int, rng: random.Random) -> tuple[str, int]:
    """Misspell up to `count` distinct plain words of four letters or more.

    Words with digits or punctuation are left alone, so order numbers and error
    codes stay intact: a customer copies those, they do not type them. Returns the
    text and how many words were misspelt.
    """
    words = text.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    chosen = rng.sample(candidates, min(count, len(candidates)))
    for i in chosen:
        words[i] = _mangle(words[i], rng)
    return (" ".join(words), len(chosen)) if chosen else (text, 0)


def casual(text: str, rng: random.Random, *, lowercase: float, shorthand: float) -> str:
    """Make a sentence read like something typed into a chat box."""
    if rng.random() < lowercase:
        text = text.lower()
        if text.endswith(".") and rng.random() < 0.8:
            text = text[:-1]
    if rng.random() < shorthand:
        text = _SHORTHAND_RE.sub(lambda m: _SHORTHAND[m.group(0).lower()], text)
    return text


def flip_label(label: str, labels: Sequence[str], rng: random.Random) -> str:
    """Another label than `label`, as an annotator's slip would produce."""
    others = [other for other in labels if other != label]
    return rng.choice(others) if others else label
