"""The retraining job: gather recent labelled data, train a challenger, gate, record.

The challenger is registered either way, so a refused one can still be inspected
or promoted by hand; only a passed gate makes it champion. Every outcome,
failures included, goes to the audit log with its reasons and numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from refit.core.backends.base import Backend
from refit.core.backends.loading import BackendOptions
from refit.core.errors import RefitError
from refit.core.registry import ModelVersion, Registry
from refit.core.version_check import load_checked
from refit.monitoring.prediction_log import PredictionLog, borrowed_log
from refit.retraining.audit import AuditLog
from refit.retraining.challenger import Challenger, train_challenger, train_joint
from refit.retraining.gate import GateDecision, GateRules, Scores, judge
from refit.retraining.lock import exclusive
from refit.retraining.recent_data import gather_recent, retire
from refit.retraining.replay import replay
from refit.retraining.scoring import macro_f1, score_both
from refit.retraining.settings import RetrainingContext
from refit.retraining.shadow import ShadowReport
from refit.training.epochs import Progress
from refit.training.export_later import ensure_exported

logger = logging.getLogger(__name__)


@dataclass
class RetrainResult:
    champion: ModelVersion
    challenger: ModelVersion
    decision: GateDecision
    promoted: bool
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    shadow: ShadowReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion.tag,
            "challenger": self.challenger.tag,
            "promoted": self.promoted,
            "decision": self.decision.to_dict(),
            "sizes": self.sizes,
            "seconds": round(self.seconds, 1),
            "shadow": self.shadow.to_dict() if self.shadow else None,
        }


def run_retrain(
    settings: RetrainingContext,
    *,
    reason: str,
    log: PredictionLog | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
) -> RetrainResult:
    """Gather, retrain, gate, record. Raises `Busy` if a check or retrain is running."""
    audit = AuditLog(settings.core)
    with borrowed_log(settings, log) as reader, exclusive(settings.core, "retrain"):
        recent = gather_recent(settings.core, settings.training, reader)
        note(
            f"recent labelled data: {recent.feedback_rows} feedback rows, "
            f"{len(recent.files)} incoming file(s), {len(recent.frame)} rows in all"
        )
        try:
            result = retrain(settings, recent.frame, log=reader, progress=progress, note=note)
        except RefitError as exc:
            audit.append("retrain_failed", reason=reason, error=str(exc))
            raise
        audit.append("retrain", reason=reason, **result.to_dict())
        if recent.files:
            retire(recent.files, settings.core)
        return result


def retrain(
    settings: RetrainingContext,
    recent: pd.DataFrame,
    *,
    log: PredictionLog | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
) -> RetrainResult:
    """Train a challenger on the champion's data plus `recent`; promote it if the gate passes.

    The shadow replay reads `log`, or the prediction log of the settings."""
    started = time.perf_counter()
    registry = Registry.from_settings(settings.core)
    champion = registry.get()
    challenger = train_challenger(settings, champion, recent, progress=progress, note=note)
    with borrowed_log(settings, log) as reader:
        decision, shadow = gate(settings, champion, challenger, reader)
    if decision.promote:
        registry.promote(
            challenger.version.version, reason="retrain: gate passed", actor="refit retrain"
        )
    return RetrainResult(
        champion,
        challenger.version,
        decision,
        decision.promote,
        challenger.sizes,
        time.perf_counter() - started,
        shadow,
    )


def gate(
    settings: RetrainingContext,
    champion: ModelVersion,
    challenger: Challenger,
    log: PredictionLog,
    joint: Backend | None = None,
) -> tuple[GateDecision, ShadowReport]:
    """Score both models on the same held-out data, replay the champion's logged
    traffic through the challenger (`retraining.replay`), and apply the gate's rules;
    with `REFIT_RETRAIN_JOINT_YARDSTICK`, also train and score the joint model
    (`retraining.challenger.train_joint`), reported beside the challenger; `joint`: one
    trained already.

    Each model runs on the backend a server would serve it on, so that the latency
    rule compares what will serve with what serves."""
    old = load_as_served(settings, champion)
    new = load_as_served(settings, challenger.version)
    scores = score_both(old, new, challenger.holdout, challenger.original_test)
    if joint is None and settings.retraining.retrain_joint_yardstick:
        joint, _ = train_joint(settings, challenger)
    joint_scores = None
    if joint is not None:
        joint_scores = Scores(
            macro_f1(joint, challenger.holdout), macro_f1(joint, challenger.original_test), 0.0
        )
    shadow = replay(
        settings.retraining,
        settings.monitoring.log_text,
        log,
        (champion, challenger.version),
        (old, new),
    )
    rules = GateRules.from_settings(settings.retraining)
    return judge(*scores, rules, shadow.figures(), joint_scores), shadow


def load_as_served(settings: RetrainingContext, version: ModelVersion) -> Backend:
    """`version` on the backend REFIT_BACKEND picks for it, as a server worker loads it
    (a version without ONNX files is exported first, as at a server's first load)."""
    options = BackendOptions(
        backend=settings.serving.backend,
        device=settings.core.device,
        max_length=version.max_length(settings.training.max_length),
        trace=settings.serving.forward_pass == "traced",
    )
    ensure_exported(version.path, version.tag, options, enabled=settings.training.export_backends)
    backend = load_checked(version.path, version.tag, options)
    logger.info("gate: %s on %s (%s)", version.tag, backend.name, backend.reason)
    return backend
