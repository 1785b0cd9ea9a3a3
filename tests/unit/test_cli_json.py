"""`--json` output and full-width tables, read the way a script or a log reader would.

One tiny model is trained for the module; each test runs `refit` in-process against it
and reads stdout alone (JSON) or stdout and stderr (tables, progress).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runner import environment

from refit.cli import main
from refit.retraining.audit import AuditLog
from refit.service.settings import Settings
from refit.training.scores import EvaluationReport

MODEL = "cli-json-classifier"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_base_model: Path,
    tiny_settings: Callable[..., Settings],
) -> dict[str, str]:
    """Environment of a state folder whose champion is a freshly trained tiny model."""
    from refit.training.train import train

    state_dir = tmp_path_factory.mktemp("cli-json") / "state"
    train(tiny_settings(state_dir, MODEL))
    return {
        "REFIT_STATE_DIR": str(state_dir),
        "REFIT_MODEL_NAME": MODEL,
        "REFIT_DEVICE": "cpu",
        "REFIT_BASE_MODEL": str(tiny_base_model),
        "COLUMNS": "80",  # a non-terminal ignores it: nothing may be cut to 80 columns
    }


def run(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], *args: str
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `refit ARGS`."""
    saved_argv, sys.argv = sys.argv, ["refit", *args]
    code = 0
    try:
        with environment(env):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = saved_argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], env: dict[str, str], *args: str) -> Any:
    code, out, err = run(capsys, env, *args, "--json")
    assert code == 0, out + err
    assert "\x1b" not in out  # no colour, no markup
    return json.loads(out)  # the whole of stdout is one document


def _champion_metrics(env: dict[str, str]) -> dict[str, Any]:
    from refit.core.registry import Registry

    registry = Registry(MODEL, Path(env["REFIT_STATE_DIR"]))
    champion = registry.champion()
    assert champion is not None
    return champion.read_json("metrics.json")


def test_models_list_show_and_history_as_json(
    capsys: pytest.CaptureFixture[str], world: dict[str, str]
) -> None:
    metrics = _champion_metrics(world)
    versions = run_json(capsys, world, "models", "list")
    assert isinstance(versions, list)
    assert len(versions) == 1
    (listed,) = versions
    assert listed["champion"] is True
    assert listed["tag"] == f"{MODEL}:{listed['version']}"
    assert listed["metrics"]["ece"] == metrics["overall"]["ece"]  # unrounded
    assert listed["metadata"]["test_ece"] == round(metrics["overall"]["ece"], 4)

    shown = run_json(capsys, world, "models", "show")
    assert shown["version"] == listed["version"]
    assert shown["champion"] is True
    assert shown["metrics"] == metrics
    assert Path(shown["path"], "model_card.md").is_file()
    assert {"created", "metadata", "tag"} <= set(shown)

    (event,) = run_json(capsys, world, "models", "history")
    assert event["tag"] == listed["tag"]
    assert event["previous"] is None


def test_models_list_prints_whole_versions_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str], world: dict[str, str]
) -> None:
    code, out, _ = run(capsys, world, "models", "list")
    assert code == 0
    version = run_json(capsys, world, "models", "list")[0]["version"]
    row = next(line for line in out.splitlines() if version in line)
    assert "champion" in row  # the whole row on one line
    assert world["REFIT_BASE_MODEL"] in out  # a long path, whole
    assert "…" not in out


def test_drift_json_is_the_summary_the_check_wrote_and_reports_lists_it(
    capsys: pytest.CaptureFixture[str], world: dict[str, str]
) -> None:
    result = run_json(capsys, world, "drift", "--window", "1h")
    assert result["status"] == "not_enough_data"  # nothing served yet
    assert result == json.loads(Path(result["json_path"]).read_text())

    runs = run_json(capsys, world, "reports")
    assert isinstance(runs, list)
    assert runs[0] == result

    code, out, _ = run(capsys, world, "reports")
    assert code == 0
    for header in ("checked (UTC)", "version", "window", "verdict", "drifted signals"):
        assert header in out
    assert result["model_version"] in out
    assert Path(result["json_path"]).name in out
    assert "…" not in out


def test_evaluate_json_is_the_report(
    capsys: pytest.CaptureFixture[str], world: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "eval.csv"
    assert run(capsys, world, "data", "generate", "-o", str(data), "--rows", "150")[0] == 0
    code, out, err = run(capsys, world, "evaluate", "--data", str(data), "--json")
    assert code == 0, err
    report = EvaluationReport.model_validate(json.loads(out))
    assert report.overall.n == 150
    assert re.search(r"^\S+Z evaluating 100% \(150/150 rows\)", err, re.M)


def test_retrain_history_json_is_one_array(
    capsys: pytest.CaptureFixture[str], world: dict[str, str]
) -> None:
    from refit.core.settings import CoreSettings

    audit = AuditLog(CoreSettings(state_dir=Path(world["REFIT_STATE_DIR"])))
    audit.append("decision", action="none", reasons=["drift in 0 checks"])
    audit.append("check_failed", error="x")
    records = run_json(capsys, world, "retrain", "history")
    assert [r["event"] for r in records[-2:]] == ["decision", "check_failed"]
    assert records[-2]["reasons"] == ["drift in 0 checks"]
    assert run_json(capsys, world, "retrain", "history", "--limit", "1") == records[-1:]
