"""Running each contender of serve_bench: the raw model in-process, and servers.

Each server is started for its contender alone and stopped after its scenarios,
except the tiny pair, served together so that they can take turns at each load
point; a contender that fails is reported, and the others still run.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cpu_meter import CpuMeter
from harness import RunningServer, chunks, request_bodies, run_wrk, start_server
from raw import load_champion, raw_latency, raw_limit
from report import BACKENDS, FRONTED, SERVED, TINY_PAIR, Baselines
from scenarios import (
    ContenderResult,
    Plan,
    lone,
    median_by_rate,
    point,
    saturation,
    spaced_lone,
    spike_then_lone,
    sweep,
)

from refit.testing.haproxy import start_haproxy

HERE = Path(__file__).resolve().parent
# The configuration users run, in front of the server the bench starts.
HAPROXY_CONFIG = HERE.parent / "deploy" / "haproxy" / "haproxy.cfg"
CONTENDERS = ("raw", *SERVED, *BACKENDS, FRONTED, *TINY_PAIR)
WARMUP = 3  # lone requests sent first and discarded


def body(texts: list[str]) -> bytes:
    return json.dumps({"texts": texts}).encode()


@dataclass
class Inputs:
    """The bodies every served contender gets: wrk's files and the lone requests'."""

    paths: dict[str, Path]
    lone: list[bytes]
    lone_warmup: list[bytes]
    lone32: list[bytes]
    lone32_warmup: list[bytes]


def run_all(
    plan: Plan, chosen: list[str], work: Path, n_texts: int, quick: bool, legacy: bool
) -> tuple[Baselines, dict[str, ContenderResult], dict[str, str]]:
    """The baselines and each chosen contender's results; errors by contender."""
    from refit.service.settings import get_settings

    serving = get_settings().serving
    texts, paths = request_bodies(work / "bodies", n_texts)
    lone_texts = texts[WARMUP : WARMUP + plan.lone_n]
    batches = chunks(texts)[: plan.lone32_n]
    base = Baselines(budget_ms=float(serving.max_latency_ms), cores=os.cpu_count() or 1)
    if "raw" in chosen:
        measure_raw(base, texts, lone_texts, batches, quick, serving.resolved_torch_threads())
    inputs = Inputs(
        paths,
        [body([t]) for t in lone_texts],
        [body([t]) for t in texts[:WARMUP]],
        [body(b) for b in batches],
        [body(b) for b in chunks(texts)[-1:]],
    )
    runs: dict[str, ContenderResult] = {}
    errors: dict[str, str] = {}
    tiny = [name for name in chosen if name in TINY_PAIR]
    for name in chosen:
        if name == "raw" or name in tiny[1:]:
            continue
        started = time.monotonic()
        try:
            if name in TINY_PAIR:  # both at once, their turns interleaved
                home = build_tiny_home(work / "tiny-home")
                runs.update(run_tiny(tiny, plan, inputs, work, home, legacy))
            elif name == FRONTED:
                runs[name] = run_fronted(plan, inputs, work, legacy)
            else:
                runs[name] = run_served(name, plan, inputs, work, legacy)
        except Exception:  # one contender failing must not lose the others' results
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr, flush=True)
        print(f"== {name}: {time.monotonic() - started:.0f} s", flush=True)
    return base, runs, errors


def measure_raw(
    base: Baselines,
    texts: list[str],
    lone_texts: list[str],
    batches: list[list[str]],
    quick: bool,
    worker_threads: int,
) -> None:
    print("== raw: in-process limit and latency", flush=True)
    started = time.monotonic()
    cores = os.cpu_count() or 1
    classifier = load_champion(threads=cores)
    print(f"raw: {classifier.name} ({classifier.reason})", flush=True)
    base.raw = raw_limit(classifier, texts, sample=256 if quick else 768)
    print(base.raw.describe(), flush=True)
    base.all_cores = raw_latency(classifier, lone_texts, batches, cores)
    if cores != worker_threads:
        # The thread count is fixed when a backend loads (ONNX Runtime's sessions).
        del classifier
        gc.collect()
        classifier = load_champion(threads=worker_threads)
        base.worker = raw_latency(classifier, lone_texts, batches, worker_threads)
        print(base.all_cores.describe(), flush=True)
    else:
        base.worker = base.all_cores
    print(base.worker.describe(), flush=True)
    del classifier
    gc.collect()
    print(f"== raw: {time.monotonic() - started:.0f} s", flush=True)


def workers() -> int:
    from refit.service.settings import get_settings

    return get_settings().serving.resolved_workers()


def run_served(name: str, plan: Plan, inputs: Inputs, work: Path, legacy: bool) -> ContenderResult:
    # A backend's contender is the scheduler on that backend, whatever REFIT_BACKEND says.
    batching, env = (name, {})
    if name in BACKENDS:
        batching, env = "scheduler", {"REFIT_BACKEND": BACKENDS[name]}
    print(f"== {name}: REFIT_BATCHING={batching} {env or ''}", flush=True)
    result = ContenderResult(name, batching, "champion", workers())
    with started(work / name, batching, legacy, extra_env=env) as server:
        result.lone = lone(server.url, inputs.lone, inputs.lone_warmup)
        result.lone32 = lone(server.url, inputs.lone32, inputs.lone32_warmup)
        result.spaced = spaced_lone(server, inputs.lone, plan)
        print(
            f"lone p50 {result.lone.p50_ms:.1f} ms; 32-text {result.lone32.p50_ms:.0f} ms; "
            f"spaced {result.spaced.p50_ms:.1f} ms",
            flush=True,
        )
        result.loads = sweep(server, inputs.paths, plan.levels, plan, name)
        result.spike, result.after_spike = spike_then_lone(
            server, inputs.paths["1-text"], inputs.lone, plan, name
        )
        print(f"after spike p50 {result.after_spike.p50_ms:.1f} ms", flush=True)
        meter = CpuMeter({"server": server.process.pid})  # with its workers
        path = inputs.paths["1-text"]
        result.saturation = saturation(server, path, result.loads, plan, work, meter)
    batched = [r.server.mean_batch for r in result.loads if r.kind == "1-text"]
    if name == "off" and any(b > 1.05 for b in batched):
        print("WARNING: REFIT_BATCHING=off formed batches: is the variable ignored?", flush=True)
    return result


def run_fronted(plan: Plan, inputs: Inputs, work: Path, legacy: bool) -> ContenderResult:
    """The scheduler behind deploy/haproxy/haproxy.cfg (its defaults): the one-text
    sweep through HAProxy, to find saturation there, then the impolite points."""
    print(f"== {FRONTED}: REFIT_BATCHING=scheduler behind deploy/haproxy/haproxy.cfg", flush=True)
    result = ContenderResult(FRONTED, "scheduler", "champion", workers())
    with started(work / FRONTED, "scheduler", legacy) as server:
        proxy = start_haproxy({"r0": server.url}, work / FRONTED / "haproxy", config=HAPROXY_CONFIG)
        try:
            path = inputs.paths["1-text"]
            run_wrk(proxy.url, path, connections=8, seconds=plan.warmup_s)  # warm-up
            result.loads = [
                point(proxy, path, "1-text", c, plan.seconds, FRONTED) for c in plan.levels
            ]
            meter = CpuMeter({"server": server.process.pid, "haproxy": proxy.process.pid})
            result.saturation = saturation(proxy, path, result.loads, plan, work, meter)
        finally:
            proxy.stop()
    return result


def run_tiny(
    names: list[str], plan: Plan, inputs: Inputs, work: Path, home: Path, legacy: bool
) -> dict[str, ContenderResult]:
    """The tiny-model contenders, all served at once: each load point is run
    `plan.tiny_repeats` times, the servers taking turns, and the median by requests/s
    is reported, so that a slow spell of the machine falls on both."""
    path = inputs.paths["1-text"]
    results = {n: ContenderResult(n, n.removeprefix("tiny-"), "tiny", workers()) for n in names}
    with ExitStack() as stack:
        servers = {}
        for name, result in results.items():
            print(f"== {name}: tiny model, REFIT_BATCHING={result.mode}", flush=True)
            servers[name] = stack.enter_context(started(work / name, result.mode, legacy, home))
            result.lone = lone(servers[name].url, inputs.lone, inputs.lone_warmup)
            run_wrk(servers[name].url, path, connections=8, seconds=plan.warmup_s)  # discarded
        for _ in range(plan.tiny_repeats):
            for c in plan.tiny_levels:
                for name, server in servers.items():
                    load = point(server, path, "1-text", c, plan.seconds, name)
                    results[name].repeats.append(load)
    for result in results.values():
        for c in plan.tiny_levels:
            result.loads.append(median_by_rate([r for r in result.repeats if r.connections == c]))
    return results


@contextmanager
def started(
    work: Path,
    batching: str,
    legacy: bool,
    home: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """A server of `home`'s champion (default: this BENTOML_HOME's) in `batching` mode,
    stopped when the block ends, whatever happened in it."""
    server = start_server(work, batching=batching, home=home, legacy=legacy, extra_env=extra_env)
    try:
        yield server
    finally:
        server.stop()


def build_tiny_home(home: Path) -> Path:
    """A BENTOML_HOME with the tiny random model as champion (in a subprocess: BentoML
    fixes its home at import)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("REFIT_STATE_DIR", None)
    cmd = [sys.executable, str(HERE / "model_home.py"), str(home), "--base", "tiny"]
    subprocess.run(cmd, env=env, check=True, timeout=300)
    return home
