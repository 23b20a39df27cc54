"""Synthesised test audio: loops sit on their tempo grid, writers produce decodable files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bouncetag import synth
from bouncetag.audio import ANALYSIS_SAMPLE_RATE, decode

RATE = 16_000


@pytest.mark.parametrize("style", synth.STYLES)
def test_drum_loop_shape_range_and_determinism(style: str) -> None:
    loop = synth.drum_loop(100.0, style, seconds=3.0, sample_rate=RATE, seed=7)
    assert loop.dtype == np.float32 and loop.ndim == 1
    assert len(loop) == 3 * RATE
    assert 0.5 < float(np.max(np.abs(loop))) <= 1.0
    np.testing.assert_array_equal(loop, synth.drum_loop(100.0, style, 3.0, RATE, seed=7))
    assert not np.array_equal(loop, synth.drum_loop(100.0, style, 3.0, RATE, seed=8))


def test_kicks_land_on_the_beat_grid() -> None:
    """Four-on-the-floor: the low band's energy onsets sit every 60/bpm seconds."""
    bpm, seconds = 120.0, 4.0
    loop = synth.drum_loop(bpm, "four_on_floor", seconds=seconds, sample_rate=RATE)
    frame = RATE // 100  # 10 ms
    energy = np.square(loop[: len(loop) // frame * frame]).reshape(-1, frame).sum(axis=1)
    beat_frames = (np.arange(0, seconds, 60.0 / bpm) * 100).astype(int)
    off_frames = beat_frames[:-1] + 25  # half a beat later: only hats there
    assert energy[beat_frames].mean() > 5 * energy[off_frames].mean()


def test_styles_differ_and_bad_style_is_rejected() -> None:
    loops = {s: synth.drum_loop(90.0, s, 2.0, RATE) for s in synth.STYLES}
    assert len({loops[s].tobytes() for s in synth.STYLES}) == len(synth.STYLES)
    with pytest.raises(ValueError, match="unknown drum style"):
        synth.drum_loop(90.0, "polka", 2.0, RATE)
    with pytest.raises(ValueError):
        synth.drum_loop(0.0, "straight", 2.0, RATE)


def test_tone_and_silence() -> None:
    sine = synth.tone(1000.0, 0.5, RATE, amplitude=0.5)
    assert len(sine) == RATE // 2 and np.max(np.abs(sine)) == pytest.approx(0.5, abs=1e-3)
    peak_hz = np.fft.rfftfreq(len(sine), 1 / RATE)[np.argmax(np.abs(np.fft.rfft(sine)))]
    assert peak_hz == pytest.approx(1000.0, abs=2.0)
    quiet = synth.silence(0.25, RATE)
    assert len(quiet) == RATE // 4 and not quiet.any()


def test_mix_pads_and_never_clips() -> None:
    long, short = np.full(100, 0.8, np.float32), np.full(40, 0.8, np.float32)
    mixed = synth.mix(long, short)
    assert len(mixed) == 100
    assert np.max(np.abs(mixed)) <= 1.0
    assert mixed[0] > mixed[-1]  # the short one only adds at the start
    half = synth.mix(long, gains=[0.5])
    assert half[0] == pytest.approx(0.4)
    with pytest.raises(ValueError):
        synth.mix(long, short, gains=[1.0])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_speech_is_audible_at_the_requested_rate() -> None:
    speech = synth.espeak_speech("one two three", sample_rate=RATE)
    assert speech.dtype == np.float32
    assert 0.3 * RATE < len(speech) < 5 * RATE
    assert np.sqrt(np.mean(speech**2)) > 0.01


def test_espeak_missing_is_a_clear_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="espeak-ng is not installed"):
        synth.espeak_speech("hello")


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a", "ogg", "aiff", "opus"])
def test_writers_produce_decodable_files(tmp_path: Path, ext: str) -> None:
    loop = synth.drum_loop(100.0, "straight", seconds=2.0, sample_rate=44100)
    path = synth.write_audio(tmp_path / f"loop.{ext}", loop, 44100, channels=2)
    assert path.exists() and path.stat().st_size > 1000
    audio = decode(path)
    assert audio.sample_rate == ANALYSIS_SAMPLE_RATE
    assert audio.decoded_seconds == pytest.approx(2.0, abs=0.1)
    assert np.max(np.abs(audio.samples)) > 0.3  # the loop survived the codec


def test_write_audio_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot write"):
        synth.write_audio(tmp_path / "loop.xyz", synth.silence(0.1, RATE), RATE)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_demo_bounce_has_drums_and_vocals() -> None:
    drums_only = synth.drum_loop(92.0, "straight", seconds=8.0, sample_rate=RATE, seed=92)
    demo = synth.demo_bounce(seconds=8.0, bpm=92.0, sample_rate=RATE)
    assert len(demo) == 8 * RATE and np.max(np.abs(demo)) <= 1.0
    # Vocals start after one bar: the second bar differs from drums alone, the first barely.
    bar = int(4 * 60 / 92.0 * RATE)
    first = np.corrcoef(demo[: bar - 100], drums_only[: bar - 100])[0, 1]
    second = np.corrcoef(demo[bar : 2 * bar], drums_only[bar : 2 * bar])[0, 1]
    assert first > 0.99 and second < first - 0.05
