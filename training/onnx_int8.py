"""int8 variants of a version's ONNX graph, made with ONNX Runtime's quantization tools.

Four ways are tried, and verification keeps the best that agrees with torch
(`backend_verify.py`): dynamic quantization (weights int8 ahead of time, each
activation's scale computed as the pass runs) with one scale per weight tensor or
one per output channel, the latter also with each layer's feed-forward output product
left in float32 (`ffn_output_nodes`), and static quantization (activation scales fixed ahead of
time from a calibration run over training texts; `Calibration`). Only the
encoder's matrix products are quantized: the pooler, the classifier head and the
embedding projection are a tiny share of the compute and decide every label, so
they stay float32.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from refit.core.backends.encoding import TextEncoder, padded
from refit.core.backends.onnx_backend import INPUTS

# Layers kept in float32, by the module names the exporter gives their nodes.
_FLOAT_SCOPES: Final = ("pooler", "classifier")
CALIBRATION_TEXTS: Final = 64
_CALIBRATION_BATCH: Final = 16


@dataclass(frozen=True)
class Variant:
    method: str  # as the record names it
    make: Callable[[Path, Path, Sequence[str], TextEncoder], None]  # (fp32, out, texts, enc)


def float_nodes(model_path: Path) -> list[str]:
    """Nodes to leave in float32: the head's, and the product with the projection."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if any(f"/{scope}/" in node.name for scope in _FLOAT_SCOPES) or "projection" in node.input
    ]


def ffn_output_nodes(model_path: Path) -> list[str]:
    """Each layer's feed-forward output product (after GELU): its inputs have the widest
    range in the encoder, so one int8 scale per row loses the most there."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and "/output/dense/" in node.name
        and "/attention/" not in node.name
    ]


def _dynamic(
    per_channel: bool, keep_ffn_output: bool = False
) -> Callable[[Path, Path, Sequence[str], TextEncoder], None]:
    def make(source: Path, target: Path, texts: Sequence[str], encoder: TextEncoder) -> None:
        excluded = float_nodes(source) + (ffn_output_nodes(source) if keep_ffn_output else [])
        with _quiet():
            quantize_dynamic(
                source,
                target,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=excluded,
            )

    return make


def _static(source: Path, target: Path, texts: Sequence[str], encoder: TextEncoder) -> None:
    with _quiet():
        quantize_static(
            source,
            target,
            Calibration(texts, encoder),
            quant_format=QuantFormat.QOperator,
            per_channel=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=float_nodes(source),
            calibrate_method=CalibrationMethod.MinMax,
        )


VARIANTS: Final = (
    Variant("dynamic, per tensor", _dynamic(per_channel=False)),
    Variant("dynamic, per channel", _dynamic(per_channel=True)),
    Variant(
        "dynamic, per channel, feed-forward outputs fp32",
        _dynamic(per_channel=True, keep_ffn_output=True),
    ),
    Variant(f"static, {CALIBRATION_TEXTS} calibration texts", _static),
)


class Calibration(CalibrationDataReader):  # type: ignore[misc]
    """Batches of training texts, padded to their longest, for static quantization's
    calibration run; the texts are sorted by length so that little of it is padding."""

    def __init__(self, texts: Sequence[str], encoder: TextEncoder) -> None:
        chosen = sorted(texts[:CALIBRATION_TEXTS], key=len)
        self.batches: list[dict[str, object]] = []
        for start in range(0, len(chosen), _CALIBRATION_BATCH):
            encoded = encoder.encode(chosen[start : start + _CALIBRATION_BATCH])
            ids, mask = padded(encoded.rows, encoded.lengths, encoder.pad_id)
            self.batches.append({INPUTS[0]: ids, INPUTS[1]: mask})
        self._next: Iterator[dict[str, object]] = iter(self.batches)

    def get_next(self) -> dict[str, object] | None:
        return next(self._next, None)

    def rewind(self) -> None:
        self._next = iter(self.batches)


class _NoPreprocessingAdvice(logging.Filter):
    """Drops the quantizer's advice to run its pre-processing step, logged on every call:
    the result is measured instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet() -> Iterator[None]:
    root = logging.getLogger()
    advice = _NoPreprocessingAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)
