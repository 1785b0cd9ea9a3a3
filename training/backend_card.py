"""The model card's "Backends" section: what export and verification found."""

from __future__ import annotations

from typing import Final

from refit.core.backends.choice import MAX_F1_DIFF, MIN_AGREEMENT, misses
from refit.core.backends.record import BackendRecord, Candidate

HEADING: Final = "## Backends"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _speed(rate: float | None, ratio: float | None) -> str:
    return "-" if rate is None or ratio is None else f"{rate:.0f} ({ratio:.2f}x)"


def _verdict(c: Candidate, reference: str) -> str:
    if c.error:
        return f"failed: {c.error}"
    if c.backend == reference:
        return "reference"
    missed = misses(c)
    kept = "" if c.kept else "; not kept"
    return ("misses: " + missed if missed else "meets the rules") + kept


def _row(c: Candidate, reference: str) -> str:
    name = f"{c.backend} ({c.method})" if c.method else c.backend
    if c.recheck_margin is not None and c.recheck_share is not None:
        name += f": margin < {c.recheck_margin:g}, {c.recheck_share:.1%} of validation texts"
    cells = [
        name,
        "-" if c.label_agreement is None else f"{c.label_agreement:.2%}",
        _num(c.max_prob_diff),
        _num(c.macro_f1_diff, 4) if c.macro_f1_diff is None else f"{c.macro_f1_diff:+.4f}",
        _num(c.max_embedding_distance),
        _speed(c.texts_per_s_batch1, c.ratio_batch1),
        _speed(c.texts_per_s_batch32, c.ratio_batch32),
        _verdict(c, reference),
    ]
    return "| " + " | ".join(cells) + " |"


def backends_section(record: BackendRecord) -> str:
    reference = record.candidates[0].backend if record.candidates else "torch-traced"
    rows = [
        HEADING,
        f"Each backend against {reference} on the {record.data}, {record.threads} thread(s), "
        f"on the machine that registered the version ({record.seconds:.0f} s to export and "
        f"verify). Auto serves a backend whose labels agree on at least {MIN_AGREEMENT:.1%} "
        f"of texts and whose macro-F1 is within {MAX_F1_DIFF} of torch's, the fastest such. "
        "An int8 variant with close calls rechecked on fp32 runs the fp32 graph again on "
        "texts whose two highest int8 probabilities lie within the margin, chosen on the "
        "validation split; the share is how many of those texts it rechecked.",
        "",
        "| backend | label agreement | max prob diff | macro-F1 diff | max embedding "
        "distance | batch 1, texts/s | batch 32 sorted, texts/s | verdict |",
        "|---|---|---|---|---|---|---|---|",
        *(_row(c, reference) for c in record.candidates),
        "",
        f"REFIT_BACKEND=auto on a CPU serves **{record.auto_cpu}**: {record.auto_reason}.",
    ]
    return "\n".join(rows) + "\n"


def with_backends(card: str, record: BackendRecord) -> str:
    """`card` with its Backends section replaced by (or, first time, extended with) the
    one `record` makes."""
    start = card.find(f"\n{HEADING}\n")
    if start >= 0:
        end = card.find("\n## ", start + 1)
        card = card[:start] + ("" if end < 0 else card[end:])
    return card.rstrip("\n") + "\n\n" + backends_section(record)
