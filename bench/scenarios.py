"""The scenarios serve_bench runs against one started server (one contender).

Every load loop is bounded in count and in time, and loads only the server's
127.0.0.1 address. Durations and counts come from a `Plan`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from cpu_meter import CpuMeter
from harness import LoadResult, run_wrk
from probe import Sample, percentile, series, summarise
from server_metrics import snapshot, wait_idle

HERE = Path(__file__).resolve().parent
KINDS = {"1-text": 1, "32-text": 32}


class Endpoint(Protocol):
    """Where the load goes: a server (harness.RunningServer) or a proxy in front of one."""

    url: str


@dataclass
class Plan:
    """How long and how many: full run defaults (about 20 minutes on 2 cores)."""

    levels: list[int] = field(default_factory=lambda: [1, 8, 64, 256, 1024])
    seconds: float = 8.0  # per load point
    warmup_s: float = 2.0  # per request kind, discarded
    lone_n: int = 50  # sequential lone one-text requests, idle server
    lone32_n: int = 10  # sequential lone 32-text requests
    spike_connections: int = 64
    spike_s: float = 30.0
    after_spike_wait_s: float = 5.0
    after_spike_s: float = 20.0  # lone requests spread over this long
    after_spike_n: int = 40
    saturation_s: float = 10.0  # each of the two impolite points
    saturation: int | None = None  # connections; None: found from the sweep
    max_connections: int = 2048  # cap on 8x saturation
    probe_rate: float = 10.0  # probe requests a second during the impolite points
    tiny_levels: list[int] = field(default_factory=lambda: [64, 256])
    # Each tiny point this many times, the two servers' turns interleaved: one run of
    # each was 0.85-1.45 of the other across runs of the same code on this machine.
    tiny_repeats: int = 3

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            levels=[8, 64],
            seconds=4.0,
            warmup_s=1.0,
            lone_n=15,
            lone32_n=4,
            spike_s=8.0,
            after_spike_s=6.0,
            after_spike_n=12,
            saturation_s=5.0,
            tiny_levels=[64, 256],  # both points the engine issue targets
        )


@dataclass
class LoneResult:
    """Sequential requests, one at a time: latencies in ms, in order of sending."""

    samples: list[Sample]

    @property
    def ok_ms(self) -> list[float]:
        return [s.ms for s in self.samples if 200 <= s.status < 300]

    @property
    def p50_ms(self) -> float:
        return percentile(self.ok_ms, 50)

    @property
    def p90_ms(self) -> float:
        return percentile(self.ok_ms, 90)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.samples if not 200 <= s.status < 300)

    def first(self, n: int = 5) -> list[float]:
        return [round(s.ms, 1) for s in self.samples[:n]]

    def as_dict(self) -> dict:
        return {
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "failed": self.failed,
            "first_ms": self.first(),
            "samples": [asdict(s) for s in self.samples],
        }


@dataclass
class SaturationResult:
    """Impolite clients at saturation and at 8x, with the probe's view of each."""

    level: int  # connections at saturation
    found_from: list[tuple[int, float]]  # (connections, one-text goodput) of the sweep
    at_saturation: LoadResult
    at_8x: LoadResult
    probe_saturation: dict[str, float]
    probe_8x: dict[str, float]

    @property
    def goodput_ratio(self) -> float:
        base = self.at_saturation.texts_per_s
        return self.at_8x.texts_per_s / base if base > 0 else float("nan")

    @property
    def server_cpu_ratio(self) -> float:
        """The server's CPU time per answered request at 8x over the same at saturation:
        about 1 when overload costs the server nothing beyond the work it still does."""
        at8, base = (cpu_ms_per_ok(x, "server") for x in (self.at_8x, self.at_saturation))
        return at8 / base if base > 0 else float("nan")


def cpu_ms_per_ok(load: LoadResult, part: str) -> float:
    """CPU milliseconds `part` (a process tree) spent per 2xx answer over `load`; NaN
    where not measured."""
    if part not in load.cpu_s or load.ok_requests <= 0:
        return float("nan")
    return 1000 * load.cpu_s[part] / load.ok_requests


def saturation_level(points: list[tuple[int, float]], share: float = 0.95) -> int | None:
    """The fewest connections whose goodput reaches `share` of the sweep's best: where
    throughput stops rising. None without points."""
    if not points:
        return None
    best = max(g for _, g in points)
    return min(c for c, g in points if g >= share * best)


def lone(url: str, measured: list[bytes], warmup: list[bytes]) -> LoneResult:
    """Each of `measured` sent alone, one after another (after `warmup`, discarded);
    bounded at 5 minutes."""
    series(url, warmup, max_seconds=60)
    return LoneResult(series(url, measured, max_seconds=300))


def point(
    server: Endpoint,
    path: Path,
    kind: str,
    connections: int,
    seconds: float,
    tag: str,
    *,
    polite: bool = True,
    idle: bool = True,
) -> LoadResult:
    """One wrk run, with the server's metrics over it; on an idle server unless `idle`
    is False."""
    if idle:
        wait_idle(server.url)
    before = snapshot(server.url)
    load = run_wrk(server.url, path, connections=connections, seconds=seconds, polite=polite)
    load.attach(tag, kind, connections, snapshot(server.url).since(before), KINDS[kind])
    print(load.row(), flush=True)
    return load


def sweep(
    server: Endpoint, paths: dict[str, Path], levels: list[int], plan: Plan, tag: str
) -> list[LoadResult]:
    """Each request kind at each connection count, politely (Retry-After honoured)."""
    results = []
    for kind, path in paths.items():
        run_wrk(server.url, path, connections=8, seconds=plan.warmup_s)  # warm-up, discarded
        for connections in levels:
            results.append(point(server, path, kind, connections, plan.seconds, tag))
    return results


def spike_then_lone(
    server: Endpoint, path: Path, measured: list[bytes], plan: Plan, tag: str
) -> tuple[LoadResult, LoneResult]:
    """A spike of one-text requests, a pause, then `spaced_lone` requests."""
    spike = point(server, path, "1-text", plan.spike_connections, plan.spike_s, f"{tag} spike")
    time.sleep(plan.after_spike_wait_s)
    return spike, spaced_lone(server, measured, plan)


def spaced_lone(server: Endpoint, measured: list[bytes], plan: Plan) -> LoneResult:
    """Lone requests (the first of `measured`, the idle scenario's texts) spread over
    `plan.after_spike_s`, as after the spike. On an idle server, the same series tells
    what the spike leaves behind from what the pauses between requests cost alone."""
    spacing = plan.after_spike_s / max(1, plan.after_spike_n)
    picked = [measured[i % len(measured)] for i in range(plan.after_spike_n)]
    return LoneResult(
        series(server.url, picked, spacing_s=spacing, max_seconds=plan.after_spike_s + 60)
    )


def probed_point(
    server: Endpoint,
    path: Path,
    connections: int,
    plan: Plan,
    tag: str,
    work: Path,
    meter: CpuMeter | None = None,
) -> tuple[LoadResult, dict[str, float]]:
    """An impolite one-text point, with the probe process timing requests inside it,
    and the CPU time of `meter`'s process trees over the load."""
    wait_idle(server.url)
    meter = meter or CpuMeter({})
    start_after = min(1.5, plan.saturation_s * 0.2)
    probe_s = max(1.0, plan.saturation_s - start_after - 0.5)
    out = work / f"probe-{tag}-{connections}.json".replace(" ", "_")
    cmd = [sys.executable, str(HERE / "probe.py"), server.url, str(path)]
    cmd += ["--seconds", f"{probe_s}", "--rate", f"{plan.probe_rate}"]
    cmd += ["--start-after", f"{start_after}", "--out", str(out)]
    probe = subprocess.Popen(cmd)
    try:
        meter.start()
        load = point(server, path, "1-text", connections, plan.saturation_s, tag, polite=False)
        load.cpu_s.update(meter.read())
        probe.wait(timeout=probe_s + start_after + 150)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    samples = [Sample(**s) for s in json.loads(out.read_text())] if out.exists() else []
    return load, summarise(samples)


def saturation(
    server: Endpoint,
    path: Path,
    sweep_loads: list[LoadResult],
    plan: Plan,
    work: Path,
    meter: CpuMeter | None = None,
) -> SaturationResult:
    """Find saturation from the one-text sweep, then overload it 8x with a client
    that ignores Retry-After; `meter` times the server's (and a proxy's) CPU."""
    found = sorted(
        (r.connections, r.texts_per_s) for r in sweep_loads if r.kind == "1-text" and r.polite
    )
    level = plan.saturation or saturation_level(found) or 64
    over = min(8 * level, plan.max_connections)
    tag = sweep_loads[0].tag if sweep_loads else "served"
    at_sat, probe_sat = probed_point(server, path, level, plan, f"{tag} impolite", work, meter)
    at_8x, probe_8x = probed_point(server, path, over, plan, f"{tag} impolite", work, meter)
    return SaturationResult(level, found, at_sat, at_8x, probe_sat, probe_8x)


def median_by_rate(loads: list[LoadResult]) -> LoadResult:
    """The repeat of a load point with the median requests/s (the upper one of two)."""
    return sorted(loads, key=lambda load: load.req_per_s)[len(loads) // 2]


@dataclass
class ContenderResult:
    """Everything measured on one server: a serving path, on the champion or the tiny model."""

    name: str  # scheduler, bentoml, off, tiny-scheduler, tiny-bentoml
    mode: str  # REFIT_BATCHING
    model: str  # "champion" or "tiny"
    workers: int
    loads: list[LoadResult] = field(default_factory=list)
    lone: LoneResult | None = None
    lone32: LoneResult | None = None
    spaced: LoneResult | None = None  # idle, spaced as after the spike
    spike: LoadResult | None = None
    after_spike: LoneResult | None = None
    saturation: SaturationResult | None = None
    repeats: list[LoadResult] = field(default_factory=list)  # every repeat of `loads`

    def load(self, kind: str, connections: int) -> LoadResult | None:
        for r in self.loads:
            if (r.kind, r.connections) == (kind, connections):
                return r
        return None

    def every_load(self) -> list[LoadResult]:
        extra = [self.spike] if self.spike else []
        if self.saturation is not None:
            extra += [self.saturation.at_saturation, self.saturation.at_8x]
        return [*self.loads, *extra]

    def to_json(self) -> dict:
        def lone_json(r: LoneResult | None) -> dict | None:
            return r.as_dict() if r is not None else None

        sat = self.saturation
        return {
            "name": self.name,
            "mode": self.mode,
            "model": self.model,
            "workers": self.workers,
            "loads": [_load_json(r) for r in self.loads],
            "lone": lone_json(self.lone),
            "lone32": lone_json(self.lone32),
            "spaced": lone_json(self.spaced),
            "spike": _load_json(self.spike) if self.spike else None,
            "after_spike": lone_json(self.after_spike),
            "saturation": None
            if sat is None
            else {
                "level": sat.level,
                "found_from": sat.found_from,
                "at_saturation": _load_json(sat.at_saturation),
                "at_8x": _load_json(sat.at_8x),
                "probe_saturation": sat.probe_saturation,
                "probe_8x": sat.probe_8x,
                "goodput_ratio": sat.goodput_ratio,
                "server_cpu_ratio": sat.server_cpu_ratio,
            },
        }


def _load_json(r: LoadResult) -> dict:
    out = asdict(r)
    out.update(
        texts_per_s=r.texts_per_s,
        req_per_s=r.req_per_s,
        mean_batch=r.server.mean_batch,
        padding_efficiency=r.server.padding_efficiency,
        mean_queue_wait_ms=r.server.mean_queue_wait_ms,
        mean_pass_ms=r.server.mean_pass_ms,
    )
    return out
