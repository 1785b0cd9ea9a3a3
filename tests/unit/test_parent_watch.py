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
from service.parent_watch import watch_parent
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
