"""`refit watch`: scheduled drift checks that retrain when the trigger policy says so.

APScheduler runs the ticks (an interval or a cron expression); a file lock held
across processes keeps two checks or retrains from running at once, whether they
come from this scheduler, a second one, a Kubernetes CronJob (`refit watch
--once`) or `refit retrain` by hand. A failed check is logged, counted and
recorded; the schedule goes on. The scheduler's state (last check, last
decision, next run, failures) is a JSON file the service exports as gauges.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from refit.core.errors import Busy, RefitError
from refit.monitoring.drift.check import run_drift_check
from refit.monitoring.drift.history import list_runs, reports_dir
from refit.monitoring.drift.window import parse_window
from refit.retraining.audit import AuditLog
from refit.retraining.job import run_retrain
from refit.retraining.lock import exclusive
from refit.retraining.settings import RetrainingContext
from refit.retraining.trigger import CheckOutcome, TriggerDecision, TriggerRules, decide
from refit.retraining.watch_state import WatchState, state_path

logger = logging.getLogger(__name__)

# Checks looked back on by the trigger; K consecutive drifts need at most K of them.
_HISTORY = 50


def recent_checks(settings: RetrainingContext) -> list[CheckOutcome]:
    """The latest drift checks of any model version, oldest first."""
    runs = list_runs(reports_dir(settings.core.resolved_state_dir()), limit=_HISTORY)
    return sorted((CheckOutcome.of(r) for r in runs), key=lambda c: c.time)


class Watcher:
    def __init__(self, settings: RetrainingContext) -> None:
        self.settings = settings
        self.audit = AuditLog(settings.core)
        self.path = state_path(settings.core)

    def tick(self, next_run: datetime | None = None) -> TriggerDecision:
        """One scheduled round: check, decide, maybe retrain. Never raises."""
        state = WatchState.load(self.path)
        state.next_run = next_run.isoformat() if next_run else None
        try:
            with exclusive(self.settings.core, "drift check"):
                decision = self._check_and_decide(state)
        except Busy as exc:
            decision = TriggerDecision("none", [str(exc)])
            self.audit.append("skipped", reasons=decision.reasons)
        except Exception as exc:  # a failed check must not stop the schedule
            logger.exception("drift check failed")
            state.failures += 1
            state.last_status = "failed"
            decision = TriggerDecision("none", [f"drift check failed: {exc}"])
            self.audit.append("check_failed", error=str(exc))
        state.last_decision, state.last_reasons = decision.action, decision.reasons
        state.save(self.path)
        logger.info(
            "drift check %s; decision: %s (%s)",
            state.last_status,
            decision.action,
            "; ".join(decision.reasons),
        )
        if decision.action == "retrain":
            self._retrain(state, decision)
        return decision

    def _check_and_decide(self, state: WatchState) -> TriggerDecision:
        result = run_drift_check(
            self.settings, window=parse_window(self.settings.drift.drift_window)
        )
        state.checks += 1
        state.last_check = result.checked_at.isoformat()
        state.last_status = result.status
        decision = decide(
            recent_checks(self.settings),
            now=datetime.now(UTC),
            last_retrain=self.audit.last_retrain(),
            rules=TriggerRules.from_settings(self.settings.retraining),
        )
        self.audit.append(
            "decision",
            action=decision.action,
            reasons=decision.reasons,
            check={
                "status": result.status,
                "model_version": result.model_version,
                "window_size": result.window_size,
                "drifted_signals": result.drifted_signals,
                "estimated_accuracy": result.estimated_accuracy,
                "actual_accuracy": result.actual_accuracy,
                "report": str(result.html_path) if result.html_path else None,
            },
        )
        return decision

    def _retrain(self, state: WatchState, decision: TriggerDecision) -> None:
        reason = "; ".join(decision.reasons)
        try:
            result = run_retrain(self.settings, reason=reason)
        except RefitError as exc:  # recorded in the audit log by run_retrain, or busy
            logger.warning("retrain not done: %s", exc)
            return
        except Exception:
            logger.exception("retrain crashed; the champion keeps serving")
            state.failures += 1
            state.save(self.path)
            return
        state.retrains += 1
        state.last_decision = "promoted" if result.promoted else "kept champion"
        state.save(self.path)
        logger.info(
            "retrained in %.0f s: %s %s (%s)",
            result.seconds,
            result.challenger.tag,
            "promoted" if result.promoted else "refused, champion kept",
            "; ".join(result.decision.reasons),
        )


def watch_trigger(settings: RetrainingContext, *, interval: str | None, cron: str | None) -> Any:
    """The APScheduler trigger for a cron expression or an interval; ValueError if malformed.

    A cron expression (given, or REFIT_WATCH_CRON when no interval is given) wins.
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    cron = cron or (None if interval else settings.retraining.watch_cron)
    if cron:
        return CronTrigger.from_crontab(cron, timezone=UTC)
    every = parse_window(interval or settings.retraining.watch_interval)
    return IntervalTrigger(seconds=every.total_seconds())


def schedule(settings: RetrainingContext, trigger: Any) -> None:
    """Run `Watcher.tick` on `trigger` (see `watch_trigger`) until interrupted."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    watcher = Watcher(settings)
    # A round that outlasts the interval makes APScheduler warn at every slot it skips;
    # skipping is the intended behaviour (one round at a time), not a warning.
    logging.getLogger("apscheduler.scheduler").addFilter(_SkippedSlotFilter())
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    scheduler = BlockingScheduler(timezone=UTC)
    job = scheduler.add_job(
        lambda: watcher.tick(_next_fire(scheduler)),
        trigger,
        max_instances=1,  # never two ticks of this scheduler at once
        coalesce=True,  # after a long retrain, run once, not once per missed slot
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    logger.info("watching: %s", job.trigger)
    scheduler.start()


class _SkippedSlotFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


def _next_fire(scheduler: Any) -> datetime | None:
    jobs = scheduler.get_jobs()
    return jobs[0].next_run_time if jobs else None
