"""A real `bentoml serve` subprocess answering over loopback HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cases import BAD_REQUESTS
from servers import RunningServer, start_bentoml

import datagen

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(
    served_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_bentoml(served_env, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


def batch_sizes(metrics_text: str) -> tuple[float, float]:
    """(number of batches, texts in them) from BentoML's adaptive batch histogram."""
    count = sum_ = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("bentoml_service_adaptive_batch_size_count"):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith("bentoml_service_adaptive_batch_size_sum"):
            sum_ += float(line.rsplit(" ", 1)[1])
    return count, sum_


def test_concurrent_clients_are_answered_in_batches(server: RunningServer) -> None:
    texts = datagen.generate(240, seed=11)["text"].tolist()

    def one(text: str) -> httpx.Response:
        return httpx.post(f"{server.url}/classify", json={"texts": [text]}, timeout=60)

    with ThreadPoolExecutor(max_workers=24) as pool:
        responses = list(pool.map(one, texts))
    assert [r.status_code for r in responses] == [200] * len(texts)
    ids = set()
    for response in responses:
        (item,) = response.json()
        ids.add(item["id"])
        assert item["label"] in item["scores"]
    assert len(ids) == len(texts)
    batches, batched_texts = batch_sizes(httpx.get(f"{server.url}/metrics").text)
    assert batched_texts >= len(texts)
    assert batched_texts / batches > 1.0, "adaptive batching never formed a batch above 1"


@pytest.mark.parametrize(("name", "body", "words"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_helpful_400(
    server: RunningServer, name: str, body: bytes, words: tuple[str, ...]
) -> None:
    response = httpx.post(
        f"{server.url}/classify", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, (name, response.text)
    message = response.json()["error"].lower()
    assert all(word.lower() in message for word in words), (name, message)


def test_client_errors_are_logged_without_tracebacks(server: RunningServer) -> None:
    httpx.post(f"{server.url}/classify", json={"texts": []})
    log = server.log_text()
    assert "Rejected a request to /classify" in log
    assert "pydantic_core._pydantic_core.ValidationError" not in log


def test_docs_are_served(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/docs.json").json()["paths"]["/classify"]
    assert re.search(r"swagger|openapi", httpx.get(f"{server.url}/").text, re.I)


def test_server_stops_by_pid(served_env: dict[str, str], tmp_path: Path) -> None:
    running = start_bentoml(served_env, tmp_path)
    running.stop()
    assert running.process.poll() is not None
