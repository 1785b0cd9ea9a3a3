"""Adversarial: a server that cannot keep its promises does not start, and says why.

`refit serve` (what the container runs) exits non-zero, so that a supervisor sees a
failure, with one line naming what to fix: a prediction-log URL that cannot work, a
SQLite log that is damaged (left as it was), no model version that loads. Plain
`bentoml serve` stops too, instead of restarting a failing worker for ever behind
an open port.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
from paths import ROOT
from tiny_versions import register_tiny_versions

from refit.core.registry import Registry
from refit.monitoring.log_records import PredictionBatch
from refit.monitoring.prediction_log import PredictionLog
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import free_port

pytestmark = pytest.mark.integration

# Long enough for a worker to load the tiny model and give up; the code before this
# round never exited at all.
EXIT_WITHIN_S = 120
URL_VAR = "REFIT_PREDICTION_LOG_URL"
UNUSABLE_URLS = {
    "mysql": "mysql://refit:s3cret@db.example/refit",
    "proc": "sqlite:////proc/nope/x.db",
    "bad-port": "postgresql+psycopg://refit:s3cret@db.example:port/refit",
    "port-range": "postgresql+psycopg://refit:s3cret@db.example:99999/refit",
}


def _refit_serve(env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    """Run `refit serve` to its end (status, output); its processes are killed if it
    is still running after EXIT_WITHIN_S."""
    command = [sys.executable, "-m", "refit", "serve", "--port", str(free_port())]
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "REFIT_WORKERS": "1"}
    out = tmp_path / "serve.out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            command, env=full_env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        code = process.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        code = -1
    finally:
        _kill_tree(process.pid)
    return code, out.read_text(errors="replace")


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        proc.kill()
    psutil.wait_procs(tree, timeout=10)


@pytest.fixture
def private_env(served_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The served model on private copies of BENTOML_HOME and the state folder."""
    home, state = tmp_path / "bentoml", tmp_path / "state"
    private = shutil.ignore_patterns("prometheus*", "*.sqlite3*")
    shutil.copytree(served_env["BENTOML_HOME"], home, ignore=private)
    shutil.copytree(served_env["REFIT_STATE_DIR"], state, ignore=private)
    return {**served_env, "BENTOML_HOME": str(home), "REFIT_STATE_DIR": str(state)}


def _refused_by_bentoml_serve(env: dict[str, str], workdir: Path) -> str:
    """The tail of the log of `bentoml serve` with `env`, which must exit by itself; a
    server that starts instead is stopped, and the test fails."""
    try:
        server = start_bentoml(env, workdir, timeout=EXIT_WITHIN_S)
    except RuntimeError as exc:  # "server exited early", with the log's tail
        return str(exc)
    server.stop()
    pytest.fail("the server started")


def _one_line_naming(output: str, *words: str) -> str:
    lines = [line for line in output.splitlines() if all(w in line for w in words)]
    assert len(lines) == 1, output[-4000:]
    return lines[0]


@pytest.mark.parametrize("url", UNUSABLE_URLS.values(), ids=UNUSABLE_URLS.keys())
def test_refit_serve_refuses_a_log_url_that_cannot_work(
    url: str, private_env: dict[str, str], tmp_path: Path
) -> None:
    code, output = _refit_serve({**private_env, URL_VAR: url}, tmp_path)
    assert code > 0, output[-4000:]
    _one_line_naming(output, URL_VAR)
    assert "s3cret" not in output
    assert "serving on" not in output  # refused before BentoML starts


# One refused by the URL's form, in BentoML's own process as the service module is
# imported, and one that only a worker finds, as it creates the file.
@pytest.mark.parametrize("name", ["mysql", "proc"])
def test_bentoml_serve_stops_on_a_log_url_that_cannot_work(
    name: str, private_env: dict[str, str], tmp_path: Path
) -> None:
    log = _refused_by_bentoml_serve({**private_env, URL_VAR: UNUSABLE_URLS[name]}, tmp_path / "s")
    assert URL_VAR in log
    assert "s3cret" not in (tmp_path / "s" / "server.log").read_text(errors="replace")


def _real_log(path: Path, rows: int = 3000) -> None:
    """A SQLite prediction log of `rows` rows, written by refit and closed cleanly."""
    import numpy as np

    log = PredictionLog(f"sqlite:///{path}")
    log.start()
    rng = np.random.default_rng(0)
    for start in range(0, rows, 500):
        scores = rng.dirichlet(np.ones(2), size=500)
        batch = PredictionBatch(
            ids=[uuid.uuid4().hex for _ in range(500)],
            texts=[f"where is parcel {start + i}, it was due last week" for i in range(500)],
            labels=["billing" if s[0] > 0.5 else "shipping" for s in scores],
            scores=scores,
            label_names=("billing", "shipping"),
            model_version="v1",
            created=1.7e9,
            latency_ms=np.full(500, 3.0),
            n_tokens=np.full(500, 12),
            truncated=np.zeros(500, dtype=bool),
        )
        assert log.wait_durable(log.submit(batch), 30)
    log.close()
    with sqlite3.connect(path) as conn:  # the log is whole before it is damaged
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)


def _damage(path: Path, how: str) -> bytes:
    if how == "random-bytes":
        path.write_bytes(os.urandom(200_000))
    else:
        _real_log(path)
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2)
    return path.read_bytes()


@pytest.fixture(params=["random-bytes", "truncated"])
def damaged_log(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "damaged" / "predictions.sqlite3"
    path.parent.mkdir()
    return path, _damage(path, request.param)


def test_refit_serve_refuses_a_damaged_log_and_leaves_it_alone(
    damaged_log: tuple[Path, bytes], private_env: dict[str, str], tmp_path: Path
) -> None:
    path, content = damaged_log
    code, output = _refit_serve({**private_env, URL_VAR: f"sqlite:///{path}"}, tmp_path)
    assert code > 0, output[-4000:]
    line = _one_line_naming(output, str(path), ".recover")
    assert "move it aside" in line
    assert path.read_bytes() == content


def test_bentoml_serve_stops_on_a_damaged_log_and_leaves_it_alone(
    damaged_log: tuple[Path, bytes], private_env: dict[str, str], tmp_path: Path
) -> None:
    path, content = damaged_log
    log = _refused_by_bentoml_serve({**private_env, URL_VAR: f"sqlite:///{path}"}, tmp_path / "s")
    assert str(path) in log
    assert path.read_bytes() == content


def test_refit_serve_fails_when_no_version_loads(
    private_env: dict[str, str], tiny_base_model: Path, tmp_path: Path
) -> None:
    name = f"broken-{uuid.uuid4().hex[:8]}"
    registry = Registry(name, Path(private_env["REFIT_STATE_DIR"]))
    for version in register_tiny_versions(registry, tiny_base_model, ["a", "b"], 2):
        registry.promote(version.version, reason="next", actor="test")
        weights = version.path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    # The versions went into the session's store: the server's private copy needs them.
    home = Path(private_env["BENTOML_HOME"])
    shutil.rmtree(home)
    shutil.copytree(os.environ["BENTOML_HOME"], home, ignore=shutil.ignore_patterns("prometheus*"))
    code, output = _refit_serve({**private_env, "REFIT_MODEL_NAME": name}, tmp_path)
    assert code > 0, output[-4000:]
    assert output.strip().splitlines()[-1].startswith("error:"), output[-2000:]
    _one_line_naming(output, "error:", f"no version of model '{name}' can be served")
