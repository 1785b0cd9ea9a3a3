"""The shape of one intent's phrase bank.

A message is assembled from parts rather than picked whole, so a bank lists each
part separately: the generator combines them with shared greetings, backstories and
sign-offs, which gives far more distinct messages than any list of full examples.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntentBank:
    """Phrases that express one intent; ``{slot}`` names are filled per message."""

    # Complete sentences carrying the request; used by every channel.
    requests: tuple[str, ...]
    # Terse, informal chat turns ("refund pls"); chat only, as nobody writes an email so.
    fragments: tuple[str, ...]
    # Backstory that hints at the intent without stating it.
    context: tuple[str, ...]
    # Follow-up facts a customer adds after the request.
    details: tuple[str, ...]

    def __post_init__(self) -> None:
        # An empty part would only surface as an IndexError deep inside generation.
        for part in ("requests", "fragments", "context", "details"):
            if not getattr(self, part):
                raise ValueError(f"IntentBank.{part} must not be empty")
