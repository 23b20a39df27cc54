"""Tag planning, policies, provenance, safety checks, undo and the `tags`/`undo` commands."""

from __future__ import annotations

import fcntl
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bouncetag.classifier.results import Analysis, GenrePrediction, TempoEstimate, Transcript
from bouncetag.config import TagsConfig
from bouncetag.errors import FileBusyError, TagError
from bouncetag.paths import AppPaths
from bouncetag.store import Store
from bouncetag.tags import (
    FIELD_TABLE,
    clean_stale_temps,
    format_plan,
    plan_write,
    read_file_bpm,
    read_tags,
    temp_path_for,
    undo,
    undo_last,
    write_analysis,
)
from bouncetag.tags import formats as fmt


def make_wav(folder: Path, name: str = "take.wav", title: str | None = "Demo") -> Path:
    path = folder / name
    t = np.arange(8000) / 8000
    with sf.SoundFile(str(path), "w", 8000, 1, "PCM_16", format="WAV") as snd:
        if title:
            snd.title = title
        snd.write((0.2 * np.sin(2 * np.pi * 300 * t)).astype("float32"))
    return path


def make_flac(folder: Path, **tags: str) -> Path:
    path = folder / "take.flac"
    sf.write(str(path), np.zeros(8000, dtype="float32") + 0.01, 8000, format="FLAC")
    if tags:
        from mutagen.flac import FLAC

        audio = FLAC(str(path))
        for key, value in tags.items():
            audio[key] = value
        audio.save()
    return path


def analysis(bpm: float | None = 92.3, genre: str | None = "hiphop", confidence: float = 0.8,
             text: str = "hello there") -> Analysis:
    return Analysis(
        path="", duration=1.0,
        tempo=TempoEstimate(bpm, 0.9, "estimate") if bpm is not None else None,
        transcript=Transcript(text, "whisper"),
        genre=GenrePrediction(((genre, confidence), ("rnb", 0.1), ("pop", 0.05)), "model-7")
        if genre else None,
        genre_note="" if genre else "no model yet, run `bouncetag train`",
    )


CONFIG = TagsConfig()


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "state.sqlite") as s:
        yield s


def test_mapping_table_holds_the_issue_keys() -> None:
    table = {k.field: k for k in FIELD_TABLE}
    assert (table["bpm"].id3, table["bpm"].mp4) == ("TBPM", "tmpo")
    assert (table["bpm_precise"].id3, table["bpm_precise"].vorbis, table["bpm_precise"].mp4) == (
        "TXXX:BPM", "BPM", "----:com.apple.iTunes:BPM")
    assert (table["genre"].id3, table["genre"].vorbis, table["genre"].mp4, table["genre"].riff) == (
        "TCON", "GENRE", "\xa9gen", "IGNR")
    assert (table["transcript"].id3, table["transcript"].vorbis, table["transcript"].mp4) == (
        "USLT", "LYRICS", "\xa9lyr")
    assert all(k.id3.startswith("TXXX:BOUNCETAG_") for k in FIELD_TABLE
               if k.field.startswith("bouncetag_"))


def test_format_plan_lines(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    first = plan_write(path, analysis(bpm=91.0), CONFIG, 0.35)
    assert "genre: (empty) → hiphop" in format_plan(first)
    write_analysis(path, analysis(bpm=91.0), CONFIG, 0.35)

    second = plan_write(path, analysis(bpm=92.0, confidence=0.22), CONFIG, 0.35)
    lines = format_plan(second)
    assert "bpm: 91 → 92 (ours)" in lines
    assert "genre: skip (confidence 0.22 < 0.35)" in lines
    assert "transcript: hello there (unchanged)" in lines


def test_dry_run_writes_nothing(tmp_path: Path, store: Store) -> None:
    path = make_wav(tmp_path)
    before = path.read_bytes()
    report = write_analysis(path, analysis(), CONFIG, 0.35, store=store, dry_run=True)
    assert not report.written and "would change" in report.message
    assert report.plan.writes
    assert path.read_bytes() == before
    assert store.tag_writes() == []


def test_transcript_only_when_there_is_speech(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    plan = plan_write(path, analysis(text="  "), CONFIG, 0.35)
    change = next(c for c in plan.changes if c.field == "transcript")
    assert (change.action, change.reason) == ("skip", "instrumental: no speech")
    plan = plan_write(path, analysis(), TagsConfig(write_transcript=False), 0.35)
    assert next(c for c in plan.changes if c.field == "transcript").action == "skip"


def test_transcription_switched_off_is_not_called_instrumental(tmp_path: Path) -> None:
    import dataclasses

    path = make_wav(tmp_path)
    off = dataclasses.replace(analysis(text=""), transcript=Transcript("", "none"))
    plan = plan_write(path, off, CONFIG, 0.35)
    change = next(c for c in plan.changes if c.field == "transcript")
    assert (change.action, change.reason) == ("skip", "not transcribed")


def test_a_tempo_with_zero_confidence_is_not_written(tmp_path: Path) -> None:
    """Silence or a too-short clip: the estimator returns its prior (110) at confidence 0."""
    import dataclasses

    path = make_wav(tmp_path)
    silent = dataclasses.replace(
        analysis(genre=None, text=""), tempo=TempoEstimate(110.0, 0.0, "estimate")
    )
    plan = plan_write(path, silent, CONFIG, 0.35)
    bpm_changes = [c for c in plan.changes if c.field.startswith("bpm")]
    assert bpm_changes and all(c.action == "skip" for c in bpm_changes)
    assert "no beat found" in bpm_changes[0].reason
    report = write_analysis(path, silent, CONFIG, 0.35)
    assert not report.written and read_tags(path).bpm is None


def test_no_genre_model_is_a_skip_with_the_note(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    plan = plan_write(path, analysis(genre=None), CONFIG, 0.35)
    assert "genre: skip (no model yet, run `bouncetag train`)" in format_plan(plan)


def test_bpm_never_keeps_the_users_tempo(tmp_path: Path) -> None:
    path = make_flac(tmp_path, BPM="128")
    report = write_analysis(path, analysis(), TagsConfig(bpm_policy="never"), 0.35)
    assert read_tags(path).fields["bpm_precise"] == "128"
    assert "bpm: keep 128 (already set; policy 'never')" in format_plan(report.plan)
    assert read_tags(path).genre == "hiphop"  # empty fields are still filled


def test_provenance_records_model_and_top3(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    write_analysis(path, analysis(), CONFIG, 0.35)
    fields = read_tags(path).fields
    assert fields["bouncetag_model"] == "model-7"
    assert fields["bouncetag_confidence"] == "0.8000"
    assert fields["bouncetag_top3"] == "hiphop:0.800, rnb:0.100, pop:0.050"
    assert json.loads(fields["bouncetag_wrote"])["genre"] == "hiphop"
    assert fields["bouncetag_time"].endswith("+00:00")


def test_user_edit_is_no_longer_ours(tmp_path: Path) -> None:
    path = make_flac(tmp_path)
    write_analysis(path, analysis(), CONFIG, 0.35)
    from mutagen.flac import FLAC

    audio = FLAC(str(path))
    audio["GENRE"] = "Lo-fi"
    audio.save()
    snap = read_tags(path)
    assert "genre" not in snap.ours and "bpm" in snap.ours


def test_wav_riff_info_keeps_user_entries_and_gets_genre(tmp_path: Path) -> None:
    path = make_wav(tmp_path, title="Keep Me")
    write_analysis(path, analysis(), CONFIG, 0.35)
    info = fmt.WavContainer()._info(path)
    assert info["INAM"] == "Keep Me" and info["IGNR"] == "hiphop" and info["IBPM"] == "92.3"


def _wav_with_acid(folder: Path, tempo: float) -> Path:
    path = make_wav(folder, title=None)
    acid = struct.pack("<IHHfIHHf", 0, 60, 0, 0.0, 8, 4, 4, tempo)
    data = path.read_bytes() + b"acid" + struct.pack("<I", len(acid)) + acid
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    path.write_bytes(data)
    return path


def test_read_file_bpm_sources(tmp_path: Path) -> None:
    assert read_file_bpm(_wav_with_acid(tmp_path, 97.5)) == pytest.approx(97.5)
    flac = make_flac(tmp_path, BPM="128.4")
    assert read_file_bpm(flac) == pytest.approx(128.4)
    junk = tmp_path / "notes.mp3"
    junk.write_text("not audio")
    assert read_file_bpm(junk) is None
    assert read_file_bpm(tmp_path / "missing.wav") is None
    plain = make_wav(tmp_path, "plain.wav")
    assert read_file_bpm(plain) is None


def test_read_file_bpm_ignores_our_own_estimate(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    write_analysis(path, analysis(bpm=140.0), CONFIG, 0.35)
    assert read_tags(path).bpm == 140.0
    assert read_file_bpm(path) is None


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file", b"\x00" * 100])
def test_non_audio_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.wav"
    path.write_bytes(content)
    with pytest.raises(TagError, match="fake.wav"):
        write_analysis(path, analysis(), CONFIG, 0.35)
    assert path.read_bytes() == content


def test_locked_file_is_left_alone(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    before = path.read_bytes()
    with path.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FileBusyError, match="locked"):
            write_analysis(path, analysis(), CONFIG, 0.35)
    assert path.read_bytes() == before
    assert not temp_path_for(path).exists()


def test_file_changing_during_the_write_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_wav(tmp_path)
    real_write = fmt.WavContainer.write

    def write_while_the_daw_rebounces(self, src, dst, updates, version):  # noqa: ANN001
        real_write(self, src, dst, updates, version)
        with path.open("ab") as fh:
            fh.write(b"\0\0")  # a DAW appending to the file meanwhile

    monkeypatch.setattr(fmt.WavContainer, "write", write_while_the_daw_rebounces)
    with pytest.raises(FileBusyError, match="changed while being tagged"):
        write_analysis(path, analysis(), CONFIG, 0.35)
    assert not temp_path_for(path).exists()
    assert read_tags(path).genre is None


def test_failed_verification_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_wav(tmp_path)
    before = path.read_bytes()
    digests = iter(["before", "after"])
    monkeypatch.setattr(fmt.WavContainer, "payload_digest", lambda self, p: next(digests))
    with pytest.raises(TagError, match="audio changed"):
        write_analysis(path, analysis(), CONFIG, 0.35)
    assert path.read_bytes() == before
    assert not temp_path_for(path).exists()


def test_mode_is_kept_and_stale_temp_removed(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    os.chmod(path, 0o640)
    stale = temp_path_for(path)
    stale.write_bytes(b"half a copy from a killed writer")
    report = write_analysis(path, analysis(), CONFIG, 0.35)
    assert report.written
    assert (path.stat().st_mode & 0o777) == 0o640
    assert not stale.exists()
    assert (report.size, report.mtime_ns) == (path.stat().st_size, path.stat().st_mtime_ns)


def test_clean_stale_temps_skips_a_live_writer(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    stale = temp_path_for(path)
    stale.write_bytes(b"x")
    orphan = tmp_path / f".gone.wav{'.bouncetag-tmp'}"
    orphan.write_bytes(b"x")
    with path.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert clean_stale_temps(tmp_path) == [orphan]
    assert stale.exists()
    assert clean_stale_temps(tmp_path) == [stale]


def test_undo_twice_restores_the_original_tags(tmp_path: Path, store: Store) -> None:
    path = make_flac(tmp_path, GENRE="Jazz", TITLE="Take 4")
    write_analysis(path, analysis(genre="house"), TagsConfig(genre_policy="always"), 0.35,
                   store=store)
    write_analysis(path, analysis(bpm=100.0, genre="techno"), TagsConfig(genre_policy="always"),
                   0.35, store=store)
    assert read_tags(path).genre == "techno"
    undo(path, store)
    assert read_tags(path).genre == "house"
    undo(path, store)
    snap = read_tags(path)
    assert snap.fields == {"genre": "Jazz"} and snap.other == {"title": "Take 4"}
    with pytest.raises(TagError, match="no bouncetag tag write"):
        undo(path, store)


def test_undo_keeps_a_later_user_edit(tmp_path: Path, store: Store) -> None:
    path = make_flac(tmp_path)
    write_analysis(path, analysis(), CONFIG, 0.35, store=store)
    from mutagen.flac import FLAC

    audio = FLAC(str(path))
    audio["GENRE"] = "Lo-fi"
    audio.save()
    report = undo(path, store)
    assert "kept later edits to genre" in report.message
    snap = read_tags(path)
    assert snap.genre == "Lo-fi" and "bpm" not in snap.fields


def test_undo_last_across_files(tmp_path: Path, store: Store) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = make_wav(tmp_path / "a"), make_wav(tmp_path / "b")
    write_analysis(first, analysis(), CONFIG, 0.35, store=store)
    write_analysis(second, analysis(), CONFIG, 0.35, store=store)
    second.unlink()  # one file is gone: reported, the rest carry on
    reports = undo_last(store, 5)
    assert [r.written for r in reports] == [False, True]
    assert "no such file" in reports[0].message
    assert read_tags(first).genre is None


def test_tags_and_undo_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bouncetag.cli import main

    path = make_wav(tmp_path)
    paths = AppPaths.default()
    paths.ensure()
    with Store(paths.db_file) as store:
        write_analysis(path, analysis(), CONFIG, 0.35, store=store)

    assert main(["tags", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hiphop" in out and "bouncetag" in out and "you" in out  # title is the user's

    assert main(["tags", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fields"]["genre"] == "hiphop" and "genre" in data["ours"]

    assert main(["undo", "--last", "1"]) == 0
    assert "restored" in capsys.readouterr().out
    assert read_tags(path).genre is None

    assert main(["undo", str(path)]) == 4  # nothing left to undo: TagError's exit code
    assert main(["undo"]) == 2
    assert main(["tags", str(tmp_path / "missing.wav")]) == 4


def test_wav_genre_only_in_riff_info_is_the_users(tmp_path: Path) -> None:
    path = make_wav(tmp_path)
    tmp = tmp_path / "edit.tmp"
    fmt.WavContainer()._copy_with_info(path, tmp, {"IGNR": ("Rock",)})  # as a DAW would
    os.replace(tmp, path)
    snap = read_tags(path)
    assert snap.genre == "Rock" and snap.fields["genre_riff"] == "Rock"
    assert not snap.ours & {"genre", "genre_riff"}
    report = write_analysis(path, analysis(), CONFIG, 0.35)  # genre policy: never
    assert "genre: keep Rock (already set; policy 'never')" in format_plan(report.plan)
    after = read_tags(path)
    assert after.genre == "Rock" and "genre_riff" not in after.ours
    assert {"bpm", "bpm_precise", "bpm_riff"} <= after.ours


def test_symlinked_bounce_tags_the_real_file(tmp_path: Path, store: Store) -> None:
    real = make_wav(tmp_path)
    link = tmp_path / "link.wav"
    link.symlink_to(real)
    write_analysis(link, analysis(), CONFIG, 0.35, store=store)
    assert link.is_symlink() and read_tags(real).genre == "hiphop"
    undo(link, store)
    assert read_tags(real).genre is None


def test_user_bpm_kept_as_a_group(tmp_path: Path) -> None:
    """A user's TBPM without TXXX:BPM: policy 'ours' keeps both, no half-written BPM."""
    from mutagen.id3 import TBPM
    from mutagen.wave import WAVE

    path = make_wav(tmp_path)
    audio = WAVE(str(path))
    audio.add_tags()
    audio.tags.add(TBPM(encoding=3, text="128"))
    audio.save()
    report = write_analysis(path, analysis(bpm=92.3), CONFIG, 0.35)
    assert format_plan(report.plan)[0] == "bpm: keep 128 (set by the user; policy 'ours')"
    assert not any(line.startswith("bpm (precise)") for line in format_plan(report.plan))
    fields = read_tags(path).fields
    assert fields["bpm"] == "128" and "bpm_precise" not in fields
    assert read_file_bpm(path) == 128.0


def test_clean_stale_temps_in_subfolders(tmp_path: Path) -> None:
    sub = tmp_path / "2024" / "May"
    sub.mkdir(parents=True)
    stale = sub / ".beat.wav.bouncetag-tmp"
    stale.write_bytes(b"x")
    assert clean_stale_temps(tmp_path, recursive=False) == []
    assert clean_stale_temps(tmp_path) == [stale]


def test_disk_full_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import shutil

    path = make_flac(tmp_path)  # FLAC: the temp copy is a plain file copy
    before = path.read_bytes()

    def no_space(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003
        Path(dst).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", no_space)
    with pytest.raises(TagError, match="No space left"):
        write_analysis(path, analysis(), CONFIG, 0.35)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_tags_json_is_one_object_per_file_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bouncetag.cli import main

    first, second = make_wav(tmp_path, "one.wav"), make_wav(tmp_path, "two.wav")
    assert main(["tags", "--json", str(first), str(second)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Path(json.loads(line)["path"]).name for line in lines] == ["one.wav", "two.wav"]


def test_errors_stay_on_one_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    import subprocess
    import sys

    deep = tmp_path / ("a-long-project-folder-name-" * 4) / ("another-nested-folder-" * 3)
    deep.mkdir(parents=True)
    empty = deep / "final-mixdown-v3.wav"
    empty.write_bytes(b"")
    env = {**os.environ, "BOUNCETAG_HOME": str(tmp_path / "home"), "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "bouncetag", "tags", str(empty)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 4
    assert proc.stderr.splitlines() == [f"error: {empty}: empty file, not audio"]


def test_a_fifo_named_like_audio_is_refused_without_blocking(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_tags(fifo)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked in open(): release it before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail("read_tags blocked on a FIFO")
    assert isinstance(outcome[0], TagError) and "not a regular file" in str(outcome[0])
