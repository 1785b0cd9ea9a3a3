"""The HTML report of a drift check: refit's own summary first, Evidently's sections after.

Evidently's page alone says nothing of the model version, the window, refit's verdict
or the accuracy figures, and shows each test's raw value where `refit drift` shows a
score. The summary at the top carries exactly what `refit drift` prints (the figures
come from the same `DriftResult`), so the two can never disagree; Evidently's sections
follow with the same methods and thresholds.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from refit.core.atomic_file import write_atomic
from refit.monitoring.drift.result import DriftResult
from refit.monitoring.drift.signals import SignalResult, drift_number

RULE = (
    "Drift when any signal crosses its threshold. Scores are on one scale, higher is more "
    "drift: −log10 of a p-value (a threshold of 0.001 is a score of 3), a distance or a "
    "ROC AUC as it is."
)
_VERDICT = {"ok": "No drift", "drift": "Drift", "not_enough_data": "Not enough data"}
_STYLE = (
    "font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:16px auto;padding:12px 20px;"
    "border:1px solid #d8dce2;border-radius:6px;background:#fff;color:#1d232b"
)


def _number(value: float | None, digits: int = 3) -> str:
    return drift_number(value, digits, missing="–")


def _signal_row(signal: SignalResult) -> str:
    drifted = {True: "<b>yes</b>", False: "no", None: "–"}[signal.drifted]
    cells = [
        html.escape(signal.name),
        html.escape(signal.method),
        _number(signal.value),
        _number(signal.threshold),
        _number(signal.score, 2),
        _number(signal.score_threshold, 2),
        drifted,
        html.escape(signal.note),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _accuracy(result: DriftResult) -> str:
    text, why = result.estimate_words()
    estimate = html.escape(text) + (f" — {html.escape(why)}" if why else "")
    if result.labelled_rows:
        actual = (
            f"{_number(result.actual_accuracy)}, macro-F1 {_number(result.actual_macro_f1)} "
            f"on {result.labelled_rows} predictions with feedback"
        )
    else:
        actual = "no feedback in the window"
    return (
        f"<p>Estimated accuracy (from confidence, 95% interval): {estimate}<br>"
        f"Calibration: {_calibration(result)}<br>"
        f"Actual accuracy: {actual}</p>"
    )


def _calibration(result: DriftResult) -> str:
    if not result.calibration_rows:
        return "–"
    return (
        f"{result.calibration_rows} labelled predictions, {result.calibration_feedback_rows} "
        f"of them feedback ({result.calibration_rows - result.calibration_feedback_rows} "
        "held out at training)"
    )


def _embedding_line(result: DriftResult) -> str:
    """What the embedding signal compares, by which test, and its score against its
    threshold: the one signal that speaks of the model's own view of the texts."""
    signal = next((s for s in result.signals if s.kind == "embedding" and s.about), None)
    if signal is None:
        return ""
    score = (
        "not computed"
        if signal.score is None
        else f"score {_number(signal.score, 2)} against threshold "
        f"{_number(signal.score_threshold, 2)}" + (" (drifted)" if signal.drifted else "")
    )
    return f"<p>Embedding signal: {html.escape(signal.about)}; {score}.</p>"


def summary_html(result: DriftResult) -> str:
    """refit's summary of one check, as a self-contained HTML section (inline styles)."""
    verdict = _VERDICT.get(result.status, result.status)
    colour = {"drift": "#b3261e", "ok": "#1e7b34"}.get(result.status, "#8a6d00")
    header = (
        "Signal", "Method", "Value", "Threshold", "Score", "Score threshold", "Drifted", "Note",
    )  # fmt: skip
    rows = "".join(_signal_row(signal) for signal in result.signals)
    return (
        f'<section id="refit-summary" style="{_STYLE}">'
        f'<h1 style="margin:0 0 6px;font-size:22px">refit drift check: '
        f'<span style="color:{colour}">{html.escape(verdict)}</span></h1>'
        f"<p>{html.escape(result.message)}</p>"
        f"<p><i>{html.escape(RULE)}</i></p>"
        f"<p>Model version <b>{html.escape(result.model_version)}</b>; window "
        f"{html.escape(result.window)} ({result.window_start:%Y-%m-%d %H:%M} to "
        f"{result.window_end:%Y-%m-%d %H:%M} UTC): {result.window_size} predictions, "
        f"{result.compared_rows} compared with {result.reference_rows} reference rows; "
        f"checked {result.checked_at:%Y-%m-%d %H:%M:%S} UTC.</p>"
        f"{_accuracy(result)}{_embedding_line(result)}"
        '<table style="border-collapse:collapse;width:100%" border="1" cellpadding="4">'
        "<tr>" + "".join(f"<th>{h}</th>" for h in header) + f"</tr>{rows}</table>"
        "<p>Evidently's sections below use the same methods and thresholds; their values "
        "are the Value column above.</p></section>"
    )


def write_report(evidently_html: str, result: DriftResult, path: Path) -> None:
    """Save the report: refit's summary at the top of Evidently's page, and a title.

    `evidently_html` is `report_html.evidently_page`'s: its data is escaped for the
    script element it sits in, and its policy lets only its own scripts run. The summary
    adds none, and escapes everything it shows.
    """
    title = f"refit drift check {result.checked_at:%Y-%m-%d %H:%M} UTC, {result.model_version}"
    page = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + f"<title>{html.escape(title)}</title>",
                  evidently_html, count=1)  # fmt: skip
    page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + summary_html(result), page, count=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page)
