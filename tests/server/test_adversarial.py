"""A standing adversarial suite against a real `bentoml serve`: an OpenAPI fuzzer with
every check, and a corpus of hostile requests. Nothing may answer 5xx, the server must
stay up, and /metrics must not grow with what clients make up."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hostile_requests import CORPUS, HostileRequest
from tiny_versions import force_version, write_poisoned_version

from refit.core.errors import ModelLoadError
from refit.core.registry import Registry
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def server(
    served_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = {
        **served_env,
        "REFIT_ADMIN_TOKEN": "",  # set but empty: must count as unset (403), never open
        "REFIT_REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "REFIT_ACCESS_LOG": "false",
    }
    running = start_bentoml(env, tmp_path_factory.mktemp("adversarial"))
    yield running
    running.stop()


def _counted(server: RunningServer, metric: str, reason: str) -> float:
    total = 0.0
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f"{metric}{{") and f'reason="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _errors(server: RunningServer, reason: str) -> float:
    return _counted(server, "refit_request_errors_total", reason)


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _status_of_head(server: RunningServer, head: bytes) -> int:
    """The status a complete request head gets, sent at once (small enough for the server
    to read whole, so its close cannot reset the connection before the answer is read)."""
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(head)
        reply = sock.recv(4096)
    return int(reply.split(b" ", 2)[1])


def _head(target: str = "/classify", lines: list[str] | None = None) -> bytes:
    head = [f"POST {target} HTTP/1.1", "Host: x", "Content-Length: 0", *(lines or [])]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        (_head("/classify?q=" + "a" * 12_000), 414, "url"),
        (_head(lines=["X-Big: " + "b" * 12_000]), 431, "header_size"),
        (_head(lines=[f"X-{i}: v" for i in range(150)]), 431, "header_count"),
        (_head(lines=[f"X-{i}: " + "c" * 300 for i in range(80)]), 431, "head_size"),
    ],
    ids=["long url", "long header", "many headers", "large head"],
)
def test_an_oversized_request_head_gets_414_or_431_counted_by_reason(
    server: RunningServer, head: bytes, status: int, reason: str
) -> None:
    metric = "refit_request_head_refusals_total"
    before = _counted(server, metric, reason)
    assert _status_of_head(server, head) == status
    assert _counted(server, metric, reason) == before + 1


def _flood(server: RunningServer, size: int) -> int:
    """Send a request head with one header of `size` bytes, 1 MiB at a time, until the
    server closes the connection; the bytes it took."""
    sent = 0
    chunk = b"a" * (1 << 20)
    with socket.create_connection(_address(server), timeout=30) as sock:
        try:
            sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # closed by the server: reset, broken pipe
            pass
    return sent


def test_four_header_floods_leave_the_workers_memory_flat(server: RunningServer) -> None:
    workers = server.processes()[1:]

    def rss_mb() -> float:
        return sum(p.memory_info().rss for p in workers) / 2**20

    baseline, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            sent = list(pool.map(lambda _: _flood(server, 100 << 20), range(4)))
    finally:
        done.set()
        sampler.join()
    assert all(s < 100 << 20 for s in sent), sent  # every flood was cut off
    assert peak[0] - baseline <= 50, (baseline, peak[0])
    reply = httpx.post(f"{server.url}/classify", json={"texts": ["still here"]}, timeout=30)
    assert reply.status_code == 200


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_request_gets_a_4xx_or_a_clean_answer(
    server: RunningServer, case: HostileRequest
) -> None:
    model_failures = _errors(server, "model")
    host, port = server.url.removeprefix("http://").split(":")
    status, body = case.send(host, int(port))
    assert status in case.expected, (status, body[:300])
    if status >= 400 and status != 405:  # 405 comes from Starlette, as text
        assert json.loads(body)["error"]  # one clear message, never a traceback
    assert _errors(server, "model") == model_failures
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_a_huge_declared_body_is_refused_before_it_is_sent(server: RunningServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"texts": ["')
        reply = sock.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]


def test_a_half_sent_request_head_is_dropped(server: RunningServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=READ_TIMEOUT_S + 10) as sock:
        sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        started = time.monotonic()
        assert sock.recv(4096) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - started < READ_TIMEOUT_S + 5


def test_made_up_paths_do_not_grow_the_metrics(server: RunningServer) -> None:
    def series() -> int:
        text = httpx.get(f"{server.url}/metrics").text
        return sum(1 for line in text.splitlines() if line.startswith("bentoml_service_"))

    before = series()
    with httpx.Client() as client:
        for i in range(300):
            assert client.get(f"{server.url}/probe-{i}/x{i}").status_code == 404
    assert series() <= before + 12  # at most the one `/{unknown}` label's series


def test_the_openapi_fuzzer_finds_nothing(server: RunningServer, tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if schemathesis is None:
        pytest.skip("schemathesis is not installed (it is in the dev extra)")
    command = [
        schemathesis,
        "run",
        f"{server.url}/docs.json",
        "--checks",
        "all",
        "--max-examples",
        "30",
        "--seed",
        "20261130",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def _strict_json(body: bytes) -> object:
    """`body` parsed as JSON that has no NaN or Infinity (which Python's parser allows)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in a response body")

    return json.loads(body, parse_constant=refuse)


def test_confusable_feedback_labels_are_refused_naming_the_label(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        (prediction,) = client.post("/classify", json={"texts": ["my card was charged"]}).json()
        pid = prediction["id"]

        def feedback(label: str) -> httpx.Response:
            return client.post("/feedback", json={"items": [{"id": pid, "label": label}]})

        for look_alike in ("b\u0456lling", "Billing", "bi11ing"):
            refused = feedback(look_alike)
            assert refused.status_code == 422, refused.text
            assert "'billing'" in refused.json()["error"]
        full_width = feedback("\uff42\uff49\uff4c\uff4c\uff49\uff4e\uff47")
        assert full_width.status_code == 200
        assert full_width.json()[0]["outcome"] in {"stored", "updated"}
        assert feedback("billing").json()[0]["outcome"] == "unchanged"  # stored as ASCII


def test_settings_past_their_bounds_stop_the_start_naming_the_variables(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**served_env, "REFIT_MAX_TEXT_CHARS": "1000000", "REFIT_REQUEST_TIMEOUT_S": "inf"}
    with pytest.raises(RuntimeError, match="exited early") as stopped:
        start_bentoml(env, tmp_path, timeout=120)
    assert "REFIT_MAX_TEXT_CHARS" in str(stopped.value)
    assert "REFIT_REQUEST_TIMEOUT_S" in str(stopped.value)


def test_nan_weights_are_refused_and_no_answer_carries_nan(
    tmp_path: Path, tiny_base_model: Path
) -> None:
    labels = ["billing", "shipping"]
    registry = Registry(f"nan-{uuid.uuid4().hex[:8]}", tmp_path / "state")
    with pytest.raises(ModelLoadError, match="not finite"):
        registry.register(
            write_poisoned_version(tiny_base_model, labels, "zebra", math.nan), metadata={}
        )
    # Finite weights whose "zebra" row overflows to NaN: registered, promoted, served.
    overflow = registry.register(
        write_poisoned_version(tiny_base_model, labels, "zebra", 3e38), metadata={}
    )
    registry.promote(overflow.version, reason="finite weights", actor="test")
    # A NaN version made champion behind refit's back: the server refuses to load it.
    forced = force_version(
        registry, write_poisoned_version(tiny_base_model, labels, "zebra", math.nan)
    )
    (registry.state_dir / "champion.json").write_text(json.dumps({"tag": forced.tag}))
    env = {
        "BENTOML_HOME": os.environ["BENTOML_HOME"],
        "REFIT_STATE_DIR": str(tmp_path / "state"),
        "REFIT_MODEL_NAME": registry.name,
        "REFIT_DEVICE": "cpu",
        "REFIT_ACCESS_LOG": "false",
    }
    server = start_bentoml(env, tmp_path / "server")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            ready = client.get("/readyz").json()
            assert (ready["serving"], ready["fallback"]) == (overflow.tag, True)
            assert "not finite" in ready["reason"]
            zebra = client.post("/classify", json={"texts": ["zebra"]})
            assert zebra.status_code == 500
            assert "finite" in _strict_json(zebra.content)["error"]  # type: ignore[index]
            parcel = client.post("/classify", json={"texts": ["where is my parcel"]})
            assert parcel.status_code == 200
            _strict_json(parcel.content)
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["non_finite_scores"] == {overflow.version: 1}
        assert _counted(server, "refit_request_errors_total", "model") == 1
    finally:
        server.stop()
