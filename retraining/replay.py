"""Shadow replay: before the gate decides, the challenger re-scores what the champion served.

The newest `REFIT_GATE_SHADOW_ROWS` predictions of the champion's version are read
from the prediction log, and the challenger labels the same texts. The champion's
side is what it answered at the time; on a redacted log the challenger can only
see the redacted texts, so the champion is re-scored on them too, and the two
compare like with like. A hashed log keeps no text: there is nothing to replay,
and the report says so. Feedback labels on replayed rows count as evidence only
where the challenger did not train on the text (the normalized form of the text is
in neither its training nor its validation split).
"""

from __future__ import annotations

import time
from typing import Final

import numpy as np
import pandas as pd

from refit.core.backends.base import Backend
from refit.core.errors import PredictionLogUnavailable
from refit.core.registry import ModelVersion
from refit.monitoring.prediction_log import PredictionLog
from refit.retraining.scoring import batch_seconds
from refit.retraining.settings import RetrainingSettings
from refit.retraining.shadow import Pair, ShadowReport, compare
from refit.training.calibration import Calibration
from refit.training.normalize import normalized
from refit.training.reference import CALIBRATION_FILE
from refit.training.snapshot import read_snapshot

MIN_REPLAY_ROWS: Final = 50  # fewer logged texts say too little to compare
LATENCY_TEXTS: Final = 256  # texts of the replay both models are timed on
HASHED: Final = "no texts to replay: the log keeps hashes only (REFIT_LOG_TEXT=hashed)"
_COLUMNS: Final = ("ts", "text", "label", "score", "true_label")


def newest_rows(log: PredictionLog, version: str, limit: int) -> pd.DataFrame:
    """The newest `limit` logged predictions of `version`, newest first."""
    return log.read(
        0.0, time.time() + 1.0, model_version=version, columns=list(_COLUMNS), newest=limit
    )


def trained_texts(version: ModelVersion) -> set[str]:
    """Normalized texts of a version's training and validation splits."""
    splits = read_snapshot(version.path)
    return set(normalized(pd.concat([splits.train["text"], splits.validation["text"]])))


def calibration_of(version: ModelVersion) -> Calibration | None:
    path = version.path / CALIBRATION_FILE
    return Calibration.read(path) if path.is_file() else None


def _labels(classifier: Backend, texts: list[str]) -> tuple[list[str], np.ndarray]:
    out = classifier.predict(texts)
    return [classifier.labels[i] for i in out.label_ids], out.confidence


def replayed_frame(
    rows: pd.DataFrame,
    champion: Backend,
    challenger: Backend,
    challenger_version: ModelVersion,
    rescore_champion: bool,
) -> pd.DataFrame:
    """One row per replayed text with both models' labels (`shadow.FRAME_COLUMNS`)."""
    texts = rows["text"].astype(str).tolist()
    labels, scores = _labels(challenger, texts)
    if rescore_champion:
        old_labels, old_scores = _labels(champion, texts)
    else:
        old_labels, old_scores = rows["label"].astype(str).tolist(), rows["score"].to_numpy()
    seen = trained_texts(challenger_version)
    unseen = [key not in seen for key in normalized(texts)]
    return pd.DataFrame(
        {
            "text": texts,
            "champion_label": old_labels,
            "champion_score": np.asarray(old_scores, dtype=np.float64),
            "challenger_label": labels,
            "challenger_score": np.asarray(scores, dtype=np.float64),
            "true_label": rows["true_label"].where(rows["true_label"].notna(), None).tolist(),
            "unseen": unseen,
        }
    )


def _readable_rows(
    settings: RetrainingSettings, text_mode: str, log: PredictionLog, version: str
) -> pd.DataFrame | str:
    """The rows to replay, or why there are none."""
    if settings.gate_shadow_rows == 0:
        return "REFIT_GATE_SHADOW_ROWS=0"
    if text_mode == "hashed":
        return HASHED
    try:
        rows = newest_rows(log, version, settings.gate_shadow_rows)
    except PredictionLogUnavailable as exc:
        return f"the prediction log cannot be read: {exc}"
    kept = rows[rows["text"].notna()].reset_index(drop=True)
    if len(rows) and kept.empty:
        return HASHED
    if len(kept) < MIN_REPLAY_ROWS:
        return (
            f"only {len(kept)} logged predictions of the champion ({version}) with their "
            f"text; a replay needs {MIN_REPLAY_ROWS}"
        )
    return kept


def replay(
    settings: RetrainingSettings,
    text_mode: str,
    log: PredictionLog,
    versions: tuple[ModelVersion, ModelVersion],
    models: tuple[Backend, Backend],
) -> ShadowReport:
    """The challenger (second of each pair) on the champion's newest logged texts."""
    champion, challenger = versions
    rows = _readable_rows(settings, text_mode, log, champion.version)
    if isinstance(rows, str):
        return ShadowReport(replayed=False, reason=rows, texts=text_mode, champion_source="")
    redacted = text_mode == "redacted"
    frame = replayed_frame(rows, *models, challenger, rescore_champion=redacted)
    report = compare(
        frame,
        confident_score=settings.gate_confident_score,
        calibrations=(calibration_of(champion), calibration_of(challenger)),
    )
    report.texts = text_mode
    report.champion_source = "re-scored on the redacted texts" if redacted else "as served"
    timed = frame["text"].tolist()[:LATENCY_TEXTS]
    old_s, new_s = batch_seconds(*models, timed)
    report.latency_ms_per_1000 = Pair.of(old_s / len(timed) * 1e6, new_s / len(timed) * 1e6)
    report.latency_texts = len(timed)
    return report
