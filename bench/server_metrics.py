"""What a benchmark point reads from the server's /metrics: deltas over the point.

Counters and histograms are summed over workers by BentoML's multiprocess mode;
each name below is summed over all its label sets (and over the `pid` label of
gauges), so one number per name is enough. A name the server does not export
reads as 0, which the derived figures turn into NaN rather than a made-up value.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import httpx

# Series read at each point; the refusal counter is kept per cause.
SUMMED = (
    "refit_batch_items_count",  # forward passes
    "refit_batch_items_sum",  # texts in them
    "refit_real_tokens_total",
    "refit_padded_tokens_total",
    "refit_queue_wait_seconds_count",
    "refit_queue_wait_seconds_sum",
    "refit_compute_seconds_count",
    "refit_compute_seconds_sum",
)
REFUSALS = "refit_refusals_total"
BUSY_GAUGES = ("refit_in_flight_texts", "refit_queue_texts")
IN_PROGRESS = "bentoml_service_request_in_progress"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for every sample line of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        samples.append((name, dict(_LABEL.findall(labels or "")), number))
    return samples


@dataclass
class Snapshot:
    sums: dict[str, float] = field(default_factory=dict)  # name -> sum over label sets
    refusals: dict[str, float] = field(default_factory=dict)  # cause -> count

    @classmethod
    def from_text(cls, text: str) -> Snapshot:
        snap = cls()
        for name, labels, value in parse_exposition(text):
            if name == REFUSALS:
                cause = labels.get("cause", "")
                snap.refusals[cause] = snap.refusals.get(cause, 0.0) + value
            snap.sums[name] = snap.sums.get(name, 0.0) + value
        return snap

    def get(self, name: str) -> float:
        return self.sums.get(name, 0.0)

    def since(self, before: Snapshot) -> PointMetrics:
        delta = {name: self.get(name) - before.get(name) for name in SUMMED}
        causes = set(self.refusals) | set(before.refusals)
        refused = {c: self.refusals.get(c, 0.0) - before.refusals.get(c, 0.0) for c in causes}
        return PointMetrics(
            passes=delta["refit_batch_items_count"],
            texts=delta["refit_batch_items_sum"],
            real_tokens=delta["refit_real_tokens_total"],
            padded_tokens=delta["refit_padded_tokens_total"],
            queue_waits=delta["refit_queue_wait_seconds_count"],
            queue_wait_s=delta["refit_queue_wait_seconds_sum"],
            compute_count=delta["refit_compute_seconds_count"],
            compute_s=delta["refit_compute_seconds_sum"],
            refusals={c: v for c, v in sorted(refused.items()) if v},
        )


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


@dataclass
class PointMetrics:
    """Server-side figures over one point (all zero when the names are not exported)."""

    passes: float = 0.0
    texts: float = 0.0
    real_tokens: float = 0.0
    padded_tokens: float = 0.0
    queue_waits: float = 0.0
    queue_wait_s: float = 0.0
    compute_count: float = 0.0
    compute_s: float = 0.0
    refusals: dict[str, float] = field(default_factory=dict)

    @property
    def mean_batch(self) -> float:
        """Texts per forward pass."""
        return _ratio(self.texts, self.passes)

    @property
    def padding_efficiency(self) -> float:
        """Real tokens / padded tokens (1.0: no padding computed)."""
        return _ratio(self.real_tokens, self.padded_tokens)

    @property
    def mean_queue_wait_ms(self) -> float:
        return 1000 * _ratio(self.queue_wait_s, self.queue_waits)

    @property
    def mean_pass_ms(self) -> float:
        """Mean time of one forward pass (`refit_compute_seconds`)."""
        return 1000 * _ratio(self.compute_s, self.compute_count)


def snapshot(url: str) -> Snapshot:
    return Snapshot.from_text(httpx.get(f"{url}/metrics", timeout=30).text)


def busy_from_text(text: str, endpoint: str = "/classify") -> float:
    """How much the server still holds: the most of refit's in-flight and queued text
    gauges (kept by the scheduler path) and BentoML's requests in progress on
    `endpoint` (kept on every path). Requests whose client left still count."""
    held = {name: 0.0 for name in BUSY_GAUGES}
    in_progress = 0.0
    for name, labels, value in parse_exposition(text):
        if name in held:
            held[name] += value
        elif name == IN_PROGRESS and labels.get("endpoint") == endpoint:
            in_progress += value
    return max(in_progress, *held.values())


def wait_idle(url: str, timeout: float = 120, poll_s: float = 0.5) -> bool:
    """Wait until the server holds no work: a point must not start on the last one's
    backlog. False (and a warning) if it still held some after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if busy_from_text(httpx.get(f"{url}/metrics", timeout=30).text) <= 0:
            return True
        time.sleep(poll_s)
    print(f"WARNING: the server still held work after {timeout:.0f} s; going on", flush=True)
    return False
