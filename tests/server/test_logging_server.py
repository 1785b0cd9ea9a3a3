"""The prediction log behind a real server: exact counts, kill -9, PostgreSQL, workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from classify_load import ClassifyLoad, logged_ids

from refit import datagen
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

pytestmark = pytest.mark.integration

TEXTS = datagen.generate(400, seed=5)["text"].tolist()


def _classify(server: RunningServer, texts: list[str]) -> list[str]:
    response = httpx.post(f"{server.url}/classify", json={"texts": texts}, timeout=60)
    response.raise_for_status()
    return [item["id"] for item in response.json()]


def _sqlite_env(served_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], str]:
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    return {**served_env, "REFIT_PREDICTION_LOG_URL": url}, url


def test_concurrent_requests_give_exactly_one_record_each(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    env, url = _sqlite_env(served_env, tmp_path)
    server = start_bentoml(env, tmp_path)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            batches = list(
                pool.map(lambda i: _classify(server, TEXTS[i : i + 3]), range(0, 300, 3))
            )
    finally:
        server.stop()
    ids = [pid for batch in batches for pid in batch]
    assert len(ids) == len(set(ids)) == 300
    assert logged_ids(url) == set(ids)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_answered_request_survives_kill_9(
    backend: str, served_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        env, url = _sqlite_env(served_env, tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
        env = {**served_env, "REFIT_PREDICTION_LOG_URL": url}
    before = logged_ids(url)
    server = start_bentoml(env, tmp_path / "first")
    load = ClassifyLoad(server.url, TEXTS, clients=12).start()
    load.wait_for(150)
    workers = server.processes()[1:]
    assert workers, "expected BentoML worker processes"
    server.kill_hard()  # the server and its workers at once: no flush, no shutdown hook
    assert not any(w.is_running() and w.status() != "zombie" for w in workers)
    load.stop()
    assert len(load.acknowledged) >= 150
    missing = set(load.acknowledged) - (logged_ids(url) - before)
    assert missing == set()
    restarted = start_bentoml(env, tmp_path / "second")
    try:
        assert len(_classify(restarted, TEXTS[:2])) == 2
    finally:
        restarted.stop()


def test_counters_add_up_across_two_workers(served_env: dict[str, str], tmp_path: Path) -> None:
    env, _ = _sqlite_env(served_env, tmp_path)
    server = start_bentoml({**env, "REFIT_WORKERS": "2"}, tmp_path)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda i: _classify(server, TEXTS[i : i + 2]), range(0, 240, 2)))
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    predictions = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("refit_predictions_total{")
    )
    assert predictions == 240
    pids = {
        line.split('pid="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if line.startswith("refit_model_info{") and 'pid="' in line
    }
    requests = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("refit_request_duration_seconds_count{")
        and 'endpoint="/classify"' in line
    )
    assert requests == 120
    assert len(pids) in (0, 2)  # max-mode gauges drop the pid label; others keep one per worker
