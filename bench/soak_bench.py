"""Worker memory under long load and after it: does RSS come back down?

    python bench/soak_bench.py                 # 10 min of load, then 2 min idle
    python bench/soak_bench.py --load-s 120 --idle-s 30   # a shorter look

Uses the champion of the current BENTOML_HOME (run `refit train` first), served as
`refit serve` serves it, with two workers. It warms the server up for a minute of the
same load, records each worker's resident memory, drives one-text and 32-text
requests of mixed length at 32 connections (wrk; bounded in time), samples RSS every
15 s, then sits idle and samples again. It prints RSS after warm-up, at the end of the
load and after the idle time, per worker, with the ratio to the warm-up level (the
baseline of this run), and appends the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil
from harness import request_bodies, run_wrk, start_server
from record import publish

HERE = Path(__file__).resolve().parent


SAMPLE_S = 15.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warmup-s", type=float, default=60)
    parser.add_argument("--load-s", type=float, default=600)
    parser.add_argument("--idle-s", type=float, default=120)
    parser.add_argument("--connections", type=int, default=32)
    return parser.parse_args()


def worker_rss(server: object) -> dict[int, float]:
    """Resident memory of each worker process, in MB."""
    found = {}
    for proc in server.processes()[1:]:  # type: ignore[attr-defined]
        try:
            found[proc.pid] = proc.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return found


def drive(url: str, bodies: dict[str, Path], seconds: float, connections: int) -> None:
    """Alternate one-text and 32-text load for `seconds` in rounds of at most 30 s."""
    deadline = time.monotonic() + seconds
    kinds = ["1-text", "32-text"]
    turn = 0
    while (left := deadline - time.monotonic()) > 1:
        kind = kinds[turn % 2]
        run_wrk(url, bodies[kind], connections=connections, seconds=min(30.0, left))
        turn += 1


def sample_during(
    server: object, seconds: float, samples: list[tuple[float, dict[int, float]]]
) -> threading.Thread:
    stop = time.monotonic() + seconds

    def sample() -> None:
        started = time.monotonic()
        while time.monotonic() < stop:
            samples.append((time.monotonic() - started, worker_rss(server)))
            time.sleep(min(SAMPLE_S, max(0.0, stop - time.monotonic())))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def render(warm: dict[int, float], loaded: dict[int, float], idle: dict[int, float]) -> str:
    rows = [
        "| worker | after warm-up MB | end of load MB | after idle MB | load / warm-up "
        "| idle / warm-up |",
        "|---|---|---|---|---|---|",
    ]
    for i, pid in enumerate(sorted(warm), 1):
        w, load, rest = warm[pid], loaded.get(pid, float("nan")), idle.get(pid, float("nan"))
        rows.append(
            f"| {i} | {w:.0f} | {load:.0f} | {rest:.0f} | {load / w:.3f} | {rest / w:.3f} |"
        )
    return "\n".join(rows)


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="refit-soak-") as tmp:
        work = Path(tmp)
        _, bodies = request_bodies(work / "bodies", 4000)
        server = start_server(work / "server", batching="scheduler", workers=2)
        try:
            drive(server.url, bodies, args.warmup_s, args.connections)
            time.sleep(5)
            warm = worker_rss(server)
            samples: list[tuple[float, dict[int, float]]] = []
            sampler = sample_during(server, args.load_s + args.idle_s, samples)
            drive(server.url, bodies, args.load_s, args.connections)
            loaded = worker_rss(server)
            time.sleep(args.idle_s)
            idle = worker_rss(server)
            sampler.join(timeout=SAMPLE_S + 5)
        finally:
            server.stop()
    table = render(warm, loaded, idle)
    peak = max((max(s.values()) for _, s in samples if s), default=float("nan"))
    text = (
        f"{args.load_s:.0f} s of load at {args.connections} connections (one-text and 32-text "
        f"requests in turn), then {args.idle_s:.0f} s idle; {len(samples)} samples, peak "
        f"worker RSS {peak:.0f} MB.\n\n{table}\n"
    )
    publish("soak_bench", text)


if __name__ == "__main__":
    main()
