"""Served throughput against the model's own limit and against no batching, in one run.

    python bench/serve_bench.py            # full run, ~8 minutes on 2 CPU cores
    python bench/serve_bench.py --quick    # fewer, shorter points

Uses the champion of the current BENTOML_HOME (run `refit train` first). In one run
it measures
  (a) the raw in-process limit: the same model on the same texts, no HTTP, the best
      of several batch sizes, in arrival order and sorted by length;
  (b) the service with adaptive batching, driven by wrk at several concurrencies
      with one-text and 32-text requests;
  (c) the same service with batching off.
It prints a table with the ratios served/raw and batched/unbatched, writes JSON and
a PNG plot to bench/out/, and appends a dated summary to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    LoadResult,
    RawResult,
    RunningServer,
    batch_stats,
    raw_limit,
    request_bodies,
    run_wrk,
    start_server,
    wait_idle,
)

OUT = HERE / "out"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, fewer points")
    parser.add_argument("--duration", type=float, default=None, help="seconds per point")
    parser.add_argument("--concurrency", default=None, help="comma-separated, e.g. 1,8,64,256")
    parser.add_argument("--texts", type=int, default=4000, help="distinct texts to send")
    return parser.parse_args()


def drive(
    server: RunningServer, bodies: dict[str, Path], levels: list[int], seconds: float, tag: str
) -> list[LoadResult]:
    results = []
    for kind, path in bodies.items():
        run_wrk(server.url, path, connections=8, seconds=2.0)  # warm-up, discarded
        for connections in levels:
            wait_idle(server.url)
            before = batch_stats(server.url)
            load = run_wrk(server.url, path, connections=connections, seconds=seconds)
            load.attach(
                tag,
                kind,
                connections,
                batch_stats(server.url).since(before),
                texts_per_request=32 if kind == "32-text" else 1,
            )
            print(load.row(), flush=True)
            results.append(load)
    return results


def main() -> None:
    args = parse_args()
    seconds = args.duration or (6.0 if args.quick else 15.0)
    levels = [
        int(c) for c in (args.concurrency or ("8,64" if args.quick else "1,8,64,256")).split(",")
    ]
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="refit-bench-"))
    texts, bodies = request_bodies(work, args.texts)

    print("raw in-process limit ...", flush=True)
    raw: RawResult = raw_limit(texts)
    print(raw.describe(), flush=True)

    results: list[LoadResult] = []
    for tag, batching in (("batched", True), ("unbatched", False)):
        server = start_server(work / tag, batching=batching)
        try:
            results += drive(server, bodies, levels, seconds, tag)
        finally:
            server.stop()

    summary = summarise(raw, results)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    payload = {
        "when": stamp,
        "machine": machine(),
        "commit": commit(),
        "raw": asdict(raw),
        "loads": [asdict(r) for r in results],
        "summary": summary,
    }
    (OUT / "serve_bench.json").write_text(json.dumps(payload, indent=2))
    plot(results, OUT / "serve_bench.png")
    table = render(raw, results, summary)
    print(table)
    with (HERE / "RESULTS.md").open("a") as log:
        log.write(f"\n## serve_bench {stamp} — {machine()} — commit {commit()}\n\n{table}\n")


def summarise(raw: RawResult, results: list[LoadResult]) -> dict[str, float]:
    def texts_per_s(tag: str, kind: str, connections: int) -> float:
        for r in results:
            if (r.tag, r.kind, r.connections) == (tag, kind, connections):
                return r.texts_per_s
        return float("nan")

    out: dict[str, float] = {}
    for kind in ("1-text", "32-text"):
        for c in sorted({r.connections for r in results}):
            batched, unbatched = texts_per_s("batched", kind, c), texts_per_s("unbatched", kind, c)
            out[f"{kind} c={c} served/raw"] = batched / raw.best_texts_per_s
            out[f"{kind} c={c} batched/unbatched"] = batched / unbatched
    return out


def render(raw: RawResult, results: list[LoadResult], summary: dict[str, float]) -> str:
    lines = [
        f"Raw in-process limit: {raw.best_texts_per_s:.0f} texts/s ({raw.best_setting}); "
        f"arrival order best {raw.best_arrival_texts_per_s:.0f} texts/s.",
        "",
        "| service | request | conc. | texts/s | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| 429s | mean batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(r.row() for r in results),
        "",
        "| ratio | value |",
        "|---|---|",
        *(f"| {k} | {v:.2f} |" for k, v in summary.items()),
    ]
    return "\n".join(lines)


def plot(results: list[LoadResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no plot", flush=True)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for tag in ("batched", "unbatched"):
        for kind in ("1-text", "32-text"):
            pts = sorted(
                (r for r in results if (r.tag, r.kind) == (tag, kind)), key=lambda r: r.connections
            )
            if not pts:
                continue
            xs = [r.connections for r in pts]
            left.plot(xs, [r.texts_per_s for r in pts], marker="o", label=f"{tag} {kind}")
            right.plot(xs, [r.p99_ms for r in pts], marker="o", label=f"{tag} {kind}")
    for ax, title in ((left, "throughput (texts/s)"), (right, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
