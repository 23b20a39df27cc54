"""Daemon events (immutable) and the sinks that consume them: JSON lines, dashboard, recording."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO, TypeVar

STAGES = ("decode", "tempo", "transcript", "genre", "tags")


@dataclass(frozen=True)
class Event:
    """Base of every event; `timestamp` is wall-clock seconds since the epoch."""

    timestamp: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        """The event's name as it appears in JSON (the class name)."""
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict: {"event": kind, "time": ISO-8601, ...fields}."""
        out: dict[str, Any] = {
            "event": self.kind,
            "time": datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="milliseconds"),
        }
        for f in fields(self):
            if f.name == "timestamp":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """One human line for the plain log file."""
        parts = [f"{k}={v}" for k, v in self.to_json().items() if k not in ("event", "time")]
        return f"{self.kind} " + " ".join(parts)


@dataclass(frozen=True)
class DaemonStarted(Event):
    folders: tuple[str, ...]
    workers: int
    observer: str  # "native" | "polling" | "none" (--once)
    model_version: str | None = None


@dataclass(frozen=True)
class DaemonStopping(Event):
    reason: str
    handed_back: tuple[str, ...] = ()  # files left for the next start


@dataclass(frozen=True)
class FileDiscovered(Event):
    path: str
    source: str  # "watch" | "scan" | "recovery" | "retry"


@dataclass(frozen=True)
class FileSettling(Event):
    path: str
    settle_seconds: float


@dataclass(frozen=True)
class FileQueued(Event):
    path: str
    queue_size: int
    attempt: int = 1


@dataclass(frozen=True)
class StageChanged(Event):
    path: str
    stage: str  # one of STAGES
    state: str  # "start" | "done"


@dataclass(frozen=True)
class FileDone(Event):
    path: str
    bpm: float | None
    genre: str | None
    confidence: float | None
    transcript: str  # a short snippet; empty for instrumentals or when not transcribed
    seconds: float
    tag_status: str  # e.g. "written", "unchanged", "dry-run"


@dataclass(frozen=True)
class FileFailed(Event):
    path: str
    reason: str
    attempt: int
    final: bool
    retry_in: float | None = None


@dataclass(frozen=True)
class FileSkipped(Event):
    path: str
    reason: str


@dataclass(frozen=True)
class ModelChanged(Event):
    version: str | None


@dataclass(frozen=True)
class WatcherRestarted(Event):
    observer: str
    reason: str


@dataclass(frozen=True)
class TrainScheduled(Event):
    next_run: str | None  # ISO-8601, or None when nothing is scheduled


@dataclass(frozen=True)
class TrainFinished(Event):
    result: str
    promoted: bool = False
    model_version: str | None = None


class EventSink(Protocol):
    """Anything that takes events. `emit` must be thread-safe: workers call it concurrently."""

    def emit(self, event: Event) -> None: ...


class JsonLinesSink:
    """Headless output: one JSON object per line, flushed at once (for logs and services)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = json.dumps(event.to_json(), ensure_ascii=False, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class LoggingSink:
    """Writes each event as one plain line to a `logging` logger (the rotating log file)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def emit(self, event: Event) -> None:
        if isinstance(event, FileFailed):
            level = logging.WARNING
        elif isinstance(event, StageChanged | FileSettling | FileDiscovered | FileQueued):
            level = logging.DEBUG  # per-stage chatter: only when debugging
        else:
            level = logging.INFO
        self._logger.log(level, event.describe())


class MultiSink:
    """Fans each event out to several sinks; a sink that raises does not starve the others."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = tuple(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:  # noqa: BLE001 - output must never stop the daemon
                logging.getLogger("bouncetag.events").exception("event sink failed")


E = TypeVar("E", bound=Event)


class RecordingSink:
    """Keeps every event in memory; tests wait on it with `wait_for` instead of sleeping."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()

    def emit(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def of_type(self, cls: type[E]) -> list[E]:
        """Every recorded event of one class, oldest first."""
        return [e for e in self.events if isinstance(e, cls)]

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 10.0, count: int = 1
    ) -> list[Event]:
        """Block until `count` recorded events match `predicate`.

        Args:
            predicate: tested against each event.
            timeout: seconds to wait at most.
            count: how many matching events are needed.

        Returns:
            The matching events (at least `count`), oldest first.

        Raises:
            TimeoutError: fewer than `count` matched in time; the message lists what was seen.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matched = [e for e in self._events if predicate(e)]
                if len(matched) >= count:
                    return matched
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(e.kind for e in self._events[-20:])
                    raise TimeoutError(
                        f"{len(matched)}/{count} matching events after {timeout}s; last: {seen}"
                    )
                self._cond.wait(left)
