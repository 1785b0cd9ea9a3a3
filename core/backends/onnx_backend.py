"""The ONNX Runtime backend: the version's forward pass as an ONNX graph.

Registration exports the torch backend's pass module (`torch_pass.PassModule`) to
ONNX, with the same two outputs, and makes an int8 variant
(`training/onnx_export.py`, `training/onnx_int8.py`), so one backend class runs
either file. It runs on ONNX Runtime's CPU provider, or its CUDA provider where the
installed build has one. `session.run` lets go of the GIL for the whole pass, as a
torch trace does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime as ort

from refit.core.backends.base import Backend
from refit.core.backends.encoding import TextEncoder, padded
from refit.core.backends.outputs import PassOutput
from refit.core.errors import ModelLoadError

INPUTS: Final = ("input_ids", "attention_mask")
OUTPUTS: Final = ("probs", "pooled")
_PROVIDERS: Final = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def session_for(
    path: Path, *, device: str = "cpu", threads: int | None = None
) -> ort.InferenceSession:
    """An inference session of the graph in `path` on `device`'s execution provider."""
    provider = _PROVIDERS[device]
    if provider not in ort.get_available_providers():
        raise ModelLoadError(f"this onnxruntime build has no {provider}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are not news
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=[provider])
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != (list(INPUTS), list(OUTPUTS)):
        raise ModelLoadError(f"{path.name} has inputs and outputs {names}, not {INPUTS, OUTPUTS}")
    return session


class OnnxBackend(Backend):
    """A version's pass graph run by ONNX Runtime; `name` says which file (fp32 or int8)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        encoder: TextEncoder,
        labels: Sequence[str],
        *,
        name: str,
        device: str = "cpu",
        max_batch_tokens: int = 16384,
        capture_embeddings: bool = False,
    ) -> None:
        super().__init__(
            encoder,
            labels,
            name=name,
            device=device,
            max_batch_tokens=max_batch_tokens,
            captures_embeddings=capture_embeddings,
        )
        self.session = session
        # The pooled output costs nothing extra to compute, but copying it out does.
        self._outputs = list(OUTPUTS if capture_embeddings else OUTPUTS[:1])

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        input_ids, mask = padded(rows, lengths, self.encoder.pad_id)
        out = self.session.run(self._outputs, {INPUTS[0]: input_ids, INPUTS[1]: mask})
        probs = np.asarray(out[0], dtype=np.float32)
        pooled = np.asarray(out[1]).astype(np.float16) if len(out) > 1 else None
        return PassOutput(probs, pooled)
