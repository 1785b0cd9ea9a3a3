"""Export and verify: every registered version gets its ONNX graphs and a record of how
each backend compares with torch (`core/backends/record.py`).

Registration calls `export_and_verify` on the version folder once its weights,
tokenizer and data snapshot are written (`training/train.py`, which retraining's
challengers go through too). The fp32 graph is exported (`onnx_export.py`), every
int8 variant is made (`onnx_int8.py`), and torch traced, torch int8, ONNX fp32 and
each int8 variant are run on the version's test split (`backend_verify.py`); the
record goes to `backends.json` and a section of the model card (`backend_card.py`). The
int8 variant kept is the fastest that meets the rules (`core.backends.choice`),
else the one agreeing most; the others' files go, their figures stay. A candidate
that fails is recorded with its error; registration goes on.

Versions registered before this existed get the same later (`export_later.py`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import onnx
import torch
from onnxruntime import __version__ as ort_version

from refit import datagen
from refit.core.backends.base import Backend
from refit.core.backends.choice import auto_on_cpu, misses
from refit.core.backends.encoding import TextEncoder
from refit.core.backends.onnx_backend import OnnxBackend, Recheck, session_for
from refit.core.backends.record import (
    ONNX_FILES,
    BackendRecord,
    Candidate,
    file_digest,
)
from refit.core.backends.torch_backend import TorchBackend
from refit.training.backend_card import with_backends
from refit.training.backend_verify import HeldOut, compared, measure, run_sorted
from refit.training.onnx_export import export_onnx, load_for_export
from refit.training.onnx_int8 import VARIANTS
from refit.training.recheck_tuning import share_within, tuned_margin
from refit.training.snapshot import SNAPSHOT_DIR, read_snapshot

logger = logging.getLogger(__name__)

# Speeds are measured with one intra-op thread, as each worker of a default server runs
# on a machine of up to 4 cores (REFIT_TORCH_THREADS: cores / workers); with one thread
# a measurement also suffers least from whatever else the machine runs.
VERIFY_THREADS: Final = 1
MAX_TEXTS: Final = 2000  # held-out texts compared at most: enough for 0.05% steps
_GENERATED: Final = 500  # texts of the built-in generator for a version without a snapshot
Contender = tuple[Candidate, Backend | None]


@dataclass(frozen=True)
class VerifyTexts:
    held: HeldOut  # what every candidate is judged on: the test split
    calibration: list[str]  # training texts, for static int8's calibration run
    tuning: list[str]  # texts apart from `held` that choose an int8 recheck margin


def held_out(folder: Path) -> VerifyTexts:
    """The texts to compare backends on, and those that shape candidates beforehand.

    A version trained by refit keeps its splits: its test split, with true labels, and
    its validation split for tuning. One registered otherwise has none; it is compared
    on generated texts without labels, so macro-F1 is unknown and auto never serves
    another backend for it."""
    if (folder / SNAPSHOT_DIR).is_dir():
        splits = read_snapshot(folder)
        test = splits.test.head(MAX_TEXTS)
        texts = test["text"].astype(str).tolist()
        held = HeldOut(
            texts, test["label"].astype(str).tolist(), f"test split ({len(texts)} texts)"
        )
        return VerifyTexts(
            held,
            splits.train["text"].astype(str).tolist(),
            splits.validation["text"].astype(str).head(MAX_TEXTS).tolist(),
        )
    texts = datagen.generate(2 * _GENERATED, seed=20261208)["text"].tolist()
    source = f"{_GENERATED} generated texts, unlabelled (the version has no test split)"
    rest = texts[_GENERATED:]
    return VerifyTexts(HeldOut(texts[:_GENERATED], None, source), rest, rest)


def export_and_verify(folder: Path, *, max_length: int) -> BackendRecord:
    """Export the version in `folder`, verify every candidate, keep the best int8
    variant, and write `backends.json` and the card's section; its record. Raises only
    when torch itself cannot load the version."""
    started = time.perf_counter()
    texts = held_out(folder)
    held = texts.held
    _clear_leftovers(folder)
    previous = torch.get_num_threads()
    torch.set_num_threads(VERIFY_THREADS)  # process-wide: given back below
    try:
        candidates = _verified(folder, max_length, texts)
    finally:
        torch.set_num_threads(previous)
    record = BackendRecord(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data=held.source,
        texts=len(held.texts),
        labelled=held.truth is not None,
        reference_macro_f1=candidates[0].macro_f1,
        threads=VERIFY_THREADS,
        seconds=round(time.perf_counter() - started, 1),
        libraries={
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort_version,
        },
        candidates=candidates,
    )
    choice = auto_on_cpu(record)
    record.auto_cpu, record.auto_reason = choice.backend, choice.reason
    record.write(folder)
    card = folder / "model_card.md"
    if card.is_file():
        card.write_text(with_backends(card.read_text(), record))
    return record


def _verified(folder: Path, max_length: int, texts: VerifyTexts) -> list[Candidate]:
    """Every candidate, built, run on `held` and compared with torch traced, the best
    int8 ONNX variant kept; the reference first."""
    labels = [str(label) for label in json.loads((folder / "labels.json").read_text())]

    def torch_backend(int8: bool) -> Backend:
        return TorchBackend.from_folder(
            folder,
            device="cpu",
            max_length=max_length,
            capture_embeddings=True,
            int8=int8,
            trace=True,
        )

    reference = torch_backend(int8=False)
    contenders: list[Contender] = [(Candidate(backend=reference.name, kept=True), reference)]
    contenders.append(
        _built(
            Candidate(backend="torch-int8", kept=True),
            lambda: torch_backend(int8=True),
        )
    )
    contenders += _onnx_contenders(folder, reference.encoder, labels, texts)
    built = [(c, b) for c, b in contenders if b is not None]
    runs = measure([b for _, b in built], texts.held)
    measured = {
        id(c): compared(c, run, runs[0], labels, texts.held)
        for (c, _), run in zip(built, runs, strict=True)
    }
    return _keep_best_int8(folder, [measured.get(id(c), c) for c, _ in contenders])


def _built(candidate: Candidate, build: Callable[[], Backend]) -> Contender:
    try:
        return candidate, build()
    except Exception as exc:  # recorded: the other candidates still run
        logger.warning(
            "backend %s %s cannot be built: %r", candidate.backend, candidate.method, exc
        )
        return candidate.model_copy(update={"error": short_error(exc)}), None


def _onnx_contenders(
    folder: Path, encoder: TextEncoder, labels: list[str], texts: VerifyTexts
) -> list[Contender]:
    fp32 = folder / ONNX_FILES["onnx-fp32"]

    def onnx_backend(path: Path, name: str) -> Callable[[], Backend]:
        def build() -> Backend:
            session = session_for(path, threads=VERIFY_THREADS)
            return OnnxBackend(session, encoder, labels, name=name, capture_embeddings=True)

        return build

    fp32_candidate = Candidate(backend="onnx-fp32", kept=True, file=fp32.name)
    try:
        export_onnx(load_for_export(folder), fp32)
    except Exception as exc:  # no graph: nothing ONNX can run
        failed = fp32_candidate.model_copy(update={"error": short_error(exc), "file": None})
        later = [
            Candidate(backend="onnx-int8", method=v.method, error="no fp32 graph") for v in VARIANTS
        ]
        return [(failed, None), *((c, None) for c in later)]
    fp32_candidate = fp32_candidate.model_copy(update={"sha256": file_digest(fp32)})
    fp32_contender = _built(fp32_candidate, onnx_backend(fp32, "onnx-fp32"))
    contenders = [fp32_contender]
    tuning = _Tuning(fp32_contender[1], texts.tuning)
    for i, variant in enumerate(VARIANTS):
        path = folder / f"model.int8-{i}.onnx"
        candidate = Candidate(backend="onnx-int8", method=variant.method, file=path.name)
        try:
            variant.make(fp32, path, texts.calibration, encoder)
        except Exception as exc:
            logger.warning("int8 variant %r failed: %r", variant.method, exc)
            contenders.append((candidate.model_copy(update={"error": short_error(exc)}), None))
            continue
        candidate = candidate.model_copy(update={"sha256": file_digest(path)})
        plain = _built(candidate, onnx_backend(path, "onnx-int8"))
        contenders.append(plain)
        twin = tuning.twin(plain)
        if twin is not None:
            contenders.append(twin)
    return contenders


class _Tuning:
    """Chooses each int8 variant's recheck margin on the tuning texts, against fp32's
    outputs there, computed once."""

    def __init__(self, fp32: Backend | None, texts: list[str]) -> None:
        self.texts = texts
        self.fp32 = fp32 if isinstance(fp32, OnnxBackend) and texts else None
        self.fp32_probs = run_sorted(self.fp32, texts)[0].probs if self.fp32 else None

    def twin(self, plain: Contender) -> Contender | None:
        """The variant with its close calls rechecked on fp32, where that changes labels.
        It runs on the sessions the plain variant and fp32 already have: with one thread
        each, a session's pool has no threads to spin, so serving's non-spinning fp32
        session would measure the same."""
        candidate, backend = plain
        if self.fp32 is None or self.fp32_probs is None or not isinstance(backend, OnnxBackend):
            return None
        int8 = run_sorted(backend, self.texts)[0].probs
        margin = tuned_margin(self.fp32_probs, int8)
        if margin is None:
            return None
        twin = candidate.model_copy(
            update={
                "method": f"{candidate.method}, close calls rechecked on fp32",
                "recheck_margin": margin,
                "recheck_share": share_within(int8, margin),
            }
        )
        rechecking = OnnxBackend(
            backend.session,
            backend.encoder,
            backend.labels,
            name=backend.name,
            capture_embeddings=True,
            recheck=Recheck(self.fp32.session, margin),
        )
        return twin, rechecking


def best_variant(variants: list[Candidate]) -> Candidate | None:
    """The int8 variant to keep: the fastest that meets the rules, else the one that
    agrees most with torch (then the faster)."""
    passing = [c for c in variants if not misses(c)]
    if passing:
        return max(passing, key=lambda c: c.speed or 0.0)
    return max(variants, key=lambda c: (c.label_agreement or 0.0, c.speed or 0.0), default=None)


def _keep_best_int8(folder: Path, candidates: list[Candidate]) -> list[Candidate]:
    """Keep the best int8 variant's file as `model.int8.onnx`; remove the others' files.
    A variant and its rechecked twin share one file."""
    made = [c for c in candidates if c.backend == "onnx-int8" and not c.error]
    best = best_variant(made)
    best_file = best.file if best is not None else None
    final = ONNX_FILES["onnx-int8"]
    kept = []
    for c in candidates:
        made_file = c.file if c in made else None
        update: dict[str, object] = {}
        if made_file and c is best:
            os.replace(folder / made_file, folder / final)
            update = {"kept": True, "file": final}
        elif made_file:
            if made_file != best_file:
                (folder / made_file).unlink(missing_ok=True)
            update = {"file": None}
        kept.append(c.model_copy(update=update) if update else c)
    for name in ONNX_FILES.values():
        if (folder / name).is_file():
            (folder / name).chmod(0o644)  # servers may run as another user
    return kept


def _clear_leftovers(folder: Path) -> None:
    """Variants and partial files an interrupted export left behind."""
    for stale in [*folder.glob("model.int8-*.onnx"), *folder.glob("*.partial")]:
        stale.unlink(missing_ok=True)


def short_error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
