"""A worker whose server dies exits by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
from paths import ROOT

# A "server" that starts a "worker" and prints its pid; the worker watches its parent.
SERVER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True)
print(worker.pid, flush=True)
time.sleep(60)
"""
WORKER = """
import pathlib, sys, time
from refit.service.model.parent_watch import watch_parent
marker = pathlib.Path(sys.argv[1])
watch_parent(lambda: marker.write_text("flushed"), poll_s=0.05)
time.sleep(60)
"""


def test_the_worker_exits_and_flushes_when_its_server_is_killed(tmp_path) -> None:
    marker = tmp_path / "flushed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, WORKER, str(marker)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    assert server.stdout is not None
    worker = psutil.Process(int(server.stdout.readline()))
    time.sleep(0.5)  # the worker's watch has started
    os.killpg(server.pid, signal.SIGKILL)  # the worker, in its own group, is not hit
    server.wait(timeout=10)
    worker.wait(timeout=10)
    assert marker.read_text() == "flushed"


# A worker that looks late: its server was killed while it was still loading, so it
# was re-parented before it started watching (the server is not its parent here).
LATE_WORKER = """
import os, pathlib, sys, time
from refit.service.model.parent_watch import watch_parent
marker = pathlib.Path(sys.argv[1])
while os.path.exists(f"/proc/{os.environ['REFIT_SERVER_PID']}"):
    time.sleep(0.02)
watch_parent(lambda: marker.write_text("flushed"), poll_s=0.05)
time.sleep(60)
"""


def test_a_worker_that_starts_watching_after_its_server_died_still_exits(tmp_path) -> None:
    marker = tmp_path / "flushed"
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REFIT_SERVER_PID": str(server.pid)}
    worker = subprocess.Popen([sys.executable, "-c", LATE_WORKER, str(marker)], env=env, cwd=ROOT)
    try:
        time.sleep(0.5)
        server.kill()
        server.wait(timeout=10)
        assert worker.wait(timeout=10) == 0
        assert marker.read_text() == "flushed"
    finally:
        worker.kill()
        server.kill()


def test_a_zombie_is_not_running() -> None:
    from refit.service.model.parent_watch import running

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while running(child.pid):  # exited but not reaped: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert child.poll() == 0
    assert running(os.getpid())
    assert not running(child.pid)
