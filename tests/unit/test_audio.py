"""Decoding: every container and sample format we accept, and a clear error for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bouncetag.audio import ANALYSIS_SAMPLE_RATE, decode
from bouncetag.errors import AudioDecodeError
from bouncetag.synth import tone, write_audio


def _tone_peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(
    ("name", "rate", "channels", "subtype"),
    [
        ("pcm16.wav", 44100, 1, "PCM_16"),
        ("pcm24_stereo.wav", 48000, 2, "PCM_24"),
        ("pcm32.wav", 96000, 2, "PCM_32"),
        ("float.wav", 44100, 2, "FLOAT"),
        ("odd_rate.wav", 22050, 1, "PCM_16"),
        ("low_rate.wav", 8000, 1, "PCM_16"),
        ("mix.aiff", 44100, 2, "PCM_24"),
        ("mix.flac", 48000, 2, "PCM_24"),
        ("mix.ogg", 44100, 2, "VORBIS"),
        ("mix.mp3", 44100, 2, None),
        ("mix.m4a", 44100, 2, None),
        ("mix.opus", 48000, 2, None),
    ],
)
def test_decodes_every_format_to_mono_16k(
    tmp_path: Path, name: str, rate: int, channels: int, subtype: str | None
) -> None:
    path = tmp_path / name
    kwargs = {"channels": channels}
    if subtype:
        kwargs["subtype"] = subtype
    write_audio(path, tone(440.0, 2.0, sample_rate=rate), sample_rate=rate, **kwargs)
    audio = decode(path)
    assert audio.sample_rate == ANALYSIS_SAMPLE_RATE
    assert audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert audio.decoded_seconds == pytest.approx(2.0, abs=0.1)
    # The tone survives decoding and resampling at the right pitch.
    assert _tone_peak_hz(audio.samples, audio.sample_rate) == pytest.approx(440.0, abs=3.0)


def test_zero_length_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="zero-length") as info:
        decode(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".flac"])
def test_non_audio_with_audio_extension(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are my lyrics, not audio\n" * 50)
    with pytest.raises(AudioDecodeError) as info:
        decode(path)
    assert str(path) in str(info.value)


def test_truncated_wav_is_reported_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, tone(220.0, 3.0), 44100, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="no such file"):
        decode(tmp_path / "nope.wav")


def test_long_file_is_clipped_to_max_seconds(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    sf.write(path, tone(330.0, 12.0, sample_rate=16000), 16000)
    audio = decode(path, max_seconds=5.0)
    assert audio.decoded_seconds == pytest.approx(5.0, abs=0.01)
    assert audio.duration == pytest.approx(12.0, abs=0.01)
    assert audio.clipped_to_seconds == 5.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_decoding_never_modifies_the_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.mp3", tone(440.0, 1.0), channels=2)
    before = path.read_bytes()
    decode(path)
    assert path.read_bytes() == before


def test_truncated_flac_is_an_error_not_a_partial_decode(tmp_path: Path) -> None:
    path = tmp_path / "cut.flac"
    sf.write(path, tone(220.0, 6.0), 44100, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioDecodeError, match="truncated") as info:
        decode(path)
    assert str(path) in str(info.value)


def test_damaged_mp3_prints_nothing_behind_our_back(tmp_path: Path) -> None:
    """libmpg123 writes notes straight to fd 2; they would tear the watch dashboard."""
    import subprocess
    import sys

    path = tmp_path / "notes.mp3"
    path.write_text("not audio")
    code = (
        "import sys\n"
        "from bouncetag.audio import decode\n"
        "from bouncetag.daemon.watcher import header_ok\n"
        "from pathlib import Path\n"
        f"assert not header_ok(Path({str(path)!r}))\n"
        "try:\n"
        f"    decode({str(path)!r})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
        "print('fd 2 is back', file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "AudioDecodeError"
    assert proc.stderr == "fd 2 is back\n"


def test_ffmpeg_errors_become_plain_words() -> None:
    from bouncetag.audio import _explain_ffmpeg

    assert _explain_ffmpeg("Output file #0 does not contain any stream") == "no audio stream in this file"
    assert "not an audio file" in _explain_ffmpeg("Invalid data found when processing input")
    assert "not an audio file" in _explain_ffmpeg("Invalid argument")
    assert _explain_ffmpeg("Decoder crashed oddly") == "not a readable audio file (Decoder crashed oddly)"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_video_without_sound_says_no_audio_stream(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "render.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=32x32:d=1",
         "-c:v", "mpeg4", "-f", "mp4", str(path)],
        check=True, timeout=60,
    )
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        decode(path)
