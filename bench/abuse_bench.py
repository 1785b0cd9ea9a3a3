"""What hostile clients cost a server: a 1 GB body, and 20,000 made-up paths.

    python bench/abuse_bench.py [--paths 20000] [--heads-only]

Serves a tiny model (bench/model_home.py: the work is the same whatever the model)
with two workers, and measures
  (a) a request declaring a 1 GB body: how long until the 413 arrives, and how much
      the workers' resident memory grew (the body is never sent in full: refit refuses
      it from its Content-Length before reading);
  (b) the same body streamed without a Content-Length (chunked), 1 MB at a time, until
      the server answers or 1 GB has been sent;
  (c) `--paths` GET requests to distinct made-up paths: the size of /metrics and the
      time of one scrape before and after, as a ratio to the before figures (the
      baseline of this run);
  (d) four clients each sending a request head of 100 MiB (one header), reconnecting
      whenever the server closes, while a fifth sends one-text /classify requests: the
      workers' peak RSS growth, and the p99 of /classify during the floods as a ratio
      to its p99 just before them, idle (the baseline of this run), in three rounds.
Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import model_home
import numpy as np
from harness import start_server
from record import publish

HERE = Path(__file__).resolve().parent


GB = 1 << 30
CHUNK = b"x" * (1 << 20)


def worker_rss_mb(server: object) -> float:
    return sum(p.memory_info().rss for p in server.processes()[1:]) / 2**20  # type: ignore[attr-defined]


def declared_body(host: str, port: int) -> tuple[int, float]:
    """(status, seconds to the answer) for a request declaring a 1 GB body."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    started = time.perf_counter()
    connection.putrequest("POST", "/classify")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(GB))
    connection.endheaders(b'{"texts": ["')
    response = connection.getresponse()
    seconds = time.perf_counter() - started
    connection.close()
    return response.status, seconds


def chunked_body(host: str, port: int) -> tuple[int, float, int]:
    """(status, seconds to the answer, bytes sent) for a chunked body of up to 1 GB."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    started = time.perf_counter()
    connection.putrequest("POST", "/classify")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    sent = 0
    try:
        while sent < GB:
            connection.send(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            sent += len(CHUNK)
    except OSError:
        pass  # the server answered and closed: stop sending
    response = connection.getresponse()
    seconds = time.perf_counter() - started
    connection.close()
    return response.status, seconds, sent


def scrape(host: str, port: int) -> tuple[int, float]:
    """(bytes of /metrics, seconds one scrape took)."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    started = time.perf_counter()
    connection.request("GET", "/metrics")
    body = connection.getresponse().read()
    seconds = time.perf_counter() - started
    connection.close()
    return len(body), seconds


def made_up_paths(host: str, port: int, count: int) -> int:
    """GET `count` distinct made-up paths on one keep-alive connection; 404s seen."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    not_found = 0
    for i in range(count):
        connection.request("GET", f"/probe/{i}/{i * 7919}")
        response = connection.getresponse()
        response.read()
        not_found += response.status == 404
    connection.close()
    return not_found


PROBES = 200
ROUNDS = 3


def classify_p99(host: str, port: int) -> tuple[float, int]:
    """(p99 seconds, failures) of PROBES one-text /classify requests on a keep-alive
    connection; a failed request (not 200, or the connection lost) counts at its time."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    body, times, failed = json.dumps({"texts": ["where is my parcel?"]}), [], 0
    for _ in range(PROBES):
        started = time.perf_counter()
        try:
            connection.request("POST", "/classify", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            failed += response.status != 200
        except (OSError, http.client.HTTPException):
            failed += 1
            connection.close()  # reconnects on the next request
        times.append(time.perf_counter() - started)
    connection.close()
    return float(np.percentile(times, 99)), failed


def flooded_p99(host: str, port: int) -> tuple[float, int, list[int]]:
    """(p99 seconds, failures) of /classify while four clients (bench/head_flood.py)
    flood, and the bytes each flood connection took before the server closed it."""
    command = [sys.executable, str(HERE / "head_flood.py"), host, str(port)]
    clients = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    for client in clients:  # time /classify only once every client is flooding
        line = client.stdout.readline() if client.stdout is not None else ""
        if line.strip() != "flooding":
            raise RuntimeError(f"a flooding client did not start: {line!r}")
    loaded, failed = classify_p99(host, port)
    taken: list[int] = []
    for client in clients:
        client.terminate()
        taken += json.loads(client.communicate(timeout=120)[0])
    return loaded, failed, taken


def head_floods(server: object, host: str, port: int) -> str:
    """(d): ROUNDS of idle then flooded /classify timings (alternating, so that load
    from outside the benchmark drifts into both alike); the table's rows."""
    before, peak, sampled = worker_rss_mb(server), [0.0], threading.Event()

    def sample() -> None:
        while not sampled.is_set():
            peak[0] = max(peak[0], worker_rss_mb(server))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rows, ratios, floods = [], [], []
    for number in range(1, ROUNDS + 1):
        idle, _ = classify_p99(host, port)
        loaded, failed, taken = flooded_p99(host, port)
        ratios.append(loaded / idle)
        floods += taken
        rows.append(
            f"| {number} | {idle * 1000:.1f} ms | {loaded * 1000:.1f} ms | {ratios[-1]:.2f} | "
            f"{failed} of {PROBES} | {len(taken)} |"
        )
    sampled.set()
    sampler.join()
    cut = f"{np.median(floods) / 2**20:.1f} MiB" if floods else "none"
    return "\n".join(
        [
            "Four clients each sending a 100 MiB request head, reconnecting at once when "
            f"closed; {PROBES} one-text /classify requests a phase.",
            "",
            "| round | p99 idle | p99 during floods | ratio | failed during | flood connections |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Median p99 ratio {np.median(ratios):.2f}; workers' peak RSS growth "
            f"{max(peak[0] - before, 0.0):+.1f} MB; each flood connection took {cut} "
            "(median) before the server closed it (socket buffers: the server reads at most "
            "REFIT_MAX_HEAD_BYTES of a head).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=20_000)
    parser.add_argument("--heads-only", action="store_true", help="only (d), the head floods")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="refit-abuse-") as tmp:
        work = Path(tmp)
        model_home.build(work / "home", "tiny")
        server = start_server(work / "server", batching="scheduler", home=work / "home", workers=2)
        host, port = server.url.removeprefix("http://").split(":")
        try:
            floods = head_floods(server, host, int(port))
            text = floods if args.heads_only else measure(server, host, int(port), args.paths)
            text = text if args.heads_only else f"{text}\n\n{floods}"
        finally:
            server.stop()
    publish("abuse_bench", text)


def measure(server: object, host: str, port: int, paths: int) -> str:
    rss_before = worker_rss_mb(server)
    status, seconds = declared_body(host, port)
    rss_declared = worker_rss_mb(server)
    chunked_status, chunked_seconds, sent = chunked_body(host, port)
    rss_chunked = worker_rss_mb(server)
    size_before, scrape_before = scrape(host, port)
    not_found = made_up_paths(host, port, paths)
    size_after, scrape_after = scrape(host, port)
    return "\n".join(
        [
            "Two workers serving a tiny model.",
            "",
            "| probe | answer | time | workers' RSS growth |",
            "|---|---|---|---|",
            f"| 1 GB declared (Content-Length) | {status} | {seconds * 1000:.1f} ms | "
            f"{rss_declared - rss_before:+.1f} MB |",
            f"| 1 GB chunked, sent until answered ({sent / 2**20:.0f} MB sent) | "
            f"{chunked_status} | {chunked_seconds * 1000:.1f} ms | "
            f"{rss_chunked - rss_declared:+.1f} MB |",
            "",
            "| /metrics | before | after "
            f"{paths:,} made-up paths ({not_found:,} answered 404) | after / before |",
            "|---|---|---|---|",
            f"| size | {size_before:,} B | {size_after:,} B | {size_after / size_before:.2f} |",
            f"| one scrape | {scrape_before * 1000:.0f} ms | {scrape_after * 1000:.0f} ms | "
            f"{scrape_after / scrape_before:.2f} |",
        ]
    )


if __name__ == "__main__":
    main()
