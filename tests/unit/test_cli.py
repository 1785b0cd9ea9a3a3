"""The `refit` command line, run as a user would (argv in, exit code and text out)."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path

import pandas as pd
import pytest
from runner import run_refit


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_base_model: Path) -> Path:
    settings = {
        "REFIT_BASE_MODEL": str(tiny_base_model),
        "REFIT_GENERATED_ROWS": "400",
        "REFIT_EPOCHS": "1",
        "REFIT_LEARNING_RATE": "0.001",
        "REFIT_MAX_LENGTH": "64",
        "REFIT_DEVICE": "cpu",
        "REFIT_STATE_DIR": str(tmp_path / "state"),
        "REFIT_MODEL_NAME": f"cli-{uuid.uuid4().hex[:8]}",
        "COLUMNS": "200",  # rich wraps tables to the terminal width
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_refit(capsys, "--help")
    assert code == 0
    for command in ("train", "evaluate", "serve", "models", "data"):
        assert command in out


def test_generate_writes_the_requested_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "long.jsonl"
    code, out = run_refit(
        capsys,
        "data",
        "generate",
        "-o",
        str(target),
        "--rows",
        "120",
        "--scenario",
        "long_messages",
        "--seed",
        "3",
    )
    assert code == 0, out
    frame = pd.read_json(target, lines=True)
    assert len(frame) == 120
    assert set(frame["scenario"]) == {"long_messages"}


def test_generate_rejects_an_unknown_scenario(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run_refit(
        capsys, "data", "generate", "-o", str(tmp_path / "x.csv"), "--scenario", "nope"
    )
    assert code == 2
    assert "unseen_intent" in out


def test_train_list_show_promote_evaluate(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    code, out = run_refit(capsys, "train")
    assert code == 0, out
    assert "champion" in out
    assert "macro F1" in out
    # Not a terminal: progress is dated lines, not a bar drawn once at the end.
    assert re.search(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ fine-tuning 100% \(\d+/\d+ steps\)", out, re.M
    )
    assert re.search(r"^\S+Z epoch 1: train loss \d\.\d{4}", out, re.M)
    assert not re.search(r"fine-tuning\s+━", out)  # no bar

    code, out = run_refit(capsys, "train", "--seed", "5")
    assert code == 0, out
    assert "not promoted" in out

    from refit.core.registry import Registry
    from refit.service.settings import get_settings

    registry = Registry.from_settings(get_settings().core)
    first, second = registry.versions()[1], registry.versions()[0]
    assert registry.champion_tag() == first.tag

    code, out = run_refit(capsys, "models", "list")
    assert code == 0
    assert first.version in out
    assert second.version in out
    assert "champion" in out

    code, out = run_refit(capsys, "models", "promote", second.version, "--reason", "test")
    assert code == 0, out
    assert Registry.from_settings(get_settings().core).champion_tag() == second.tag

    code, out = run_refit(capsys, "models", "show")
    assert code == 0
    assert "Model card" in out

    data = cli_env / "eval.csv"
    code, out = run_refit(capsys, "data", "generate", "-o", str(data), "--rows", "150")
    report_path = cli_env / "report.json"
    code, out = run_refit(capsys, "evaluate", "--data", str(data), "-o", str(report_path))
    assert code == 0, out
    assert re.search(r"^\S+Z evaluating 100% \(150/150 rows\)", out, re.M)
    report = json.loads(report_path.read_text())
    assert report["overall"]["n"] == 150
    assert {s["column"] for s in report["slices"]} >= {"length", "channel"}


def test_train_on_a_bad_file_names_the_file_and_line(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    bad = cli_env / "bad.csv"
    bad.write_text("text,label\nhello there,a\n   ,b\n")
    code, out = run_refit(capsys, "train", "--data", str(bad))
    assert code == 1
    assert f"{bad}, line 3: text is empty" in out.replace("\n", "")


def test_evaluate_refuses_labels_the_model_does_not_know(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    assert run_refit(capsys, "train")[0] == 0
    data = cli_env / "odd.csv"
    data.write_text("text,label\nplease delete all my data,data_privacy\n")
    code, out = run_refit(capsys, "evaluate", "--data", str(data))
    assert code == 1
    assert "data_privacy" in out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_without_a_model_explains_what_to_do(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    code, out = run_refit(capsys, "serve", "--port", str(_free_port()))
    assert code == 1
    assert "refit train" in out


def test_serve_on_a_busy_port_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = run_refit(capsys, "serve", "--host", "127.0.0.1", "--port", str(port))
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert f"127.0.0.1:{port}" in lines[0]
    assert "in use" in lines[0]
    assert "Traceback" not in out


def test_an_invalid_setting_names_the_variable(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    code, out = run_refit(capsys, "models", "list", env={"REFIT_MAX_BATCH_SIZE": "0"})
    assert code == 2
    assert "REFIT_MAX_BATCH_SIZE" in out
