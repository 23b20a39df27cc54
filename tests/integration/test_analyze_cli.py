"""`bouncetag analyze` as a user runs it: JSON lines, BPM accuracy, bad files, no genre model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bouncetag.cli import main
from bouncetag.synth import demo_bounce, drum_loop, write_audio


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_bpm_within_one_percent_for_72_92_140(tmp_path: Path, capsys) -> None:
    files = []
    for bpm, style, fmt in [(72, "straight", "wav"), (92, "swung", "flac"), (140, "trap", "mp3")]:
        files.append(
            write_audio(tmp_path / f"loop{bpm}.{fmt}", drum_loop(bpm, style, seconds=12.0), channels=2)
        )
    code = main(["analyze", "--json", "--transcriber", "none", *map(str, files)])
    results = _json_lines(capsys.readouterr().out)
    assert code == 0
    assert [Path(r["path"]).name for r in results] == ["loop72.wav", "loop92.flac", "loop140.mp3"]
    for bpm, result in zip((72, 92, 140), results, strict=True):
        assert result["tempo"]["bpm"] == pytest.approx(bpm, rel=0.01), result["tempo"]
        assert result["tempo"]["bpm_int"] == bpm
        assert result["tempo"]["source"] == "estimate"
        assert result["genre"] is None
        assert "no model yet" in result["genre_note"]


def test_bad_files_get_one_line_errors_and_the_rest_still_run(tmp_path: Path, capsys) -> None:
    good = write_audio(tmp_path / "good.wav", drum_loop(120, "four_on_floor", seconds=8.0))
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(good.read_bytes()[:2000][::-1])
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "lyrics.mp3"
    text.write_text("not audio at all\n" * 100)
    good2 = write_audio(tmp_path / "good2.wav", drum_loop(100, "straight", seconds=8.0))
    code = main(
        ["analyze", "--json", "--transcriber", "none"]
        + [str(p) for p in (good, corrupt, empty, text, good2)]
    )
    captured = capsys.readouterr()
    assert code != 0
    assert [Path(r["path"]).name for r in _json_lines(captured.out)] == ["good.wav", "good2.wav"]
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    for bad, line in zip((corrupt, empty, text), errors, strict=True):
        assert str(bad) in line


def test_exit_code_names_the_cause_when_every_file_failed_for_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 100)
    assert main(["analyze", "--transcriber", "none", str(empty)]) == 3
    assert main(["analyze", "--transcriber", "none", str(empty), str(text)]) == 3
    locked = write_audio(tmp_path / "locked.wav", drum_loop(100, "straight", seconds=6.0))
    locked.chmod(0o444)
    assert main(["analyze", "--write", "--transcriber", "none", str(locked)]) == 4
    # Different causes, or some files went through: 1.
    assert main(["analyze", "--write", "--transcriber", "none", str(empty), str(locked)]) == 1
    good = write_audio(tmp_path / "good.wav", drum_loop(100, "straight", seconds=6.0))
    assert main(["analyze", "--transcriber", "none", str(empty), str(good)]) == 1


def test_dry_run_alone_shows_the_tag_diff_and_writes_nothing(tmp_path: Path, capsys) -> None:
    path = write_audio(tmp_path / "beat.wav", drum_loop(100, "straight", seconds=6.0))
    before = path.read_bytes()
    assert main(["analyze", "--json", "--dry-run", "--transcriber", "none", str(path)]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert result["tags"][0] == "tags (dry run):"
    assert "bpm: (empty) → 100" in result["tags"]
    assert path.read_bytes() == before


def test_folder_argument_analyses_audio_inside(tmp_path: Path, capsys) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_audio(tmp_path / "a" / "one.wav", drum_loop(90, "straight", seconds=6.0))
    write_audio(tmp_path / "a" / "b" / "two.ogg", drum_loop(128, "four_on_floor", seconds=6.0))
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    assert main(["analyze", "--json", "--transcriber", "none", str(tmp_path / "a")]) == 0
    names = sorted(Path(r["path"]).name for r in _json_lines(capsys.readouterr().out))
    assert names == ["one.wav", "two.ogg"]


def test_aifc_bounces_in_a_folder_are_analysed_and_tagged(tmp_path: Path, capsys) -> None:
    import soundfile as sf

    from bouncetag.tags import read_tags

    folder = tmp_path / "Logic bounces"
    folder.mkdir()
    path = folder / "beat.aifc"
    sf.write(path, drum_loop(96, "straight", seconds=6.0), 44100, format="AIFF", subtype="FLOAT")
    assert main(["analyze", "--json", "--write", "--transcriber", "none", str(folder)]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert Path(result["path"]).name == "beat.aifc"
    assert read_tags(path).bpm == pytest.approx(96.0, abs=0.5)


def test_table_output_mentions_bpm_and_no_model(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "beat.wav", drum_loop(92, "straight", seconds=8.0))
    proc = subprocess.run(
        [sys.executable, "-m", "bouncetag", "analyze", "--transcriber", "none", str(path)],
        capture_output=True, text=True, timeout=120, env={**_env(tmp_path), "COLUMNS": "160"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "92.0" in proc.stdout
    assert "no model yet" in proc.stdout
    # --transcriber none: nobody listened, so the table must not claim "instrumental".
    assert "not transcribed" in proc.stdout and "instrumental" not in proc.stdout


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "BOUNCETAG_HOME": str(tmp_path / "home")}


def test_help_is_fast_and_imports_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import sys, time; t = time.perf_counter(); from bouncetag.cli import build_parser; "
        "build_parser(); print(time.perf_counter() - t); "
        "print(sorted(m for m in ('torch', 'transformers', 'librosa', 'faster_whisper', 'gensim') "
        "if m in sys.modules))"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out[1] == "[]", f"heavy modules imported at start-up: {out[1]}"
    assert time.perf_counter() - started < 10  # generous: CI machines are busy; see benchmarks


@pytest.mark.slow
def test_demo_bounce_gets_bpm_and_transcript(tmp_path: Path, capsys) -> None:
    path = write_audio(tmp_path / "demo.wav", demo_bounce(seconds=16.0), channels=2)
    assert main(["analyze", "--json", str(path)]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert result["tempo"]["bpm"] == pytest.approx(92.0, abs=0.5)
    assert not result["transcript"]["instrumental"]
    assert len(result["transcript"]["text"].split()) >= 3


def test_tempo_already_in_the_file_wins_and_estimate_is_kept(tmp_path: Path, capsys) -> None:
    from mutagen.id3 import ID3, TBPM

    path = write_audio(tmp_path / "tagged.mp3", drum_loop(92, "straight", seconds=8.0))
    tags = ID3()
    tags.add(TBPM(encoding=3, text=["93"]))
    tags.save(path)
    assert main(["analyze", "--json", "--transcriber", "none", str(path)]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert result["tempo"]["source"] == "file"
    assert result["tempo"]["bpm"] == 93.0
    assert result["tempo"]["estimated_bpm"] == pytest.approx(92.0, rel=0.01)


def test_per_folder_tempo_range_from_config(tmp_path: Path, capsys) -> None:
    slow = tmp_path / "hiphop"
    slow.mkdir()
    path = write_audio(slow / "beat.wav", drum_loop(170, "straight", seconds=10.0))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[tempo.folders]]\npath = "{slow}"\nmin_bpm = 60.0\nmax_bpm = 100.0\n'
    )
    assert main(["-c", str(config), "analyze", "--json", "--transcriber", "none", str(path)]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert result["tempo"]["bpm"] == pytest.approx(85.0, rel=0.01)


def test_configured_genre_model_that_is_missing_is_a_clear_error(tmp_path: Path, capsys) -> None:
    path = write_audio(tmp_path / "beat.wav", drum_loop(100, "straight", seconds=6.0))
    config = tmp_path / "config.toml"
    config.write_text('[genre]\nmodel = "no-such-version"\n')
    code = main(["-c", str(config), "analyze", "--transcriber", "none", str(path)])
    assert code == 5
    assert "genre.model: no model folder or version 'no-such-version'" in capsys.readouterr().err
