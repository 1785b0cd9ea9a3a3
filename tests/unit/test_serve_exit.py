"""`refit serve` ends with a status a supervisor can read: one line and non-zero when the
prediction log cannot work, and when a worker stopped the server because it cannot serve."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from runner import run_refit

import refit.serve_process as serve_process
from refit.service.model.stop_reason import STOP_REASON_VAR
from refit.testing.processes import free_port


def test_the_server_process_exits_1_with_the_reason_a_worker_left(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, list[str]] = {}

    def bentoml_stopped_by_a_worker(argv: list[str]) -> None:
        seen["argv"] = argv
        Path(os.environ[STOP_REASON_VAR]).write_text("no version of model 'm' can be served\n")

    monkeypatch.setattr(serve_process, "run_bentoml", bentoml_stopped_by_a_worker)
    assert serve_process.main(["serve", "x:Y"]) == serve_process.FAILED_START == 1
    assert seen["argv"] == ["serve", "x:Y"]
    err = capsys.readouterr().err
    assert err == "error: the server stopped: no version of model 'm' can be served\n"
    assert not Path(os.environ[STOP_REASON_VAR]).exists()  # the file goes with the server


def test_the_server_process_exits_0_after_an_ordinary_stop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(serve_process, "run_bentoml", lambda argv: None)
    assert serve_process.main(["serve", "x:Y"]) == 0
    assert capsys.readouterr().err == ""


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("REFIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.mark.parametrize(
    "url",
    [
        "mysql://refit:s3cret@db/refit",
        "sqlite:////proc/nope/x.db",
        "postgresql+psycopg://refit:s3cret@db:port/refit",
    ],
)
def test_serve_refuses_a_log_url_that_cannot_work_in_one_line(
    capsys: pytest.CaptureFixture[str], serve_env: Path, url: str
) -> None:
    env = {"REFIT_PREDICTION_LOG_URL": url}
    code, out = run_refit(capsys, "serve", "--port", str(free_port()), env=env)
    assert code == 2
    (line,) = out.strip().splitlines()
    assert line.startswith("error: REFIT_PREDICTION_LOG_URL=")
    assert "s3cret" not in out


def test_serve_refuses_a_damaged_log_in_one_line_and_leaves_it(
    capsys: pytest.CaptureFixture[str], serve_env: Path
) -> None:
    path = serve_env / "predictions.sqlite3"
    path.write_bytes(b"SQLite format 3\0" + os.urandom(5000))
    content = path.read_bytes()
    env = {"REFIT_PREDICTION_LOG_URL": f"sqlite:///{path}"}
    code, out = run_refit(capsys, "serve", "--port", str(free_port()), env=env)
    assert code == 1
    (line,) = out.strip().splitlines()
    assert str(path) in line
    assert ".recover" in line
    assert path.read_bytes() == content
