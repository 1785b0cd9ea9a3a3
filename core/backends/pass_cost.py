"""What one forward pass costs on this backend and this machine, measured at warm-up.

`plan_buckets` cuts a batch into passes of similar length, trading the padding a
longer text forces on shorter ones against the fixed cost of one more pass. That
trade needs the fixed cost in padded tokens, and it differs by orders of magnitude
between engines and models: MiniLM on two CPU cores pays about as much for a pass
as for a few dozen tokens, a two-layer model or a GPU as much as for thousands. A
guess that fits one splits the other's batches into passes of a few texts each,
and then the per-pass work of serving (a log record, metric updates, waking the
event loop) is paid again for every few texts.

`measure_pass_cost` times passes of two shapes and fits a line through them: a
fixed part per pass and a part per padded token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from refit.core.backends.outputs import Encoded, PassOutput

# Shapes timed: (texts, tokens each). Small enough to cost little at start (MiniLM,
# int8, one thread: about 0.15 s for all six passes), large enough that the part per
# token stands clear of timer noise.
SHORT, LONG = (1, 8), (8, 32)
REPEATS = 3  # the fastest of these counts: the least disturbed by other work


@dataclass(frozen=True)
class PassCost:
    fixed_s: float  # a pass's cost whatever its size
    per_token_s: float  # and per padded token in it

    def overhead_tokens(self, extra_fixed_s: float = 0.0, *, cap: int) -> int:
        """The fixed cost of one more pass, plus `extra_fixed_s` paid per pass
        outside the engine, in padded tokens; between 1 and `cap`."""
        tokens = (self.fixed_s + max(extra_fixed_s, 0.0)) / self.per_token_s
        return round(min(max(tokens, 1.0), cap))


class Runs(Protocol):
    @property
    def max_length(self) -> int: ...
    def encode(self, texts: Sequence[str]) -> Encoded: ...
    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput: ...


def measure_pass_cost(
    model: Runs, clock: Callable[[], float] = time.perf_counter
) -> PassCost | None:
    """Time passes of two shapes on `model`; None when the timings are too noisy to
    give a positive cost per token (the caller keeps its prior figure)."""
    row = model.encode(["warm up " * 80]).rows[0]
    shapes = [_shape(row, texts, min(tokens, model.max_length)) for texts, tokens in (SHORT, LONG)]
    (short_tokens, short_s), (long_tokens, long_s) = (_timed(model, clock, *s) for s in shapes)
    if long_tokens <= short_tokens or long_s <= short_s:
        return None
    per_token = (long_s - short_s) / (long_tokens - short_tokens)
    return PassCost(max(short_s - per_token * short_tokens, 0.0), per_token)


def _shape(row: list[int], texts: int, tokens: int) -> tuple[list[list[int]], np.ndarray]:
    """`texts` rows of `tokens` ids each: a real row cut short, keeping its end token."""
    cut = row[: max(tokens - 1, 1)] + row[-1:] if tokens < len(row) else row
    return [cut] * texts, np.full(texts, len(cut), dtype=np.int64)


def _timed(
    model: Runs, clock: Callable[[], float], rows: list[list[int]], lengths: np.ndarray
) -> tuple[int, float]:
    best = float("inf")
    for _ in range(REPEATS):
        began = clock()
        model.run_pass(rows, lengths)
        best = min(best, clock() - began)
    return int(lengths.sum()), best
