"""With the real packaged models: train on every feature (Whisper, MiniLM, Word2Vec) and analyze."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bouncetag import registry, synth
from bouncetag.cli import main
from bouncetag.paths import AppPaths

RATE = 22050
SECONDS = 4.0


def _club(i: int):
    return synth.mix(synth.drum_loop(124 + i, "four_on_floor", SECONDS, RATE, seed=i),
                     synth.tone(4000 + 200 * i, SECONDS, RATE) * 0.15)


def _trap(i: int):
    return synth.mix(synth.drum_loop(70 + 2 * i, "trap", SECONDS, RATE, seed=50 + i),
                     synth.tone(55 + 5 * i, SECONDS, RATE) * 0.5)


@pytest.mark.slow
def test_train_all_features_and_analyze(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("lib/club", "lib/slowtrap", "new"):
        (tmp_path / folder).mkdir(parents=True)
    for i in range(4):
        synth.write_audio(tmp_path / "lib" / "club" / f"c{i}.wav", _club(i), RATE)
        synth.write_audio(tmp_path / "lib" / "slowtrap" / f"t{i}.wav", _trap(i), RATE)
    speech = synth.espeak_speech("dance all night on the floor tonight", RATE)
    synth.write_audio(tmp_path / "lib" / "club" / "vocal.wav",
                      synth.mix(_club(9)[: len(speech)], speech), RATE)
    assert main(["label", "--from-folders", str(tmp_path / "lib")]) == 0
    capsys.readouterr()
    assert main(["train", "--features", "all", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "ablation" in out
    paths = AppPaths.under(isolated_home)
    version = registry.current_version(paths)
    assert version is not None
    model_dir = paths.models_dir / version
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["config"]["feature_names"] == ["spectral", "whisper_enc", "bert", "w2v"]
    assert meta["has_word2vec"] and (model_dir / "word2vec.kv").exists()
    report = json.loads((model_dir / "report.json").read_text())
    assert [row["features"] for row in report["ablation"]] == ["audio", "text", "all"]

    synth.write_audio(tmp_path / "new" / "club_new.wav", _club(7), RATE)
    synth.write_audio(tmp_path / "new" / "trap_new.wav", _trap(7), RATE)
    capsys.readouterr()
    assert main(["analyze", "--json", str(tmp_path / "new")]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    got = {Path(r["path"]).name: r["genre"]["genre"] for r in rows}
    assert got == {"club_new.wav": "club", "trap_new.wav": "slowtrap"}
