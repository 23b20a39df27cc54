"""Tag writes in all six formats: audio untouched, ffprobe and mutagen read them, undo works."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bouncetag.classifier.results import Analysis, GenrePrediction, TempoEstimate, Transcript
from bouncetag.config import TagsConfig
from bouncetag.errors import FileBusyError, TagError
from bouncetag.store import Store
from bouncetag.tags import read_tags, temp_path_for, undo, write_analysis

FORMATS = ("wav", "aiff", "flac", "ogg", "mp3", "m4a", "opus")
SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "aiff": ("AIFF", "PCM_16"),
                     "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
FFMPEG_CODECS = {"mp3": "libmp3lame", "m4a": "aac", "opus": "libopus"}
USER_TAGS = {"title": "Late Night Bounce", "artist": "Producer X", "comment": "mix 3"}

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="ffmpeg/ffprobe not installed")
pytestmark = needs_ffmpeg


def make_bounce(folder: Path, ext: str, seconds: float = 1.0, user_tags: bool = True) -> Path:
    """A short stereo tone in the given format, with the user's title/artist/comment."""
    path = folder / f"bounce.{ext}"
    if ext in SOUNDFILE_FORMATS:
        rate = 44100
        t = np.arange(int(rate * seconds)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32")
        fmt, subtype = SOUNDFILE_FORMATS[ext]
        with sf.SoundFile(str(path), "w", rate, 2, subtype, format=fmt) as snd:
            if user_tags and ext != "aiff":  # libsndfile writes RIFF INFO / Vorbis comments
                snd.title, snd.artist, snd.comment = USER_TAGS.values()
            snd.write(np.stack([tone, tone * 0.5], axis=1))
        if user_tags and ext == "aiff":
            from mutagen.aiff import AIFF
            from mutagen.id3 import COMM, TIT2, TPE1

            audio = AIFF(str(path))
            audio.add_tags()
            audio.tags.add(TIT2(encoding=3, text=USER_TAGS["title"]))
            audio.tags.add(TPE1(encoding=3, text=USER_TAGS["artist"]))
            audio.tags.add(COMM(encoding=3, lang="eng", desc="", text=USER_TAGS["comment"]))
            audio.save()
    else:
        meta = []
        if user_tags:
            for key, value in USER_TAGS.items():
                meta += ["-metadata", f"{key}={value}"]
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"sine=frequency=440:duration={seconds}:sample_rate=48000",
             "-c:a", FFMPEG_CODECS[ext], *meta, str(path)],
            check=True,
        )
    return path


def decode(path: Path) -> bytes:
    """The decoded samples (float32), for a bit-exact before/after comparison."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "f32le", "-"],
        check=True, capture_output=True,
    ).stdout
    assert len(out) > 1000
    return out


def ffprobe_tags(path: Path) -> dict[str, str]:
    """Format and stream tags as ffprobe sees them, keys lowercased."""
    out = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout)
    tags: dict[str, str] = {}
    for section in [out.get("format", {}), *out.get("streams", [])]:
        tags.update({k.lower(): v for k, v in section.get("tags", {}).items()})
    return tags


def mutagen_bpm_genre(path: Path) -> tuple[str, str]:
    """BPM and genre read with mutagen directly, by each format's own keys (not our reader)."""
    import mutagen

    audio = mutagen.File(str(path))
    tags = audio.tags
    if path.suffix in (".mp3", ".wav", ".aiff"):
        return str(tags["TBPM"].text[0]), str(tags["TCON"].text[0])
    if path.suffix == ".m4a":
        return str(tags["tmpo"][0]), str(tags["\xa9gen"][0])
    return tags["BPM"][0], tags["GENRE"][0]


def tag_dump(path: Path) -> list[tuple[str, str]]:
    """Every tag mutagen sees (plus RIFF INFO for WAV), as sorted (key, text) pairs."""
    import mutagen
    from mutagen.id3 import ID3

    audio = mutagen.File(str(path))
    items: list[tuple[str, str]] = []
    if audio.tags is not None:
        if isinstance(audio.tags, ID3):
            items = [(key, frame.pprint()) for key, frame in audio.tags.items()]
        else:
            items = [(str(k), repr(v)) for k, v in audio.tags.items()]
    if path.suffix == ".wav":
        from bouncetag.tags.formats import WavContainer

        items += [(f"INFO:{k}", v) for k, v in WavContainer()._info(path).items()]
    return sorted(items)


def analysis(bpm: float = 92.3, genre: str = "hiphop", confidence: float = 0.81,
             text: str = "we ride at midnight") -> Analysis:
    return Analysis(
        path="", duration=1.0,
        tempo=TempoEstimate(bpm=bpm, confidence=0.9, source="estimate"),
        transcript=Transcript(text=text, backend="whisper"),
        genre=GenrePrediction(top=((genre, confidence), ("rnb", 0.1), ("pop", 0.05)),
                              model_version="genre-test-1"),
    )


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "state.sqlite") as s:
        yield s


@pytest.mark.parametrize("ext", FORMATS)
def test_write_verify_undo(ext: str, tmp_path: Path, store: Store) -> None:
    path = make_bounce(tmp_path, ext)
    audio_before = decode(path)
    tags_before = tag_dump(path)
    mode_before = path.stat().st_mode

    report = write_analysis(path, analysis(), TagsConfig(), 0.35, store=store)

    assert report.written, report.message
    assert decode(path) == audio_before  # bit-identical audio
    assert mutagen_bpm_genre(path) == (("92" if ext != "flac" and ext not in ("ogg", "opus")
                                        else "92.3"), "hiphop")
    probe = ffprobe_tags(path)
    assert probe.get("genre") == "hiphop"
    bpm_keys = {"bpm", "tbpm", "ibpm", "tmpo"} & probe.keys()
    assert bpm_keys and {probe[k] for k in bpm_keys} <= {"92", "92.3"}
    for key, value in USER_TAGS.items():
        assert probe.get(key) == value, (key, probe)
    snapshot = read_tags(path)
    assert snapshot.bpm == pytest.approx(92.3)
    assert snapshot.genre == "hiphop"
    assert snapshot.fields["transcript"] == "we ride at midnight"
    riff = {"genre_riff", "bpm_riff"} if ext == "wav" else set()
    assert snapshot.ours == {"bpm", "bpm_precise", "genre", "transcript"} | riff
    assert {k: snapshot.other.get(k) for k in USER_TAGS} == USER_TAGS
    assert path.stat().st_mode == mode_before
    assert not temp_path_for(path).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    undone = undo(path, store)

    assert undone.written, undone.message
    assert tag_dump(path) == tags_before
    assert decode(path) == audio_before
    assert store.tag_writes(path.resolve()) == []  # the write is marked undone


@pytest.mark.parametrize("ext", FORMATS)
def test_never_keeps_user_genre_and_ours_replaces_only_our_own(ext: str, tmp_path: Path) -> None:
    path = make_bounce(tmp_path, ext, user_tags=False)
    first = write_analysis(path, analysis(genre="house"), TagsConfig(), 0.35)
    assert first.written and read_tags(path).genre == "house"

    # policy ours: our own earlier genre is replaced
    ours = TagsConfig(genre_policy="ours")
    write_analysis(path, analysis(genre="techno"), ours, 0.35)
    assert read_tags(path).genre == "techno"

    # the user now types their own genre in: neither `ours` nor `never` may touch it
    _set_genre_like_a_user(path, "Boom Bap")
    assert "genre" not in read_tags(path).ours
    for policy in ("ours", "never"):
        report = write_analysis(path, analysis(genre="trap"), TagsConfig(genre_policy=policy), 0.35)
        assert read_tags(path).genre == "Boom Bap"
        change = next(c for c in report.plan.changes if c.field == "genre")
        assert change.action == "keep" and policy in change.reason
    # always wins over the user
    write_analysis(path, analysis(genre="trap"), TagsConfig(genre_policy="always"), 0.35)
    assert read_tags(path).genre == "trap"


def _set_genre_like_a_user(path: Path, genre: str) -> None:
    import mutagen
    from mutagen.id3 import ID3, TCON

    audio = mutagen.File(str(path))
    if isinstance(audio.tags, ID3):
        audio.tags.delall("TCON")
        audio.tags.add(TCON(encoding=3, text=genre))
    elif path.suffix == ".m4a":
        audio.tags["\xa9gen"] = [genre]
    else:
        audio.tags["GENRE"] = [genre]
    audio.save()
    if path.suffix == ".wav":  # a user's tag editor would update INFO too; do it by hand
        from bouncetag.tags.formats import WavContainer

        tmp = path.with_suffix(".edit")
        WavContainer()._copy_with_info(path, tmp, {"IGNR": (genre,)})
        os.replace(tmp, path)


def test_id3v23_option(tmp_path: Path) -> None:
    path = make_bounce(tmp_path, "mp3")
    write_analysis(path, analysis(), TagsConfig(id3_version=3), 0.35)
    from mutagen.id3 import ID3

    tags = ID3(str(path))
    assert tags.version[:2] == (2, 3)
    assert tags["TBPM"].text == ["92"] and tags["TXXX:BPM"].text == ["92.3"]


def _write_must_fail(path: Path, error: type[Exception], match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(error, match=match) as info:
        write_analysis(path, analysis(), TagsConfig(), 0.35)
    assert str(path) in str(info.value)  # the message names the file
    assert path.read_bytes() == before
    assert not temp_path_for(path).exists()


def test_truncated_mp3_is_refused_untouched(tmp_path: Path) -> None:
    path = make_bounce(tmp_path, "mp3", seconds=2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    _write_must_fail(path, TagError, "truncated")


def test_truncated_mp3_at_a_frame_boundary_is_refused(tmp_path: Path) -> None:
    """A cut exactly between frames leaves no torn frame; the Xing frame count catches it."""
    from bouncetag.tags.formats import _mpeg_bounds, _mpeg_frame_length

    path = make_bounce(tmp_path, "mp3", seconds=2.0)
    data = path.read_bytes()
    pos, _ = _mpeg_bounds(data)
    while _mpeg_frame_length(data[pos:pos + 4]) is None:
        pos += 1
    for _ in range(20):
        pos += _mpeg_frame_length(data[pos:pos + 4])
    path.write_bytes(data[:pos])
    _write_must_fail(path, TagError, "truncated")


def test_wav_with_broken_chunk_size_is_refused_untouched(tmp_path: Path) -> None:
    path = make_bounce(tmp_path, "wav")
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", len(data) * 3)
    path.write_bytes(bytes(data))
    _write_must_fail(path, TagError, "broken chunk size")


def test_read_only_file_is_refused_untouched(tmp_path: Path) -> None:
    path = make_bounce(tmp_path, "flac")
    os.chmod(path, 0o444)
    _write_must_fail(path, FileBusyError, "read-only")


def test_file_in_a_read_only_folder_is_refused_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "locked folder"
    folder.mkdir()
    path = make_bounce(folder, "wav")
    os.chmod(folder, 0o555)  # refused by its mode bits, even when run as root
    try:
        _write_must_fail(path, FileBusyError, "folder is read-only")
        assert [p.name for p in folder.iterdir()] == [path.name]  # no temp copy left
    finally:
        os.chmod(folder, 0o755)


@pytest.mark.parametrize("ext", ["mp3", "flac"])
def test_ten_megabyte_picture_is_kept_and_tags_written(ext: str, tmp_path: Path) -> None:
    """Decision: a huge cover is not a reason to refuse; it must survive byte for byte."""
    path = make_bounce(tmp_path, ext)
    picture = np.random.default_rng(0).integers(0, 256, 10 * 1024 * 1024, dtype=np.uint8).tobytes()
    if ext == "mp3":
        from mutagen.id3 import APIC, ID3

        tags = ID3(str(path))
        tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=picture))
        tags.save(str(path))
    else:
        from mutagen.flac import FLAC, Picture

        audio = FLAC(str(path))
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, "image/jpeg", picture
        audio.add_picture(pic)
        audio.save()
    audio_before = decode(path)

    report = write_analysis(path, analysis(), TagsConfig(), 0.35)

    assert report.written
    assert decode(path) == audio_before
    assert read_tags(path).genre == "hiphop"
    if ext == "mp3":
        from mutagen.id3 import ID3

        assert ID3(str(path)).getall("APIC")[0].data == picture
    else:
        from mutagen.flac import FLAC

        assert FLAC(str(path)).pictures[0].data == picture


def test_id3v23_never_silently_drops_v24_only_frames(tmp_path: Path) -> None:
    """ID3v2.3 has no TMOO (mood): converting would lose the user's tag, so refuse instead."""
    from mutagen.id3 import ID3, TMOO

    path = make_bounce(tmp_path, "mp3")
    tags = ID3(str(path))
    tags.add(TMOO(encoding=3, text="dark"))
    tags.save(str(path))
    before = path.read_bytes()
    with pytest.raises(TagError, match="TMOO.*id3_version"):
        write_analysis(path, analysis(), TagsConfig(id3_version=3), 0.35)
    assert path.read_bytes() == before
    write_analysis(path, analysis(), TagsConfig(id3_version=4), 0.35)  # v2.4 keeps it
    assert ID3(str(path))["TMOO"].text == ["dark"]


def test_mp3_with_apev2_and_id3v1_tags(tmp_path: Path) -> None:
    """Tags at the end of an MP3 (APEv2, ID3v1) are not audio: they are kept and not hashed."""
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3

    path = make_bounce(tmp_path, "mp3")
    tags = ID3(str(path))
    tags.save(str(path), v1=2)  # add an ID3v1 tag
    ape = APEv2()
    ape["Title"] = "ape title"
    ape.save(str(path))
    audio_before = decode(path)

    assert write_analysis(path, analysis(), TagsConfig(), 0.35).written

    assert decode(path) == audio_before
    assert APEv2(str(path))["Title"] == "ape title"
    assert read_tags(path).genre == "hiphop"
