"""ruff and mypy over the whole project, so that a type or lint regression fails the
suite instead of waiting for somebody to run them by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest
from paths import ROOT

# Every Python package of the repository, tests and benchmarks included.
PACKAGES = (
    "core",
    "datagen",
    "training",
    "monitoring",
    "retraining",
    "service",
    "refit",
    "bench",
    "tests",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_packages_list_is_complete() -> None:
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {"bench", "tests"}
    assert found == set(PACKAGES)


@pytest.mark.parametrize("check", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff(check: tuple[str, ...]) -> None:
    result = _run("ruff", *check, ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    # The cache lives in the checkout (.mypy_cache, git-ignored): a cold run takes
    # about a minute on 2 cores, a warm one seconds.
    result = _run("mypy", *PACKAGES)
    assert result.returncode == 0, result.stdout + result.stderr
