"""Error types: the library raises these, the CLI turns them into messages and exit codes."""

from __future__ import annotations

from pathlib import Path


class BounceTagError(Exception):
    """Base class for every error bouncetag raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class UsageError(BounceTagError):
    """A command was called with arguments that do not fit together."""

    exit_code = 2


class ConfigError(BounceTagError):
    """A config file is missing, unparseable, or has a bad value (the key path is named)."""

    exit_code = 2


class AudioDecodeError(BounceTagError):
    """A file could not be decoded as audio: not audio, truncated, zero length, unreadable."""

    exit_code = 3


class TagError(BounceTagError):
    """Tags could not be read or written safely; the file was left untouched."""

    exit_code = 4


class FileBusyError(TagError):
    """The file is locked, read-only, or changed while we worked on it."""


class ModelMissingError(BounceTagError):
    """A model (Whisper, BERT, Wav2Vec2, genre head) is not installed; the message says how to get it."""

    exit_code = 5


class StoreError(BounceTagError):
    """The SQLite state store could not be opened or written."""

    exit_code = 6


class TrainingError(BounceTagError):
    """Training could not run: no data, too few classes, bad dataset layout."""

    exit_code = 7
