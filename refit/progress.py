"""Rich progress bars for long work: fine-tuning and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

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

from training.epochs import EpochRecord


class TrainingProgress:
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def start(self, total_steps: int) -> None:
        self._task = self._bar.add_task("train", total=total_steps, loss=float("nan"))

    def step(self, loss: float) -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, loss=loss)

    def epoch_done(self, record: EpochRecord) -> None:
        self._bar.console.print(
            f"epoch {record.epoch}: train loss {record.train_loss:.4f}, "
            f"validation loss {record.validation_loss:.4f}, "
            f"validation macro-F1 {record.validation_macro_f1:.4f} ({record.seconds:.0f} s)"
        )


@contextmanager
def counting(console: Console, what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar driven by (done, total) calls."""
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
