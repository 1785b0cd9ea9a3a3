"""Served latency and throughput against the model's own limits, every contender in one run.

    python bench/serve_bench.py            # full run: ~15-20 minutes on 2 idle CPU cores
    python bench/serve_bench.py --quick    # 2 loads, 4-8 s points: ~5 minutes
    python bench/serve_bench.py --contenders raw,scheduler,bentoml
    python bench/serve_bench.py --backend onnx-int8   # every contender on that backend

Uses the champion of the current BENTOML_HOME (run `refit train` first, or
`bench/model_home.py HOME --base minilm` for the default architecture untrained).
Contenders, all on the same machine in one run:
  raw             the model in-process: the throughput limit (best batch size, arrival
                  order and sorted by length, every core), and the time of one text
                  alone and of the lone 32-text requests' texts (one worker's threads
                  and every core);
  scheduler       the service with REFIT_BATCHING=scheduler (refit's queue),
  bentoml         ... REFIT_BATCHING=bentoml (BentoML's adaptive batching),
  off             ... REFIT_BATCHING=off (each request alone), all with the same workers;
  torch           the scheduler with REFIT_BACKEND=torch: the backend `auto` must beat
                  (the others run the backend REFIT_BACKEND or --backend picks);
  onnx-fp32       ... REFIT_BACKEND=onnx, and
  onnx-int8       ... REFIT_BACKEND=onnx-int8: each ONNX Runtime graph served, against
                  torch in the same run, whether or not `auto` would pick it;
  haproxy         the scheduler behind deploy/haproxy/haproxy.cfg (its defaults: 64
                  requests at a time per server, 429 from HAProxy once one more waits):
                  the one-text sweep through HAProxy, then saturation and 8x;
  tiny-scheduler  the service on a tiny random model (2 layers, 32 wide) in a private
  tiny-bentoml    BENTOML_HOME: the serving overhead a GPU's fast passes leave exposed.
                  Both are served at once and take turns at each load point, three
                  times; the median by requests/s is reported, beside every repeat.
Scenarios per served contender (about 4 minutes each): 50 lone one-text requests
on the idle server; 10 lone 32-text requests; the 40 lone requests of the spike
scenario below, spaced the same, on the idle server; wrk at 1, 8, 64, 256, 1024
connections with one-text and 32-text requests (8 s a point, Retry-After honoured,
each point on an idle server); a 30 s spike at 64 connections, then 40 lone
requests from 5 s after it, over 20 s; saturation (the fewest connections reaching
95% of the best one-text goodput of the sweep, or --saturation) and 8x it (at most
2048), 10 s each, with a client that ignores Retry-After while a probe process times
about 10 requests a second one by one. Tiny contenders: one-text requests at 64 and
256 connections, 8 s each. --duration sets the load and saturation points' length.
Prints the tables, writes bench/out/serve_bench.{json,png} and appends a dated
section to bench/RESULTS.md (unless --no-record).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from contenders import CONTENDERS, run_all
from record import commit, machine, record
from report import TINY_PAIR, ratios, targets
from scenarios import ContenderResult, Plan
from tables import render

from refit.service.settings import reset_settings

HERE = Path(__file__).resolve().parent


OUT = HERE / "out"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, fewer points")
    parser.add_argument("--duration", type=float, default=None, help="seconds per load point")
    parser.add_argument("--concurrency", default=None, help="comma-separated, e.g. 1,8,64,256")
    parser.add_argument("--texts", type=int, default=4000, help="distinct texts to send")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {','.join(CONTENDERS)} ('tiny': both tiny ones)",
    )
    parser.add_argument(
        "--saturation", type=int, default=None, help="connections at saturation (default: found)"
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "torch", "torch-int8", "onnx", "onnx-int8"),
        default=None,
        help="REFIT_BACKEND for the raw contender and every server (default: the environment's)",
    )
    parser.add_argument(
        "--legacy-env",
        action="store_true",
        help="also set REFIT_ADAPTIVE_BATCHING, for a service older than REFIT_BATCHING",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to bench/RESULTS.md"
    )
    return parser.parse_args(argv)


def contenders(spec: str) -> list[str]:
    """The contenders named in `spec`, in the run's order; ValueError on an unknown one."""
    names = {n.strip() for n in spec.split(",") if n.strip()}
    if "tiny" in names:
        names = (names - {"tiny"}) | set(TINY_PAIR)
    unknown = names - set(CONTENDERS)
    if unknown:
        raise ValueError(f"unknown contenders: {', '.join(sorted(unknown))}")
    return [n for n in CONTENDERS if n in names]


def make_plan(args: argparse.Namespace) -> Plan:
    plan = Plan.quick() if args.quick else Plan()
    if args.duration:
        plan.seconds = plan.saturation_s = args.duration
    if args.concurrency:
        plan.levels = [int(c) for c in args.concurrency.split(",")]
    plan.saturation = args.saturation
    return plan


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen, plan = contenders(args.contenders), make_plan(args)
    if args.backend is not None:
        # Servers inherit this process's environment; the raw contender reads the settings.
        os.environ["REFIT_BACKEND"] = args.backend
        reset_settings()
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="refit-bench-"))
    try:
        base, runs, errors = run_all(plan, chosen, work, args.texts, args.quick, args.legacy_env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = render(base, runs)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    payload = {
        "when": stamp,
        "machine": machine(),
        "commit": commit(),
        "quick": args.quick,
        "contenders": chosen,
        "plan": asdict(plan),
        "budget_ms": base.budget_ms,
        "raw": asdict(base.raw) if base.raw else None,
        "raw_latency": {
            k: asdict(v) for k, v in (("worker", base.worker), ("all_cores", base.all_cores)) if v
        },
        "runs": {name: run.to_json() for name, run in runs.items()},
        "ratios": ratios(base, runs),
        "targets": [t._asdict() for t in targets(base, runs)],
        "errors": errors,
    }
    (OUT / "serve_bench.json").write_text(json.dumps(finite(payload), indent=2))
    plot(runs, OUT / "serve_bench.png")
    print(report)
    if not args.no_record:
        record(
            "serve_bench" + (" (--quick)" if args.quick else ""),
            f"Contenders: {', '.join(chosen)}; REFIT_BACKEND="
            f"{os.environ.get('REFIT_BACKEND', 'auto')}; {plan.seconds:.0f} s a point at "
            f"{', '.join(map(str, plan.levels))} connections.\n\n{report}",
        )
    for name, error in errors.items():
        print(f"contender {name} failed: {error.splitlines()[-1]}", file=sys.stderr)
    return 1 if errors else 0


def finite(value: object) -> object:
    """`value` with NaN and infinities as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def plot(runs: dict[str, ContenderResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no plot", flush=True)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs.values():
        for kind in ("1-text", "32-text"):
            pts = sorted((r for r in run.loads if r.kind == kind), key=lambda r: r.connections)
            if not pts:
                continue
            xs = [r.connections for r in pts]
            left.plot(xs, [r.texts_per_s for r in pts], marker="o", label=f"{run.name} {kind}")
            right.plot(xs, [r.p99_ms for r in pts], marker="o", label=f"{run.name} {kind}")
    for ax, title in ((left, "goodput (texts/s)"), (right, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
