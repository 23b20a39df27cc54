"""End to end: label a generated corpus three ways, train, analyze new clips, promote, roll back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bouncetag import registry, synth
from bouncetag.classifier.features import EXTRACTORS
from bouncetag.cli import main
from bouncetag.config import Config
from bouncetag.paths import AppPaths
from bouncetag.runner import Analyzer
from bouncetag.store import Store

RATE = 22050
SECONDS = 6.0


def club(i: int) -> np.ndarray:
    """Four-on-the-floor at 125-130 BPM with a bright, high synth line."""
    bpm = 125 + (i % 6)
    loop = synth.drum_loop(bpm, "four_on_floor", SECONDS, RATE, seed=i)
    lead = synth.tone(4000 + 250 * (i % 5), SECONDS, RATE) * 0.15
    return synth.mix(loop, lead)


def slowtrap(i: int) -> np.ndarray:
    """Half-time or trap at 68-78 BPM with a low sub tone."""
    bpm = 68 + (i % 6) * 2
    style = "trap" if i % 2 else "half_time"
    loop = synth.drum_loop(bpm, style, SECONDS, RATE, seed=100 + i)
    sub = synth.tone(50 + 5 * (i % 5), SECONDS, RATE) * 0.5
    return synth.mix(loop, sub)


def write(path: Path, samples: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return synth.write_audio(path, samples, RATE)


def set_flac_tags(path: Path, **tags: str) -> None:
    from mutagen.flac import FLAC

    audio = FLAC(path)
    for key, value in tags.items():
        audio[key] = value
    audio.save()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated once per module: the folders each label command reads, and unseen clips."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(4):  # labelled with `label FILE... GENRE`
        write(root / "manual" / f"club{i}.wav", club(i))
        write(root / "manual" / f"trap{i}.wav", slowtrap(i))
    for i in range(4, 8):  # labelled with --from-folders
        write(root / "folders" / "club" / f"c{i}.wav", club(i))
        write(root / "folders" / "slowtrap" / f"t{i}.wav", slowtrap(i))
    # --from-tags: the user's own genre tags count, bouncetag's own (provenance) do not.
    speech = synth.espeak_speech("we are the night shift, we never sleep, hear us now", RATE)
    vocal = synth.mix(speech, synth.tone(220, len(speech) / RATE, RATE) * 0.05)
    write(root / "tagged" / "vocal.flac", vocal)
    set_flac_tags(root / "tagged" / "vocal.flac", GENRE="spoken word")
    write(root / "tagged" / "club8.flac", club(8))
    set_flac_tags(root / "tagged" / "club8.flac", GENRE="club")
    write(root / "tagged" / "ours.flac", slowtrap(8))
    set_flac_tags(root / "tagged" / "ours.flac", GENRE="club",
                  BOUNCETAG_WROTE=json.dumps({"genre": "club"}))
    write(root / "tagged" / "untagged.flac", slowtrap(9))
    for i in range(20, 23):  # never labelled: what `analyze` must get right
        write(root / "new" / f"club_new{i}.wav", club(i))
        write(root / "new" / f"trap_new{i}.wav", slowtrap(i))
    return root


def _fast_config(home: Path) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text('[transcribe]\nbackend = "none"\n')


def _labels(home: Path) -> dict[str, str]:
    with Store(AppPaths.under(home).db_file) as store:
        return {Path(lab.path).name: lab.genre for lab in store.labels()}


def _analyze(capsys: pytest.CaptureFixture[str], folder: Path) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["analyze", "--json", str(folder)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return {Path(r["path"]).name: r for r in rows}


def test_label_train_analyze_promote_rollback(
    corpus: Path, isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fast_config(isolated_home)
    paths = AppPaths.under(isolated_home)
    manual = corpus / "manual"

    # 1. The three ways to label.
    assert main(["label", *map(str, sorted(manual.glob("club*.wav"))), "club"]) == 0
    assert main(["label", *map(str, sorted(manual.glob("trap*.wav"))), "slowtrap"]) == 0
    assert main(["label", "--from-folders", str(corpus / "folders")]) == 0
    assert main(["label", "--from-tags", str(corpus / "tagged")]) == 0
    labels = _labels(isolated_home)
    assert labels["vocal.flac"] == "spoken word"
    assert labels["club8.flac"] == "club"
    assert "ours.flac" not in labels, "bouncetag's own genre tag must not become a label"
    assert "untagged.flac" not in labels
    assert labels["c5.wav"] == "club" and labels["t6.wav"] == "slowtrap"
    assert sum(g == "club" for g in labels.values()) == 9
    assert sum(g == "slowtrap" for g in labels.values()) == 8

    # A label follows the audio, not the name: a renamed copy is the same labelled content.
    renamed = tmp_path / "renamed.wav"
    shutil.copy(manual / "club0.wav", renamed)
    assert main(["label", str(renamed), "club"]) == 0
    assert len(_labels(isolated_home)) == len(labels)

    # 2. Export, remove, import.
    csv_file = tmp_path / "labels.csv"
    assert main(["labels", "export", str(csv_file)]) == 0
    assert main(["labels", "remove", str(manual / "trap0.wav")]) == 0
    assert len(_labels(isolated_home)) == len(labels) - 1
    assert main(["labels", "import", str(csv_file)]) == 0
    assert len(_labels(isolated_home)) == len(labels)
    capsys.readouterr()
    assert main(["labels"]) == 0
    assert "spoken word" in capsys.readouterr().out

    # 3. Before training, analyze says there is no model and invents nothing.
    before = _analyze(capsys, corpus / "new")
    assert all(r["genre"] is None for r in before.values())

    # 4. Train on cheap features (the real models are not the point here).
    capsys.readouterr()
    assert main(["train", "--features", "spectral"]) == 0
    out = capsys.readouterr()
    assert "now current" in out.out
    assert "spoken word" in out.err and "only 1 example" in out.err  # few-example warning
    first = registry.current_version(paths)
    assert first is not None
    model_dir = paths.models_dir / first
    report = json.loads((model_dir / "report.json").read_text())
    assert report["splits"]["valid"]["n"] == 4  # 25% of club and slowtrap held out
    assert report["splits"]["valid"]["macro_f1"] >= 0.99
    assert (model_dir / "confusion_valid.png").stat().st_size > 1000
    meta = json.loads((model_dir / "model.json").read_text())
    assert set(meta["config"]["labels"]) == {"club", "slowtrap", "spoken word"}
    assert meta["config"]["feature_names"] == ["spectral"]
    assert meta["data_summary"]["counts"]["club"]["train"] == 7
    assert meta["data_summary"]["fingerprint"]
    assert meta["extractor_versions"] == {"spectral": EXTRACTORS["spectral"].version}

    # 5. analyze uses the model: every new clip gets its user genre.
    after = _analyze(capsys, corpus / "new")
    assert len(after) == 6
    for name, row in after.items():
        expected = "club" if name.startswith("club") else "slowtrap"
        assert row["genre"]["genre"] == expected, (name, row["genre"])
        assert row["genre"]["model_version"] == first

    # 6. A worse model (w2v without transcripts: all zeros) is kept but not promoted.
    capsys.readouterr()
    assert main(["train", "--features", "w2v", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "not promoted" in out
    assert registry.current_version(paths) == first
    worse = [m for m in registry.list_models(paths) if m.version != first]
    assert len(worse) == 1 and not worse[0].promoted

    # 7. --force installs it; `model use` rolls back; a running analyzer (the daemon's) follows.
    analyzer = Analyzer(Config().replace("transcribe", backend="none"), paths)
    assert analyzer.model_version == first
    assert not analyzer.reload_model_if_changed()
    assert main(["train", "--features", "w2v", "--jobs", "1", "--force"]) == 0
    forced = registry.current_version(paths)
    assert forced not in (None, first)
    assert analyzer.reload_model_if_changed() and analyzer.model_version == forced
    capsys.readouterr()
    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    assert first in listing and forced in listing
    assert main(["model", "use", first]) == 0
    assert registry.current_version(paths) == first
    assert analyzer.reload_model_if_changed() and analyzer.model_version == first
    assert main(["model", "use", "no-such-version"]) != 0

    # 8. Every run is in the store's train_runs.
    with Store(paths.db_file) as store:
        runs = store.query("SELECT model_version, promoted FROM train_runs ORDER BY id")
    assert [bool(r["promoted"]) for r in runs] == [True, False, True]


def test_train_without_labels_says_what_to_do(isolated_home: Path) -> None:
    _fast_config(isolated_home)
    assert main(["train", "--features", "spectral"]) == 7  # TrainingError


def test_train_rejects_unknown_features(isolated_home: Path, capsys) -> None:
    _fast_config(isolated_home)
    assert main(["train", "--features", "nope"]) == 7
    assert "nope" in capsys.readouterr().err


def test_label_usage_errors(isolated_home: Path, tmp_path: Path) -> None:
    assert main(["label", "onlygenre"]) == 2
    assert main(["label", str(tmp_path / "missing.wav"), "club"]) == 2
    assert main(["labels", "export"]) == 2
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert main(["label", str(bad), "club"]) == 1  # named on stderr, exit 1
