"""Each backend of a version against torch traced: agreement on held-out texts, and speed.

Every candidate runs the held-out texts through the shared `predict`, in
length-sorted batches of 32, and its outputs are compared with the reference's
(torch traced, or eager where the trace fails): the share of texts given the same
label, the largest probability difference, macro-F1 on the true labels against the
reference's, and the largest cosine distance between the two projected embeddings.
Speeds are texts per second, tokenising included, on the first `TIMED_TEXTS` texts:
in length-sorted batches of 32, and one text at a time on the first `BATCH1_TEXTS`.
Every backend is timed `ROUNDS` times in turn, best kept, so that a burst of other
load on the machine does not land on one backend only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from refit.core.backends.base import Backend
from refit.core.backends.record import Candidate
from refit.training.scores import scores_with_new_labels

BATCH: Final = 32
TIMED_TEXTS: Final = 256
BATCH1_TEXTS: Final = 48
ROUNDS: Final = 2


@dataclass(frozen=True)
class HeldOut:
    """The texts backends are compared on, with their true labels where known."""

    texts: list[str]
    truth: list[str] | None
    source: str  # what they are, for the record


@dataclass
class Run:
    """One backend's outputs over the held-out texts, in their order, and its speeds."""

    probs: np.ndarray
    embeddings: np.ndarray | None
    batch1: list[float] = field(default_factory=list)  # texts/s, one figure per round
    batch32: list[float] = field(default_factory=list)


def run_sorted(backend: Backend, texts: Sequence[str]) -> tuple[Run, float]:
    """`backend` over `texts` in length-sorted batches of `BATCH`: outputs, texts/s."""
    order = np.argsort(backend.encode(texts).lengths, kind="stable")
    probs = np.empty((len(texts), len(backend.labels)), dtype=np.float32)
    embeddings = None
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        rows = order[start : start + BATCH]
        out = backend.predict([texts[i] for i in rows])
        probs[rows] = out.probs
        if out.embeddings is not None:
            if embeddings is None:
                embeddings = np.empty((len(texts), out.embeddings.shape[1]), dtype=np.float32)
            embeddings[rows] = out.embeddings
    return Run(probs, embeddings), len(texts) / (time.perf_counter() - started)


def batch1_rate(backend: Backend, texts: Sequence[str]) -> float:
    """Texts/s of `backend` given one text at a time."""
    sample = list(texts[:BATCH1_TEXTS])
    started = time.perf_counter()
    for text in sample:
        backend.predict([text])
    return len(sample) / (time.perf_counter() - started)


def measure(backends: Sequence[Backend], held: HeldOut) -> list[Run]:
    """Outputs of every backend on the held-out texts, and its speeds, timed in turn
    `ROUNDS` times."""
    for backend in backends:
        backend.warm_up()
    runs = [run_sorted(backend, held.texts)[0] for backend in backends]
    timed = held.texts[:TIMED_TEXTS]
    for _ in range(ROUNDS):
        for backend, run in zip(backends, runs, strict=True):
            run.batch32.append(run_sorted(backend, timed)[1])
            run.batch1.append(batch1_rate(backend, timed))
    return runs


def macro_f1(run: Run, labels: Sequence[str], truth: Sequence[str]) -> float:
    predicted = [labels[k] for k in run.probs.argmax(axis=1)]
    return scores_with_new_labels(truth, predicted, labels).macro_f1


def compared(
    candidate: Candidate, run: Run, reference: Run, labels: Sequence[str], held: HeldOut
) -> Candidate:
    """`candidate` with its agreement with `reference` and its speed filled in."""
    agreement = float((run.probs.argmax(axis=1) == reference.probs.argmax(axis=1)).mean())
    figures: dict[str, float | None] = {
        "label_agreement": agreement,
        "max_prob_diff": float(np.abs(run.probs - reference.probs).max()),
        "max_embedding_distance": _max_cosine_distance(run.embeddings, reference.embeddings),
        "texts_per_s_batch1": max(run.batch1),
        "texts_per_s_batch32": max(run.batch32),
        "ratio_batch1": max(run.batch1) / max(reference.batch1),
        "ratio_batch32": max(run.batch32) / max(reference.batch32),
    }
    if held.truth is not None:
        mine, theirs = macro_f1(run, labels, held.truth), macro_f1(reference, labels, held.truth)
        figures.update(macro_f1=mine, macro_f1_diff=mine - theirs)
    return candidate.model_copy(update=figures)


def _max_cosine_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = (a * b).sum(axis=1) / np.maximum(norms, 1e-12)
    return float((1.0 - cosine).max())
