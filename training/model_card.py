"""The Markdown model card written beside every registered version."""

from __future__ import annotations

from refit.training.finetune import FineTuneResult
from refit.training.scores import EvaluationReport
from refit.training.scores import format_metric as fmt


def _metric_rows(report: EvaluationReport) -> list[str]:
    rows = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, m in report.overall.per_class.items():
        rows.append(
            f"| {label} | {fmt('precision', m.precision)} | {fmt('recall', m.recall)} | "
            f"{fmt('f1', m.f1)} | {m.support} |"
        )
    return rows


def _history_rows(result: FineTuneResult) -> list[str]:
    rows = [
        "| epoch | train loss | validation loss | validation macro-F1 | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in result.history:
        best = " (kept)" if r.epoch == result.best_epoch else ""
        rows.append(
            f"| {r.epoch}{best} | {fmt('train_loss', r.train_loss)} | "
            f"{fmt('validation_loss', r.validation_loss)} | "
            f"{fmt('validation_macro_f1', r.validation_macro_f1)} | {r.seconds:.1f} |"
        )
    return rows


def _slice_rows(report: EvaluationReport) -> list[str]:
    if not report.weakest_slices:
        return ["No slice scores more than 0.05 macro-F1 below the overall figure."]
    rows = ["| slice | value | n | macro-F1 |", "|---|---|---|---|"]
    for s in report.weakest_slices:
        rows.append(
            f"| {s.column} | {s.value} | {s.metrics.n} | {fmt('macro_f1', s.metrics.macro_f1)} |"
        )
    return rows


def _intended_use(labels: list[str]) -> list[str]:
    return [
        "## Intended use",
        f"Routes short English texts to one of {len(labels)} classes: "
        + ", ".join(f"`{label}`" for label in labels)
        + ". It is meant to be served by refit, which logs its inputs and watches them for "
        "drift. It is not meant for texts outside the domain of its training data, for other "
        "languages, or for decisions about people without human review.",
    ]


def _results(report: EvaluationReport) -> list[str]:
    o = report.overall
    return [
        "## Results on the held-out test split",
        f"Accuracy {fmt('accuracy', o.accuracy)}, macro-F1 {fmt('macro_f1', o.macro_f1)}, "
        f"micro-F1 {fmt('micro_f1', o.micro_f1)}, weighted F1 {fmt('weighted_f1', o.weighted_f1)}, "
        f"expected calibration error {fmt('ece', o.ece)} (n = {o.n}).",
        "",
        *_metric_rows(report),
        "",
        "### Slices served worse than average",
        *_slice_rows(report),
    ]


def _limitations(max_length: int) -> list[str]:
    return [
        "## Limitations",
        f"- Texts are cut to {max_length} tokens; evidence past that is not seen.",
        "- Scores are softmax probabilities; the calibration error above says how far they "
        "can be read as frequencies.",
        "- Accuracy holds only while inputs look like the training data; refit's drift "
        "checks exist because this stops being true.",
        "- Labels the model never saw are forced into one of the known classes.",
    ]


def _training_details(result: FineTuneResult, base_model: str) -> list[str]:
    c = result.config
    return [
        "## Training details",
        f"- Base model: `{base_model}`",
        f"- Device: {result.device}; {result.seconds:.0f} s, "
        f"{result.train_examples_per_second:.0f} training examples/s",
        f"- Epochs {c.epochs}, learning rate {c.learning_rate}, batch size {c.batch_size}, "
        f"max length {c.max_length}, seed {c.seed}; best epoch kept by validation "
        f"macro-F1: {result.best_epoch}",
        f"- Overfitting check: {result.overfitting or 'no widening train/validation gap'}",
        "",
        *_history_rows(result),
    ]


def model_card(
    *,
    model_name: str,
    base_model: str,
    data_source: str,
    fingerprint: str,
    split_sizes: dict[str, int],
    result: FineTuneResult,
    test_report: EvaluationReport,
) -> str:
    data = [
        "## Data",
        f"- Source: {data_source}",
        f"- Fingerprint: `{fingerprint}`",
        "- Split: " + ", ".join(f"{k} {v}" for k, v in split_sizes.items()),
        "- Details: see `dataset_card.md` beside this file.",
    ]
    sections = [
        [f"# Model card: {model_name}"],
        _intended_use(result.labels),
        data,
        _results(test_report),
        _limitations(result.config.max_length),
        _training_details(result, base_model),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
