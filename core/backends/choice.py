"""Which backend serves a version: a pure function of the setting, the device and the
version's record (`record.py`), so that it can be tested on hand-made records.

`REFIT_BACKEND=auto` on a CPU serves the fastest backend measured for the version
that meets both rules against torch on its test split: macro-F1 within
`MAX_F1_DIFF` of torch's and labels agreeing on at least `MIN_AGREEMENT` of texts.
"Fastest" is the geometric mean of its batch-1 and batch-32 speed-ups over torch
traced, both measured in the same run. A backend that misses a rule is passed
over, and the reason says so. On a GPU, auto serves torch (bf16). A named backend
(`torch`, `torch-int8`, `onnx`, `onnx-int8`) serves when the version has it, even if
it misses a rule (the reason says which); else torch serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from refit.core.backends.record import REFERENCE, BackendRecord, Candidate

MIN_AGREEMENT: Final = 0.995
MAX_F1_DIFF: Final = 0.005
Requested = Literal["auto", "torch", "torch-int8", "onnx", "onnx-int8"]
# What each named setting asks for, in the record's terms.
_NAMED: Final = {"onnx": "onnx-fp32", "onnx-int8": "onnx-int8", "torch-int8": "torch-int8"}
_EXPORT_HINT: Final = "`refit models export VERSION` makes it"


@dataclass(frozen=True)
class Choice:
    backend: str  # "torch" (REFIT_FORWARD_PASS decides traced or eager), "torch-int8",
    # "onnx-fp32" or "onnx-int8"
    reason: str


def misses(candidate: Candidate) -> str:
    """Why `candidate` may not serve under auto; empty when it meets both rules."""
    if candidate.error:
        return f"it failed: {candidate.error}"
    if candidate.label_agreement is None:
        return "it was not verified"
    found = []
    if candidate.label_agreement < MIN_AGREEMENT:
        found.append(
            f"labels agree on {candidate.label_agreement:.2%} of texts, below {MIN_AGREEMENT:.1%}"
        )
    if candidate.macro_f1_diff is None:
        found.append("macro-F1 unknown: no labelled test split")
    elif abs(candidate.macro_f1_diff) > MAX_F1_DIFF:
        found.append(f"macro-F1 differs by {candidate.macro_f1_diff:+.4f}, past ±{MAX_F1_DIFF}")
    return "; ".join(found)


def choose(requested: str, device: str, record: BackendRecord | None, why_none: str = "") -> Choice:
    """The backend to serve; `why_none` says why `record` is None, where it is."""
    if requested == "torch":
        return Choice("torch", "REFIT_BACKEND=torch")
    if requested in _NAMED:
        return _named(requested, device, record, why_none)
    if device != "cpu":
        return Choice("torch", f"auto on {device}: torch serves on a GPU (bf16)")
    if record is None:
        return Choice("torch", f"auto: torch, since {why_none or 'there is no record'}")
    return auto_on_cpu(record)


def auto_on_cpu(record: BackendRecord) -> Choice:
    """The fastest kept backend that meets both rules; torch when none beats it."""
    kept = [c for c in record.candidates if c.kept and c.backend != REFERENCE]
    passed = [c for c in kept if not misses(c) and c.speed is not None]
    missed = [f"{c.backend} misses ({misses(c)})" for c in kept if misses(c)]
    best = max(passed, key=lambda c: c.speed or 0.0, default=None)
    aside = f"; {'; '.join(missed)}" if missed else ""
    if best is None or (best.speed or 0.0) <= 1.0:
        return Choice("torch", f"auto: no backend meets the rules and beats torch{aside}")
    return Choice(
        best.backend,
        f"auto: {best.described} is the fastest that meets the rules "
        f"({best.speed:.2f}x torch traced){aside}",
    )


def _named(requested: str, device: str, record: BackendRecord | None, why_none: str) -> Choice:
    wanted = _NAMED[requested]
    if wanted == "torch-int8" and device != "cpu":
        return Choice("torch", f"REFIT_BACKEND=torch-int8 runs on a CPU only, not {device}")
    candidate = record.kept(wanted) if record is not None else None
    if wanted == "torch-int8":
        return Choice("torch-int8", f"REFIT_BACKEND=torch-int8{_missed(candidate)}")
    if candidate is None:
        why = why_none if record is None else f"the version has no {wanted} export"
        return Choice("torch", f"REFIT_BACKEND={requested}, but {why}; {_EXPORT_HINT}")
    note = f": {candidate.described}" if candidate.recheck_margin is not None else ""
    return Choice(wanted, f"REFIT_BACKEND={requested}{note}{_missed(candidate)}")


def _missed(candidate: Candidate | None) -> str:
    missed = misses(candidate) if candidate is not None else ""
    return f" (it misses the rules: {missed})" if missed else ""
