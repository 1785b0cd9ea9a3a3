"""What the scheduler reports as it works: the hooks `service.scheduling.metrics`
turns into Prometheus series, and the reasons a request is not served."""

from __future__ import annotations

from typing import Literal

from refit.service.scheduling.batch_policy import PassInfo

Cause = Literal["over_budget", "queue_full", "deadline", "model_error", "cancelled", "closed"]


class Observer:
    """Receives the scheduler's measurements (ignored here), on the event loop and the
    model thread: methods must be quick and must not raise (that fails a round)."""

    def queue_wait(self, seconds: float) -> None:
        """A request's wait from enqueueing to the start of its round."""

    def queue_depth(self, texts: int, tokens: int) -> None:
        """Texts and real tokens queued (not counting the running round), after a change."""

    def forward_pass(self, info: PassInfo) -> None:
        """One forward pass done: its texts, real and padded tokens, and duration."""

    def refused(self, cause: Cause, texts: int) -> None:
        """A request not served, with its text count; `cancelled`: its client left."""
