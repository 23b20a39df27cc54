"""Tempo estimation (placeholder: plain librosa beat_track until the refined estimator lands)."""

from __future__ import annotations

import numpy as np

from bouncetag.classifier.results import TempoEstimate


def estimate_tempo(
    samples: np.ndarray, sample_rate: int, min_bpm: float = 60.0, max_bpm: float = 180.0
) -> TempoEstimate:
    """Estimate the BPM of mono audio.

    Args:
        samples: mono float32 audio.
        sample_rate: its rate in Hz.
        min_bpm, max_bpm: the octave is chosen inside this range.

    Returns:
        A TempoEstimate with source "estimate".
    """
    import librosa

    tempo, _ = librosa.beat.beat_track(y=samples, sr=sample_rate)
    bpm = float(np.atleast_1d(tempo)[0])
    while bpm > max_bpm and bpm / 2 >= min_bpm * 0.9:
        bpm /= 2
    while bpm < min_bpm and bpm * 2 <= max_bpm * 1.1:
        bpm *= 2
    bpm = round(bpm, 1)
    return TempoEstimate(bpm=bpm, confidence=0.5, source="estimate", estimated_bpm=bpm)
