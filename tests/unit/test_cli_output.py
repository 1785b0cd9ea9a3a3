"""How `refit` writes for logs and scripts: consoles, progress lines, metric formatting."""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from runner import run_refit
from tiny_versions import write_tiny_version

from refit.console import FILE_WIDTH, ScriptConsole
from refit.core.registry import Registry
from refit.progress import TrainingProgress, counting, training_progress
from refit.progress_lines import TrainingLog
from refit.render import evaluation_tables
from refit.serve_command import port_problem
from refit.training.epochs import EpochRecord
from refit.training.finetune import FineTuneResult, TrainingConfig
from refit.training.model_card import model_card
from refit.training.scores import (
    ClassificationMetrics,
    ClassMetrics,
    EvaluationReport,
    format_metric,
)

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


class CountingFile(io.StringIO):
    """A file that counts flushes, to check each line leaves at once."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def _record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch, 0.51234, 0.61234, 0.81234, 12.0)


def test_training_progress_off_a_terminal_is_dated_lines_every_5_percent() -> None:
    out = CountingFile()
    console = ScriptConsole(file=out)
    progress = training_progress(console)
    assert isinstance(progress, TrainingLog)
    with progress:
        progress.start(800)
        for epoch in (1, 2):
            for _ in range(400):
                progress.step(1.25)
            progress.epoch_done(_record(epoch))
    lines = out.getvalue().splitlines()
    assert all(re.match(STAMP + " ", line) for line in lines)
    steps = [line for line in lines if "fine-tuning" in line]
    assert len(steps) == 21  # 0%, then every 5% up to 100%
    assert re.match(STAMP + r" fine-tuning 5% \(40/800 steps\) loss 1\.2500, ", steps[1])
    assert "about" in steps[1]
    assert "left" in steps[1]
    assert steps[-1].split(" ", 1)[1].startswith("fine-tuning 100% (800/800 steps)")
    epochs = [line.split(" ", 1)[1] for line in lines if " epoch " in line]
    assert epochs == [
        f"epoch {n}: train loss 0.5123, validation loss 0.6123, validation macro-F1 0.8123 (12 s)"
        for n in (1, 2)
    ]
    assert out.flushes >= len(lines)


def test_an_epoch_end_between_two_steps_gets_its_progress_line() -> None:
    out = io.StringIO()
    with training_progress(ScriptConsole(file=out)) as progress:
        progress.start(1000)
        for _ in range(333):
            progress.step(2.0)
        progress.epoch_done(_record(1))
    tail = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()[-2:]]
    assert tail[0].startswith("fine-tuning 33% (333/1000 steps) loss 2.0000")
    assert tail[1].startswith("epoch 1:")


def test_counting_off_a_terminal_writes_dated_lines() -> None:
    out = io.StringIO()
    with counting(ScriptConsole(file=out), "evaluating") as update:
        for done in range(0, 1001, 10):
            update(done, 1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 21
    assert re.fullmatch(STAMP + r" evaluating 100% \(1000/1000 rows\), \S+ elapsed", lines[-1])


def test_a_terminal_keeps_the_rich_bar() -> None:
    console = ScriptConsole(file=io.StringIO(), force_terminal=True)
    assert isinstance(training_progress(console), TrainingProgress)


def test_consoles_lay_out_at_full_width_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert ScriptConsole(file=io.StringIO()).width == FILE_WIDTH
    assert ScriptConsole(file=io.StringIO(), force_terminal=True).width == 60
    out = io.StringIO()
    table = Table("version", "checked (UTC)", "path")
    table.add_row("npzsp2hmzqlmxwif", "2026-11-30 16:40:12", "/a/" + "long/" * 30 + "report.html")
    ScriptConsole(file=out).print(table)
    text = out.getvalue()
    assert "…" not in text
    assert "npzsp2hmzqlmxwif" in text
    assert "checked (UTC)" in text
    assert "/a/" + "long/" * 30 + "report.html" in text


def _report(ece: float) -> EvaluationReport:
    overall = ClassificationMetrics(
        n=100,
        accuracy=0.9,
        macro_f1=0.9,
        micro_f1=0.9,
        weighted_f1=0.9,
        ece=ece,
        per_class={
            "a": ClassMetrics(precision=0.9, recall=0.9, f1=0.9, support=50),
            "b": ClassMetrics(precision=0.9, recall=0.9, f1=0.9, support=50),
        },
        labels=["a", "b"],
        confusion_matrix=[[45, 5], [5, 45]],
    )
    return EvaluationReport(overall=overall, slices=[], weakest_slices=[])


def _card(report: EvaluationReport) -> str:
    config = TrainingConfig(
        epochs=1, learning_rate=1e-3, batch_size=8, max_length=32, seed=0, device="cpu"
    )
    result = FineTuneResult(
        model=None,  # type: ignore[arg-type]
        tokenizer=None,  # type: ignore[arg-type]
        labels=["a", "b"],
        history=[_record(1)],
        best_epoch=1,
        overfitting=None,
        seconds=1.0,
        train_examples_per_second=1.0,
        device="cpu",
        config=config,
    )
    return model_card(
        model_name="m",
        base_model="b",
        data_source="d",
        fingerprint="f",
        split_sizes={"train": 1},
        result=result,
        test_report=report,
    )


@pytest.mark.parametrize(("ece", "shown"), [(0.02049, "0.020"), (0.0205, "0.021")])
def test_ece_reads_the_same_in_training_output_card_and_models_list(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_base_model: Path,
    ece: float,
    shown: str,
) -> None:
    report = _report(ece)
    assert format_metric("ece", ece) == shown

    training_output = io.StringIO()
    console = Console(file=training_output, width=200)
    for table in evaluation_tables(report, title="Test split"):
        console.print(table)
    summary = next(line for line in training_output.getvalue().splitlines() if "100" in line)
    assert summary.split("│")[-2].strip() == shown  # the ECE column

    assert f"expected calibration error {shown} " in _card(report)

    name = f"ece-{str(ece).replace('.', '-')}"

    write_model = write_tiny_version(tiny_base_model, ["a", "b"])

    def write(folder: Path) -> None:
        write_model(folder)
        (folder / "metrics.json").write_text(report.model_dump_json())

    # As training registers a version: the metadata holds ECE rounded to 4 places.
    version = Registry(name, tmp_path / "state").register(
        write, metadata={"test_ece": round(ece, 4), "test_accuracy": 0.9, "test_macro_f1": 0.9}
    )
    env = {"REFIT_STATE_DIR": str(tmp_path / "state"), "REFIT_MODEL_NAME": name}
    code, out = run_refit(capsys, "models", "list", env=env)
    assert code == 0, out
    row = next(line for line in out.splitlines() if version.version in line)
    assert [cell.strip() for cell in row.split("│")[3:6]] == ["0.900", "0.900", shown]
    code, out = run_refit(capsys, "models", "list", "--json", env=env)
    assert json.loads(out)[0]["metrics"]["ece"] == ece


def test_format_metric_digits_and_missing_values() -> None:
    assert format_metric("accuracy", 0.91666) == "0.917"
    assert format_metric("train_loss", 1.234567) == "1.2346"
    assert format_metric("ece", None) == "-"
    assert format_metric("ece", float("nan")) == "-"


def test_the_port_probe_tells_a_free_port_from_a_taken_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = port_problem("127.0.0.1", port)
    assert problem is not None
    assert "in use" in problem
    assert port_problem("127.0.0.1", port) is None  # closed: free again
