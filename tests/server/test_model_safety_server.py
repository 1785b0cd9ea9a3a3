"""A real `bentoml serve` (2 workers) whose champion's weights are broken in the store.

The versions are registered (and so proven) first and damaged afterwards, as a
store edited behind refit's back, a disk error or a half-finished copy would
leave them. Each test has its own model name and state folder, so no other
test's champion is touched.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from tiny_versions import register_tiny_versions

from refit.core.registry import ModelVersion, Registry
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

pytestmark = pytest.mark.integration

LABELS = ["billing", "shipping"]
WORKERS = 2
TOKEN = "safety-token"
UNREADABLE = "weights in model.safetensors cannot be read: SafetensorError"
FALLBACK_LINE = "the champion does not load"


def _registered(tmp_path: Path, base: Path, count: int) -> tuple[Registry, list[ModelVersion]]:
    registry = Registry(f"safety-{uuid.uuid4().hex[:8]}", tmp_path / "state")
    return registry, register_tiny_versions(registry, base, LABELS, count, {"max_length": 64})


def _truncate(version: ModelVersion) -> None:
    weights = version.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _env(registry: Registry, tmp_path: Path) -> dict[str, str]:
    return {
        "BENTOML_HOME": os.environ["BENTOML_HOME"],
        "REFIT_STATE_DIR": str(tmp_path / "state"),
        "REFIT_MODEL_NAME": registry.name,
        "REFIT_DEVICE": "cpu",
        "REFIT_WORKERS": str(WORKERS),
        "REFIT_MONITORING": "false",
        "REFIT_RELOAD_INTERVAL_S": "1",
        "REFIT_ADMIN_TOKEN": TOKEN,
    }


def _readyz(server: RunningServer) -> dict:
    response = httpx.get(f"{server.url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _metric(server: RunningServer, name: str, **labels: str) -> float | None:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name}{{") and all(w in line for w in wanted):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_for(condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def _assert_no_path(text: str, tmp_path: Path) -> None:
    assert str(tmp_path) not in text
    assert os.environ["BENTOML_HOME"] not in text


def test_a_champion_that_does_not_load_is_replaced_by_the_previous_one(
    tmp_path: Path, tiny_base_model: Path
) -> None:
    registry, (previous, broken, later) = _registered(tmp_path, tiny_base_model, 3)
    registry.promote(previous.version, reason="first", actor="test")
    registry.promote(broken.version, reason="second", actor="test")
    _truncate(broken)
    server = start_bentoml(_env(registry, tmp_path), tmp_path / "server")
    try:
        # Every worker starts on the previous champion, says so once, and stays up.
        _wait_for(lambda: server.log_text().count(FALLBACK_LINE) == WORKERS)
        for _ in range(4):
            state = _readyz(server)
            assert state["ready"] is True
            assert (state["serving"], state["champion"]) == (previous.tag, broken.tag)
            assert state["fallback"] is True
            assert UNREADABLE in state["reason"]
            _assert_no_path(state["reason"], tmp_path)
        answer = httpx.post(f"{server.url}/classify", json={"texts": ["where is my parcel"]})
        assert answer.json()[0]["model_version"] == previous.version
        labels = {"champion": broken.version, "serving": previous.version}
        assert _metric(server, "refit_model_fallback", **labels) == 1

        time.sleep(5)  # five watcher intervals: the broken champion is not retried
        log = server.log_text()
        assert "hot-swap refused" not in log
        assert "Traceback" not in log
        assert "Application startup failed" not in log

        # An explicit reload tries again: 409, naming the version and no folder.
        reload = httpx.post(
            f"{server.url}/admin/reload", headers={"authorization": f"Bearer {TOKEN}"}, json={}
        )
        assert reload.status_code == 409, reload.text
        error = reload.json()["error"]
        assert f"model version {broken.tag} cannot be served: {UNREADABLE}" in error
        assert f"still serving {previous.version}" in error
        _assert_no_path(error, tmp_path)
        assert _metric(server, "refit_model_swaps_total", outcome="refused") == 1

        # A good promotion is followed by every worker; the fallback ends.
        Registry(registry.name, tmp_path / "server" / "state").promote(
            later.version, reason="fixed", actor="test"
        )
        _wait_for(lambda: _metric(server, "refit_model_fallback", **labels) == 0)
        assert {_readyz(server)["serving"] for _ in range(6)} == {later.tag}
        assert _readyz(server)["fallback"] is False
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()


def test_with_no_loadable_version_the_server_exits_after_one_failed_start(
    tmp_path: Path, tiny_base_model: Path
) -> None:
    registry, versions = _registered(tmp_path, tiny_base_model, 2)
    for version in versions:
        registry.promote(version.version, reason="next", actor="test")
        _truncate(version)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="server exited early"):
        start_bentoml(_env(registry, tmp_path), tmp_path / "server")
    assert time.monotonic() - started < 120
    log = (tmp_path / "server" / "server.log").read_text(errors="replace")
    # One error line per worker start; each worker started once, none again.
    failures = [line for line in log.splitlines() if line.endswith("; stopping the server")]
    assert 1 <= len(failures) <= WORKERS, log[-4000:]
    assert f"no version of model '{registry.name}' can be served" in failures[0]
    assert UNREADABLE in failures[0]
    _assert_no_path(failures[0], tmp_path)
