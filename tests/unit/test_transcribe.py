"""Transcription: Whisper (packaged tiny.en) gated on voice activity, and a real Wav2Vec2 backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bouncetag.classifier.transcribe import (
    NoTranscriber,
    Wav2Vec2Transcriber,
    is_hallucination,
    make_transcriber,
)
from bouncetag.config import TranscribeConfig
from bouncetag.errors import ModelMissingError
from bouncetag.synth import drum_loop, espeak_speech, mix, silence, tone

RATE = 16_000


@pytest.mark.parametrize("text", ["Thank you.", "you", " Thanks for watching! ", "[Music]", ""])
def test_stock_whisper_phrases_are_hallucinations(text: str) -> None:
    assert is_hallucination(text)


def test_real_lyric_is_not_a_hallucination() -> None:
    assert not is_hallucination("thank you for the city lights tonight")


def test_none_backend_gives_empty_transcript() -> None:
    result = make_transcriber(TranscribeConfig(backend="none")).transcribe(np.zeros(RATE), RATE)
    assert isinstance(make_transcriber(TranscribeConfig(backend="none")), NoTranscriber)
    assert result.is_instrumental and result.backend == "none"


def test_wav2vec2_without_a_path_says_how_to_configure_it() -> None:
    with pytest.raises(ModelMissingError, match="transcribe.wav2vec2_model"):
        make_transcriber(TranscribeConfig(backend="wav2vec2"))


def test_wav2vec2_missing_folder_is_a_one_line_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError) as info:
        make_transcriber(TranscribeConfig(backend="wav2vec2", wav2vec2_model=str(tmp_path / "x")))
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Wav2Vec2ForCTC with its processor, saved like a real local model."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: i + 5 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True,
        return_attention_mask=False,
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0,
        do_stable_layer_norm=True, feat_extract_norm="layer",
    )
    import torch

    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


def test_wav2vec2_backend_runs_a_saved_local_model(tiny_wav2vec2: Path) -> None:
    config = TranscribeConfig(backend="wav2vec2", wav2vec2_model=str(tiny_wav2vec2), vad=False)
    transcriber = make_transcriber(config)
    assert isinstance(transcriber, Wav2Vec2Transcriber)
    result = transcriber.transcribe(tone(300.0, 2.0, sample_rate=RATE), RATE)
    assert result.backend == "wav2vec2"
    assert result.transcribed_seconds == pytest.approx(2.0, abs=0.01)
    # A random model's greedy CTC output is arbitrary, but it must be decodable vocabulary.
    assert set(result.text) <= set("abcdefghijklmnopqrstuvwxyz' ")


def test_wav2vec2_vad_gate_skips_instrumentals(tiny_wav2vec2: Path) -> None:
    config = TranscribeConfig(backend="wav2vec2", wav2vec2_model=str(tiny_wav2vec2), vad=True)
    loop = drum_loop(100.0, "straight", seconds=6.0, sample_rate=RATE)
    result = make_transcriber(config).transcribe(loop, RATE)
    assert result.text == "" and result.transcribed_seconds == 0.0


@pytest.fixture(scope="module")
def whisper():
    return make_transcriber(TranscribeConfig())


@pytest.mark.slow
@pytest.mark.parametrize(
    "signal",
    [
        silence(8.0, RATE),
        drum_loop(92.0, "straight", seconds=8.0, sample_rate=RATE),
        drum_loop(140.0, "trap", seconds=8.0, sample_rate=RATE),
        tone(220.0, 8.0, sample_rate=RATE),
    ],
    ids=["silence", "straight-drums", "trap-drums", "tone"],
)
def test_whisper_says_nothing_on_instrumentals(whisper, signal: np.ndarray) -> None:
    result = whisper.transcribe(signal.astype(np.float32), RATE)
    assert result.text == "", f"hallucinated {result.text!r}"
    assert result.is_instrumental


@pytest.mark.slow
def test_whisper_transcribes_espeak_vocals_over_drums(whisper) -> None:
    words = espeak_speech("we ride through the city every single night", sample_rate=RATE)
    loop = drum_loop(92.0, "straight", seconds=len(words) / RATE + 2, sample_rate=RATE)
    song = mix(np.concatenate([np.zeros(RATE, np.float32), words]), loop, gains=[1.0, 0.4])
    result = whisper.transcribe(song.astype(np.float32), RATE)
    said = result.text.lower()
    assert result.speech_seconds > 1.0
    assert sum(w in said for w in ("ride", "city", "night", "every")) >= 3, said


@pytest.mark.slow
def test_whisper_transcribes_at_most_max_seconds() -> None:
    words = espeak_speech("one two three four five six seven eight nine ten", sample_rate=RATE)
    long_speech = np.concatenate([words] * 6)
    config = TranscribeConfig(max_seconds=3.0)
    result = make_transcriber(config).transcribe(long_speech.astype(np.float32), RATE)
    assert result.transcribed_seconds <= 3.0 + 1e-6
    assert result.speech_seconds > 10.0
