"""`backends.json`: what registration measured of each backend of a version.

Written beside the version's weights by export and verification
(`training/backend_verify.py`), read by the choice (`choice.py`) each time the
version loads. One entry per candidate: torch traced (the reference every other
is compared with), torch int8, ONNX fp32 and each int8 ONNX variant tried, with
its agreement with the reference on the version's test split and its measured
speed. An int8 variant may also appear with close calls rechecked on the fp32
graph (`recheck_margin`); it then needs `model.onnx` beside its own file. Only one
int8 ONNX variant is kept as a file (`kept`); the others stay in the
record so that anyone can see what was tried and why it lost.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ValidationError

RECORD_FILE: Final = "backends.json"
# The file each ONNX backend loads, inside the version folder.
ONNX_FILES: Final = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx"}
REFERENCE: Final = "torch-traced"
RECORD_FORMAT: Final = 1


class Candidate(BaseModel):
    """One backend as verified against the reference on the version's test split."""

    backend: str  # "torch-traced", "torch-int8", "onnx-fp32" or "onnx-int8"
    method: str = ""  # how an int8 variant was made, e.g. "dynamic, per channel"
    kept: bool = False  # the one candidate of its backend that may serve
    file: str | None = None  # its file in the version folder, for ONNX
    sha256: str | None = None  # of that file, checked before it loads
    label_agreement: float | None = None  # share of texts given the reference's label
    max_prob_diff: float | None = None  # largest difference of any probability
    macro_f1: float | None = None  # on the test split's true labels
    macro_f1_diff: float | None = None  # macro_f1 - the reference's
    max_embedding_distance: float | None = None  # largest cosine distance of the projection
    texts_per_s_batch1: float | None = None
    texts_per_s_batch32: float | None = None  # length-sorted batches of 32
    ratio_batch1: float | None = None  # to the reference, measured in the same call
    ratio_batch32: float | None = None
    # An int8 variant whose close calls go to the fp32 graph again (`recheck.py`): texts
    # whose top two probabilities lie within this margin; and the share of the
    # validation texts that chose it which fell within it.
    recheck_margin: float | None = None
    recheck_share: float | None = None
    error: str = ""  # why it could not be made or measured

    @property
    def described(self) -> str:
        """Its backend's name, with how it answers close calls where it rechecks them."""
        if self.recheck_margin is None:
            return self.backend
        return f"{self.backend} (close calls, margin < {self.recheck_margin:g}, rechecked on fp32)"

    @property
    def speed(self) -> float | None:
        """The ratio to the reference over both shapes: their geometric mean."""
        if self.ratio_batch1 is None or self.ratio_batch32 is None:
            return None
        return float((self.ratio_batch1 * self.ratio_batch32) ** 0.5)


class BackendRecord(BaseModel):
    """Everything export and verification found for one version."""

    format: int = RECORD_FORMAT
    created: str  # ISO 8601
    data: str  # what the candidates were compared on
    texts: int
    labelled: bool  # whether the texts had true labels (macro-F1 could be measured)
    reference_macro_f1: float | None = None
    threads: int  # intra-op threads the speeds were measured with
    seconds: float  # what export and verification took
    libraries: dict[str, str]  # versions of torch, onnx and onnxruntime used
    candidates: list[Candidate]
    auto_cpu: str = ""  # what REFIT_BACKEND=auto serves on a CPU, and why
    auto_reason: str = ""

    def kept(self, backend: str) -> Candidate | None:
        """The candidate of `backend` that may serve, if one was kept."""
        return next((c for c in self.candidates if c.backend == backend and c.kept), None)

    def write(self, folder: Path) -> None:
        """Write the record last, in one rename: a reader sees it only once the files it
        names are in place. Readable by all, as the version's other files are."""
        path = folder / RECORD_FILE
        partial = path.with_name(f".{RECORD_FILE}.{os.getpid()}.partial")
        partial.write_text(self.model_dump_json(indent=2) + "\n")
        partial.chmod(0o644)
        os.replace(partial, path)


def read_record(folder: Path) -> tuple[BackendRecord | None, str]:
    """The version's record, or None and why there is none (missing, unreadable)."""
    path = folder / RECORD_FILE
    if not path.is_file():
        return None, f"the version has no {RECORD_FILE} (registered before backends were exported)"
    try:
        record = BackendRecord.model_validate(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        return None, f"{RECORD_FILE} cannot be read ({type(exc).__name__})"
    if record.format != RECORD_FORMAT:
        return None, f"{RECORD_FILE} has format {record.format}; this refit reads {RECORD_FORMAT}"
    return record, ""


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks (an ONNX graph can be hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
