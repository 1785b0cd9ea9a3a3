"""Where a one-text request's CPU goes, from HTTP to answer: a sampling profile of the
server's workers under load, by part of the stack.

    python bench/request_profile.py                  # tiny model, scheduler and BentoML's batching
    python bench/request_profile.py --modes scheduler --connections 64 --seconds 10

Each mode serves the tiny model (`bench/model_home.py --base tiny`, the overhead proxy of
`serve_bench.py`: a forward pass costs next to nothing, so what is left is serving) with
two workers. After a warm-up, wrk sends one-text requests for --seconds while py-spy
samples every worker, counting only the thread that holds the GIL: in a Python worker
that is where CPU goes, since one thread at a time runs Python and the model's own C
code shows in its leaf frame. Each sample is put down to the part of the stack whose
code it was in (its leaf frame's file) and to the thread it was on (the event loop,
refit's model thread, the prediction log's writer, other threads).

The table gives, per part, GIL-held milliseconds per answered request, and its ratio
to the same part under BentoML's batching in the same run. Sampling at --rate per
second over --seconds resolves parts down to about 1% of the total; the load itself
runs slower while py-spy reads the workers (it does not stop them: --nonblocking).

py-spy comes with the `bench` extra; it reads other processes' memory, so it needs the same user
and a ptrace-permitting kernel (a container may need CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from contenders import build_tiny_home
from harness import request_bodies, run_wrk, start_server
from record import publish

# Leaf-frame file -> part, first match wins.
PARTS: tuple[tuple[str, str], ...] = (
    (r"uvicorn|httptools|uvloop|h11", "HTTP server (uvicorn)"),
    (r"prometheus_client", "Prometheus client"),
    (r"logging", "Python logging (access log)"),
    (r"_?bentoml\w*", "BentoML"),  # its package and its private ones
    (r"starlette|anyio", "Starlette and anyio"),
    (r"pydantic|pydantic_core", "pydantic"),
    (r"service/http|core/compat", "refit HTTP layers"),
    (r"service/scheduling|core/loop_handoff", "refit scheduler"),
    (r"service", "refit service, other"),
    (r"monitoring|sqlalchemy|sqlite3", "prediction log and metrics (refit)"),
    (r"transformers|tokenizers|core/token_ids|core/backends/encoding", "tokenising"),
    (r"torch|onnxruntime|core/backends", "model pass"),
    (r"numpy", "numpy"),
    (r"asyncio", "asyncio"),
    (r"threading\.py|queue\.py|concurrent", "threads (locks, conditions)"),
)

THREADS: tuple[tuple[str, str], ...] = (
    ("Scheduler._run", "model thread"),
    ("LogWriter.run", "log writer"),
    ("Server.run", "event loop"),
)


@dataclass
class Profile:
    mode: str
    requests: int = 0
    seconds: float = 0.0
    samples: collections.Counter[str] = field(default_factory=collections.Counter)
    threads: collections.Counter[str] = field(default_factory=collections.Counter)

    def ms_per_request(self, samples: int, rate: int) -> float:
        return 1000.0 * samples / rate / max(self.requests, 1)


def part_of(frame: str) -> str:
    """The part a frame's code belongs to. py-spy names files relative to the folder on
    sys.path they were found in ("uvicorn/server.py", "service/http/tokens.py")."""
    path = frame.rsplit("(", 1)[-1]
    return next(
        (part for pattern, part in PARTS if re.search(rf"(^|/)({pattern})(/|\.py|:)", path)),
        "other",
    )


def thread_of(frames: list[str]) -> str:
    return next(
        (name for marker, name in THREADS if any(marker in f for f in frames)), "other threads"
    )


def read_raw(path: Path, profile: Profile) -> None:
    """Add py-spy's raw (collapsed) stacks from `path` to `profile`."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        profile.samples[part_of(frames[-1])] += int(count)
        profile.threads[thread_of(frames)] += int(count)


def profile_mode(mode: str, args: argparse.Namespace, home: Path, work: Path) -> Profile:
    import psutil

    _, bodies = request_bodies(work / "bodies", 2000)
    server = start_server(work / mode, batching=mode, home=home)
    profile = Profile(mode)
    try:
        run_wrk(server.url, bodies["1-text"], connections=8, seconds=3)  # warm-up
        workers = [p.pid for p in psutil.Process(server.process.pid).children(recursive=True)]
        spies = []
        for pid in workers:
            out = work / f"{mode}-{pid}.txt"
            cmd = ["py-spy", "record", "--pid", str(pid), "--duration", str(args.seconds)]
            cmd += ["--rate", str(args.rate), "--format", "raw", "--output", str(out)]
            cmd += ["--gil", "--nonblocking"]
            spies.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL), out))
        load = run_wrk(
            server.url, bodies["1-text"], connections=args.connections, seconds=args.seconds
        )
        for spy, out in spies:
            spy.wait(timeout=args.seconds + 60)
            if spy.returncode != 0 or not out.exists():
                raise RuntimeError(f"py-spy failed on a worker (exit {spy.returncode})")
            read_raw(out, profile)
        profile.requests, profile.seconds = load.requests, load.seconds
    finally:
        server.stop()
    return profile


def table(profiles: list[Profile], rate: int) -> str:
    """Parts, then threads: GIL-held ms per answered request by mode, and the ratio of
    the scheduler's to BentoML's batching's where both ran."""
    by_mode = {p.mode: p for p in profiles}
    compare = "scheduler" in by_mode and "bentoml" in by_mode
    head = " | ".join(f"{p.mode} ms/request" for p in profiles)
    head += " | scheduler / bentoml |" if compare else " |"
    rule = "|---" * (len(profiles) + 1 + compare) + "|"

    def rows(pick: str) -> list[str]:
        counts = {p.mode: getattr(p, pick) for p in profiles}
        keys = sorted(
            {k for c in counts.values() for k in c}, key=lambda k: -counts[profiles[0].mode][k]
        )
        counts = {m: c + collections.Counter({"all": sum(c.values())}) for m, c in counts.items()}
        out = []
        for key in [*keys, "all"]:
            ms = {m: by_mode[m].ms_per_request(counts[m][key], rate) for m in by_mode}
            cells = [f"{ms[p.mode]:.3f}" for p in profiles]
            if compare:
                cells.append(f"{ms['scheduler'] / ms['bentoml']:.2f}" if ms["bentoml"] else "–")
            out.append(f"| {key} | {' | '.join(cells)} |")
        return out

    lines = [f"| part of the stack | {head}", rule, *rows("samples")]
    lines += ["", f"| thread | {head}", rule, *rows("threads")]
    rates = ", ".join(f"{p.mode} {p.requests / max(p.seconds, 1e-9):.0f}/s" for p in profiles)
    lines.append(f"\nRequests answered while sampled (py-spy slows them): {rates}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="scheduler,bentoml")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="samples per second per worker")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    with tempfile.TemporaryDirectory(prefix="refit-profile-") as tmp:
        work = Path(tmp)
        home = build_tiny_home(work / "tiny-home")
        profiles = [profile_mode(mode, args, home, work) for mode in modes]
    text = (
        f"Tiny model, one-text requests at {args.connections} connections for {args.seconds} s, "
        f"py-spy at {args.rate} samples/s per worker, GIL-held samples only; two workers.\n\n"
        + table(profiles, args.rate)
    )
    publish("request_profile", text, keep=not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
