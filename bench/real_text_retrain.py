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
2. its yardstick, the joint model (`retraining.challenger.train_joint`): the base model
   fine-tuned on exactly the challenger's rows with the same recipe and budget, as if
   the champion had been trained on the old and new rows from the start; the gate's
   report shows it beside the challenger;
3. a worse challenger (left out with `--no-worse`): the base model fine-tuned for one
   epoch on 1,000 rows of the champion's data with shuffled labels, through the same
   gate, against the same held-out rows.

Prints and records macro-F1 of each model on the held-out drifted and original texts,
the challenger against the joint model (targets: within 0.02 on the new sections and
0.01 on the old ones), both fine-tuning times, each gate decision with its reasons, and
the shadow replay's figures. Several minutes of fine-tuning on 2 quiet CPU cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
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
    parser.add_argument("--no-worse", action="store_true", help="skip the worse challenger")
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


def train_worse(settings: Any, champion: Any, work: Path, seed: int) -> Any:
    """The base model fine-tuned for one epoch on 1,000 of the champion's rows with
    shuffled labels: a challenger the gate must refuse."""
    from refit.training.snapshot import read_snapshot
    from refit.training.train import train

    shuffled = read_snapshot(champion.path).train.sample(WORSE_ROWS, random_state=seed)
    shuffled["label"] = np.random.default_rng(seed).permutation(shuffled["label"].to_numpy())
    shuffled[["text", "label"]].to_csv(work / "shuffled.csv", index=False)
    return train(settings.with_overrides(epochs=1), data=work / "shuffled.csv").version


def against_joint(
    scores: dict[str, tuple[float, float, float]], times: tuple[float, float]
) -> list[str]:
    """The challenger against its yardstick, with the targets."""
    challenger = scores["challenger (retrained on feedback)"]
    joint = scores["joint model (base model, the same rows)"]
    new, old = challenger[0] - joint[0], challenger[1] - joint[1]
    return [
        "| retraining vs joint | new sections | original sections | fine-tuning s |",
        "|---|---|---|---|",
        f"| challenger | {challenger[0]:.3f} | {challenger[1]:.3f} | {times[0]:.0f} |",
        f"| joint model | {joint[0]:.3f} | {joint[1]:.3f} | {times[1]:.0f} |",
        f"| challenger - joint (targets >= -0.02, >= -0.01) | {new:+.3f} "
        f"({'met' if new >= -0.02 else 'missed'}) | {old:+.3f} "
        f"({'met' if old >= -0.01 else 'missed'}) | x{times[0] / max(times[1], 1e-9):.2f} |",
    ]


def run(args: argparse.Namespace, work: Path) -> str:
    from refit.core.backends.base import Backend
    from refit.core.backends.torch_backend import TorchBackend
    from refit.core.registry import Registry
    from refit.monitoring.prediction_log import PredictionLog
    from refit.retraining.challenger import Challenger, train_challenger, train_joint
    from refit.retraining.job import gate
    from refit.retraining.recent_data import gather_recent
    from refit.retraining.shadow import describe
    from refit.service.settings import Settings

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

        better = train_challenger(settings, champion, recent)
        joint, joint_s = train_joint(settings, better)
        better_decision, better_shadow = gate(settings, champion, better, log, joint)
        models = {
            "champion": old,
            "challenger (retrained on feedback)": load(better.version),
            "joint model (base model, the same rows)": joint,
        }
        gates = [("Retrained challenger", better_decision, better_shadow)]
        if not args.no_worse:
            worse_version = train_worse(settings, champion, work, args.seed)
            worse = Challenger(worse_version, better.holdout, better.original_test)
            worse_decision, worse_shadow = gate(settings, champion, worse, log)
            models["worse challenger (shuffled labels)"] = load(worse_version)
            gates.append(("Worse challenger", worse_decision, worse_shadow))
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

    times = (better.seconds, joint_s)
    lines = [
        f"Champion {champion.tag}, trained on {args.data}/train.csv. Traffic logged: "
        f"{len(traffic)} same-distribution texts and {len(labelled)} texts of "
        f"{unseen['label'].nunique()} sections never trained on, those with feedback labels "
        f"({pd.Series(outcomes).value_counts().to_dict()}). Held out for scoring: "
        f"{len(drifted)} unseen-section texts, {len(same)} same-distribution texts. "
        f"Challenger fine-tuned from the champion, {args.epochs} epochs "
        f"(sizes {better.sizes}).",
        "",
        "| model | macro-F1: held-out drifted texts | held-out original topics | both |",
        "|---|---|---|---|",
        *(f"| {name} | {a:.3f} | {b:.3f} | {c:.3f} |" for name, (a, b, c) in scores.items()),
        "",
        *against_joint(scores, times),
        "",
    ]
    for name, decision, shadow in gates:
        verdict = "promoted" if decision.promote else "refused"
        lines.append(f"{name}: gate says {verdict}.")
        lines.extend(f"- {reason}" for reason in decision.reasons)
        lines.extend(f"- {line}" for line in describe(shadow.to_dict()))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
