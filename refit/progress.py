"""Progress of long work (fine-tuning, evaluation): a rich bar on a terminal, dated
lines (`refit.progress_lines`) in a log file or a pipe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from refit.progress_lines import DatedLines, TrainingLog, epoch_line
from refit.training.epochs import EpochRecord


class TrainingReporter(AbstractContextManager["TrainingReporter"], Protocol):
    """What the training loop reports to (`training.epochs.Progress`), as a context."""

    def start(self, total_steps: int) -> None: ...

    def step(self, loss: float) -> None: ...

    def epoch_done(self, record: EpochRecord) -> None: ...


class TrainingProgress(AbstractContextManager["TrainingProgress"]):
    """The training loop's progress as a rich bar, for a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar = Progress(
            TextColumn("[bold]fine-tuning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> TrainingProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def start(self, total_steps: int) -> None:
        self._task = self._bar.add_task("train", total=total_steps, loss=float("nan"))

    def step(self, loss: float) -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, loss=loss)

    def epoch_done(self, record: EpochRecord) -> None:
        self._bar.console.print(epoch_line(record), highlight=False)


def training_progress(console: Console) -> TrainingReporter:
    """A bar when `console` writes to a terminal, dated lines otherwise."""
    if console.is_terminal:
        return TrainingProgress(console)
    return TrainingLog(console)


@contextmanager
def counting(
    console: Console, what: str, unit: str = "rows"
) -> Iterator[Callable[[int, int], None]]:
    """Progress driven by (done, total) calls: a bar on a terminal, dated lines otherwise."""
    if not console.is_terminal:
        yield DatedLines(console, what, unit).update
        return
    bar = Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task(what, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
