"""Retraining on real text: does feedback on an unseen-topic shift buy back macro-F1,
and does the gate, shadow replay included, promote that challenger and refuse a worse one?

    python bench/real_text_retrain.py --home HOME --data DIR [--feedback-share 0.5]
        [--epochs 2] [--no-record]

HOME is a BENTOML_HOME whose champion was trained on DIR/train.csv (the Debian
real-text benchmark: `python bench/real_text.py --out DIR`, then `BENTOML_HOME=HOME
refit train --data DIR/train.csv`). HOME is copied to a temporary folder first, so its
champion and store are left as they were.

The champion serves traffic, logged as the service logs it: 1,000 same-distribution
texts (DIR/holdout.csv) and `--feedback-share` of the texts of the sections held
back from training (DIR/unseen_topic.csv, per section), which also get their true
section as `/feedback` labels. The other unseen-section texts are never logged:
they are the held-out drifted texts every model is scored on, with another 1,000
holdout texts for the original topics. Then, with the settings a user has (only
`--epochs` set, to match the champion's training):

1. the retraining job's challenger: the champion's data plus the feedback rows,
   fine-tuned from the champion, through the gate with its shadow replay;
2. a worse challenger: the base model fine-tuned for one epoch on 1,000 rows of
   the champion's data with shuffled labels, through the same gate, against the same
   held-out rows.

Prints and records macro-F1 of each model on the held-out drifted and original texts,
each gate decision with its reasons, and the shadow replay's figures. Several minutes
of fine-tuning on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

TRAFFIC_ROWS = 1000  # same-distribution texts the champion serves
EVAL_ROWS = 1000  # same-distribution texts held out for scoring
WORSE_ROWS = 1000


def split_unseen(frame: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that get feedback, rows held out), `share` of each section to the first."""
    rng = np.random.default_rng(seed)
    picked = np.zeros(len(frame), dtype=bool)
    for _, index in frame.groupby("label").indices.items():
        order = rng.permutation(index)
        picked[order[: round(len(order) * share)]] = True
    return frame[picked].reset_index(drop=True), frame[~picked].reset_index(drop=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="BENTOML_HOME with the champion")
    parser.add_argument("--data", type=Path, required=True, help="bench/real_text.py output")
    parser.add_argument("--feedback-share", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse()
    with tempfile.TemporaryDirectory(prefix="refit-rt-retrain-") as work:
        home = Path(work) / "bentoml"
        shutil.copytree(args.home, home, symlinks=True)
        # BentoML reads its home when first imported: set it before any refit import.
        os.environ["BENTOML_HOME"] = str(home)
        # A log of its own: feedback already in HOME's log must not join the retrain.
        os.environ["REFIT_PREDICTION_LOG_URL"] = f"sqlite:///{Path(work) / 'bench.sqlite3'}"
        os.environ["REFIT_EPOCHS"] = str(args.epochs)
        text = run(args, Path(work))
    print(text)
    if not args.no_record:
        from record import record

        record("real_text_retrain", text)


def log_served(log: Any, classifier: Any, version: str, texts: list[str]) -> list[str]:
    """Score `texts` with the champion and log them as the service would; their ids."""
    from refit.monitoring.prediction_log import PredictionBatch

    out = classifier.predict(texts)
    ids = [uuid.uuid4().hex for _ in texts]
    seq = log.submit(PredictionBatch.of_output(ids, texts, out, classifier.labels, version, 10.0))
    if not log.wait_durable(seq, 60):
        raise RuntimeError("the prediction log did not confirm the served rows")
    return ids


def macro_f1(classifier: Any, frame: pd.DataFrame) -> float:
    """The gate's macro-F1: averaged over the classes `frame` holds."""
    from refit.retraining.scoring import macro_f1 as gate_macro_f1

    return gate_macro_f1(classifier, frame)


def run(args: argparse.Namespace, work: Path) -> str:
    from refit.core.backends.base import Backend
    from refit.core.backends.torch_backend import TorchBackend
    from refit.core.registry import Registry
    from refit.monitoring.prediction_log import PredictionLog
    from refit.retraining.challenger import Challenger, train_challenger
    from refit.retraining.job import gate
    from refit.retraining.recent_data import gather_recent
    from refit.retraining.shadow import describe
    from refit.service.settings import Settings
    from refit.training.snapshot import read_snapshot
    from refit.training.train import train

    settings = Settings()
    registry = Registry.from_settings(settings.core)
    champion = registry.get()
    max_length = champion.max_length(settings.training.max_length)

    def load(version: Any) -> Backend:
        return TorchBackend.from_folder(version.path, device="cpu", max_length=max_length)

    holdout = pd.read_csv(args.data / "holdout.csv").sample(frac=1.0, random_state=args.seed)
    traffic, same = (
        holdout.iloc[:TRAFFIC_ROWS],
        holdout.iloc[TRAFFIC_ROWS : TRAFFIC_ROWS + EVAL_ROWS],
    )
    unseen = pd.read_csv(args.data / "unseen_topic.csv")
    labelled, drifted = split_unseen(unseen, args.feedback_share, args.seed)

    log = PredictionLog(settings.monitoring.resolved_log_url(settings.core))
    log.start()
    try:
        old = load(champion)
        log_served(log, old, champion.version, traffic["text"].tolist())
        ids = log_served(log, old, champion.version, labelled["text"].tolist())
        pairs = list(zip(ids, labelled["label"].astype(str), strict=True))
        outcomes = log.attach_feedback(pairs, old.labels, max_new_labels=100)
        recent = gather_recent(settings.core, settings.training, log).frame

        started = time.perf_counter()
        better = train_challenger(settings, champion, recent)
        better_s = time.perf_counter() - started
        better_decision, better_shadow = gate(settings, champion, better, log)

        shuffled = read_snapshot(champion.path).train.sample(WORSE_ROWS, random_state=args.seed)
        shuffled["label"] = np.random.default_rng(args.seed).permutation(
            shuffled["label"].to_numpy()
        )
        shuffled[["text", "label"]].to_csv(work / "shuffled.csv", index=False)
        worse_version = train(settings.with_overrides(epochs=1), data=work / "shuffled.csv").version
        worse = Challenger(worse_version, better.holdout, better.original_test)
        worse_decision, worse_shadow = gate(settings, champion, worse, log)

        models = {
            "champion": old,
            "challenger (retrained on feedback)": load(better.version),
            "worse challenger (shuffled labels)": load(worse_version),
        }
        scores = {
            name: (
                macro_f1(model, drifted),
                macro_f1(model, same),
                macro_f1(model, pd.concat([drifted, same])),
            )
            for name, model in models.items()
        }
    finally:
        log.close()

    lines = [
        f"Champion {champion.tag}, trained on {args.data}/train.csv. Traffic logged: "
        f"{len(traffic)} same-distribution texts and {len(labelled)} texts of "
        f"{unseen['label'].nunique()} sections never trained on, those with feedback labels "
        f"({pd.Series(outcomes).value_counts().to_dict()}). Held out for scoring: "
        f"{len(drifted)} unseen-section texts, {len(same)} same-distribution texts. "
        f"Challenger fine-tuned from the champion, {args.epochs} epochs, in {better_s:.0f} s "
        f"(sizes {better.sizes}).",
        "",
        "| model | macro-F1: held-out drifted texts | held-out original topics | both |",
        "|---|---|---|---|",
        *(f"| {name} | {a:.3f} | {b:.3f} | {c:.3f} |" for name, (a, b, c) in scores.items()),
        "",
    ]
    for name, decision, shadow in (
        ("Retrained challenger", better_decision, better_shadow),
        ("Worse challenger", worse_decision, worse_shadow),
    ):
        verdict = "promoted" if decision.promote else "refused"
        lines.append(f"{name}: gate says {verdict}.")
        lines.extend(f"- {reason}" for reason in decision.reasons)
        lines.extend(f"- {line}" for line in describe(shadow.to_dict()))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
