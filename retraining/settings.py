"""Settings owned by retraining: the schedule, the trigger policy and the gate.

A section of the one settings object (`service.settings.Settings`); each field is
`REFIT_<FIELD NAME>` in the environment.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import Field

from refit.core.settings import Section
from refit.monitoring.settings import MonitoringContext


class RetrainingSettings(Section):
    """When to retrain, from what, and what a challenger must prove to serve."""

    watch_interval: str = Field("15m", pattern=r"^[1-9][0-9]*[smhdw]$")
    """How often `refit watch` checks drift (30m, 1h, ...), unless watch_cron."""
    watch_cron: str | None = None
    """Cron expression for `refit watch` instead of the interval, e.g. '*/15 * * * *' (UTC)."""
    retrain_after_drift_checks: int = Field(2, ge=1, le=1000)
    """Retrain when this many consecutive drift checks found drift."""
    retrain_accuracy_floor: float = Field(0.80, ge=0, le=1)
    """Retrain when accuracy (actual, from feedback, where a check has enough; else estimated) falls
    below this.
    """
    retrain_cooldown_hours: float = Field(6, ge=0, le=8760)
    """No new retrain this soon after the last one."""
    retrain_from: Literal["champion", "base"] = "champion"
    """Fine-tune the challenger from the champion's weights or from base_model."""
    retrain_min_rows: int = Field(50, ge=10, le=10_000_000)
    """Fewest new labelled rows (feedback and incoming files) worth a retrain."""
    retrain_balance_classes: bool = True
    """Oversample classes with fewer training rows than the median class when training a
    challenger, so labels that only feedback brought (a few dozen rows) are learned.
    """
    retrain_joint_yardstick: bool = False
    """Also fine-tune the base model on the challenger's own rows (the joint model, never
    registered) and show its scores beside the challenger's in the gate's report: what the
    challenger should match. Doubles the cost of a retrain.
    """
    retrain_holdout_fraction: float = Field(0.3, gt=0, lt=0.6)
    """Share of the new labelled rows held out to compare challenger and champion."""
    gate_min_gain: float = Field(0.02, ge=-1, le=1)
    """Macro-F1 the challenger must gain over the champion on the held-out recent data to be
    promoted.
    """
    gate_max_loss: float = Field(0.01, ge=0, le=1)
    """Most macro-F1 the challenger may lose on the original test split."""
    gate_max_latency_ratio: float = Field(1.5, gt=0, le=100)
    """Most the challenger's time on a fixed batch may be, as a multiple of the champion's."""
    gate_shadow_rows: int = Field(2000, ge=0, le=100_000)
    """Newest predictions of the champion (from the prediction log) the challenger re-scores
    before the gate decides: the shadow replay (0: no replay). At most 100,000 (about half an hour
    of a 2-core CPU's model time).
    """
    gate_confident_score: float = Field(0.9, gt=0, le=1)
    """A champion prediction counts as confident in the shadow replay when its calibrated
    confidence (the accuracy the champion's calibration found at its score; the raw score for
    a version without calibration) is at least this.
    """
    gate_max_confident_changes: float = Field(0.10, ge=0, le=1)
    """Most of the champion's confident replayed predictions the challenger may label otherwise,
    unless feedback supports the change.
    """
    gate_shadow_min_support: int = Field(10, ge=1, le=100_000)
    """Fewest labelled replayed rows, unseen by the challenger, where the two models disagree
    and the challenger is right, that support more confident changes (it must also be right
    on more of them than the champion).
    """


class ServingChoice(Protocol):
    """What of serving's settings the gate reads: it times both models on the backend that
    will serve each (`service.settings.ServingSettings` declares them)."""

    @property
    def backend(self) -> str: ...

    @property
    def forward_pass(self) -> str: ...


class RetrainingContext(MonitoringContext, Protocol):
    """The sections a retraining round reads: it checks drift, trains and gates."""

    @property
    def retraining(self) -> RetrainingSettings: ...

    @property
    def serving(self) -> ServingChoice: ...
