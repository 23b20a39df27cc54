"""Decode any bounce to mono float32 at one analysis rate: the one place that reads audio files."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bouncetag.errors import AudioDecodeError

ANALYSIS_SAMPLE_RATE = 16_000  # Whisper's rate; tempo and spectral features work well here too.
DEFAULT_MAX_SECONDS = 600.0  # Analyse at most the first 10 minutes of a (possibly huge) file.


@dataclass(frozen=True)
class DecodedAudio:
    """A file decoded once, shared by every analysis stage."""

    path: Path
    samples: np.ndarray  # mono float32 in [-1, 1], at `sample_rate`
    sample_rate: int
    source_sample_rate: int
    channels: int
    duration: float  # seconds of the whole file (may exceed what was decoded)
    format: str  # e.g. "WAV/PCM_24", "MP3", "ffmpeg:aac"
    clipped_to_seconds: float | None = None  # set when only the head of a long file was decoded

    @property
    def decoded_seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class _NativeStderrMute:
    """Points file descriptor 2 at /dev/null while any thread is inside `quiet_native_stderr`.

    libsndfile's MP3 decoder (libmpg123) prints "Note: Illegal Audio-MPEG-Header" and "Warning:
    Xing stream size off" straight to fd 2 for damaged or non-MP3 files. Python cannot catch
    that, and in a terminal it tears the watch dashboard and turns a one-line error into several.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved_fd: int | None = None

    def enter(self) -> None:
        with self._lock:
            if self._users == 0:
                try:
                    sys.stderr.flush()
                    saved = os.dup(2)
                    devnull = os.open(os.devnull, os.O_WRONLY)
                except (OSError, ValueError, AttributeError):
                    saved = None  # no usable fd 2 (e.g. closed): nothing to mute
                else:
                    os.dup2(devnull, 2)
                    os.close(devnull)
                self._saved_fd = saved
            self._users += 1

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._saved_fd is not None:
                os.dup2(self._saved_fd, 2)
                os.close(self._saved_fd)
                self._saved_fd = None


_NATIVE_STDERR_MUTE = _NativeStderrMute()


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C libraries' direct writes to stderr (fd 2) for the duration of the block."""
    _NATIVE_STDERR_MUTE.enter()
    try:
        yield
    finally:
        _NATIVE_STDERR_MUTE.exit()


def _riff_truncation(path: Path, size: int) -> str | None:
    """Return a reason if a RIFF/WAVE or FORM/AIFF file declares more bytes than it holds."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12:
            return None
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            big_endian, data_id = False, b"data"
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            big_endian, data_id = True, b"SSND"
        else:
            return None
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk = fh.read(8)
            chunk_id = chunk[:4]
            (chunk_size,) = struct.unpack(">I" if big_endian else "<I", chunk[4:8])
            if chunk_id == data_id:
                if head[:4] == b"RF64" or chunk_size in (0, 0xFFFFFFFF):
                    return None  # size lives in ds64 or was never filled in; trust the decoder
                if offset + 8 + chunk_size > size:
                    missing = offset + 8 + chunk_size - size
                    return f"truncated: audio data is {missing} bytes shorter than its header says"
                return None
            offset += 8 + chunk_size + (chunk_size & 1)
        return None


def _decode_soundfile(path: Path, max_seconds: float) -> tuple[np.ndarray, int, int, float, str]:
    import soundfile as sf

    with quiet_native_stderr(), sf.SoundFile(str(path)) as snd:
        rate, channels, frames = snd.samplerate, snd.channels, snd.frames
        wanted = min(frames, int(max_seconds * rate)) if frames > 0 else -1
        try:
            data = snd.read(frames=wanted, dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            # The header parsed, so this is the format libsndfile handles: a read error means
            # torn audio data (e.g. a FLAC cut short). No ffmpeg fallback, which would
            # quietly decode whatever is left.
            detail = exc.error_string.removeprefix("Error : ").strip().rstrip(".") or "bad data"
            raise AudioDecodeError(f"truncated or corrupt audio data ({detail})", path) from None
        fmt = f"{snd.format}/{snd.subtype}"
    if frames > 0 and len(data) < wanted * 0.98:
        raise AudioDecodeError(
            f"truncated: decoded {len(data)} of {wanted} frames", path
        )
    return data, rate, channels, frames / rate if rate else 0.0, fmt


def _explain_ffmpeg(detail: str) -> str:
    """Turn ffmpeg's last error line into words a producer can act on."""
    if not detail or "does not contain any stream" in detail or "matches no streams" in detail:
        return "no audio stream in this file"
    if any(
        phrase in detail
        for phrase in ("Invalid data found", "Invalid argument", "moov atom not found", "EBML header")
    ):
        return "not an audio file, or a damaged one (no decoder recognises it)"
    return f"not a readable audio file ({detail})"


def _decode_ffmpeg(path: Path, max_seconds: float) -> tuple[np.ndarray, int, int, float, str]:
    """Fallback for containers libsndfile lacks (M4A/AAC/ALAC, some MP3s)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioDecodeError("cannot decode this format without ffmpeg (apt-get install ffmpeg)", path)
    cmd = [
        ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-t", str(max_seconds),
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(ANALYSIS_SAMPLE_RATE), "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    if proc.returncode != 0 or not proc.stdout:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = reason[-1].replace(f"{path}: ", "") if reason else ""
        raise AudioDecodeError(_explain_ffmpeg(detail), path)
    data = np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, 1).copy()
    duration = len(data) / ANALYSIS_SAMPLE_RATE
    return data, ANALYSIS_SAMPLE_RATE, 1, duration, "ffmpeg"


def decode(path: Path | str, max_seconds: float = DEFAULT_MAX_SECONDS) -> DecodedAudio:
    """Decode a file and resample it once to mono `ANALYSIS_SAMPLE_RATE` float32.

    Args:
        path: any WAV (16/24/32-bit int, float), AIFF, FLAC, OGG Vorbis/Opus, MP3 or M4A file.
        max_seconds: decode at most this much from the start; longer files are clipped.

    Returns:
        The decoded audio and what we learned about the file.

    Raises:
        AudioDecodeError: the file is missing, empty, truncated, unreadable or not audio.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioDecodeError("no such file", path) from None
    except OSError as exc:
        raise AudioDecodeError(f"unreadable: {exc.strerror}", path) from None
    if not path.is_file():
        raise AudioDecodeError("not a regular file", path)
    if size == 0:
        raise AudioDecodeError("zero-length file", path)
    try:
        reason = _riff_truncation(path, size)
    except OSError as exc:
        raise AudioDecodeError(f"unreadable: {exc.strerror}", path) from None
    if reason:
        raise AudioDecodeError(reason, path)

    import soundfile as sf

    try:
        data, rate, channels, duration, fmt = _decode_soundfile(path, max_seconds)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        data, rate, channels, duration, fmt = _decode_ffmpeg(path, max_seconds)
    except OSError as exc:
        raise AudioDecodeError(f"unreadable: {exc}", path) from None

    if data.size == 0:
        raise AudioDecodeError("no audio frames in file", path)
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    if rate != ANALYSIS_SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, rate, ANALYSIS_SAMPLE_RATE, quality="HQ")
    mono = np.ascontiguousarray(np.clip(mono, -1.0, 1.0), dtype=np.float32)
    clipped = max_seconds if duration > max_seconds else None
    return DecodedAudio(
        path=path, samples=mono, sample_rate=ANALYSIS_SAMPLE_RATE, source_sample_rate=rate,
        channels=channels, duration=duration, format=fmt, clipped_to_seconds=clipped,
    )
