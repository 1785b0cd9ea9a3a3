"""A real `bentoml serve` subprocess answering over loopback HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cases import BAD_REQUESTS

from refit import datagen
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(
    served_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_bentoml(served_env, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


def metric_sum(metrics_text: str, name: str, **labels: str) -> float:
    """The sum over workers of one series of refit's /metrics."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")) and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(server: RunningServer) -> str:
    return httpx.get(f"{server.url}/metrics").text


def test_concurrent_clients_are_answered_in_shared_passes(server: RunningServer) -> None:
    texts = datagen.generate(240, seed=11)["text"].tolist()
    before = scrape(server)

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
    after = scrape(server)
    passes = metric_sum(after, "refit_batch_items_count") - metric_sum(
        before, "refit_batch_items_count"
    )
    passed_texts = metric_sum(after, "refit_batch_items_sum") - metric_sum(
        before, "refit_batch_items_sum"
    )
    assert passed_texts == len(texts)
    assert passed_texts / passes > 1.0, "the scheduler never put two requests in one pass"


def test_after_a_burst_a_lone_request_runs_in_a_pass_of_its_own(server: RunningServer) -> None:
    """No learned wait outlives a burst: the lone request neither waits nor shares."""
    burst = datagen.generate(400, seed=12)["text"].tolist()
    with ThreadPoolExecutor(max_workers=48) as pool:
        codes = list(pool.map(lambda t: _classify(server, [t]).status_code, burst))
    assert set(codes) <= {200, 429, 503}
    assert codes.count(200) > 0
    before = scrape(server)
    assert _classify(server, ["where is my parcel?"]).status_code == 200
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    assert delta("refit_batch_items_count") == 1  # one forward pass ...
    assert delta("refit_batch_items_sum") == 1  # ... holding this one text alone
    wait = {"endpoint": "/classify"}
    assert delta("refit_queue_wait_seconds_count", **wait) == 1
    # It waited for no earlier work: well under the 0.4-1 s BentoML's batcher kept
    # waiting after a spike; 10 ms leaves room for a thread wake-up on a busy machine.
    assert delta("refit_queue_wait_seconds_bucket", le="0.01", **wait) == 1


@pytest.fixture(scope="module")
def small_server(
    served_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server whose scheduler holds at most 16 texts: one 16-text request fills it."""
    env = {**served_env, "REFIT_MAX_IN_FLIGHT_TEXTS": "16"}
    running = start_bentoml(env, tmp_path_factory.mktemp("small-server"))
    yield running
    running.stop()


def test_overload_is_answered_429_with_retry_after_and_counted(
    small_server: RunningServer,
) -> None:
    """Refusals, whether the front door answers them from the head or the scheduler
    after tokenising, all say when to retry, and each is counted once."""
    texts = datagen.generate(16, seed=13)["text"].tolist()
    before = scrape(small_server)
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda _: _classify(small_server, texts), range(192)))
    after = scrape(small_server)
    refused = [r for r in responses if r.status_code != 200]
    assert {r.status_code for r in refused} == {429}
    assert len(refused) < len(responses)
    for response in refused:
        assert int(response.headers["retry-after"]) >= 1
        body = response.json()
        assert body["retry_after_s"] == int(response.headers["retry-after"])
        assert "at capacity (queue_full)" in body["error"]

    def delta(name: str, **labels: str) -> float:
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    assert delta("refit_refusals_total", cause="queue_full") == len(refused)
    assert delta("refit_request_errors_total", reason="overload") == len(refused)
    assert "Traceback" not in small_server.log_text()


def _classify(server: RunningServer, texts: list[str]) -> httpx.Response:
    return httpx.post(f"{server.url}/classify", json={"texts": texts}, timeout=60)


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
