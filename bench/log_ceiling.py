"""The shared PostgreSQL prediction log's write ceiling: predictions written per second by
1, 2 and 4 concurrent writers.

    python bench/log_ceiling.py                      # about a minute
    python bench/log_ceiling.py --writers 1,2,4,8 --seconds 10 --batch 8
    python bench/log_ceiling.py --url postgresql+psycopg://user@host/db   # a real server

Each writer is a process of its own holding one `PredictionLog`, as each serving
worker does. It submits `PredictionBatch`es of --batch predictions (generated
support messages, scores over 8 labels, token and [UNK] counts, the 32-dim
embedding: what the service hands over after a scheduler round) as fast as the log
confirms them, keeping at most --window predictions unconfirmed so that nothing is
dropped. The figure is predictions committed per second, all writers together,
counted in the database; the ratio is against the 1-writer figure of the same run.
The table is emptied before each point. Without --url a throwaway PostgreSQL
(tests/servers.start_postgres: local socket, fsync on) is started for the run.

On a machine with few cores the writers' own work (turning batches into rows, in
Python) and PostgreSQL share the cores, so this is a floor for what a dedicated
database server takes, not its limit. Prints a table and appends a dated section
to bench/RESULTS.md (unless --no-record).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path

from record import points_parser, publish

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = points_parser(__doc__, "--writers", "1,2,4", "writer")
    parser.add_argument("--batch", type=int, default=8, help="predictions per submitted batch")
    parser.add_argument("--window", type=int, default=4000, help="most unconfirmed per writer")
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default: a throwaway one)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "START_AT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- one writer (a child process) -------------------------------------------------------
def make_batches(count: int, size: int, seed: int) -> list:
    """`count` batches of `size` predictions, as the service would submit them."""
    import numpy as np

    from refit import datagen
    from refit.monitoring.prediction_log import PredictionBatch

    rng = np.random.default_rng(seed)
    texts = datagen.generate(2000, seed=seed)["text"].tolist()
    labels = [f"label{k}" for k in range(8)]
    batches = []
    for b in range(count):
        scores = rng.dirichlet(np.ones(len(labels)), size=size)
        batches.append(
            PredictionBatch(
                ids=[uuid.uuid4().hex for _ in range(size)],
                texts=[texts[(b * size + i) % len(texts)] for i in range(size)],
                labels=[labels[k] for k in scores.argmax(axis=1)],
                scores=scores,
                label_names=labels,
                model_version="bench",
                created=time.time(),
                latency_ms=rng.uniform(5, 50, size),
                n_tokens=rng.integers(5, 64, size),
                truncated=np.zeros(size, dtype=bool),
                unknown_tokens=rng.integers(0, 2, size),
                embeddings=rng.standard_normal((size, 32)).astype(np.float16),
            )
        )
    return batches


def child(url: str, start_at: float, args: argparse.Namespace) -> None:
    """Submit for `args.seconds` from `start_at`; print what was written and when."""
    from refit.monitoring.prediction_log import PredictionLog

    log = PredictionLog(url, queue_size=args.window * 2)
    log.start()
    batches = make_batches(2000, args.batch, seed=os.getpid())
    time.sleep(max(0.0, start_at - time.time()))
    pending: deque[int] = deque()
    submitted = i = 0
    while time.time() < start_at + args.seconds:
        batch = batches[i % len(batches)]
        i += 1
        if i > len(batches):  # a fresh set of ids: the log ignores ids it already has
            batch = type(batch)(**{**batch.__dict__, "ids": [uuid.uuid4().hex for _ in batch.ids]})
        pending.append(log.submit(batch))
        submitted += args.batch
        while len(pending) * args.batch > args.window:
            log.wait_durable(pending.popleft(), 30)
    durable = all(log.wait_durable(seq, 60) for seq in pending)
    finished = time.time()
    log.close()
    print(json.dumps({"submitted": submitted, "durable": durable, "finished": finished}))


# --- the run -------------------------------------------------------------------------------
def rows_in(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())
    finally:
        engine.dispose()


def empty_table(url: str) -> None:
    import sqlalchemy as sa

    from refit.monitoring.prediction_log import PredictionLog

    PredictionLog(url).count()  # creates the table if needed
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE predictions"))
    engine.dispose()


def point(url: str, writers: int, args: argparse.Namespace) -> dict[str, float]:
    """Run `writers` writer processes at once; predictions/s committed, all together."""
    empty_table(url)
    start_at = time.time() + 8.0  # imports and batch building happen before the start
    cmd = [sys.executable, __file__, "--child", url, str(start_at)]
    cmd += ["--seconds", str(args.seconds), "--batch", str(args.batch)]
    cmd += ["--window", str(args.window)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(writers)
    ]
    outs = [
        json.loads(p.communicate(timeout=args.seconds + 300)[0].splitlines()[-1]) for p in procs
    ]
    if any(p.returncode for p in procs) or not all(o["durable"] for o in outs):
        raise RuntimeError(f"a writer failed: {outs}")
    written = rows_in(url)
    seconds = max(o["finished"] for o in outs) - start_at
    return {
        "writers": writers,
        "rows": written,
        "submitted": sum(o["submitted"] for o in outs),
        "seconds": seconds,
        "rows_per_s": written / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child[0], float(args.child[1]), args)
        return 0
    counts = [int(n) for n in args.writers.split(",")]
    postgres = None
    url = args.url
    if url is None:
        from refit.testing.postgres import postgres_bin_dir, start_postgres

        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise SystemExit("no PostgreSQL server binaries (Debian package `postgresql`)")
        postgres = start_postgres(bin_dir, database="ceiling")
        url = postgres.url
    try:
        figures = [point(url, n, args) for n in counts]
    finally:
        if postgres is not None:
            postgres.stop()
    text = render(figures, args)
    publish("log_ceiling", text, keep=not args.no_record)
    return 0


def render(figures: list[dict[str, float]], args: argparse.Namespace) -> str:
    base = figures[0]["rows_per_s"]
    lines = [
        f"PostgreSQL prediction log, batches of {args.batch} predictions, {args.seconds:.0f} s "
        "per point, writers in processes of their own on the same machine as the database.",
        "",
        "| writers | predictions written | seconds | predictions/s | vs 1 writer |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f['writers']:.0f} | {f['rows']:.0f} | {f['seconds']:.1f} | "
            f"{f['rows_per_s']:.0f} | {f['rows_per_s'] / base:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
