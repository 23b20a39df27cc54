"""Analyse one file end to end: decode (audio adapter), read file tempo (tags adapter), run the core."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bouncetag.audio import decode
from bouncetag.classifier.pipeline import STAGES, AudioInput, Pipeline, StageCallback
from bouncetag.classifier.results import Analysis
from bouncetag.config import Config
from bouncetag.errors import ModelMissingError
from bouncetag.paths import AppPaths


def _current_model_dir(config: Config, paths: AppPaths) -> Path | None:
    """The genre model to use: `genre.model` (a folder or a version name), else the registry's current.

    Raises:
        ModelMissingError: `genre.model` names something that is not there.
    """
    from bouncetag.registry import current_model_dir

    model_dir = current_model_dir(paths, config)
    if model_dir is None and config.genre.model:
        raise ModelMissingError(
            f"genre.model: no model folder or version {config.genre.model!r} "
            "(see `bouncetag model list`, or clear genre.model to use the current model)"
        )
    return model_dir


def _file_bpm(path: Path) -> float | None:
    try:
        from bouncetag.tags import read_file_bpm
    except ImportError:
        return None
    try:
        return read_file_bpm(path)
    except Exception:  # a tag we cannot read never stops the analysis  # noqa: BLE001
        return None


class Analyzer:
    """Shared by the CLI and the daemon's workers: models load once, lazily; thread-safe."""

    def __init__(self, config: Config, paths: AppPaths) -> None:
        self.config = config
        self.paths = paths
        self._lock = threading.Lock()
        self._model_dir = _current_model_dir(config, paths)
        self._pipeline = Pipeline(config, self._model_dir)

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            return self._pipeline

    @property
    def model_version(self) -> str | None:
        return self.pipeline.model_version

    def reload_model_if_changed(self) -> bool:
        """Pick up a newly promoted (or rolled back) genre model without a restart.

        Returns:
            True when the model changed.
        """
        model_dir = _current_model_dir(self.config, self.paths)
        with self._lock:
            if model_dir == self._model_dir:
                return False
            old = self._pipeline
            fresh = Pipeline(self.config, model_dir)
            # Keep the loaded transcriber: only the genre head (and its Word2Vec) changed.
            fresh._transcriber = old._transcriber
            self._pipeline, self._model_dir = fresh, model_dir
            return True

    def analyze_file(
        self,
        path: Path | str,
        *,
        on_stage: StageCallback | None = None,
        stages: tuple[str, ...] = STAGES,
    ) -> Analysis:
        """Decode and analyse one file.

        Raises:
            AudioDecodeError: the file is not decodable audio.
            ModelMissingError: a configured model is missing.
        """
        path = Path(path)
        notify = on_stage or (lambda stage, state: None)
        notify("decode", "start")
        started = time.perf_counter()
        audio = decode(path)
        decode_seconds = time.perf_counter() - started
        notify("decode", "done")
        min_bpm, max_bpm = self.config.tempo.range_for(path)
        source = AudioInput(
            samples=audio.samples, sample_rate=audio.sample_rate, path=str(path),
            duration=audio.duration, min_bpm=min_bpm, max_bpm=max_bpm,
            file_bpm=_file_bpm(path) if "tempo" in stages else None,
        )
        return self.pipeline.analyze(
            source, stages=stages, on_stage=on_stage, timings={"decode": decode_seconds}
        )
