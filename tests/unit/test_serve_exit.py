"""`refit serve` ends with a status a supervisor can read: one line and non-zero when the
prediction log cannot work, and when a worker stopped the server because it cannot serve."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def test_the_address_is_read_from_bentomls_arguments() -> None:
    argv = ["serve", "x:Y", "--host", "0.0.0.0", "--port", "3000"]
    assert serve_process.bound_address(argv) == ("0.0.0.0", 3000)
    assert serve_process.bound_address(["serve", "x:Y", "--port", "3000"]) is None
    assert serve_process.bound_address(["serve", "--host", "h", "--port", "p"]) is None


def test_the_ready_line_comes_once_readyz_answers_200(capsys: pytest.CaptureFixture[str]) -> None:
    answers = [503, 503, 200]
    asked: list[str] = []

    class Readyz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(answers.pop(0) if len(answers) > 1 else answers[0])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Readyz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        # A wildcard bind is polled on loopback, and the line names what was bound.
        serve_process.announce_ready("0.0.0.0", port, pause=0.01)
    finally:
        server.shutdown()
        server.server_close()
    assert asked == ["/readyz"] * 3
    assert capsys.readouterr().out == (
        f"ready: serving on http://0.0.0.0:{port} (front page at /, API docs at /docs)\n"
    )
