"""The torch backend's int8 weights on CPU: label agreement with fp32, and the speed-up.

    python bench/int8_bench.py [--data labelled.csv]

Scores the champion of the current BENTOML_HOME on a test split (the built-in
dataset's, regenerated exactly as `refit train` made it, or a labelled file) in
fp32 and int8, in one run: label agreement, accuracy and macro-F1 of each, and
texts/s of each with the same batching. REFIT_BACKEND=torch-int8 is worth turning
on only when the agreement is at least 99.5% (registration measures this, and every
other backend, for each version: `refit models export`, `python bench/raw.py`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from record import record

HERE = Path(__file__).resolve().parent


def throughput(classifier, texts: list[str], batch: int = 64, rounds: int = 2) -> float:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            classifier.predict(texts[i : i + batch])
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="labelled file to score")
    args = parser.parse_args()

    import numpy as np
    import torch

    from refit.core.backends.torch_backend import TorchBackend
    from refit.core.registry import Registry
    from refit.service.settings import get_settings
    from refit.training.data import load_labelled
    from refit.training.prepared import prepare_data
    from refit.training.scores import classification_metrics

    settings = get_settings()
    # One process using every core: the most the machine does without a server.
    torch.set_num_threads(settings.serving.torch_threads or os.cpu_count() or 1)
    version = Registry.from_settings(settings.core).get()
    if args.data is None:
        test = prepare_data(None, settings.training).splits.test
        source = "built-in test split"
    else:
        test = load_labelled(args.data)
        source = str(args.data)
    texts, gold = test["text"].tolist(), test["label"].tolist()
    max_length = version.max_length(settings.training.max_length)
    scores = {}
    speed = {}
    outputs = {}
    for backend in ("fp32", "int8"):
        clf = TorchBackend.from_folder(
            version.path, device="cpu", max_length=max_length, int8=backend == "int8"
        )
        clf.warm_up()
        out = [clf.predict(texts[i : i + 64]) for i in range(0, len(texts), 64)]
        ids = np.concatenate([o.label_ids for o in out])
        conf = np.concatenate([o.confidence for o in out])
        predicted = [clf.labels[i] for i in ids]
        outputs[backend] = predicted
        scores[backend] = classification_metrics(gold, predicted, conf, list(clf.labels))
        speed[backend] = throughput(clf, texts)
    agreement = float(
        np.mean([a == b for a, b in zip(outputs["fp32"], outputs["int8"], strict=True)])
    )
    lines = [
        f"Model {version.tag}, {len(texts)} texts ({source}).",
        "",
        "| backend | accuracy | macro F1 | texts/s |",
        "|---|---|---|---|",
        *(
            f"| {b} | {scores[b].accuracy:.4f} | {scores[b].macro_f1:.4f} | {speed[b]:.0f} |"
            for b in ("fp32", "int8")
        ),
        "",
        f"Label agreement int8 vs fp32: {agreement:.2%} (needs >= 99.5%); "
        f"speed-up x{speed['int8'] / speed['fp32']:.2f}.",
    ]
    table = "\n".join(lines)
    print(table)
    record("int8_bench", table)


if __name__ == "__main__":
    main()
