"""A light HTTP client that times every request it sends, by status.

wrk times responses only in aggregate; this client records, for each request, its
status, whether a refusal carried Retry-After, and its wall time (send to last
byte, on a keep-alive connection). serve_bench uses it in-process for lone
requests, and as a separate process (this file's CLI) that probes /classify at a
low rate while wrk overloads the server:

    python bench/probe.py URL BODIES --seconds 8 --rate 10 --out samples.json

Standard library only, so the probe process starts in a tenth of a second and
stays small beside the load it measures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

REFUSALS = (429, 503)


@dataclass(frozen=True)
class Sample:
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    retry_after: bool  # a Retry-After header came with the answer
    ms: float  # from sending the request to reading the whole answer
    at: float = 0.0  # seconds after the series started


class Client:
    """One keep-alive connection to a server; reconnects after a failure."""

    def __init__(self, url: str, path: str = "/classify", timeout_s: float = 60.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path, self.timeout_s = path, timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> Sample:
        headers = {"Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout_s
                )
            self._conn.request("POST", self.path, body=body, headers=headers)
            response = self._conn.getresponse()
            response.read()
            status, after = response.status, response.getheader("Retry-After") is not None
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            status, after = 0, False
        return Sample(status, after, 1000 * (time.perf_counter() - started))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def series(
    url: str, bodies: Sequence[bytes], *, spacing_s: float = 0.0, max_seconds: float = 120.0
) -> list[Sample]:
    """Send `bodies` one at a time, each once the previous is answered and at least
    `spacing_s` after the previous one started; stops early after `max_seconds`."""
    client = Client(url)
    samples: list[Sample] = []
    begun = time.perf_counter()
    try:
        for i, body in enumerate(bodies):
            due = begun + i * spacing_s
            now = time.perf_counter()
            if now - begun > max_seconds:
                break
            if due > now:
                time.sleep(due - now)
            at = time.perf_counter() - begun
            sample = client.post(body)
            samples.append(Sample(sample.status, sample.retry_after, sample.ms, at))
    finally:
        client.close()
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linearly interpolated; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(samples: Sequence[Sample]) -> dict[str, float]:
    """Counts by status class and latency percentiles of answers and of refusals."""
    ok = [s.ms for s in samples if 200 <= s.status < 300]
    by_status = {code: [s.ms for s in samples if s.status == code] for code in REFUSALS}
    refused = [s for s in samples if s.status in REFUSALS]
    out: dict[str, float] = {
        "n": len(samples),
        "ok": len(ok),
        "status_429": len(by_status[429]),
        "status_503": len(by_status[503]),
        "status_5xx": sum(1 for s in samples if s.status >= 500 and s.status not in REFUSALS),
        "no_answer": sum(1 for s in samples if s.status == 0),
        "no_retry_after": sum(1 for s in refused if not s.retry_after),
        "ok_p50_ms": percentile(ok, 50),
        "ok_p90_ms": percentile(ok, 90),
        "ok_p99_ms": percentile(ok, 99),
        "refused_p99_ms": percentile([s.ms for s in refused], 99),
    }
    for code, times in by_status.items():
        out[f"{code}_p50_ms"] = percentile(times, 50)
        out[f"{code}_p99_ms"] = percentile(times, 99)
        out[f"{code}_max_ms"] = max(times) if times else math.nan
    return out


def read_bodies(path: Path, limit: int) -> list[bytes]:
    """The first `limit` lines of a bodies file (one JSON body per line)."""
    with path.open("rb") as lines:
        return [line.rstrip(b"\n") for _, line in zip(range(limit), lines, strict=False)]


def probe(
    url: str, bodies: Sequence[bytes], seconds: float, rate: float, workers: int = 16
) -> list[Sample]:
    """Requests at a steady `rate` for `seconds`, whatever the answers take (an open
    loop: slow answers do not thin the samples), at most `workers` at once, each
    worker on its own keep-alive connection; samples in order of sending."""
    local = threading.local()
    clients: list[Client] = []
    begun = time.perf_counter()

    def send(body: bytes) -> Sample:
        if not hasattr(local, "client"):
            local.client = Client(url)
            clients.append(local.client)
        at = time.perf_counter() - begun
        sample = local.client.post(body)
        return Sample(sample.status, sample.retry_after, sample.ms, at)

    count = max(1, math.floor(seconds * rate))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for i in range(count):
            pause = begun + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            futures.append(pool.submit(send, bodies[i % len(bodies)]))
        samples = [f.result() for f in futures]  # each bounded by the client's timeout
    for client in clients:
        client.close()
    return sorted(samples, key=lambda s: s.at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("bodies", type=Path, help="one JSON body per line")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to send")
    parser.add_argument("--rate", type=float, default=10.0, help="most requests a second")
    parser.add_argument("--workers", type=int, default=16, help="most requests at once")
    parser.add_argument("--start-after", type=float, default=0.0, help="seconds to wait first")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the samples")
    args = parser.parse_args()
    time.sleep(args.start_after)
    bodies = read_bodies(args.bodies, 1000)
    samples = probe(args.url, bodies, args.seconds, args.rate, args.workers)
    args.out.write_text(json.dumps([asdict(s) for s in samples]))


if __name__ == "__main__":
    main()
