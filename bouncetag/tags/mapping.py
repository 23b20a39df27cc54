"""The one table mapping bouncetag's fields to ID3, Vorbis comment, MP4 atom and RIFF INFO keys."""

from __future__ import annotations

from dataclasses import dataclass

# Our fields, in the order they are shown. `bpm` is the integer the specs want (ID3 TBPM, MP4
# tmpo); `bpm_precise` is the one-decimal figure. Provenance fields let a later run tell its own
# values from the user's.
BPM = "bpm"
BPM_PRECISE = "bpm_precise"
GENRE = "genre"
TRANSCRIPT = "transcript"
MODEL = "bouncetag_model"
CONFIDENCE = "bouncetag_confidence"
TOP3 = "bouncetag_top3"
TIME = "bouncetag_time"
WROTE = "bouncetag_wrote"
# WAV only: genre and BPM also live in the RIFF INFO list. Many DAWs and Windows read IGNR, and
# ffmpeg/ffprobe ignore a WAV's ID3 chunk whenever an INFO list exists, so the BPM goes there too
# (IBPM: not in the 1991 INFO spec, but shown by ffprobe and tag editors).
GENRE_RIFF = "genre_riff"
BPM_RIFF = "bpm_riff"
RIFF_SLOTS = {GENRE_RIFF: "IGNR", BPM_RIFF: "IBPM"}

MAIN_FIELDS = (BPM, BPM_PRECISE, GENRE, TRANSCRIPT)
PROVENANCE_FIELDS = (MODEL, CONFIDENCE, TOP3, TIME, WROTE)
ALL_FIELDS = (*MAIN_FIELDS, *PROVENANCE_FIELDS)

MP4_FREEFORM = "----:com.apple.iTunes:"


@dataclass(frozen=True)
class FieldKeys:
    """Where one of our fields lives in each tag system (None: that system does not hold it)."""

    field: str
    id3: str | None
    vorbis: str | None
    mp4: str | None
    riff: str | None
    description: str


FIELD_TABLE: tuple[FieldKeys, ...] = (
    FieldKeys(BPM, "TBPM", None, "tmpo", None, "BPM as an integer (the spec's type)"),
    FieldKeys(BPM_PRECISE, "TXXX:BPM", "BPM", MP4_FREEFORM + "BPM", "IBPM", "BPM, one decimal"),
    FieldKeys(GENRE, "TCON", "GENRE", "\xa9gen", "IGNR", "genre"),
    FieldKeys(TRANSCRIPT, "USLT", "LYRICS", "\xa9lyr", None, "what is sung or spoken"),
    FieldKeys(MODEL, "TXXX:BOUNCETAG_MODEL", "BOUNCETAG_MODEL",
              MP4_FREEFORM + "BOUNCETAG_MODEL", None, "genre model version"),
    FieldKeys(CONFIDENCE, "TXXX:BOUNCETAG_CONFIDENCE", "BOUNCETAG_CONFIDENCE",
              MP4_FREEFORM + "BOUNCETAG_CONFIDENCE", None, "genre probability, 0..1"),
    FieldKeys(TOP3, "TXXX:BOUNCETAG_TOP3", "BOUNCETAG_TOP3",
              MP4_FREEFORM + "BOUNCETAG_TOP3", None, "top 3 genres, 'label:prob, ...'"),
    FieldKeys(TIME, "TXXX:BOUNCETAG_TIME", "BOUNCETAG_TIME",
              MP4_FREEFORM + "BOUNCETAG_TIME", None, "when bouncetag wrote (UTC, ISO 8601)"),
    FieldKeys(WROTE, "TXXX:BOUNCETAG_WROTE", "BOUNCETAG_WROTE",
              MP4_FREEFORM + "BOUNCETAG_WROTE", None, "the values bouncetag wrote (JSON)"),
)

KEYS: dict[str, FieldKeys] = {k.field: k for k in FIELD_TABLE}

# Other tags shown by `bouncetag tags` and checked to survive every write.
OTHER_ID3 = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "date": "TDRC"}
OTHER_VORBIS = {"title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "date": "DATE",
                "comment": "COMMENT"}
OTHER_MP4 = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "date": "\xa9day",
             "comment": "\xa9cmt"}
OTHER_RIFF = {"title": "INAM", "artist": "IART", "album": "IPRD", "comment": "ICMT",
              "date": "ICRD"}
