"""The analysis stages for one decoded bounce: tempo -> transcript -> features -> genre."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bouncetag.classifier.results import Analysis, GenrePrediction, TempoEstimate, Transcript
from bouncetag.config import Config

if TYPE_CHECKING:
    from bouncetag.classifier.features import FeatureModels
    from bouncetag.classifier.model import GenreModel
    from bouncetag.classifier.transcribe import Transcriber

STAGES = ("tempo", "transcript", "genre")
NO_MODEL_NOTE = "no model yet, run `bouncetag train`"

# on_stage(stage, state) with state "start" or "done": progress for the dashboard and CLI.
StageCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class AudioInput:
    """Decoded audio plus what the adapters learned about the file (the core does no I/O)."""

    samples: np.ndarray  # mono float32
    sample_rate: int
    path: str
    duration: float
    min_bpm: float = 60.0
    max_bpm: float = 180.0
    file_bpm: float | None = None  # a tempo already written in the file's tags, if any


class Pipeline:
    """Runs the stages with models loaded once and shared between calls and threads."""

    def __init__(self, config: Config, genre_model_dir: Path | None = None) -> None:
        self.config = config
        self.genre_model_dir = genre_model_dir
        self._lock = threading.Lock()
        self._transcriber: Transcriber | None = None
        self._feature_models: FeatureModels | None = None
        self._genre_model: GenreModel | None = None
        self._genre_loaded = False

    @property
    def transcriber(self) -> Transcriber:
        with self._lock:
            if self._transcriber is None:
                from bouncetag.classifier.transcribe import make_transcriber

                self._transcriber = make_transcriber(self.config.transcribe)
            return self._transcriber

    @property
    def genre_model(self) -> GenreModel | None:
        """The genre head, or None when none is installed (analysis then says so)."""
        with self._lock:
            if not self._genre_loaded:
                if self.genre_model_dir is not None:
                    from bouncetag.classifier.model import GenreModel

                    self._genre_model = GenreModel.load(self.genre_model_dir)
                self._genre_loaded = True
            return self._genre_model

    @property
    def feature_models(self) -> FeatureModels:
        model = self.genre_model
        with self._lock:
            if self._feature_models is None:
                from bouncetag.classifier.features import FeatureModels

                text_config = self.config.text
                if model is not None and model.bert_path is not None:
                    # Trained with --finetune-bert: its "bert" features need its own encoder.
                    text_config = dataclasses.replace(text_config, bert_model=str(model.bert_path))
                self._feature_models = FeatureModels(
                    text_config,
                    self.config.transcribe,
                    word2vec_path=model.word2vec_path if model is not None else None,
                )
            return self._feature_models

    @property
    def model_version(self) -> str | None:
        model = self.genre_model
        return model.version if model is not None else None

    def tempo(self, audio: AudioInput) -> TempoEstimate:
        """Our estimate, or the file's own tempo when present and preferred (estimate kept)."""
        from bouncetag.classifier.tempo import estimate_tempo

        estimate = estimate_tempo(audio.samples, audio.sample_rate, audio.min_bpm, audio.max_bpm)
        if audio.file_bpm is not None and audio.file_bpm > 0 and self.config.tempo.prefer_file_tempo:
            return TempoEstimate(
                bpm=round(float(audio.file_bpm), 1), confidence=1.0, source="file",
                estimated_bpm=estimate.bpm, file_bpm=float(audio.file_bpm),
                candidates=estimate.candidates,
            )
        return TempoEstimate(
            bpm=estimate.bpm, confidence=estimate.confidence, source="estimate",
            estimated_bpm=estimate.bpm, file_bpm=audio.file_bpm, candidates=estimate.candidates,
        )

    def transcript(self, audio: AudioInput) -> Transcript:
        return self.transcriber.transcribe(audio.samples, audio.sample_rate)

    def genre(self, audio: AudioInput, transcript: str) -> GenrePrediction | None:
        model = self.genre_model
        if model is None:
            return None
        from bouncetag.classifier.features import FeatureInput, extract_features

        features = extract_features(
            FeatureInput(audio.samples, audio.sample_rate, transcript),
            self.feature_models,
            model.feature_names,
        )
        return model.predict(features, top_k=self.config.genre.top_k)

    def analyze(
        self,
        audio: AudioInput,
        stages: tuple[str, ...] = STAGES,
        on_stage: StageCallback | None = None,
        timings: dict[str, float] | None = None,
    ) -> Analysis:
        """Run the chosen stages in order.

        Args:
            audio: decoded audio and file facts.
            stages: any of "tempo", "transcript", "genre" (genre uses the transcript when run).
            on_stage: progress callback.
            timings: earlier stage timings (e.g. decode) to carry into the result.

        Raises:
            ModelMissingError: a configured model is not installed.
        """
        notify = on_stage or (lambda stage, state: None)
        times = dict(timings or {})

        def run(stage: str, fn: Callable[[], object]) -> object:
            notify(stage, "start")
            started = time.perf_counter()
            value = fn()
            times[stage] = time.perf_counter() - started
            notify(stage, "done")
            return value

        tempo = run("tempo", lambda: self.tempo(audio)) if "tempo" in stages else None
        transcript = (
            run("transcript", lambda: self.transcript(audio)) if "transcript" in stages else None
        )
        genre: GenrePrediction | None = None
        note = ""
        if "genre" in stages:
            text = transcript.text if transcript is not None else ""
            genre = run("genre", lambda: self.genre(audio, text))  # type: ignore[assignment]
            if genre is None:
                note = NO_MODEL_NOTE
        return Analysis(
            path=audio.path, duration=audio.duration, tempo=tempo,  # type: ignore[arg-type]
            transcript=transcript, genre=genre, genre_note=note, timings=times,  # type: ignore[arg-type]
        )
