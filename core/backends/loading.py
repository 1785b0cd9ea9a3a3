"""Loading a version on the backend chosen for it, with torch as the fallback.

`load_backend` reads the version's record (`record.py`), asks `choice.choose`
which backend serves, builds it and runs the caller's check on it (a forward pass
on probe texts: `core/version_check.py`). An ONNX backend that fails any step (a
damaged or missing file, a file whose digest is not the one recorded, including the
fp32 graph an int8 backend rechecks its close calls on, a missing
execution provider, a failed probe) is given up with one WARNING line, and torch
serves the version instead; the backend's `reason` says what happened. Torch failing
is the version failing: its error goes to the caller.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refit.core.backends.base import Backend
from refit.core.backends.choice import Choice, choose
from refit.core.backends.encoding import TextEncoder
from refit.core.backends.record import ONNX_FILES, BackendRecord, read_record
from refit.core.load_errors import describe_cause

logger = logging.getLogger(__name__)
# The NVIDIA driver's control device and proc folder, and ROCm's kernel driver (torch's
# ROCm build answers torch.cuda too).
_GPU_DRIVER_PATHS = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd")


@dataclass(frozen=True)
class BackendOptions:
    """How to load a version: what was asked for, where, and the serving shape."""

    backend: str = "auto"  # REFIT_BACKEND: auto, torch, torch-int8, onnx, onnx-int8
    device: str = "auto"  # REFIT_DEVICE: auto, cpu, cuda
    max_length: int = 128
    max_batch_tokens: int = 16384
    capture_embeddings: bool = False
    trace: bool = False  # the torch backend's pass as a TorchScript trace
    threads: int | None = None  # intra-op threads; None: the engine's default


def resolved_device(requested: str) -> str:
    """The device, "cpu" or "cuda", for a REFIT_DEVICE value; `auto` asks torch, where a
    GPU driver is loaded at all."""
    if requested != "auto":
        return requested
    if not gpu_driver_loaded():
        return "cpu"
    from refit.core.backends.torch_backend import cuda_available

    return "cuda" if cuda_available() else "cpu"


def gpu_driver_loaded() -> bool:
    """False where Linux shows no NVIDIA or ROCm driver: torch would find no CUDA device
    either, and asking it means importing torch, seconds a worker serving ONNX Runtime
    need not spend. True elsewhere, so that torch is asked."""
    if not sys.platform.startswith("linux"):
        return True
    return any(Path(p).exists() for p in _GPU_DRIVER_PATHS)


def load_backend(
    folder: Path,
    labels: Sequence[str],
    options: BackendOptions,
    check: Callable[[Backend], None] | None = None,
) -> Backend:
    """The version in `folder` on its chosen backend, `check`ed; torch if that one fails."""
    device = resolved_device(options.device)
    record, why_none = read_record(folder)
    choice = choose(options.backend, device, record, why_none)
    if choice.backend.startswith("onnx"):
        try:
            return _checked(_onnx(folder, labels, choice, record, device, options), choice, check)
        except Exception as exc:  # whatever went wrong, torch can still serve
            cause = describe_cause(exc, folder)
            logger.warning("%s does not load (%s); serving torch instead", choice.backend, cause)
            choice = Choice("torch", f"{choice.backend} failed to load: {cause}")
    return _checked(_torch(folder, choice, options), choice, check)


def _checked(backend: Backend, choice: Choice, check: Callable[[Backend], None] | None) -> Backend:
    if check is not None:
        check(backend)
    backend.reason = choice.reason
    return backend


def _onnx(
    folder: Path,
    labels: Sequence[str],
    choice: Choice,
    record: BackendRecord | None,
    device: str,
    options: BackendOptions,
) -> Backend:
    from refit.core.backends.onnx_backend import OnnxBackend, Recheck, verified_session

    def session(backend: str, spinning: bool = True) -> Any:
        kept = record.kept(backend) if record is not None else None
        path = folder / ONNX_FILES[backend]
        digest = kept.sha256 if kept is not None else None
        threads = options.threads
        return verified_session(path, digest, device=device, threads=threads, spinning=spinning)

    kept = record.kept(choice.backend) if record is not None else None
    recheck = None
    if kept is not None and kept.recheck_margin is not None:
        recheck = Recheck(session("onnx-fp32", spinning=False), kept.recheck_margin)
    return OnnxBackend(
        session(choice.backend),
        TextEncoder.from_folder(folder, options.max_length),
        labels,
        name=choice.backend,
        device=device,
        max_batch_tokens=options.max_batch_tokens,
        capture_embeddings=options.capture_embeddings,
        recheck=recheck,
    )


def _torch(folder: Path, choice: Choice, options: BackendOptions) -> Backend:
    from refit.core.backends.torch_backend import TorchBackend

    return TorchBackend.from_folder(
        folder,
        device=options.device,
        max_length=options.max_length,
        max_batch_tokens=options.max_batch_tokens,
        capture_embeddings=options.capture_embeddings,
        int8=choice.backend == "torch-int8",
        trace=options.trace,
        threads=options.threads,
    )
