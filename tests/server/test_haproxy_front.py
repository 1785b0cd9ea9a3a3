"""deploy/haproxy/haproxy.cfg refuses for a full replica, as users run it.

The replica here is a stand-in that holds every /classify until the test lets it
go, so "full" is a state the test sets up exactly, not a race under load: with
REFIT_LB_MAXCONN=1 the first request occupies the replica, the second waits in
HAProxy's queue, and from then on HAProxy itself answers. The same configuration
in front of real replicas is tested in test_replicas.py and measured by
bench/serve_bench.py (contender `haproxy`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from paths import ROOT

from refit.testing.haproxy import RunningHAProxy, haproxy_binary, start_haproxy

pytestmark = pytest.mark.integration

QUEUE_TIMEOUT_MS = 3000  # long enough that the refusals below come while it waits


class HeldReplica:
    """Answers /readyz at once and holds each POST until `release()`."""

    def __init__(self) -> None:
        self.release_event = threading.Event()
        self.held = 0
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._send(200, {"ready": True})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                replica.held += 1
                replica.release_event.wait(30)
                self._send(200, [{"label": "held", "score": 1.0}])

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.release_event.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[RunningHAProxy, HeldReplica]]:
    if haproxy_binary() is None:
        pytest.skip("needs HAProxy (Debian package `haproxy`; .ci/run installs it)")
    replica = HeldReplica()
    proxy = start_haproxy(
        {"r0": replica.url},
        tmp_path / "haproxy",
        config=ROOT / "deploy" / "haproxy" / "haproxy.cfg",
        maxconn=1,
        queue_timeout_ms=QUEUE_TIMEOUT_MS,
    )
    try:
        yield proxy, replica
    finally:
        replica.close()
        proxy.stop()


def classify(url: str) -> httpx.Response:
    return httpx.post(f"{url}/classify", json={"texts": ["hello"]}, timeout=30)


def backend_row(proxy: RunningHAProxy) -> dict[str, str]:
    return proxy.replicas_stats()["BACKEND"]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def test_a_full_replica_gets_429s_from_haproxy_and_a_waiting_request_a_503(
    front: tuple[RunningHAProxy, HeldReplica],
) -> None:
    proxy, replica = front
    assert proxy.server_states()["r0"]["check_status"].startswith("L7OK")  # checks inherited
    with ThreadPoolExecutor(max_workers=2) as pool:
        occupying: Future[httpx.Response] = pool.submit(classify, proxy.url)
        wait_until(lambda: replica.held == 1, "the replica holds the first request")
        waiting: Future[httpx.Response] = pool.submit(classify, proxy.url)
        wait_until(lambda: backend_row(proxy)["qcur"] == "1", "one request waits in HAProxy")

        refused = [classify(proxy.url) for _ in range(3)]
        for r in refused:
            assert r.status_code == 429
            assert r.headers["retry-after"] == "1"
            assert r.json() == {"error": "every replica is at capacity", "retry_after_s": 1}
        assert replica.held == 1  # refused in HAProxy: the replica never saw them

        timed_out = waiting.result(timeout=QUEUE_TIMEOUT_MS / 1000 + 10)
        assert timed_out.status_code == 503
        assert timed_out.headers["retry-after"] == "1"
        assert timed_out.json()["retry_after_s"] == 1

        replica.release()
        assert occupying.result(timeout=10).status_code == 200
    assert classify(proxy.url).status_code == 200  # free again: passed through


def test_only_the_api_is_refused_when_full(front: tuple[RunningHAProxy, HeldReplica]) -> None:
    """Pages and probes are not refused with 429: they wait their turn like before."""
    proxy, replica = front
    with ThreadPoolExecutor(max_workers=3) as pool:
        occupying = pool.submit(classify, proxy.url)
        wait_until(lambda: replica.held == 1, "the replica holds the first request")
        waiting = pool.submit(classify, proxy.url)
        wait_until(lambda: backend_row(proxy)["qcur"] == "1", "one request waits in HAProxy")
        page = pool.submit(httpx.get, f"{proxy.url}/readyz", timeout=30)
        wait_until(lambda: backend_row(proxy)["qcur"] == "2", "the page waits in the queue too")
        replica.release()
        assert occupying.result(timeout=10).status_code == 200
        assert waiting.result(timeout=10).status_code == 200
        assert page.result(timeout=10).status_code == 200
