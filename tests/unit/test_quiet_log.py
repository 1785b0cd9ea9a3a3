"""One log line per interval, however often the condition repeats."""

from __future__ import annotations

import logging

import pytest

from refit.core.quiet_log import QuietLog


def test_one_line_per_interval_then_the_count_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = QuietLog(logging.getLogger("quiet-test"), logging.ERROR, every=60, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="quiet-test"):
        for _ in range(3):
            log("refused %d texts", 4)
        now[0] += 59
        log("refused %d texts", 5)  # still within the minute
        now[0] += 2
        log("refused %d texts", 6, exc_info=ValueError("why"))
    assert [r.getMessage() for r in caplog.records] == [
        "refused 4 texts",
        "refused 6 texts (3 like it held back)",
    ]
    assert all(r.levelno == logging.ERROR for r in caplog.records)
    assert caplog.records[1].exc_info is not None
