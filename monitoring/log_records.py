"""What one prediction log record holds, and which predictions get one."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from refit.core.descriptors import EMBEDDING_DIMS, char_counts, pack_embeddings
from refit.monitoring.log_schema import Record
from refit.monitoring.redaction import prepare_text, text_hash

if TYPE_CHECKING:
    from refit.core.backends.outputs import BatchOutput


@dataclass(frozen=True)
class PredictionBatch:
    """The predictions of one adaptive batch, as the service made them.

    The log keeps a reference until the batch is written: do not modify the
    arrays after submitting.
    """

    ids: Sequence[str]
    texts: Sequence[str]
    labels: Sequence[str]  # predicted labels
    scores: np.ndarray  # (n, k) probabilities, columns in `label_names` order
    label_names: Sequence[str]
    model_version: str
    created: float  # unix time the batch finished
    latency_ms: np.ndarray  # (n,) per item
    n_tokens: np.ndarray
    truncated: np.ndarray
    unknown_tokens: np.ndarray | None = None  # (n,) [UNK] tokens per text
    embeddings: np.ndarray | None = None  # (n, d) float16 projected encoder output
    backend: str | None = None  # the inference backend that answered

    @classmethod
    def of_output(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        out: BatchOutput,
        label_names: Sequence[str],
        model_version: str,
        latency_ms: float | np.ndarray,
        scores: np.ndarray | None = None,
        backend: str | None = None,
    ) -> PredictionBatch:
        """The batch a model's output makes, finished now; `latency_ms` is one figure
        for all or one per text, `scores` replace `out.probs` where the answer
        rounded them, and `backend` names the backend that computed it."""
        return cls(
            ids=ids,
            texts=texts,
            labels=[label_names[k] for k in out.label_ids.tolist()],
            scores=out.probs if scores is None else scores,
            label_names=label_names,
            model_version=model_version,
            created=time.time(),
            latency_ms=np.broadcast_to(np.asarray(latency_ms, dtype=np.float64), (len(ids),)),
            n_tokens=out.n_tokens,
            truncated=out.truncated,
            unknown_tokens=out.unknown_tokens,
            embeddings=out.embeddings,
            backend=backend,
        )


def sampled(prediction_id: str, rate: float) -> bool:
    """Whether a prediction is logged: decided by its id alone, so replicas and retries agree."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(prediction_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2.0**64


def batch_rows(batch: PredictionBatch, keep: list[int] | None, text_mode: str) -> list[Record]:
    """The records of `batch` (only the indices in `keep` unless it is None), as tuples
    in `RECORD_COLUMNS` order."""
    n = len(batch.ids)
    scores = np.asarray(batch.scores, dtype=np.float64).reshape(n, -1).tolist()
    names = [str(name) for name in batch.label_names]
    column = {name: j for j, name in enumerate(names)}
    latency = np.broadcast_to(np.asarray(batch.latency_ms, dtype=np.float64), (n,)).tolist()
    tokens = np.broadcast_to(np.asarray(batch.n_tokens, dtype=np.int64), (n,)).tolist()
    truncated = np.broadcast_to(np.asarray(batch.truncated, dtype=bool), (n,)).tolist()
    if len(batch.texts) != n or len(batch.labels) != n or len(names) != len(scores[0]):
        raise ValueError("ids, texts, labels and scores of a batch disagree in length")
    created, version = float(batch.created), str(batch.model_version)
    backend = None if batch.backend is None else str(batch.backend)
    features = _drift_features(batch, n)
    rows = []
    for i in range(n) if keep is None else keep:
        text, label, probs = str(batch.texts[i]), str(batch.labels[i]), scores[i]
        # The predicted label's probability: the top one when it is the argmax.
        score = probs[column[label]] if label in column else max(probs)
        rows.append(
            (
                str(batch.ids[i]),
                created,
                version,
                _storable(prepare_text(text, text_mode)),
                text_hash(text),
                label,
                None if score != score else score,  # NaN: SQLite would store NULL anyway
                json.dumps(dict(zip(names, probs, strict=True))),
                None if latency[i] != latency[i] else latency[i],
                tokens[i],
                truncated[i],
                *features[i],
                backend,
            )
        )
    return rows


def _drift_features(batch: PredictionBatch, n: int) -> list[tuple[int | bytes | None, ...]]:
    """Per text: [UNK] count, character counts and packed embedding (`log_store` order).

    Counted on the text as received, before redaction or hashing, so that every
    text mode keeps the same descriptors.
    """
    counts = char_counts(batch.texts).tolist()
    unknown: list[int | None] = [None] * n
    if batch.unknown_tokens is not None:
        unknown = np.broadcast_to(np.asarray(batch.unknown_tokens, dtype=np.int64), (n,)).tolist()
    blobs: list[bytes | None] = [None] * n
    if batch.embeddings is not None:
        matrix = np.asarray(batch.embeddings)
        if matrix.shape != (n, EMBEDDING_DIMS):
            raise ValueError(
                f"embeddings of shape {matrix.shape}, expected ({n}, {EMBEDDING_DIMS})"
            )
        blobs = list(pack_embeddings(matrix))
    return [(unknown[i], *counts[i], blobs[i]) for i in range(n)]


def _storable(text: str | None) -> str | None:
    """`text` without what databases refuse: NUL (PostgreSQL) and lone surrogates
    (any UTF-8 encoder). A client could send either, and one refused record would
    cost its whole write group."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
