"""ruff and mypy over the whole project, so that a type or lint regression fails the
suite instead of waiting for somebody to run them by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT

# The layers, installed as subpackages of `refit` (pyproject.toml's package-dir).
LAYERS = ("core", "datagen", "training", "monitoring", "retraining", "service")


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_layer_list_is_complete() -> None:
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert found == {*LAYERS, "refit"}


@pytest.mark.parametrize("check", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff(check: tuple[str, ...]) -> None:
    result = _run("ruff", *check, ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # about a minute on 2 cores, without a cache
def test_mypy(tmp_path: Path) -> None:
    """mypy over the installed package's layout, tests and benchmarks included.

    mypy finds modules by their place on disk, and `refit.core` lives in `core/`: it
    checks a tree of links laid out as the installed package is (`refit/core` links to
    `core/`, and so on).
    """
    package = tmp_path / "refit"
    package.mkdir()
    for entry in (ROOT / "refit").iterdir():
        if entry.suffix == ".py":
            (package / entry.name).symlink_to(entry)
    for layer in LAYERS:
        (package / layer).symlink_to(ROOT / layer, target_is_directory=True)
    for folder in ("tests", "bench"):
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    # The cache lives in the checkout (.mypy_cache, git-ignored): a cold run takes
    # about a minute on 2 cores, a warm one seconds.
    config = ("--config-file", str(ROOT / "pyproject.toml"))
    cache = ("--cache-dir", str(ROOT / ".mypy_cache"))
    result = _run("mypy", *config, *cache, "refit", "tests", "bench", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
