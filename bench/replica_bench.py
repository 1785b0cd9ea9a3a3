"""Replicas behind HAProxy sharing one PostgreSQL prediction log: throughput and p99 with
1, 2 and 3 replicas.

    python bench/replica_bench.py                    # about 2 minutes
    python bench/replica_bench.py --replicas 1,2,3 --seconds 10 --connections 64
    python bench/replica_bench.py --base minilm      # the default model's size (untrained)

A model store with an untrained classifier (bench/model_home.py; the tests' tiny
model by default) is the shared REFIT_MODEL_STORE and REFIT_STATE_DIR; a throwaway
PostgreSQL is the shared log. As many replicas as the largest count are started
(`bentoml serve`, REFIT_WORKERS=1 each, a BENTOML_HOME of their own). For each count
n, HAProxy (tests/servers.start_haproxy: round robin, /readyz health checks, retries)
balances over the first n replicas, and wrk (bench/classify.lua, one-text requests of
mixed length, Retry-After honoured) drives it for --seconds after a warm-up. One more
point sends the same load to one replica directly: what the balancer costs. Ratios
are against 1 replica behind HAProxy, measured in the same run; the predictions the
log committed per second during each point show whether the log kept up.

Every process (replicas, HAProxy, PostgreSQL, wrk) shares this machine's cores, so on
a small machine more replicas do not add capacity: the figures then show what the
balancer and the shared log cost, not how far replicas scale. Prints a table and
appends a dated section to bench/RESULTS.md (unless --no-record).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import request_bodies, run_wrk
from log_ceiling import rows_in
from record import points_parser, publish

from refit.testing.bentoml_server import start_replica
from refit.testing.haproxy import start_haproxy
from refit.testing.postgres import postgres_bin_dir, start_postgres
from refit.testing.processes import RunningServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = points_parser(__doc__, "--replicas", "1,2,3", "replica")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per point")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--base", choices=("tiny", "minilm"), default="tiny")
    return parser.parse_args(argv)


def build_store(home: Path, base: str) -> None:
    """A BENTOML_HOME whose champion is an untrained `base` classifier (a subprocess:
    BentoML fixes its home at import)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REFIT_STATE_DIR", None)
    env.pop("REFIT_MODEL_STORE", None)
    cmd = [sys.executable, str(HERE / "model_home.py"), str(home), "--base", base]
    subprocess.run(cmd, env=env, check=True, timeout=600)


def measure(url: str, bodies: Path, args: argparse.Namespace, log_url: str) -> dict:
    run_wrk(url, bodies, connections=args.connections, seconds=args.warmup)
    before = rows_in(log_url)
    load = run_wrk(url, bodies, connections=args.connections, seconds=args.seconds)
    logged = rows_in(log_url) - before
    return {
        "texts_per_s": load.texts_per_s,
        "p99_ms": load.p99_ms,
        "errors": load.errors,
        "refused": load.refused,
        "logged_per_s": logged / load.seconds,
    }


def run(work: Path, args: argparse.Namespace) -> dict[str, dict]:
    counts = [int(n) for n in args.replicas.split(",")]
    build_store(work / "store-home", args.base)
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (Debian package `postgresql`)")
    postgres = start_postgres(bin_dir, database="replicas")
    env = {
        "PYTHONPATH": str(ROOT),
        "REFIT_MODEL_STORE": str(work / "store-home" / "models"),
        "REFIT_STATE_DIR": str(work / "store-home" / "refit"),
        "REFIT_PREDICTION_LOG_URL": postgres.url,
        "REFIT_WORKERS": "1",
        "REFIT_TORCH_THREADS": "1",
        "REFIT_DEVICE": "cpu",
        "REFIT_ACCESS_LOG": "false",
        "HF_HUB_OFFLINE": "1",
    }
    replicas: list[RunningServer] = []
    results: dict[str, dict] = {}
    try:
        for i in range(max(counts)):
            replicas.append(start_replica(env, work / f"r{i}"))
        _, bodies = request_bodies(work, 4000)
        results["1 replica, direct"] = measure(
            replicas[0].url, bodies["1-text"], args, postgres.url
        )
        for n in counts:
            backends = {f"r{i}": replicas[i].url for i in range(n)}
            proxy = start_haproxy(backends, work / f"haproxy-{n}", config=HAPROXY_CONFIG)
            try:
                name = f"{n} replica{'s' if n > 1 else ''}, HAProxy"
                results[name] = measure(proxy.url, bodies["1-text"], args, postgres.url)
            finally:
                proxy.stop()
    finally:
        for server in replicas:
            server.stop()
        postgres.stop()
    return results


def render(results: dict[str, dict], args: argparse.Namespace) -> str:
    base = results.get("1 replica, HAProxy", next(iter(results.values())))
    lines = [
        f"Untrained {args.base} model, one worker per replica, shared PostgreSQL log; wrk, "
        f"{args.connections} connections, one-text requests, {args.seconds:.0f} s per point "
        f"after {args.warmup:.0f} s of warm-up; everything on this machine's {os.cpu_count()} "
        "cores.",
        "",
        "| setup | texts/s | p99 ms | errors | 429/503 | log writes/s | texts/s vs 1 behind "
        "HAProxy | p99 vs 1 behind HAProxy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['texts_per_s']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | "
            f"{r['refused']} | {r['logged_per_s']:.0f} | "
            f"{r['texts_per_s'] / base['texts_per_s']:.2f} | {r['p99_ms'] / base['p99_ms']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replica-bench-") as folder:
        results = run(Path(folder), args)
    text = render(results, args)
    publish("replica_bench", text, keep=not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
