"""Candidate representations for the embedding drift signal, encoded once and cached.

Used by bench/embedding_signal.py. Every text of a pool is encoded once by the
fine-tuned model and once by its base model (`all-MiniLM-L6-v2` before fine-tuning),
keeping the mean over real tokens of every layer's hidden states (embedding output
and each of the 6 layers, 384 wide) and the fine-tuned model's logits. The arrays go
to `CACHE/<corpus>/<model version>/<pool>.npz`, so that every test-statistic
experiment afterwards takes seconds, not a re-encode.

A representation is then a function of those arrays: what a serving forward pass
could log per prediction, at most 256 bytes (float16 values, so at most 128 of them).
`ft6` projected to 32 dimensions by `core.forward_pass.projection_matrix` is today's
logged embedding, bit for bit (checked by `check_today`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from refit.core.backends.base import plan_buckets
from refit.core.backends.torch_backend import TorchBackend
from refit.core.backends.torch_pass import projection_matrix

Arrays = dict[str, np.ndarray]  # "ft" (n, 7, 384), "base" (n, 7, 384), "logits" (n, K)


def _pooled_layers(
    model: torch.nn.Module, classifier: TorchBackend, texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """(mean-pooled hidden states of every layer (n, layers, width), logits or None)."""
    encoded = classifier.encode(list(texts))
    lengths = encoded.lengths
    layers: np.ndarray | None = None
    logits: np.ndarray | None = None
    for bucket in plan_buckets(lengths, max_batch_tokens=8192, overhead_tokens=48):
        width = int(lengths[bucket].max())
        ids = np.full((len(bucket), width), classifier.encoder.pad_id, np.int64)
        for i, row in enumerate(bucket):
            ids[i, : lengths[row]] = encoded.rows[row]
        mask = torch.from_numpy((np.arange(width) < lengths[bucket, None]).astype(np.int64))
        with torch.inference_mode():
            out = model(
                input_ids=torch.from_numpy(ids), attention_mask=mask, output_hidden_states=True
            )
        weights = mask.unsqueeze(-1).float()
        pooled = torch.stack(
            [(h * weights).sum(1) / weights.sum(1).clamp(min=1) for h in out.hidden_states], 1
        ).numpy()
        if layers is None:
            layers = np.empty((len(texts), *pooled.shape[1:]), np.float32)
        layers[bucket] = pooled
        if getattr(out, "logits", None) is not None:
            if logits is None:
                logits = np.empty((len(texts), out.logits.shape[1]), np.float32)
            logits[bucket] = out.logits.float().numpy()
    assert layers is not None
    return layers, logits


def encode_pool(
    classifier: TorchBackend | None, base: torch.nn.Module | None, texts: Sequence[str], path: Path
) -> Arrays:
    """The cached arrays of `texts`, encoded now if `path` does not exist yet."""
    if not path.exists():
        if classifier is None or base is None:
            raise FileNotFoundError(f"{path} is not cached and no model was given to encode it")
        started = time.perf_counter()
        ft, logits = _pooled_layers(classifier.model, classifier, texts)
        base_layers, _ = _pooled_layers(base, classifier, texts)
        assert logits is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, ft=ft.astype(np.float16), base=base_layers.astype(np.float16), logits=logits)
        print(f"encoded {len(texts)} texts for {path} in {time.perf_counter() - started:.0f} s")
    with np.load(path) as found:
        return {name: found[name] for name in found.files}


def check_today(classifier: TorchBackend, texts: Sequence[str]) -> None:
    """Raise unless `ft6` projected to 32 dims equals what the service logs today."""
    logged = TorchBackend(
        classifier.model, classifier.encoder, device=classifier.torch_device,
        capture_embeddings=True,
    ).predict(list(texts)).embeddings  # fmt: skip
    ft, _ = _pooled_layers(classifier.model, classifier, texts)
    mine = (ft[:, -1] @ projection_matrix(ft.shape[-1])).astype(np.float16)
    assert logged is not None
    worst = float(np.abs(mine.astype(np.float32) - logged.astype(np.float32)).max())
    if worst > 2e-2:
        raise AssertionError(f"ft6/32 differs from the logged embedding by {worst}")


def project(pooled: np.ndarray, dims: int) -> np.ndarray:
    """`pooled` through the service's fixed random projection, stored as float16."""
    return (pooled.astype(np.float32) @ projection_matrix(pooled.shape[-1], dims)).astype(
        np.float16
    )


def unit(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


Builder = Callable[[Arrays, Arrays], np.ndarray]  # (pool's arrays, fit pool's arrays)


def pca_projection(rows: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (width, dims) matrix) of the first `dims` principal axes of `rows`."""
    rows = rows.astype(np.float64)
    mean = rows.mean(axis=0)
    _, _, axes = np.linalg.svd(rows - mean, full_matrices=False)
    return mean.astype(np.float32), axes[:dims].T.astype(np.float32)


def _layer(
    source: str, layer: int, dims: int, normalise: bool = False, fitted: bool = False
) -> Builder:
    """Layer `layer` of `source`, normalised or not, projected to `dims`: by the service's
    fixed random matrix, or (`fitted`) by PCA fitted on the fit pool (training rows)."""

    def pooled(arrays: Arrays) -> np.ndarray:
        rows = arrays[source][:, layer].astype(np.float32)
        return unit(rows) if normalise else rows

    def build(arrays: Arrays, fit: Arrays) -> np.ndarray:
        if not fitted:
            return project(pooled(arrays), dims)
        mean, matrix = pca_projection(pooled(fit), dims)
        return ((pooled(arrays) - mean) @ matrix).astype(np.float16)

    return build


def _concat(*parts: Builder) -> Builder:
    return lambda arrays, fit: np.concatenate([part(arrays, fit) for part in parts], axis=1)


# name -> (bytes logged per prediction, builder). "ftN": fine-tuned layer N (6: last),
# "baseN": base model layer N; "/d": projected to d dims by the service's random matrix,
# "/pcaD": by PCA fitted on training rows; "u": L2-normalised first (the base model is a
# sentence encoder trained for cosine similarity).
REPRESENTATIONS: dict[str, tuple[int, Builder]] = {
    "ft6/32 (today)": (64, _layer("ft", 6, 32)),
    **{f"ft{n}/32": (64, _layer("ft", n, 32)) for n in (5, 4, 3, 2, 1, 0)},
    **{f"base{n}/32": (64, _layer("base", n, 32)) for n in (6, 4, 2)},
    "base6u/32": (64, _layer("base", 6, 32, normalise=True)),
    "base6u/64": (128, _layer("base", 6, 64, normalise=True)),
    "base6u/128": (256, _layer("base", 6, 128, normalise=True)),
    "ft6+base6u/64": (128, _concat(_layer("ft", 6, 32), _layer("base", 6, 32, normalise=True))),
    **{
        f"{src}{n}/pca{d}": (2 * d, _layer(src, n, d, fitted=True))
        for src in ("ft", "base")
        for n in (6, 4, 2)
        for d in (32, 64)
    },
    "base6u/pca32": (64, _layer("base", 6, 32, normalise=True, fitted=True)),
    "base6u/pca64": (128, _layer("base", 6, 64, normalise=True, fitted=True)),
    "ft6+ft2/pca64": (
        128,
        _concat(_layer("ft", 6, 32, fitted=True), _layer("ft", 2, 32, fitted=True)),
    ),
    "ft6+base6u/pca64": (
        128,
        _concat(
            _layer("ft", 6, 32, fitted=True), _layer("base", 6, 32, normalise=True, fitted=True)
        ),
    ),
    "probs": (0, lambda arrays, fit: softmax(arrays["logits"]).astype(np.float16)),
}
