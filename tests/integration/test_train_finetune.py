"""`bouncetag train --finetune-bert`: the tuned MiniLM is saved with the model; analyze uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bouncetag import registry, synth
from bouncetag.classifier import transcribe
from bouncetag.classifier.results import Transcript
from bouncetag.cli import main
from bouncetag.config import load_config
from bouncetag.paths import AppPaths
from bouncetag.runner import Analyzer

RATE = 22050
CLUB_SECONDS, TRAP_SECONDS = 2.0, 2.6  # the fake transcriber tells them apart by length
WORDS = {"club": "dance all night on the floor tonight", "slowtrap": "money in the bag drip"}


class LengthTranscriber:
    """Stands in for Whisper (slow): "sings" each style's words, told apart by clip length."""

    backend = "whisper"

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        seconds = len(samples) / sample_rate
        genre = "club" if seconds < (CLUB_SECONDS + TRAP_SECONDS) / 2 else "slowtrap"
        return Transcript(WORDS[genre], self.backend)


def _club(i: int) -> np.ndarray:
    return synth.mix(synth.drum_loop(124 + i, "four_on_floor", CLUB_SECONDS, RATE, seed=i),
                     synth.tone(4000 + 200 * i, CLUB_SECONDS, RATE) * 0.15)


def _trap(i: int) -> np.ndarray:
    return synth.mix(synth.drum_loop(70 + 2 * i, "trap", TRAP_SECONDS, RATE, seed=50 + i),
                     synth.tone(55 + 5 * i, TRAP_SECONDS, RATE) * 0.5)


def _write(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_audio(path, samples, RATE)


def _current(paths: AppPaths) -> Path:
    version = registry.current_version(paths)
    assert version is not None
    return paths.models_dir / version


@pytest.mark.slow  # ~20 s: MiniLM loads five times and its 90 MB are saved once
def test_finetune_bert_is_saved_loaded_and_used_by_analyze(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(transcribe, "make_transcriber", lambda _config: LengthTranscriber())
    config_file = AppPaths.under(isolated_home).config_file
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("[text]\nmax_tokens = 16\n")
    for i in range(4):
        _write(tmp_path / "lib" / "club" / f"c{i}.wav", _club(i))
        _write(tmp_path / "lib" / "slowtrap" / f"t{i}.wav", _trap(i))
    assert main(["label", "--from-folders", str(tmp_path / "lib")]) == 0
    paths = AppPaths.under(isolated_home)
    config = load_config(paths.config_file)
    train = ["train", "--features", "spectral,bert", "--jobs", "1", "--no-ablation"]

    # Without the flag nothing changes: no bert/ folder, the stock MiniLM.
    assert main(train) == 0
    plain = _current(paths)
    assert not (plain / "bert").exists()
    assert json.loads((plain / "model.json").read_text())["finetuned_bert"] is None
    assert Analyzer(config, paths).pipeline.feature_models.text_config.bert_model == ""

    # A text-free feature set has nothing to fine-tune for: a clear error, no model.
    assert main(["train", "--features", "spectral", "--finetune-bert"]) == 7
    assert "--finetune-bert" in capsys.readouterr().err

    # With it: MiniLM is fine-tuned on the training transcripts and saved as <model>/bert.
    assert main([*train, "--finetune-bert", "--finetune-epochs", "1", "--force"]) == 0
    out = capsys.readouterr().out
    assert "BERT fine-tuned on 6 transcripts" in out
    tuned = _current(paths)
    assert tuned != plain
    assert (tuned / "bert" / "config.json").is_file()
    meta = json.loads((tuned / "model.json").read_text())
    ft = meta["finetuned_bert"]
    assert ft["finetuned"] and ft["n_train"] == 6 and ft["n_valid"] == 2 and ft["epochs_run"] == 1
    assert meta["extractor_versions"]["bert"] == f"1+ft:{ft['sha256'][:12]}"
    assert not list(paths.models_dir.glob(".finetune-*")), "the temp folder is cleaned up"
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["model", "list"]) == 0
    assert "spectral,bert(fine-tuned)" in capsys.readouterr().out

    # The promoted model's pipeline loads BERT from that folder, not the stock one.
    analyzer = Analyzer(config, paths)
    assert analyzer.pipeline.feature_models.bert.path == tuned / "bert"

    # analyze picks it up by itself and predicts the genres of new clips.
    _write(tmp_path / "new" / "club_new.wav", _club(7))
    _write(tmp_path / "new" / "trap_new.wav", _trap(7))
    capsys.readouterr()
    assert main(["analyze", "--json", str(tmp_path / "new")]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    got = {Path(r["path"]).name: r["genre"]["genre"] for r in rows}
    assert got == {"club_new.wav": "club", "trap_new.wav": "slowtrap"}

    # Retraining without the flag scores the fine-tuned current model with its own encoder.
    assert main(train) == 0
    runs = [json.loads(p.read_text()) for p in paths.models_dir.glob("*/model.json")]
    last = max(runs, key=lambda m: m["created_at"])
    assert last["finetuned_bert"] is None
    assert last["metrics"]["promotion"]["previous_version"] == tuned.name
    assert last["metrics"]["promotion"]["previous_macro_f1"] is not None
