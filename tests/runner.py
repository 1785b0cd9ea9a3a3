"""The `refit` command run in-process, as a user would type it, and its output."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from refit.cli import main


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """`env` set in os.environ for the block, the previous values back afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_refit(
    capsys: pytest.CaptureFixture[str], *args: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Exit code and everything printed, for `refit ARGS` with `env` set."""
    saved_argv, sys.argv = sys.argv, ["refit", *args]
    try:
        with environment(env or {}):
            main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = saved_argv
    captured = capsys.readouterr()
    return code, captured.out + captured.err
