"""What one feedback item does to the label on record: pure rules, no database."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from refit.core.errors import ConfusableLabel
from refit.monitoring.label_skeleton import LabelBook, normal_label


@dataclass
class NewLabelRoom:
    """Labels the model does not know, already given by feedback, and how many may exist."""

    given: set[str]
    cap: int

    def admits(self, label: str) -> bool:
        if label in self.given or len(self.given) < self.cap:
            self.given.add(label)
            return True
        return False


def feedback_outcomes(
    items: Sequence[tuple[str, str]],
    current: Mapping[str, str | None],
    known_labels: Collection[str] | None,
    room: NewLabelRoom | None = None,
    given: Collection[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """Each item's outcome given the true labels on record, and the labels to write.

    Items apply in order, so a repeated id sees the label its earlier item set. A
    label the model does not know is `new_label`, or `refused` once `room` holds as
    many new labels as it may. Labels are taken in NFKC form; one that would be set
    and looks like a label of the model, of `given` (labels feedback set before) or of
    an earlier item, but is not it, raises ConfusableLabel naming both.
    """
    state = dict(current)
    outcomes: list[str] = []
    changes: dict[str, str] = {}
    book = LabelBook(known_labels or (), given)
    for index, (pid, raw) in enumerate(items):
        label = normal_label(raw)
        if pid not in state:
            outcomes.append("unknown_id")
            continue
        before = state[pid]
        if before == label:
            outcomes.append("unchanged")
            continue
        _refuse_confusable(book, index, label)
        book.add(label)
        if known_labels is not None and label not in known_labels:
            if room is not None and not room.admits(label):
                outcomes.append("refused")
                continue
            outcomes.append("new_label")
        else:
            outcomes.append("stored" if before is None else "updated")
        state[pid] = changes[pid] = label
    return outcomes, changes


def _refuse_confusable(book: LabelBook, index: int, label: str) -> None:
    twin = book.confused_with(label)
    if twin is not None:
        raise ConfusableLabel(
            f"items[{index}].label {label!r} looks like the existing label {twin!r} but is "
            f"not it (letters of another script, full-width forms or case); send {twin!r} "
            "for that class, or a label that cannot be mistaken for it. Nothing was stored"
        )
