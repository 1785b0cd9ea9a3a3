"""A server killed with `kill -9` of its process group: no acknowledged prediction is lost,
its workers leave by themselves, and `refit serve` on the same port works the first time."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from classify_load import ClassifyLoad, logged_ids
from paths import ROOT

from refit import datagen
from refit.testing.bentoml_server import wait_ready
from refit.testing.processes import RunningServer, free_port, ready_or_stopped, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = datagen.generate(200, seed=9)["text"].tolist()


def _refit_serve(env: dict[str, str], port: int, log: Path) -> RunningServer:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "refit", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", Path(env["BENTOML_HOME"]), log)
    return ready_or_stopped(server, lambda: wait_ready(server, 120))


def test_kill_9_of_the_group_then_restart_on_the_same_port(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    home, state = tmp_path / "bentoml", tmp_path / "state"
    shutil.copytree(served_env["BENTOML_HOME"], home, ignore=shutil.ignore_patterns("prom*"))
    shutil.copytree(
        served_env["REFIT_STATE_DIR"], state, ignore=shutil.ignore_patterns("*.sqlite3*")
    )
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    env = {
        **os.environ,
        **served_env,
        "BENTOML_HOME": str(home),
        "REFIT_STATE_DIR": str(state),
        "REFIT_PREDICTION_LOG_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    first = _refit_serve(env, port, tmp_path / "first.log")
    workers = first.processes()[1:]
    load = ClassifyLoad(first.url, TEXTS).start()
    load.wait_for(60)
    os.killpg(first.process.pid, signal.SIGKILL)  # the group: BentoML's workers are not in it
    first.process.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    load.stop()
    assert alive == [], "workers outlived their server"
    second = _refit_serve(env, port, tmp_path / "second.log")  # the first try must work
    try:
        response = httpx.post(f"{second.url}/classify", json={"texts": TEXTS[:2]}, timeout=30)
        assert response.status_code == 200
        # One line says when it is ready, as soon as /readyz says so.
        ready = f"ready: serving on http://127.0.0.1:{port} (front page at /"

        def said() -> bool:
            return ready in second.log.read_text()

        wait_for("the ready line", second.process, second.log, said, timeout=10, pause=0.1)
    finally:
        second.stop()
    assert len(load.acknowledged) >= 60
    assert set(load.acknowledged) - logged_ids(url) == set()
