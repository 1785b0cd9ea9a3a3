"""A prediction log that cannot work is refused when it is opened, never written over:
a damaged SQLite file (not SQLite, cut short, damaged inside) and URLs that cannot work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from log_helpers import make_batch, submit_all

from refit.core.errors import ConfigError, PredictionLogUnavailable
from refit.monitoring.log_check import check_log, check_sqlite_file
from refit.monitoring.prediction_log import PredictionLog


def _written_log(path: Path, batches: int = 12) -> None:
    log = PredictionLog(f"sqlite:///{path}")
    log.start()
    submit_all(log, [make_batch(400, seed=i) for i in range(batches)])
    log.close()  # checkpointed: every row is in the file itself


def _damage(path: Path, how: str) -> None:
    if how == "random bytes":
        path.write_bytes(os.urandom(100_000))
        return
    _written_log(path)
    size = path.stat().st_size
    if how == "cut short":
        os.truncate(path, size // 2)
    else:  # "damaged inside": a run of pages in the middle overwritten
        with path.open("r+b") as file:
            file.seek(size // 2)
            file.write(os.urandom(3 * 4096))


@pytest.mark.parametrize("how", ["random bytes", "cut short"])
def test_a_damaged_file_is_refused_at_start_and_left_as_it_was(tmp_path: Path, how: str) -> None:
    path = tmp_path / "predictions.sqlite3"
    _damage(path, how)
    content = path.read_bytes()
    log = PredictionLog(f"sqlite:///{path}")
    with pytest.raises(PredictionLogUnavailable) as refused:
        log.start()
    log.close()
    message = str(refused.value)
    assert str(path) in message
    assert "move it aside" in message
    assert f'sqlite3 {path}.damaged ".recover"' in message
    assert "\n" not in message
    assert path.read_bytes() == content


def test_damage_inside_is_found_by_the_quick_check_only(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite3"
    _damage(path, "damaged inside")
    content = path.read_bytes()
    check_sqlite_file(path, "open")  # the header and the schema are whole
    with pytest.raises(PredictionLogUnavailable, match="is damaged"):
        check_log(f"sqlite:///{path}", "quick")
    assert path.read_bytes() == content


def test_a_whole_log_passes_both_checks_and_a_new_one_is_no_damage(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite3"
    _written_log(path, batches=2)
    for depth in ("open", "quick"):
        check_log(f"sqlite:///{path}", depth)  # type: ignore[arg-type]
    empty = tmp_path / "new" / "predictions.sqlite3"
    check_log(f"sqlite:///{empty}", "quick")  # created empty, as the server would
    assert empty.stat().st_size == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://refit:s3cret@db/refit", "only sqlite:///path and postgresql+psycopg://"),
        ("sqlite:////proc/nope/x.db", "No such file or directory"),
        ("postgresql+psycopg://refit:s3cret@db:port/refit", "not a URL of the form"),
        ("postgresql+psycopg://refit:s3cret@db:99999/refit", "port 99999 is not a TCP port"),
        ("postgresql+psycopg://refit:s3cret", "not a URL of the form"),
        ("sqlite://", "needs a SQLite file"),
    ],
)
def test_a_url_that_cannot_work_is_one_line_naming_the_variable(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as refused:
        PredictionLog(url)
    message = str(refused.value)
    assert message.startswith("REFIT_PREDICTION_LOG_URL=")
    assert why in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_damage_the_open_check_missed_is_refused_with_the_same_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SQLite refuses while the table is set up is damage too, said the same way."""
    import refit.monitoring.prediction_log as prediction_log

    monkeypatch.setattr(prediction_log, "check_sqlite_file", lambda path, depth: None)
    path = tmp_path / "predictions.sqlite3"
    _damage(path, "random bytes")
    content = path.read_bytes()
    log = PredictionLog(f"sqlite:///{path}")
    with pytest.raises(PredictionLogUnavailable, match=r"is damaged .*file is not a database"):
        log.start()
    log.close()
    assert path.read_bytes() == content
