"""serve_bench's tables: the measurements, the ratios to the baselines of the same
run, and the issue's targets checked against them. Pure functions of the results."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from raw import RawLatency, RawResult
from scenarios import ContenderResult, LoneResult, SaturationResult

SERVED = ("scheduler", "bentoml", "off")  # the champion's contenders, in table order
FRONTED = "haproxy"  # the scheduler behind deploy/haproxy/haproxy.cfg
TORCH = "torch"  # the scheduler with REFIT_BACKEND=torch: what `auto` is measured against
# The scheduler on one named backend each (contender: REFIT_BACKEND), whatever `auto`
# picks: torch is the baseline, and each ONNX Runtime graph is measured served against it.
BACKENDS = {TORCH: "torch", "onnx-fp32": "onnx", "onnx-int8": "onnx-int8"}
TINY_PAIR = ("tiny-scheduler", "tiny-bentoml")
Add = Callable[..., None]  # (target, measured, ok, format spec)


@dataclass
class Baselines:
    """The in-process figures: None where the raw contender was not run."""

    raw: RawResult | None = None
    worker: RawLatency | None = None  # torch threads of one server worker
    all_cores: RawLatency | None = None
    budget_ms: float = math.nan  # REFIT_MAX_LATENCY_MS
    cores: int = 1


def div(a: float | None, b: float | None) -> float:
    """a / b, NaN when either is missing or b is not positive."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b <= 0:
        return math.nan
    return a / b


def fmt(value: float | None, spec: str = ".0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def _texts(c: ContenderResult | None, kind: str, connections: int) -> float | None:
    load = c.load(kind, connections) if c is not None else None
    return load.texts_per_s if load is not None else None


def p50(r: LoneResult | None) -> float | None:
    return r.p50_ms if r is not None else None


def _lone(runs: dict[str, ContenderResult]) -> float | None:
    torch = runs.get(TORCH)
    return p50(torch.lone) if torch is not None else None


def latencies(base: Baselines, worker: str) -> list[tuple[str, RawLatency | None]]:
    """The raw latencies by label; all cores only where they differ from one worker's."""
    if base.all_cores is base.worker:
        return [(worker, base.worker)]
    return [(worker, base.worker), ("all cores", base.all_cores)]


def ratios(base: Baselines, runs: dict[str, ContenderResult]) -> dict[str, float]:
    """Each contender against the baselines measured in the same run."""
    out: dict[str, float] = {}
    raw = base.raw.best_sorted_texts_per_s if base.raw else None
    sched, bento, off = (runs.get(n) for n in SERVED)
    levels = sorted({r.connections for c in runs.values() for r in c.loads})
    for kind in ("1-text", "32-text"):
        for c in levels:
            for name in SERVED:
                out[f"{name} {kind} c={c} served/raw"] = div(_texts(runs.get(name), kind, c), raw)
            out[f"{kind} c={c} scheduler/bentoml"] = div(
                _texts(sched, kind, c), _texts(bento, kind, c)
            )
            out[f"{kind} c={c} scheduler/off"] = div(_texts(sched, kind, c), _texts(off, kind, c))
            out[f"{kind} c={c} scheduler/torch"] = div(
                _texts(sched, kind, c), _texts(runs.get(TORCH), kind, c)
            )
    out["lone p50 scheduler/torch"] = div(p50(sched.lone if sched else None), _lone(runs))
    for name in (n for n in BACKENDS if n != TORCH and n in runs):
        for c in levels:
            out[f"1-text c={c} {name}/torch"] = div(
                _texts(runs[name], "1-text", c), _texts(runs.get(TORCH), "1-text", c)
            )
        out[f"lone p50 {name}/torch"] = div(p50(runs[name].lone), _lone(runs))
    for c in levels:
        fronted = _texts(runs.get(FRONTED), "1-text", c)
        out[f"{FRONTED} 1-text c={c} served/raw"] = div(fronted, raw)
    if (front := runs.get(FRONTED)) is not None and front.saturation is not None:
        out[f"{FRONTED} goodput 8x / saturation"] = front.saturation.goodput_ratio
        out[f"{FRONTED} server CPU per 2xx, 8x / saturation"] = front.saturation.server_cpu_ratio
    for name in SERVED:
        run = runs.get(name)
        if run is None:
            continue
        for label, lat in latencies(base, "worker threads"):
            b1 = lat.batch1_p50_ms if lat else None
            out[f"{name} lone p50 / raw batch-1 ({label})"] = div(p50(run.lone), b1)
            out[f"{name} after-spike p50 / raw batch-1 ({label})"] = div(p50(run.after_spike), b1)
            out[f"{name} spaced idle p50 / raw batch-1 ({label})"] = div(p50(run.spaced), b1)
            b32 = lat.batch32_p50_ms if lat else None
            out[f"{name} lone-32 p50 / raw batch-32 ({label})"] = div(p50(run.lone32), b32)
        # The spike's own effect: the same spaced series after it and on an idle server.
        out[f"{name} after-spike p50 / spaced idle p50"] = div(
            p50(run.after_spike), p50(run.spaced)
        )
        if run.saturation is not None:
            out[f"{name} goodput 8x / saturation"] = run.saturation.goodput_ratio
            out[f"{name} server CPU per 2xx, 8x / saturation"] = run.saturation.server_cpu_ratio
    tiny_s, tiny_b = (runs.get(n) for n in TINY_PAIR)
    for c in sorted({r.connections for n in TINY_PAIR if n in runs for r in runs[n].loads}):
        ts, tb = (x.load("1-text", c) if x else None for x in (tiny_s, tiny_b))
        out[f"tiny 1-text c={c} scheduler/bentoml req/s"] = div(
            ts.req_per_s if ts else None, tb.req_per_s if tb else None
        )
    return out


class Target(NamedTuple):
    target: str
    shown: str  # `measured`, formatted for the table
    verdict: str  # pass, FAIL, n/a (not measured)
    measured: float


def _check(measured: float, ok: bool) -> tuple[float, str]:
    return measured, ("n/a" if math.isnan(measured) else ("pass" if ok else "FAIL"))


def targets(base: Baselines, runs: dict[str, ContenderResult]) -> list[Target]:
    """(target, measured, pass/FAIL/n/a) for refit's scheduler."""
    r = ratios(base, runs)
    rows: list[Target] = []

    def add(target: str, measured: float, ok: bool, spec: str = ".2f") -> None:
        value, verdict = _check(measured, ok)
        rows.append(Target(target, fmt(value, spec), verdict, value))

    for key, label in (
        ("scheduler lone p50 / raw batch-1 (worker threads)", "lone one-text p50, idle"),
        (
            "scheduler after-spike p50 / raw batch-1 (worker threads)",
            "lone one-text p50, 5 s after",
        ),
        ("scheduler lone-32 p50 / raw batch-32 (worker threads)", "lone 32-text p50"),
    ):
        v = r.get(key, math.nan)
        add(f"{label} <= 1.3x raw", v, v <= 1.3)
    v = r.get("scheduler 1-text c=64 served/raw", math.nan)
    add("one-text c=64 >= 0.90 of raw sorted limit", v, v >= 0.90)
    v = r.get("1-text c=64 scheduler/bentoml", math.nan)
    add("one-text c=64 >= 2.5x BentoML batching", v, v >= 2.5)
    _overload_targets(add, base, runs.get("scheduler"), "")
    if FRONTED in runs:  # optional: the scheduler's own figures above stand alone
        _overload_targets(add, base, runs[FRONTED], "behind HAProxy: ")
    tiny = [v for k, v in r.items() if k.startswith("tiny ")]
    v = min(tiny) if tiny else math.nan
    add("tiny model >= 3x BentoML req/s (worst load)", v, v >= 3.0)
    _engine_targets(add, r, v)
    return rows


def _engine_targets(add: Add, r: dict[str, float], tiny_worst: float) -> None:
    """The serving-engine issue's targets: the chosen backend (REFIT_BACKEND, `auto` by
    default) against the torch backend and BentoML's batching, in the same run."""
    v = r.get("1-text c=64 scheduler/torch", math.nan)
    add("one-text c=64 >= 1.4x the torch backend", v, v >= 1.4)
    v = r.get("1-text c=64 scheduler/bentoml", math.nan)
    add("one-text c=64 >= 1.3x BentoML batching", v, v >= 1.3)
    v = r.get("lone p50 scheduler/torch", math.nan)
    add("lone one-text p50, idle <= 0.6x the torch backend", v, v <= 0.6)
    add("tiny model >= 1.5x BentoML req/s (worst of c=64, 256)", tiny_worst, tiny_worst >= 1.5)


def _overload_targets(add: Add, base: Baselines, run: ContenderResult | None, where: str) -> None:
    """The 8x-saturation targets for one contender; `where` prefixes each target."""
    sat = run.saturation if run is not None else None
    v = sat.goodput_ratio if sat else math.nan
    add(f"{where}goodput at 8x >= 0.9 of saturation", v, v >= 0.9)
    _saturation_targets(add, base, sat, where)
    fivexx = float(sum(x.status_5xx for x in run.every_load())) if run else math.nan
    if sat is not None:
        fivexx += sat.probe_saturation.get("status_5xx", 0) + sat.probe_8x.get("status_5xx", 0)
    name = run.name if run else "scheduler"
    add(f"{where}zero other 5xx (every {name} load)", fivexx, fivexx == 0, ".0f")


def _saturation_targets(
    add: Add, base: Baselines, sat: SaturationResult | None, where: str = ""
) -> None:
    if sat is None:
        for t in ("accepted p99 at 8x", "refusals with Retry-After", "429 answered p99"):
            add(where + t, math.nan, False)
        return
    at8 = sat.at_8x
    pass_ms = at8.server.mean_pass_ms
    limit = base.budget_ms + pass_ms
    add(
        f"{where}accepted p99 at 8x (upper bound) <= budget + one pass ({fmt(limit)} ms)",
        at8.accepted_p99_hi_ms,
        at8.accepted_p99_hi_ms <= limit,
        ".0f",
    )
    missing = float(at8.no_retry_after + sat.at_saturation.no_retry_after)
    missing += sat.probe_8x.get("no_retry_after", 0) + sat.probe_saturation.get("no_retry_after", 0)
    add(f"{where}refusals without Retry-After (429/503)", missing, missing == 0, ".0f")
    p99 = sat.probe_8x.get("429_p99_ms", math.nan)
    add(
        f"{where}429 answered p99 <= 50 ms (probe, n={sat.probe_8x.get('status_429', 0):.0f})",
        p99,
        p99 <= 50,
        ".1f",
    )
