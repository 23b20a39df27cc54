"""Synthesised test and demo audio: drum loops at exact tempi, tones, espeak-ng speech, writers."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

STYLES: tuple[str, ...] = (
    "straight", "swung", "half_time", "four_on_floor", "trap", "boom_bap"
)
SWING_RATIO = 0.62  # where the off-beat note of a swung pair lands, as a fraction of the pair
DEMO_LYRIC = "Bounce it to the beat, every track is tagged and neat"

_SOUNDFILE_FORMATS = {
    ".wav": "WAV",
    ".aiff": "AIFF",
    ".aif": "AIFF",
    ".flac": "FLAC",
    ".ogg": "OGG",
}
_FFMPEG_CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    ".m4a": ["-c:a", "aac", "-b:a", "160k"],
    ".opus": ["-c:a", "libopus", "-b:a", "128k"],
}


# --------------------------------------------------------------------------------------------
# Basic signals


def tone(
    freq: float, seconds: float, sample_rate: int = 44100, amplitude: float = 0.3
) -> np.ndarray:
    """A steady sine tone.

    Args:
        freq: frequency in Hz.
        seconds: length.
        sample_rate: rate in Hz.
        amplitude: peak level (0..1).

    Returns:
        Mono float32 samples.
    """
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, sample_rate: int = 44100) -> np.ndarray:
    """Digital silence.

    Args:
        seconds: length.
        sample_rate: rate in Hz.

    Returns:
        Mono float32 zeros.
    """
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


def _envelope(n: int, sample_rate: int, decay: float) -> np.ndarray:
    t = np.arange(n) / sample_rate
    attack = np.minimum(1.0, t / 0.001)  # 1 ms attack avoids a click that is not part of the sound
    return attack * np.exp(-t / decay)


def _kick(
    sample_rate: int,
    *,
    length: float = 0.35,
    decay: float = 0.12,
    low: float = 48.0,
    high: float = 160.0,
) -> np.ndarray:
    """A sine sweep from `high` to `low` Hz: a synthesised kick (an 808 with a long decay)."""
    n = int(length * sample_rate)
    t = np.arange(n) / sample_rate
    freq = low + (high - low) * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    return (np.sin(phase) * _envelope(n, sample_rate, decay)).astype(np.float32)


def _highpass(noise: np.ndarray, sample_rate: int, cutoff: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, cutoff, btype="highpass", fs=sample_rate, output="sos")
    return sosfilt(sos, noise)


def _bandpass(noise: np.ndarray, sample_rate: int, low: float, high: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    high = min(high, 0.45 * sample_rate)
    sos = butter(2, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, noise)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.25 * sample_rate)
    t = np.arange(n) / sample_rate
    noise = _bandpass(rng.standard_normal(n), sample_rate, 1200.0, 8000.0)
    noise /= np.max(np.abs(noise)) + 1e-9
    body = np.sin(2 * np.pi * 185.0 * t) * _envelope(n, sample_rate, 0.05)
    out = 0.75 * noise * _envelope(n, sample_rate, 0.07) + 0.45 * body
    return out.astype(np.float32)


def _hat(sample_rate: int, rng: np.random.Generator, *, open_hat: bool = False) -> np.ndarray:
    length, decay = (0.3, 0.11) if open_hat else (0.06, 0.015)
    n = int(length * sample_rate)
    noise = _highpass(rng.standard_normal(n), sample_rate, min(4000.0, 0.4 * sample_rate))
    noise /= np.max(np.abs(noise)) + 1e-9
    return (noise * _envelope(n, sample_rate, decay)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Drum loops


def _swing(step_position: float, ratio: float) -> float:
    """Move the second note of each pair (odd grid position) to `ratio` of the pair."""
    pair, rest = divmod(step_position, 2.0)
    if abs(rest - 1.0) < 1e-9:
        return pair * 2.0 + 2.0 * ratio
    return step_position


def _pattern(style: str, bar: int, rng: np.random.Generator) -> list[tuple[float, str, float]]:
    """One 4/4 bar as (position in 16th steps, instrument, gain) events."""
    events: list[tuple[float, str, float]] = []
    if style == "straight":
        events += [(0, "kick", 1.0), (8, "kick", 0.95), (10, "kick", 0.6)]
        events += [(4, "snare", 0.9), (12, "snare", 0.9)]
        events += [(s, "hat", 0.5 if s % 4 == 0 else 0.35) for s in range(0, 16, 2)]
    elif style == "swung":
        # Hip-hop shuffle: 16th hats swung in pairs, a swung ghost kick before beat 3.
        events += [(0, "kick", 1.0), (7, "kick", 0.6), (8, "kick", 0.9)]
        events += [(4, "snare", 0.9), (12, "snare", 0.9)]
        events += [(s, "hat", 0.45 if s % 2 == 0 else 0.25) for s in range(16)]
        events = [(_swing(p, SWING_RATIO), i, g) for p, i, g in events]
    elif style == "boom_bap":
        # Slow hip-hop with straight 16th hats: the loop a plain beat tracker reads double.
        events += [(0, "kick", 1.0), (3, "kick", 0.5), (10, "kick", 0.85)]
        events += [(4, "snare", 0.95), (12, "snare", 0.95)]
        events += [(s, "hat", 0.45 if s % 4 == 0 else (0.33 if s % 2 == 0 else 0.22)) for s in range(16)]
    elif style == "half_time":
        events += [(0, "kick", 1.0), (6, "kick", 0.7), (14, "kick", 0.5)]
        events += [(8, "snare", 1.0)]
        events += [(s, "hat", 0.45 if s % 4 == 0 else 0.3) for s in range(0, 16, 2)]
    elif style == "four_on_floor":
        events += [(s, "kick", 1.0) for s in (0, 4, 8, 12)]
        events += [(4, "snare", 0.6), (12, "snare", 0.6)]
        events += [(s, "open_hat", 0.35) for s in (2, 6, 10, 14)]
        events += [(s, "hat", 0.2) for s in range(1, 16, 2)]
    elif style == "trap":
        # Sparse 808, snare on 3 (half-time feel at a fast written tempo), hat rolls.
        events += [(0, "808", 1.0), (7, "808", 0.8), (11, "808", 0.7)]
        events += [(8, "snare", 1.0)]
        for s in range(0, 16, 2):
            events.append((s, "hat", 0.45 if s % 4 == 0 else 0.3))
        # A rising 32nd-note roll over one 8th, alternating place from bar to bar, and 16th
        # pickups at the end of even bars.
        roll_start = 12 if bar % 2 else 6
        for k in range(4):
            events.append((roll_start + k * 0.5, "hat", 0.2 + 0.05 * k))
        if bar % 2 == 0:
            events += [(13, "hat", 0.25), (15, "hat", 0.25)]
    else:
        raise ValueError(f"unknown drum style {style!r}; choose one of {', '.join(STYLES)}")
    # Small velocity variation, like a played loop.
    return [(p, i, g * float(rng.uniform(0.9, 1.0))) for p, i, g in events]


def drum_loop(
    bpm: float,
    style: str = "straight",
    seconds: float = 10.0,
    sample_rate: int = 44100,
    seed: int = 0,
) -> np.ndarray:
    """A synthesised 4/4 drum loop whose beats sit exactly on the `bpm` grid.

    Args:
        bpm: tempo in beats (quarter notes) per minute; for "half_time" and "trap" this is the
            written tempo, although the snare on 3 makes them feel half as fast.
        style: one of STYLES.
        seconds: length.
        sample_rate: rate in Hz.
        seed: seeds the noise and velocity variation, so a loop is reproducible.

    Returns:
        Mono float32 samples in [-1, 1].

    Raises:
        ValueError: unknown style or a non-positive bpm/length.
    """
    if style not in STYLES:
        raise ValueError(f"unknown drum style {style!r}; choose one of {', '.join(STYLES)}")
    if bpm <= 0 or seconds <= 0:
        raise ValueError("bpm and seconds must be positive")
    rng = np.random.default_rng(seed)
    sounds = {
        "kick": _kick(sample_rate),
        "808": _kick(sample_rate, length=0.9, decay=0.35, low=42.0, high=120.0),
        "snare": _snare(sample_rate, rng),
        "hat": _hat(sample_rate, rng),
        "open_hat": _hat(sample_rate, rng, open_hat=True),
    }
    levels = {"kick": 0.9, "808": 0.9, "snare": 0.6, "hat": 0.3, "open_hat": 0.25}
    total = int(round(seconds * sample_rate))
    out = np.zeros(total + sample_rate, dtype=np.float64)  # room for the last note's tail
    step_seconds = 60.0 / bpm / 4.0
    bar_seconds = 16 * step_seconds
    n_bars = int(np.ceil(seconds / bar_seconds))
    for bar in range(n_bars):
        for position, instrument, gain in _pattern(style, bar, rng):
            start = int(round((bar * bar_seconds + position * step_seconds) * sample_rate))
            if start >= total:
                continue
            sound = sounds[instrument]
            out[start : start + len(sound)] += levels[instrument] * gain * sound
    out = out[:total]
    peak = float(np.max(np.abs(out))) if total else 0.0
    if peak > 0:
        out *= 0.9 / peak
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Speech


def espeak_speech(
    text: str, sample_rate: int = 44100, voice: str = "en", speed: int = 150
) -> np.ndarray:
    """Speak `text` with the espeak-ng binary.

    Args:
        text: what to say.
        sample_rate: rate of the returned audio (espeak-ng renders at 22.05 kHz; we resample).
        voice: espeak-ng voice name, e.g. "en", "en-us".
        speed: words per minute.

    Returns:
        Mono float32 samples in [-1, 1].

    Raises:
        RuntimeError: espeak-ng is not installed or failed.
    """
    import soundfile as sf
    import soxr

    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="bouncetag-espeak-") as tmp:
        wav = Path(tmp) / "speech.wav"
        proc = subprocess.run(
            [binary, "-v", voice, "-s", str(int(speed)), "-w", str(wav), text],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0 or not wav.exists():
            detail = proc.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"espeak-ng failed: {detail or 'no output'}")
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.clip(mono, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Mixing and writing


def mix(*signals: np.ndarray, gains: Sequence[float] | None = None) -> np.ndarray:
    """Sum mono signals, padding each to the longest, and scale down only if the sum would clip.

    Args:
        signals: mono arrays at the same sample rate.
        gains: one gain per signal (default 1.0 each).

    Returns:
        Mono float32 samples in [-1, 1].

    Raises:
        ValueError: no signals, or the number of gains does not match.
    """
    if not signals:
        raise ValueError("mix needs at least one signal")
    if gains is None:
        gains = [1.0] * len(signals)
    if len(gains) != len(signals):
        raise ValueError(f"got {len(gains)} gains for {len(signals)} signals")
    length = max(len(s) for s in signals)
    out = np.zeros(length, dtype=np.float64)
    for signal, gain in zip(signals, gains, strict=True):
        out[: len(signal)] += gain * np.asarray(signal, dtype=np.float64)
    peak = float(np.max(np.abs(out))) if length else 0.0
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def write_audio(
    path: Path | str,
    samples: np.ndarray,
    sample_rate: int = 44100,
    *,
    channels: int = 1,
    subtype: str = "PCM_16",
) -> Path:
    """Write audio in the format its extension names.

    WAV, AIFF, FLAC and OGG (Vorbis) go through soundfile; MP3, M4A (AAC) and Opus through a
    temporary WAV and ffmpeg.

    Args:
        path: destination; the extension picks the format.
        samples: mono (n,) or multichannel (n, channels) float audio.
        sample_rate: rate in Hz.
        channels: for mono input, how many identical channels to write (1 or 2).
        subtype: soundfile subtype for WAV/AIFF/FLAC, e.g. "PCM_16", "PCM_24", "PCM_32", "FLOAT".

    Returns:
        The path written.

    Raises:
        ValueError: unsupported extension.
        RuntimeError: ffmpeg is missing or failed.
    """
    import soundfile as sf

    path = Path(path)
    ext = path.suffix.lower()
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1 and channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    data = np.clip(data, -1.0, 1.0)
    if ext in _SOUNDFILE_FORMATS:
        fmt = _SOUNDFILE_FORMATS[ext]
        sub = "VORBIS" if fmt == "OGG" else subtype
        if fmt == "FLAC" and sub not in ("PCM_16", "PCM_24", "PCM_S8"):
            sub = "PCM_24"  # FLAC has no float or 32-bit integer subtype
        sf.write(str(path), data, sample_rate, format=fmt, subtype=sub)
        return path
    if ext not in _FFMPEG_CODECS:
        known = ", ".join(sorted([*_SOUNDFILE_FORMATS, *_FFMPEG_CODECS]))
        raise ValueError(f"cannot write {ext or 'extensionless'} files; use one of {known}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError(f"writing {ext} needs ffmpeg (apt-get install ffmpeg)")
    with tempfile.TemporaryDirectory(prefix="bouncetag-write-") as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(str(wav), data, sample_rate, subtype="PCM_16")
        cmd = [ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(wav), *_FFMPEG_CODECS[ext]]
        if ext == ".opus" and sample_rate not in (8000, 12000, 16000, 24000, 48000):
            cmd += ["-ar", "48000"]
        proc = subprocess.run([*cmd, str(path)], capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"ffmpeg could not write {path}: {detail[-1] if detail else 'failed'}")
    return path


# --------------------------------------------------------------------------------------------
# Demo


def demo_bounce(seconds: float = 20.0, bpm: float = 92.0, sample_rate: int = 44100) -> np.ndarray:
    """A straight hip-hop loop at `bpm` with an espeak-ng rap line repeated every two bars.

    Args:
        seconds: length.
        bpm: tempo of the loop.
        sample_rate: rate in Hz.

    Returns:
        Mono float32 samples in [-1, 1].

    Raises:
        RuntimeError: espeak-ng is not installed.
    """
    drums = drum_loop(bpm, "straight", seconds=seconds, sample_rate=sample_rate, seed=92)
    line = espeak_speech(DEMO_LYRIC, sample_rate=sample_rate, speed=165)
    bar = int(round(4 * 60.0 / bpm * sample_rate))
    vocals = np.zeros(len(drums), dtype=np.float32)
    start = bar  # one bar of drums first, then the line on every other bar
    while start < len(vocals):
        piece = line[: len(vocals) - start]
        vocals[start : start + len(piece)] += piece
        start += 2 * bar if len(line) <= 2 * bar else bar * int(np.ceil(len(line) / bar))
    return mix(drums, vocals, gains=[0.7, 0.9])
