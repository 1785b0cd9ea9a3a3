"""The ONNX Runtime backend: the version's forward pass as an ONNX graph.

Registration exports the torch backend's pass module (`torch_pass.PassModule`) to
ONNX, with the same two outputs, and makes an int8 variant
(`training/onnx_export.py`, `training/onnx_int8.py`), so one backend class runs
either file; an int8 backend may also carry the fp32 session for its close calls
(`Recheck`, `recheck.py`). It runs on ONNX Runtime's CPU provider, or its CUDA
provider where the installed build has one. `session.run` lets go of the GIL for the
whole pass, as a torch trace does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime as ort

from refit.core.backends.base import Backend
from refit.core.backends.encoding import TextEncoder, padded
from refit.core.backends.outputs import PassOutput
from refit.core.backends.recheck import close_calls
from refit.core.backends.record import file_digest
from refit.core.errors import ModelLoadError

INPUTS: Final = ("input_ids", "attention_mask")
OUTPUTS: Final = ("probs", "pooled")
_PROVIDERS: Final = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def session_for(
    path: Path, *, device: str = "cpu", threads: int | None = None, spinning: bool = True
) -> ort.InferenceSession:
    """An inference session of the graph in `path` on `device`'s execution provider.

    `spinning=False` for a session that runs now and then beside another (an int8
    backend's recheck): ONNX Runtime's pool threads otherwise keep spinning for work
    after each pass, on the cores the other session's next pass needs."""
    provider = _PROVIDERS[device]
    if provider not in ort.get_available_providers():
        raise ModelLoadError(f"this onnxruntime build has no {provider}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are not news
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=[provider])
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != (list(INPUTS), list(OUTPUTS)):
        raise ModelLoadError(f"{path.name} has inputs and outputs {names}, not {INPUTS, OUTPUTS}")
    return session


def verified_session(
    path: Path,
    sha256: str | None,
    *,
    device: str = "cpu",
    threads: int | None = None,
    spinning: bool = True,
) -> ort.InferenceSession:
    """`session_for`, once the file's digest is `sha256`, the one verification recorded."""
    if sha256 and file_digest(path) != sha256:
        raise ValueError(f"{path.name} is not the file that was verified (its digest differs)")
    return session_for(path, device=device, threads=threads, spinning=spinning)


@dataclass(frozen=True)
class Recheck:
    """The fp32 session an int8 backend's close calls go to, and how close is close
    (`recheck.py`)."""

    session: ort.InferenceSession
    margin: float  # top probability minus the second; below it, fp32 answers


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
        recheck: Recheck | None = None,
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
        self.recheck = recheck

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        probs, pooled = self._run(self.session, rows, lengths)
        if self.recheck is None:
            return PassOutput(probs, pooled)
        close = close_calls(probs, self.recheck.margin)
        if close.size:
            again, again_pooled = self._run(
                self.recheck.session, [rows[i] for i in close], lengths[close]
            )
            probs[close] = again
            if pooled is not None and again_pooled is not None:
                pooled[close] = again_pooled
        return PassOutput(probs, pooled, rechecked=int(close.size))

    def _run(
        self, session: ort.InferenceSession, rows: Sequence[Sequence[int]], lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        input_ids, mask = padded(rows, lengths, self.encoder.pad_id)
        out = session.run(self._outputs, {INPUTS[0]: input_ids, INPUTS[1]: mask})
        # ONNX Runtime hands back arrays of its own: rechecked rows may be written in.
        probs = np.asarray(out[0], dtype=np.float32)
        pooled = np.asarray(out[1]).astype(np.float16) if len(out) > 1 else None
        return probs, pooled
