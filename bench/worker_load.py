"""A server worker's start: load, check and warm the champion in a fresh process, with
and without transformers (and so torch) imported.

    python bench/worker_load.py --home HOME [--runs 3] [--backend auto]

HOME is a BENTOML_HOME whose champion `refit train` registered (and so exported to
ONNX), such as the quick start's.

A worker serving ONNX Runtime reads its tokenizer from `tokenizer.json`
(`core/tokenizer_file.py`) and imports neither transformers nor torch. Before that,
the tokenizer came from transformers' AutoTokenizer, and importing transformers
imports torch. The baseline here imports `transformers.AutoTokenizer` first and then
loads the same way, which puts back exactly that import. Each run starts a new Python
process per way, the two ways alternating; one untimed load first exports the
version to ONNX if it has not been yet. Reported: seconds from the process's first
import to the first answer, peak resident memory, and whether torch was imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from record import publish

ROOT = Path(__file__).resolve().parent.parent
WAYS = {"tokenizer.json alone": [], "transformers imported (before)": ["--transformers-first"]}


def load_once(home: Path, way: list[str], backend: str) -> dict[str, Any]:
    """One fresh process loading the champion (`refit.testing.worker_load`)."""
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "REFIT_STATE_DIR": os.environ.get("REFIT_STATE_DIR", str(home / "refit")),
        "REFIT_BACKEND": backend,
    }
    done = subprocess.run(
        [sys.executable, "-m", "refit.testing.worker_load", *way],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"loading failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a BENTOML_HOME with a champion")
    parser.add_argument("--runs", type=int, default=3, help="timed loads each way")
    parser.add_argument("--backend", default="auto", help="REFIT_BACKEND for the loads")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    load_once(args.home, [], args.backend)  # exports the version first, if it must
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in WAYS}
    for _ in range(args.runs):
        for name, way in WAYS.items():
            runs[name].append(load_once(args.home, way, args.backend))
    lines = [
        f"Champion served on {runs['tokenizer.json alone'][0]['backend']} "
        f"(REFIT_BACKEND={args.backend}), {args.runs} fresh processes each way, alternating:",
        "",
        "| worker load | seconds to the first answer: median (each) | peak RSS, MiB | torch |",
        "|---|---|---|---|",
    ]
    medians = {}
    for name, figures in runs.items():
        seconds = [float(str(f["seconds"])) for f in figures]
        medians[name] = statistics.median(seconds)
        rss = max(float(str(f["rss_mib"])) for f in figures)
        each = ", ".join(f"{s:.2f}" for s in seconds)
        lines.append(
            f"| {name} | {medians[name]:.2f} ({each}) | {rss:.0f} | "
            f"{'torch' in figures[0]['imported']} |"
        )
    new, old = medians["tokenizer.json alone"], medians["transformers imported (before)"]
    lines += [
        "",
        f"tokenizer.json alone / before: {new / old:.2f}x the seconds to the first answer.",
    ]
    publish("worker_load", "\n".join(lines), keep=not args.no_record)


if __name__ == "__main__":
    main()
