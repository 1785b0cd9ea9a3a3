"""Adversarial: the prediction log's disk fills up under load, then the server is killed.

A real full disk (a small tmpfs, `refit.testing.small_disk`), a real server, `kill -9`
while the disk is still full, and the acknowledged ids counted against the rows the
log kept. What may be missing depends on REFIT_LOG_CONFIRM_MODE:

- `flag` (default): responses go on; every response whose predictions were not on
  record says so (`X-Refit-Log: unconfirmed`) and is counted, and only those may be
  missing. /readyz stays 200 and says the log is failing;
- `strict`: nothing acknowledged is missing; the responses that could not be put on
  record were refused (503, Retry-After), and /readyz answers 503 while the log fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from classify_load import ClassifyLoad, logged_ids

from refit import datagen
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer
from refit.testing.small_disk import SmallDisk

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = datagen.generate(300, seed=11)["text"].tolist()
BEFORE_FULL = 40  # predictions acknowledged before the disk fills
WHILE_FULL = 24  # responses while the log fails


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk.mount(tmp_path / "disk", size_mb=16)
    if isinstance(disk, str):
        pytest.skip(disk)
    try:
        yield disk
    finally:
        disk.unmount()


def _readyz(server: RunningServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.url}/readyz", timeout=10)
    return response.status_code, response.json()


def _log_state(server: RunningServer) -> str | None:
    state: str | None = _readyz(server)[1].get("prediction_log", {}).get("state")
    return state


def _metric(text: str, name: str) -> float:
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    ]
    assert values, f"{name} not exported"
    return max(values)


def _wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _fill_under_load(
    server: RunningServer, load: ClassifyLoad, disk: SmallDisk
) -> tuple[int, dict[str, Any], str]:
    """Fill the disk while `load` runs; /readyz and /metrics while the log fails."""
    load.wait_for(BEFORE_FULL, timeout=60)
    assert len(load.acknowledged) >= BEFORE_FULL
    assert _log_state(server) == "ok"
    disk.fill()
    _wait_until(lambda: _log_state(server) == "failing")
    seen = load.statuses.total()
    load.wait_responses(seen + WHILE_FULL, timeout=60)
    status, body = _readyz(server)
    load.stop()  # every response counted before the counters are read
    return status, body, httpx.get(f"{server.url}/metrics", timeout=10).text


@pytest.mark.parametrize("mode", ["flag", "strict"])
def test_a_full_disk_then_kill_9(
    mode: str, served_env: dict[str, str], small_disk: SmallDisk, tmp_path: Path
) -> None:
    url = f"sqlite:///{small_disk.path / 'predictions.sqlite3'}"
    env = {
        **served_env,
        "REFIT_PREDICTION_LOG_URL": url,
        "REFIT_LOG_CONFIRM_MODE": mode,
        "REFIT_LOG_CONFIRM_TIMEOUT_S": "0.5",
    }
    server = start_bentoml(env, tmp_path / "server")
    load = ClassifyLoad(server.url, TEXTS, clients=4).start()
    try:
        status, body, metrics = _fill_under_load(server, load, small_disk)
        server.kill_hard()  # the disk still full: nothing is flushed, no hook runs
    finally:
        load.stop()
        server.stop()
    small_disk.free()
    missing = set(load.acknowledged) - logged_ids(url)

    assert body["degraded"] is True
    assert body["prediction_log"]["error"] == "OperationalError"
    assert _metric(metrics, "refit_prediction_log_failing") == 1
    unconfirmed_responses = _metric(metrics, "refit_prediction_log_unconfirmed_responses_total")
    refused = _metric(metrics, "refit_prediction_log_refused_responses_total")
    if mode == "flag":
        assert status == 200
        assert load.unconfirmed, "no response said it was unconfirmed"
        assert missing <= set(load.unconfirmed)
        assert unconfirmed_responses == len(load.unconfirmed)  # one text per request
        assert refused == 0
    else:
        assert status == 503
        assert missing == set()
        assert load.unconfirmed == []
        assert load.statuses[503] == refused == load.flagged_refusals > 0
        assert unconfirmed_responses == 0
    assert len(load.acknowledged) >= BEFORE_FULL
