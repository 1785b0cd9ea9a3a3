"""What hostile clients cost a server: a 1 GB body, and 20,000 made-up paths.

    python bench/abuse_bench.py [--paths 20000]

Serves a tiny model (bench/model_home.py: the work is the same whatever the model)
with two workers, and measures
  (a) a request declaring a 1 GB body: how long until the 413 arrives, and how much
      the workers' resident memory grew (the body is never sent in full: refit refuses
      it from its Content-Length before reading);
  (b) the same body streamed without a Content-Length (chunked), 1 MB at a time, until
      the server answers or 1 GB has been sent;
  (c) `--paths` GET requests to distinct made-up paths: the size of /metrics and the
      time of one scrape before and after, as a ratio to the before figures (the
      baseline of this run).
Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from pathlib import Path

import model_home
from harness import start_server
from record import record

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="refit-abuse-") as tmp:
        work = Path(tmp)
        model_home.build(work / "home", "tiny")
        server = start_server(work / "server", batching="scheduler", home=work / "home", workers=2)
        host, port = server.url.removeprefix("http://").split(":")
        try:
            text = measure(server, host, int(port), args.paths)
        finally:
            server.stop()
    print(text)
    record("abuse_bench", text)


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
