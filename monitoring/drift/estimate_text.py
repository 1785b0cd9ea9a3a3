"""How the label-free accuracy estimate reads wherever refit shows it: the CLI, the
drift report and the front page. Plain text only, so that readers of a drift result
load neither pandas nor the calibration."""

from __future__ import annotations

from collections.abc import Sequence


def estimate_words(
    estimate: float | None,
    margin: float | None,
    reliable: bool,
    drifted: Sequence[str] = (),
    calibration_rows: int | None = None,
) -> tuple[str, str]:
    """How the estimate reads wherever refit shows it (CLI, report, front page): the figure
    with its 95% interval and the labelled rows behind it, e.g. "0.810 ± 0.021
    (calibrated on 1,250 labelled predictions)", and "" or why not to trust it."""
    if estimate is None:
        return "n/a", ""
    text = f"{estimate:.3f}" + ("" if margin is None else f" ± {margin:.3f}")
    if calibration_rows:
        text += f" ({calibration_words(calibration_rows)})"
    if reliable:
        return text, ""
    where = f" in {', '.join(drifted)}" if drifted else ""
    return text, f"unreliable: the inputs drifted{where}; only feedback can tell"


def calibration_words(rows: int, feedback: int | None = None) -> str:
    """The rows behind a calibration, e.g. "calibrated on 1,250 labelled predictions"."""
    text = f"calibrated on {rows:,} labelled prediction{'s' if rows != 1 else ''}"
    return text + (f", {feedback:,} of them feedback" if feedback else "")
