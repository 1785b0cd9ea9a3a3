"""A forward pass's cost, measured: what `plan_buckets` weighs padding against."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_versions import tiny_classifier
from transformers import AutoTokenizer

from refit.core.backends.base import CPU_OVERHEAD_TOKENS, plan_buckets
from refit.core.backends.encoding import TextEncoder
from refit.core.backends.outputs import Encoded, PassOutput
from refit.core.backends.pass_cost import PassCost, measure_pass_cost
from refit.core.backends.torch_backend import TorchBackend


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PricedModel:
    """run_pass advances a fake clock by `fixed + per_token * padded tokens`."""

    max_length = 128

    def __init__(self, clock: Ticks, fixed: float, per_token: float) -> None:
        self.clock, self.fixed, self.per_token = clock, fixed, per_token
        self.shapes: list[tuple[int, int]] = []

    def encode(self, texts: Sequence[str]) -> Encoded:
        kept = [min(len(t.split()), self.max_length - 2) for t in texts]
        rows = [[101, *range(1000, 1000 + k), 102] for k in kept]
        lengths = np.array([len(r) for r in rows])
        return Encoded(rows, lengths, lengths >= self.max_length, np.zeros_like(lengths))

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        padded = len(rows) * int(lengths.max())
        self.shapes.append((len(rows), int(lengths.max())))
        self.clock.now += self.fixed + self.per_token * padded
        return PassOutput(np.zeros((len(rows), 2), dtype=np.float32), None)


def test_the_fixed_and_per_token_costs_are_recovered_from_two_shapes() -> None:
    clock = Ticks()
    model = PricedModel(clock, fixed=0.004, per_token=2e-6)
    cost = measure_pass_cost(model, clock)
    assert cost is not None
    assert (cost.fixed_s, cost.per_token_s) == pytest.approx((0.004, 2e-6), rel=1e-6)
    assert cost.overhead_tokens(cap=16384) == 2000  # 4 ms at 2 µs a token
    assert set(model.shapes) == {(1, 8), (8, 32)}  # three times each: the fastest counts


def test_a_cost_is_in_padded_tokens_between_one_and_the_cap() -> None:
    cost = PassCost(fixed_s=0.001, per_token_s=1e-4)
    assert cost.overhead_tokens(cap=16384) == 10
    assert cost.overhead_tokens(0.002, cap=16384) == 30  # plus serving's own work per pass
    assert cost.overhead_tokens(10.0, cap=512) == 512
    assert PassCost(0.0, 1.0).overhead_tokens(cap=512) == 1


def test_timings_that_give_no_positive_cost_per_token_are_refused() -> None:
    clock = Ticks()
    assert measure_pass_cost(PricedModel(clock, fixed=0.004, per_token=0.0), clock) is None


def test_a_cheap_pass_keeps_a_round_in_one_pass_where_the_old_guess_cut_it() -> None:
    lengths = np.array([8, 12, 20, 31, 40, 64, 9, 15])
    cut = plan_buckets(lengths, max_batch_tokens=16384, overhead_tokens=CPU_OVERHEAD_TOKENS)
    cheap = PassCost(fixed_s=0.004, per_token_s=2e-6).overhead_tokens(cap=16384)
    whole = plan_buckets(lengths, max_batch_tokens=16384, overhead_tokens=cheap)
    assert len(cut) > 1
    assert len(whole) == 1


def test_warm_up_measures_the_backend_and_plans_by_it(tiny_base_model: Path) -> None:
    model = tiny_classifier(tiny_base_model, ["alpha", "beta"], seed=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    backend = TorchBackend(model, TextEncoder(tokenizer, 64), device=torch.device("cpu"))
    assert backend.pass_cost is None
    assert backend.overhead_tokens == CPU_OVERHEAD_TOKENS
    backend.warm_up()
    assert backend.pass_cost is not None
    assert backend.pass_cost.per_token_s > 0
    assert backend.pass_cost.fixed_s >= 0
    cap = backend.max_batch_tokens
    assert backend.overhead_tokens == backend.pass_cost.overhead_tokens(cap=cap)
