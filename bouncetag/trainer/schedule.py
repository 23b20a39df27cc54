"""Scheduled retraining (apscheduler): retrain only when new labels or files have arrived."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bouncetag.errors import BounceTagError, ConfigError

if TYPE_CHECKING:
    from bouncetag.config import Config
    from bouncetag.paths import AppPaths
    from bouncetag.trainer.train import TrainOptions, TrainResult


@dataclass(frozen=True)
class ScheduleResult:
    """What one scheduled run did; the daemon forwards it to its dashboard."""

    at: float
    trained: bool
    message: str  # one line for the dashboard
    result: TrainResult | None = None
    error: str | None = None


def parse_cron(expression: str) -> Any:
    """A CronTrigger from a 5-field crontab string ("0 3 * * *").

    Raises:
        ConfigError: the expression is not valid cron.
    """
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression)
    except ValueError as exc:
        raise ConfigError(f"train.schedule: not a cron expression {expression!r} ({exc})") from None


class TrainScheduler:
    """Runs training on a cron schedule (or an interval, for tests) in a background thread.

    Each run compares the data fingerprint (labels + GTZAN clips) with the last training run's
    and only trains when it changed; the result goes to `on_result`.
    """

    def __init__(
        self,
        paths: AppPaths,
        config: Config,
        *,
        cron: str | None = None,
        interval_seconds: float | None = None,
        options: TrainOptions | None = None,
        on_result: Callable[[ScheduleResult], None] | None = None,
        train_fn: Callable[..., TrainResult] | None = None,
    ) -> None:
        from bouncetag.trainer.train import TrainOptions, run_training

        cron = cron if cron is not None else (config.train.schedule or None)
        if (cron is None) == (interval_seconds is None):
            raise ConfigError("train.schedule: give a cron expression or an interval")
        self._trigger = parse_cron(cron) if cron is not None else None
        self._interval = interval_seconds
        self.paths = paths
        self.config = config
        self.options = options or TrainOptions.from_config(config.train)
        self.on_result = on_result
        self._train = train_fn or run_training
        self._run_lock = threading.Lock()
        self._scheduler: Any = None
        self._job: Any = None
        self.last_result: ScheduleResult | None = None

    def start(self) -> None:
        """Start the background scheduler (idempotent)."""
        from apscheduler.schedulers.background import BackgroundScheduler

        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(daemon=True)
        if self._trigger is not None:
            trigger = self._trigger
        else:
            from apscheduler.triggers.interval import IntervalTrigger

            trigger = IntervalTrigger(seconds=float(self._interval or 1.0))
        self._job = scheduler.add_job(
            self.run_once, trigger=trigger, id="bouncetag-train", max_instances=1,
            coalesce=True, misfire_grace_time=3600,
        )
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self, wait: bool = True) -> None:
        """Stop the scheduler; with `wait`, a run in progress finishes first."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
            self._job = None

    @property
    def next_run_time(self) -> datetime | None:
        """When the next run is due (None when stopped)."""
        if self._job is None:
            return None
        return self._job.next_run_time

    def run_once(self) -> ScheduleResult:
        """Check for new data and train if there is some; never raises (errors go in the result)."""
        from bouncetag.store import Store
        from bouncetag.trainer.train import current_fingerprint, last_run

        with self._run_lock:
            now = time.time()
            try:
                self.paths.ensure()
                with Store(self.paths.db_file) as store:
                    fingerprint = current_fingerprint(store, self.options)
                    previous = last_run(store)
                    if (
                        previous is not None
                        and previous.get("fingerprint") == fingerprint
                        and previous.get("model_version")
                    ):
                        outcome = ScheduleResult(
                            now, False,
                            f"no new labels or files since model {previous['model_version']}",
                        )
                    else:
                        result = self._train(self.paths, self.config, self.options, store=store)
                        verdict = "promoted" if result.promoted else "kept the current model"
                        outcome = ScheduleResult(
                            now, True,
                            f"trained {result.version} (macro-F1 {result.new_score:.3f}): "
                            f"{verdict}",
                            result=result,
                        )
            except BounceTagError as exc:
                outcome = ScheduleResult(now, False, f"training failed: {exc}", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - a scheduled job must never kill the daemon
                outcome = ScheduleResult(
                    now, False, f"training crashed: {exc!r}", error=repr(exc)
                )
            self.last_result = outcome
        if self.on_result is not None:
            self.on_result(outcome)
        return outcome
