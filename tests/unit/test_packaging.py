"""The distribution installs one importable name, `refit`, holding every layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from paths import ROOT


def _run(*args: str | Path) -> None:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def test_pip_install_adds_exactly_one_name(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves a build/ folder beside the project it builds.
    source, wheels, venv = tmp_path / "source", tmp_path / "wheels", tmp_path / "venv"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__")
    for layer in ("refit", "core", "datagen", "training", "monitoring", "retraining", "service"):
        shutil.copytree(ROOT / layer, source / layer, ignore=ignore)
    pip = (sys.executable, "-m", "pip")
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, source)
    (wheel,) = wheels.glob("refit-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    (site,) = venv.glob("lib/python*/site-packages")
    before = {p.name for p in site.iterdir()}
    _run(*pip, "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel)
    added = {p.name for p in site.iterdir()} - before
    names = {name for name in added if not name.endswith((".dist-info", ".pth"))}
    assert names == {"refit"}
    for layer in ("core", "datagen", "training", "monitoring", "retraining", "service"):
        assert (site / "refit" / layer / "__init__.py").is_file()
    assert (site / "refit" / "service" / "scheduling" / "scheduler.py").is_file()
    assert (site / "refit" / "cli.py").is_file()
