"""Training data and plumbing: GTZAN layouts and split, the resumable feature cache, the scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bouncetag import synth
from bouncetag.cli import main
from bouncetag.config import Config
from bouncetag.errors import TrainingError
from bouncetag.paths import AppPaths
from bouncetag.store import Store
from bouncetag.trainer.cache import FeatureCache
from bouncetag.trainer.datasets import (
    GTZAN_GENRES,
    data_fingerprint,
    load_gtzan,
    split_lists,
    split_user_labels,
)
from bouncetag.trainer.evaluate import score_split

RATE = 22050
FAST = Config().replace("transcribe", backend="none")


def _touch_gtzan(root: Path, ext: str = "wav") -> None:
    for genre in GTZAN_GENRES:
        (root / genre).mkdir(parents=True, exist_ok=True)
        for n in range(100):
            (root / genre / f"{genre}.{n:05d}.{ext}").write_bytes(b"")


def test_shipped_split_is_the_artist_filtered_one() -> None:
    lists = split_lists()
    assert {k: len(v) for k, v in lists.items()} == {"train": 443, "valid": 197, "test": 290}
    names = [n for v in lists.values() for n in v]
    assert len(set(names)) == len(names), "splits must not overlap"
    assert "blues/blues.00029" in lists["train"] and "blues/blues.00000" in lists["valid"]


@pytest.mark.parametrize("layout", ["genres", "Data/genres_original", "."])
def test_gtzan_layouts_and_the_unreadable_clip(tmp_path: Path, layout: str) -> None:
    _touch_gtzan(tmp_path / layout, ext="au" if layout == "genres" else "wav")
    warnings: list[str] = []
    items = load_gtzan(tmp_path, warn=warnings.append)
    counts = {s: sum(i.split == s for i in items) for s in ("train", "valid", "test")}
    assert counts == {"train": 442, "valid": 197, "test": 290}  # jazz.00054 left out
    assert not any(i.key == "jazz/jazz.00054" for i in items)
    assert any("jazz.00054" in w for w in warnings)
    randomly = load_gtzan(tmp_path, split="random")
    assert len(randomly) == 999
    assert sum(i.split == "test" for i in randomly) == 9 * 25 + 24  # jazz has 99 clips


def test_not_a_gtzan_folder(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="not a GTZAN folder"):
        load_gtzan(tmp_path)
    with pytest.raises(TrainingError, match="not found"):
        load_gtzan(tmp_path / "missing")


def test_user_label_split_is_stable() -> None:
    labels = [(f"a1:{i:04d}", f"/x/{i}.wav", "club") for i in range(8)]
    labels += [(f"a1:t{i}", f"/x/t{i}.wav", "rare") for i in range(3)]
    items = split_user_labels(labels)
    assert sum(i.split == "valid" and i.genre == "club" for i in items) == 2
    assert all(i.split == "train" for i in items if i.genre == "rare")
    again = split_user_labels(list(reversed(labels)))
    assert {i.key: i.split for i in items} == {i.key: i.split for i in again}
    assert data_fingerprint(items) == data_fingerprint(again)
    assert data_fingerprint(items) != data_fingerprint(items[:-1])


def test_scores() -> None:
    report = score_split("valid", ["a", "a", "b", "b"], ["a", "b", "b", "b"], ("a", "b"))
    assert report.accuracy == 0.75
    assert report.per_genre["a"].precision == 1.0 and report.per_genre["a"].recall == 0.5
    assert report.per_genre["b"].precision == pytest.approx(0.6667, abs=1e-4)
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-4)
    assert report.confusion == ((1, 1), (0, 2))
    unknown = score_split("valid", ["c"], ["a"], ("a", "b"))
    assert unknown.macro_f1 == 0.0 and unknown.labels == ("a", "b", "c")


def test_feature_cache_resumes_after_interrupt(isolated_home: Path, tmp_path: Path) -> None:
    paths = AppPaths.under(isolated_home).ensure()
    files = []
    for i in range(4):
        samples = synth.drum_loop(90 + 10 * i, "straight", 2.0, RATE, seed=i)
        files.append(synth.write_audio(tmp_path / f"f{i}.wav", samples, RATE))
    entries = [(f, None) for f in files]

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with Store(paths.db_file) as store:
        cache = FeatureCache(store, paths, FAST)
        try:
            with pytest.raises(KeyboardInterrupt):
                cache.ensure(entries, ("spectral",), jobs=1, on_done=stop_after_two)
            report, hashes = cache.ensure(entries, ("spectral",), jobs=1)
            assert (report.cached, report.computed) == (2, 2)
            assert len(hashes) == 4 and len(set(hashes.values())) == 4
            report, _ = cache.ensure(entries, ("spectral",), jobs=1)
            assert (report.cached, report.computed) == (4, 0)
            vector = cache.vector(hashes[files[0]], "spectral")
            assert vector is not None and vector.shape == (92,)
            # Renaming does not change the content hash; the cached features are found again.
            moved = files[0].rename(tmp_path / "renamed.wav")
            _, moved_hashes = cache.ensure([(moved, None)], ("spectral",), jobs=1)
            assert moved_hashes[moved] == hashes[files[0]]
        finally:
            cache.close()


def _gtzan_clip(root: Path, name: str, seed: int) -> None:
    genre = name.split("/")[0]
    if genre == "disco":
        samples = synth.mix(synth.drum_loop(124, "four_on_floor", 3.0, RATE, seed=seed),
                            synth.tone(3000, 3.0, RATE) * 0.2)
    else:
        samples = synth.mix(synth.drum_loop(72, "swung", 3.0, RATE, seed=seed),
                            synth.tone(98, 3.0, RATE) * 0.4)
    path = root / "genres" / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_audio(path, samples, RATE)


def test_train_on_a_small_gtzan_with_report_test(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated_home / "config").mkdir(parents=True)
    (isolated_home / "config" / "config.toml").write_text('[transcribe]\nbackend = "none"\n')
    lists = split_lists()
    wanted = {"train": 5, "valid": 2, "test": 2}
    seed = 0
    for split, n in wanted.items():
        for genre in ("blues", "disco"):
            for name in [x for x in lists[split] if x.startswith(genre)][:n]:
                seed += 1
                _gtzan_clip(tmp_path / "gtzan", name, seed)
    assert main(["train", "--gtzan", str(tmp_path / "gtzan"), "--features", "spectral",
                 "--report-test", "--jobs", "1"]) == 0
    out = capsys.readouterr()
    assert "artist-filtered" in out.out
    assert "clips of the artist-filtered split are not in" in out.err
    models = sorted((isolated_home / "data" / "models").glob("*/report.json"))
    report = json.loads(models[-1].read_text())
    assert report["splits"]["test"]["n"] == 4
    assert report["splits"]["valid"]["n"] == 4
    assert report["data_summary"]["counts"]["disco"] == {"train": 5, "valid": 2, "test": 2}
    assert report["data_summary"]["gtzan_split"] == "filtered"
