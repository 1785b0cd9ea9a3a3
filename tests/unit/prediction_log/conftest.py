"""Prediction-log databases of both backends, and logs closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from refit.monitoring.prediction_log import PredictionLog


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty prediction log database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'predictions.sqlite3'}"
    url: str = request.getfixturevalue("pg_log_url")
    return url


@pytest.fixture
def pg_log_url(postgres_url: str) -> str:
    """The session's PostgreSQL database without a prediction log table."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
    engine.dispose()
    return postgres_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'predictions.sqlite3'}"


@pytest.fixture
def open_log() -> Iterator[Callable[..., PredictionLog]]:
    """Opens and starts logs; closes every one of them after the test."""
    logs: list[PredictionLog] = []

    def open_(url: str, **options: Any) -> PredictionLog:
        log = PredictionLog(url, **options)
        log.start()
        logs.append(log)
        return log

    yield open_
    for log in logs:
        log.close()
