"""Scored predictions for the calibration benchmark, computed once and cached.

    BENTOML_HOME=HOME python bench/calibration_data.py --cache DIR
        [--data builtin | --data real:DATA] [--folds K]

Scores, with the champion of HOME, every row of its training snapshot (train,
validation and test splits) and same-distribution pools: for `--data builtin`
(champion trained with `refit train`) 8,000 generated texts of the base scenario
(seed 1000, not the training seed); for `--data real:DATA` (the Debian benchmark:
`python bench/real_text.py --out DATA --translations ...`, champion trained with
`refit train --data DATA/train.csv`) DATA's holdout and shifted_mix files. (How the
estimate behaves under shift, and that it is marked unreliable there, is
bench/drift_quality.py's part.) Each row keeps the full class
probabilities, so every calibration method can be fitted from the cache in seconds.
`--pool-rows` sets the built-in pool's size, `--train-sample` scores only a uniform
sample of the train split (the rows a self-scored calibration would add), and
`--from-reference` takes the snapshot's rows as the version's reference profile scored
them at training (a uniform sample of every split plus the held-out rows; no class
probabilities, so no temperature scaling).

`--folds K` also fine-tunes K fold models, the champion's recipe (base model,
epochs, learning rate, seed) on the champion's train and validation rows less one
fold each, and scores each fold's rows with the model that did not train on them:
out-of-fold predictions of every training row. K fine-tunings: tens of minutes on 2
cores. Files land in DIR/<version>/ (parquet); calibration_bench.py reads them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

BASE_POOL = 8_000
REAL_POOLS = ("holdout", "shifted_mix")
_CHUNK = 256


def scored(classifier: object, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (text, label) with the model's label, top probability and all probabilities."""
    texts = frame["text"].astype(str).tolist()
    probs = np.concatenate(
        [
            classifier.predict(texts[start : start + _CHUNK]).probs  # type: ignore[attr-defined]
            for start in range(0, len(texts), _CHUNK)
        ]
    )
    labels = list(classifier.labels)  # type: ignore[attr-defined]
    return pd.DataFrame(
        {
            "text": texts,
            "true_label": frame["label"].astype(str).to_numpy(),
            "label": [labels[k] for k in probs.argmax(axis=1)],
            "score": probs.max(axis=1).astype(np.float64),
            "probs": list(probs.astype(np.float32)),
        }
    )


def cached(path: Path, build: object) -> pd.DataFrame:
    if not path.exists():
        started = time.perf_counter()
        frame = build()  # type: ignore[operator]
        frame.to_parquet(path, index=False)
        print(f"wrote {path.name}: {len(frame)} rows in {time.perf_counter() - started:.0f} s")
    return pd.read_parquet(path)


def pool_frames(data: str, base_rows: int = BASE_POOL) -> dict[str, pd.DataFrame]:
    """Labelled pools (text, label) of the benchmark, by name."""
    if data.startswith("real:"):
        folder = Path(data[5:])
        return {name: pd.read_csv(folder / f"{name}.csv") for name in REAL_POOLS}
    from refit import datagen

    return {"base": datagen.generate(base_rows, scenario="base", seed=1000)}


def from_reference(folder: Path) -> pd.DataFrame:
    """The snapshot rows a reference profile already scored at training (its uniform
    sample of every split and its held-out rows), without class probabilities."""
    from refit.training.reference import ReferenceProfile

    frame = ReferenceProfile.read(folder).frame
    return frame.loc[:, ["text", "true_label", "label", "score", "split"]].reset_index(drop=True)


def out_of_fold(version: object, folds: int) -> pd.DataFrame:
    """Train and validation rows scored by fold models that did not train on them, with
    every probability (`refit.training.calibration_folds`, the version's own recipe)."""
    from refit.training.calibration_folds import out_of_fold as cross_fit
    from refit.training.finetune import TrainingConfig
    from refit.training.snapshot import read_snapshot

    path = version.path  # type: ignore[attr-defined]
    record = json.loads((path / "training.json").read_text())
    config = TrainingConfig(**{**record["config"], "device": "cpu"})
    return cross_fit(
        read_snapshot(path),
        folds=folds,
        base_model=record["base_model"],
        config=config,
        max_length=config.max_length,
        scorer=scored,
        note=print,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--data", default="builtin", help="builtin, or real:DIR")
    parser.add_argument("--folds", type=int, default=0, help="fold models (0: none)")
    parser.add_argument("--pool-rows", type=int, default=BASE_POOL, help="built-in pool size")
    parser.add_argument(
        "--train-sample", type=int, default=0, help="score only this many train rows (0: all)"
    )
    parser.add_argument(
        "--from-reference",
        action="store_true",
        help="take the snapshot's scores from the version's reference profile (no probabilities)",
    )
    args = parser.parse_args()

    from refit.core.backends.torch_backend import TorchBackend
    from refit.core.registry import Registry
    from refit.service.settings import Settings
    from refit.training.snapshot import read_snapshot

    settings = Settings()
    version = Registry.from_settings(settings.core).get()
    folder = args.cache / version.version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"tag": version.tag, **version.metadata}))
    max_length = version.max_length(settings.training.max_length)
    model = TorchBackend.from_folder(version.path, device="cpu", max_length=max_length)
    splits = read_snapshot(version.path)

    def snapshot() -> pd.DataFrame:
        if args.from_reference:
            return from_reference(version.path)
        parts = dict(splits.parts())
        if args.train_sample and len(parts["train"]) > args.train_sample:
            parts["train"] = parts["train"].sample(args.train_sample, random_state=0)
        scored_parts = [scored(model, part).assign(split=name) for name, part in parts.items()]
        return pd.concat(scored_parts, ignore_index=True)

    cached(folder / "splits.parquet", snapshot)
    for name, frame in pool_frames(args.data, args.pool_rows).items():
        cached(folder / f"pool-{name}.parquet", lambda frame=frame: scored(model, frame))
    if args.folds:
        cached(
            folder / f"folds-{args.folds}.parquet",
            lambda: out_of_fold(version, args.folds),
        )


if __name__ == "__main__":
    main()
