"""serve_bench's report as Markdown: the measurements, ratios and targets of `report`."""

from __future__ import annotations

from collections.abc import Iterable

from harness import LoadResult
from report import TINY_PAIR, Baselines, fmt, latencies, p50, ratios, targets
from scenarios import ContenderResult, SaturationResult, cpu_ms_per_ok


def _row(*cells: object) -> str:
    """One row of a Markdown table."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def load_rows(loads: Iterable[LoadResult]) -> list[str]:
    return [
        _row(
            r.tag,
            r.kind,
            r.connections,
            "polite" if r.polite else "impolite",
            fmt(r.texts_per_s),
            fmt(r.req_per_s, ".1f"),
            fmt(r.p50_ms),
            fmt(r.p99_ms),
            r.errors,
            r.status_429,
            r.status_503,
            fmt(r.server.mean_batch, ".1f"),
            fmt(r.server.padding_efficiency, ".2f"),
        )
        for r in loads
    ]


def _raw_lines(base: Baselines) -> list[str]:
    lines = []
    if base.raw is not None:
        lines.append(
            f"Raw in-process limit (all {base.cores} cores): length-sorted "
            f"{base.raw.best_sorted_texts_per_s:.0f} texts/s, arrival order "
            f"{base.raw.best_arrival_texts_per_s:.0f}; best {base.raw.best_texts_per_s:.0f} "
            f"({base.raw.best_setting})."
        )
    for label, lat in latencies(base, "one worker's threads"):
        if lat is not None:
            lines.append(
                f"Raw latency, {label} ({lat.threads}): batch 1 p50 {lat.batch1_p50_ms:.1f} ms "
                f"per text; the lone 32-text requests' texts p50 {lat.batch32_p50_ms:.0f} ms."
            )
    return lines


def _lone_row(c: ContenderResult) -> str:
    idle, b32, spaced, after = c.lone, c.lone32, c.spaced, c.after_spike
    failed = sum(x.failed for x in (idle, b32, spaced, after) if x is not None)
    first = ", ".join(f"{x:.0f}" for x in after.first()) if after else "–"
    return _row(
        c.name,
        fmt(p50(idle), ".1f"),
        fmt(idle.p90_ms if idle else None, ".1f"),
        fmt(p50(b32)),
        fmt(p50(spaced), ".1f"),
        fmt(p50(after), ".1f"),
        fmt(after.p90_ms if after else None, ".1f"),
        first,
        failed,
    )


def _saturation_row(name: str, s: SaturationResult) -> str:
    a, b, p = s.at_saturation, s.at_8x, s.probe_8x
    return _row(
        name,
        s.level,
        fmt(a.texts_per_s),
        b.connections,
        fmt(b.texts_per_s),
        fmt(s.goodput_ratio, ".2f"),
        *(fmt(_cores(b, part), ".2f") for part in ("wrk", "server", "haproxy")),
        f"{fmt(cpu_ms_per_ok(a, 'server'), '.1f')} → {fmt(cpu_ms_per_ok(b, 'server'), '.1f')}",
        f"{fmt(b.accepted_p99_lo_ms)}–{fmt(b.accepted_p99_hi_ms)}",
        fmt(p.get("ok_p99_ms")),
        b.status_429,
        b.status_503,
        b.status_5xx,
        b.no_retry_after,
        f"{fmt(p.get('429_p99_ms'), '.1f')} ({p.get('status_429', 0):.0f})",
        f"{fmt(p.get('503_p99_ms'))} ({p.get('status_503', 0):.0f})",
        f"{p.get('no_retry_after', 0):.0f}",
    )


def _cores(load: LoadResult, part: str) -> float | None:
    """Cores `part` kept busy on average over `load`; None where not measured."""
    if part not in load.cpu_s or load.seconds <= 0:
        return None
    return load.cpu_s[part] / load.seconds


def _tiny_rows(base: Baselines, runs: dict[str, ContenderResult]) -> list[str]:
    return [
        _row(
            name,
            r.connections,
            fmt(r.req_per_s),
            _repeats(runs[name], r.connections),
            fmt(r.req_per_s / base.cores),
            fmt(r.texts_per_s / base.cores),
            fmt(r.p99_ms),
            fmt(r.server.mean_batch, ".1f"),
        )
        for name in TINY_PAIR
        for r in (runs[name].loads if name in runs else [])
    ]


def _repeats(run: ContenderResult, connections: int) -> str:
    """Requests/s of every repeat of one load point, in the order they ran."""
    return ", ".join(fmt(x.req_per_s) for x in run.repeats if x.connections == connections)


def _table(intro: str, columns: list[str], rows: list[str]) -> list[str]:
    """A Markdown table after a blank line and `intro` (if any); nothing without rows."""
    if not rows:
        return []
    head = ["", intro, ""] if intro else [""]
    return [*head, _row(*columns), "|" + "---|" * len(columns), *rows]


LOAD_COLUMNS = "contender,request,conc.,client,texts/s,req/s,p50 ms,p99 ms,errors,429,503"
LONE_COLUMNS = (
    "contender,idle p50,idle p90,32-text p50,idle spaced p50,after spike p50,p90,"
    "after spike first 5,failed"
)
TINY_COLUMNS = (
    "contender,conc.,req/s (median),each repeat,req/s/core,texts/s/core,p99 ms,texts/pass"
)
SATURATION_INTRO = (
    "8x saturation, one-text requests, a client that ignores Retry-After. Accepted p99: "
    "bounds from wrk's latencies of all answers, assuming 429s come faster than any 2xx. "
    "Probe: a separate process timing each of its requests (about 10 a second, open "
    "loop) during the 8x point. Cores: each part's CPU time over the 8x point's length, "
    "all from the same cores (wrk: the load generator; server: bentoml serve and its "
    "workers; HAProxy, where in front)."
)
SATURATION_COLUMNS = (
    "contender,sat. conns,goodput,8x conns,goodput,8x/sat,wrk cores,server cores,HAProxy cores,"
    "server CPU ms per 2xx (sat. → 8x),accepted p99 ms,probe 2xx p99,"
    "429,503,other 5xx,no Retry-After,probe 429 p99 (n),probe 503 p99 (n),"
    "probe no Retry-After"
)


def render(base: Baselines, runs: dict[str, ContenderResult]) -> str:
    """The whole report, as Markdown."""
    workers = "/".join(map(str, sorted({c.workers for c in runs.values()})))
    served = [x for c in runs.values() if c.model == "champion" for x in c.every_load()]
    ratio_rows = [_row(k, fmt(v, ".2f")) for k, v in ratios(base, runs).items()]
    saturation_rows = [
        _saturation_row(c.name, c.saturation) for c in runs.values() if c.saturation is not None
    ]
    lines = [
        *_raw_lines(base),
        f"Served: {workers} worker(s); REFIT_MAX_LATENCY_MS {fmt(base.budget_ms)}. "
        "texts/pass and padding (real/padded tokens) from /metrics.",
        *_table("", [*LOAD_COLUMNS.split(","), "texts/pass", "padding eff."], load_rows(served)),
        *_table(
            "Lone requests (ms; one at a time, keep-alive connection):",
            LONE_COLUMNS.split(","),
            [_lone_row(c) for c in runs.values() if c.lone is not None],
        ),
        *_table(SATURATION_INTRO, SATURATION_COLUMNS.split(","), saturation_rows),
        *_table(
            f"Tiny model (2 layers, 32 wide, random weights), one-text requests, per core "
            f"of {base.cores}:",
            TINY_COLUMNS.split(","),
            _tiny_rows(base, runs),
        ),
        *_table("", ["ratio", "value"], [r for r in ratio_rows if "| – |" not in r]),
        *_table(
            "",
            ["target (refit's scheduler)", "measured", "verdict"],
            [_row(t.target, t.shown, t.verdict) for t in targets(base, runs)],
        ),
    ]
    return "\n".join(lines)
