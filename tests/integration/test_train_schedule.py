"""Scheduled retraining fires, skips when nothing is new, and retrains when a label arrives."""

from __future__ import annotations

import queue
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from bouncetag import registry, synth
from bouncetag.config import Config
from bouncetag.errors import ConfigError
from bouncetag.paths import AppPaths
from bouncetag.store import Store
from bouncetag.trainer.fingerprint import file_fingerprint
from bouncetag.trainer.schedule import ScheduleResult, TrainScheduler, parse_cron
from bouncetag.trainer.train import TrainOptions

RATE = 22050
FAST = Config().replace("transcribe", backend="none")


def _clip(folder: Path, name: str, style: str, bpm: float, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    samples = synth.drum_loop(bpm, style, 3.0, RATE, seed=seed)
    if style == "four_on_floor":
        samples = synth.mix(samples, synth.tone(4500, 3.0, RATE) * 0.2)
    return synth.write_audio(folder / name, samples, RATE)


def _label(store: Store, path: Path, genre: str) -> None:
    store.add_label(file_fingerprint(path), path, genre, "manual")


def test_schedule_fires_and_retrains_only_on_new_data(isolated_home: Path, tmp_path: Path) -> None:
    paths = AppPaths.under(isolated_home).ensure()
    with Store(paths.db_file) as store:
        for i in range(4):
            _label(store, _clip(tmp_path, f"c{i}.wav", "four_on_floor", 126 + i, i), "club")
            _label(store, _clip(tmp_path, f"t{i}.wav", "half_time", 70 + i, 50 + i), "slowtrap")
    results: queue.Queue[ScheduleResult] = queue.Queue()
    scheduler = TrainScheduler(
        paths, FAST, interval_seconds=0.2,
        options=TrainOptions(features="spectral", jobs=1, epochs=60, ablation=False),
        on_result=results.put,
    )
    scheduler.start()
    try:
        assert isinstance(scheduler.next_run_time, datetime)
        first = results.get(timeout=90)
        assert first.trained, first.message
        assert first.result is not None and first.result.promoted
        assert registry.current_version(paths) == first.result.version
        second = results.get(timeout=30)
        assert not second.trained
        assert "no new labels" in second.message
        with Store(paths.db_file) as store:
            _label(store, _clip(tmp_path, "c9.wav", "four_on_floor", 128, 99), "club")
        third = results.get(timeout=60)
        while not third.trained and third.error is None and "no new" in third.message:
            third = results.get(timeout=60)  # a run that started before the label landed
        assert third.trained, third.message
        assert scheduler.last_result is not None
    finally:
        scheduler.shutdown()
    assert scheduler.next_run_time is None


def test_cron_schedule_and_bad_cron(isolated_home: Path) -> None:
    paths = AppPaths.under(isolated_home)
    scheduler = TrainScheduler(paths, FAST, cron="0 3 * * *")
    scheduler.start()
    try:
        when = scheduler.next_run_time
        assert when is not None and when.hour == 3 and when.minute == 0
    finally:
        scheduler.shutdown()
    with pytest.raises(ConfigError, match="train.schedule"):
        parse_cron("every night")
    with pytest.raises(ConfigError):
        TrainScheduler(paths, FAST)  # neither cron nor interval (and none in config)


def test_run_once_reports_errors_instead_of_raising(isolated_home: Path) -> None:
    got: list[ScheduleResult] = []
    scheduler = TrainScheduler(
        AppPaths.under(isolated_home), FAST, interval_seconds=60, on_result=got.append,
        options=TrainOptions(features="spectral"),
    )
    outcome = scheduler.run_once()  # no labels at all
    assert not outcome.trained and outcome.error and "no training data" in outcome.error
    assert got == [outcome]
    assert np.isfinite(outcome.at)
