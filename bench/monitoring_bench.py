"""What monitoring costs: the same load with refit's metrics and prediction log on and off.

    python bench/monitoring_bench.py [--seconds 20] [--rounds 2]

Uses the champion of the current BENTOML_HOME. Servers with monitoring on and off
are measured in alternation (on, off, on, off, ...) so that drift in the machine's
speed during the run affects both alike; the figure is the ratio of their summed
throughput. Target: monitoring on keeps at least 95% of the throughput.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import request_bodies, run_wrk, start_server
from record import record

HERE = Path(__file__).resolve().parent


LOADS = (("1-text", 64), ("32-text", 8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="refit-monbench-"))
    _, bodies = request_bodies(work, 4000)
    texts: dict[tuple[bool, str], float] = {}
    seconds: dict[tuple[bool, str], float] = {}
    p99: dict[tuple[bool, str], list[float]] = {}
    for round_ in range(args.rounds):
        for monitoring in (True, False):
            server = start_server(
                work / f"r{round_}-{monitoring}",
                batching=True,
                extra_env={"REFIT_MONITORING": str(monitoring).lower()},
            )
            try:
                for kind, connections in LOADS:
                    run_wrk(server.url, bodies[kind], connections=connections, seconds=3)
                    load = run_wrk(
                        server.url, bodies[kind], connections=connections, seconds=args.seconds
                    )
                    per = 32 if kind == "32-text" else 1
                    key = (monitoring, kind)
                    texts[key] = texts.get(key, 0.0) + load.ok_requests * per
                    seconds[key] = seconds.get(key, 0.0) + load.seconds
                    p99.setdefault(key, []).append(load.p99_ms)
                    print(
                        f"round {round_} monitoring={monitoring} {kind} c={connections}: "
                        f"{load.ok_requests * per / load.seconds:.0f} texts/s, "
                        f"p99 {load.p99_ms:.0f} ms, errors {load.errors}",
                        flush=True,
                    )
            finally:
                server.stop()
    lines = [
        "| load | monitoring on texts/s | off texts/s | on/off | p99 on ms | p99 off ms |",
        "|---|---|---|---|---|---|",
    ]
    for kind, connections in LOADS:
        on = texts[(True, kind)] / seconds[(True, kind)]
        off = texts[(False, kind)] / seconds[(False, kind)]
        lines.append(
            f"| {kind}, {connections} connections | {on:.0f} | {off:.0f} | "
            f"{on / off:.3f} | {max(p99[(True, kind)]):.0f} | "
            f"{max(p99[(False, kind)]):.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    record(
        "monitoring_bench",
        f"{args.rounds} alternating rounds of {args.seconds:.0f} s per load.\n\n{table}",
    )


if __name__ == "__main__":
    main()
