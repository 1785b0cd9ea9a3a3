"""Which backend serves: the pure choice on hand-made records (`core.backends.choice`)."""

from __future__ import annotations

import pytest

from refit.core.backends.choice import choose, misses
from refit.core.backends.record import BackendRecord, Candidate
from refit.training.backend_export import best_variant


def candidate(
    backend: str,
    *,
    agreement: float = 1.0,
    f1_diff: float | None = 0.0,
    ratios: tuple[float, float] = (1.0, 1.0),
    kept: bool = True,
    method: str = "",
    error: str = "",
) -> Candidate:
    return Candidate(
        backend=backend,
        method=method,
        kept=kept,
        label_agreement=agreement,
        macro_f1_diff=f1_diff,
        ratio_batch1=ratios[0],
        ratio_batch32=ratios[1],
        error=error,
    )


def record(*candidates: Candidate) -> BackendRecord:
    return BackendRecord(
        created="2026-12-07T00:00:00+00:00",
        data="test split (500 texts)",
        texts=500,
        labelled=True,
        threads=1,
        seconds=1.0,
        libraries={},
        candidates=[candidate("torch-traced"), *candidates],
    )


FAST_INT8 = candidate("onnx-int8", agreement=0.998, f1_diff=-0.002, ratios=(2.5, 1.4))
FP32 = candidate("onnx-fp32", ratios=(1.5, 1.05))
TORCH_INT8 = candidate("torch-int8", agreement=0.997, ratios=(1.2, 1.1))


def test_auto_on_a_cpu_serves_the_fastest_backend_that_meets_both_rules() -> None:
    choice = choose("auto", "cpu", record(TORCH_INT8, FP32, FAST_INT8))
    assert choice.backend == "onnx-int8"
    assert "fastest" in choice.reason


@pytest.mark.parametrize(
    ("int8", "why"),
    [
        (candidate("onnx-int8", agreement=0.990, ratios=(3.0, 2.0)), "labels agree on 99.00%"),
        (candidate("onnx-int8", f1_diff=-0.006, ratios=(3.0, 2.0)), "macro-F1 differs by -0.0060"),
        (candidate("onnx-int8", f1_diff=0.0051, ratios=(3.0, 2.0)), "macro-F1 differs by +0.0051"),
        (candidate("onnx-int8", error="ValueError: boom"), "it failed: ValueError: boom"),
    ],
    ids=["agreement", "f1-drop", "f1-rise", "failed"],
)
def test_auto_passes_over_an_int8_graph_that_misses_and_says_why(int8: Candidate, why: str) -> None:
    choice = choose("auto", "cpu", record(TORCH_INT8, FP32, int8))
    assert choice.backend == "onnx-fp32"
    assert f"onnx-int8 misses ({why}" in choice.reason


def test_the_rules_are_inclusive_at_their_bounds() -> None:
    assert misses(candidate("onnx-int8", agreement=0.995, f1_diff=-0.005)) == ""
    assert misses(candidate("onnx-int8", agreement=0.9949, f1_diff=0.0)) != ""


def test_auto_keeps_torch_when_nothing_beats_it_or_nothing_meets_the_rules() -> None:
    slower = candidate("onnx-fp32", ratios=(0.9, 0.95))
    assert choose("auto", "cpu", record(slower)).backend == "torch"
    unlabelled = candidate("onnx-int8", f1_diff=None, ratios=(3.0, 2.0))
    choice = choose("auto", "cpu", record(unlabelled))
    assert choice.backend == "torch"
    assert "macro-F1 unknown" in choice.reason


def test_auto_serves_torch_on_a_gpu_and_without_a_record() -> None:
    assert choose("auto", "cuda", record(FAST_INT8)).backend == "torch"
    choice = choose("auto", "cpu", None, "the version has no backends.json")
    assert (choice.backend, choice.reason) == (
        "torch",
        "auto: torch, since the version has no backends.json",
    )


def test_a_named_backend_serves_when_the_version_has_it_even_if_it_misses() -> None:
    missing_int8 = candidate("onnx-int8", agreement=0.97)
    choice = choose("onnx-int8", "cpu", record(FP32, missing_int8))
    assert choice.backend == "onnx-int8"
    assert "misses the rules: labels agree on 97.00%" in choice.reason
    assert choose("onnx", "cpu", record(FP32)).backend == "onnx-fp32"
    assert choose("torch", "cpu", record(FAST_INT8)).backend == "torch"
    assert choose("torch-int8", "cpu", None).backend == "torch-int8"


def test_a_named_backend_the_version_lacks_gives_way_to_torch() -> None:
    choice = choose("onnx-int8", "cpu", record(FP32))
    assert choice.backend == "torch"
    assert "no onnx-int8 export" in choice.reason
    assert "refit models export" in choice.reason
    assert choose("onnx", "cpu", None, "no record").backend == "torch"
    assert choose("torch-int8", "cuda", None).backend == "torch"


def test_the_kept_int8_variant_is_the_fastest_that_agrees_else_the_most_agreeing() -> None:
    slow_good = candidate("onnx-int8", agreement=0.999, ratios=(1.8, 1.2), method="static")
    fast_good = candidate("onnx-int8", agreement=0.996, ratios=(2.6, 1.4), method="per tensor")
    fast_bad = candidate("onnx-int8", agreement=0.990, ratios=(3.0, 1.6), method="per channel")
    assert best_variant([slow_good, fast_good, fast_bad]) is fast_good
    close = candidate("onnx-int8", agreement=0.993, ratios=(2.0, 1.3), method="static")
    assert best_variant([fast_bad, close]) is close
    assert best_variant([]) is None
