"""The GPU benchmark scripts parse, and refuse clearly on a machine without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from paths import ROOT

BENCH = ROOT / "bench"


@pytest.mark.parametrize("script", ["gpu.sh", "gpu_bundle.sh"])
def test_script_is_valid_bash(script: str) -> None:
    subprocess.run(["bash", "-n", str(BENCH / script)], check=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_benchmark_stops_at_once_without_a_gpu() -> None:
    done = subprocess.run(
        ["bash", str(BENCH / "gpu.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode != 0
    assert "no CUDA device visible" in done.stderr
    assert "== GPU tests" not in done.stdout
