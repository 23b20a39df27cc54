"""Immutable results of analysing one bounce, shared by the CLI, tag writer, daemon and trainer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TempoEstimate:
    """A BPM with where it came from.

    `bpm` is what we report and tag: the file's own tempo when it has one and the config prefers
    it (source "file"), else our estimate (source "estimate").
    """

    bpm: float  # precise, one decimal
    confidence: float  # 0..1
    source: str  # "estimate" | "file"
    estimated_bpm: float | None = None  # always our own figure, even when the file's wins
    file_bpm: float | None = None
    candidates: tuple[float, ...] = ()  # octave alternatives considered, best first

    @property
    def bpm_int(self) -> int:
        """Integer BPM for ID3 TBPM / MP4 tmpo."""
        return int(round(self.bpm))


@dataclass(frozen=True)
class Transcript:
    """What was sung or spoken; empty text means instrumental."""

    text: str
    backend: str  # "whisper" | "wav2vec2" | "none"
    speech_seconds: float = 0.0  # voiced seconds found by the voice-activity gate
    transcribed_seconds: float = 0.0
    language: str = "en"

    @property
    def is_instrumental(self) -> bool:
        return not self.text.strip()


@dataclass(frozen=True)
class GenrePrediction:
    """Top-k genres with probabilities, from a named model version."""

    top: tuple[tuple[str, float], ...]  # (label, probability), best first
    model_version: str

    @property
    def genre(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]


@dataclass(frozen=True)
class Analysis:
    """Everything we learned about one file. `genre` is None when no model is installed."""

    path: str
    duration: float
    tempo: TempoEstimate | None
    transcript: Transcript | None
    genre: GenrePrediction | None
    genre_note: str = ""  # why there is no genre, e.g. "no model yet, run `bouncetag train`"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def to_json(self) -> dict[str, Any]:
        """A plain dict for `--json` and the store (one object per file)."""
        out: dict[str, Any] = {"path": self.path, "duration": round(self.duration, 3)}
        if self.tempo is not None:
            t = asdict(self.tempo)
            t["bpm_int"] = self.tempo.bpm_int
            t["candidates"] = list(self.tempo.candidates)
            out["tempo"] = t
        else:
            out["tempo"] = None
        if self.transcript is not None:
            out["transcript"] = {
                **asdict(self.transcript),
                "instrumental": self.transcript.is_instrumental,
            }
        else:
            out["transcript"] = None
        if self.genre is not None:
            out["genre"] = {
                "genre": self.genre.genre,
                "confidence": round(self.genre.confidence, 4),
                "top": [{"genre": g, "probability": round(p, 4)} for g, p in self.genre.top],
                "model_version": self.genre.model_version,
            }
        else:
            out["genre"] = None
        out["genre_note"] = self.genre_note
        out["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Analysis:
        """Inverse of `to_json` (the store keeps results as JSON)."""
        tempo = None
        if obj.get("tempo"):
            t = dict(obj["tempo"])
            t.pop("bpm_int", None)
            t["candidates"] = tuple(t.get("candidates", ()))
            tempo = TempoEstimate(**t)
        transcript = None
        if obj.get("transcript"):
            tr = dict(obj["transcript"])
            tr.pop("instrumental", None)
            transcript = Transcript(**tr)
        genre = None
        if obj.get("genre"):
            g = obj["genre"]
            genre = GenrePrediction(
                top=tuple((x["genre"], float(x["probability"])) for x in g["top"]),
                model_version=g["model_version"],
            )
        return cls(
            path=obj["path"], duration=obj["duration"], tempo=tempo, transcript=transcript,
            genre=genre, genre_note=obj.get("genre_note", ""), timings=dict(obj.get("timings", {})),
        )
