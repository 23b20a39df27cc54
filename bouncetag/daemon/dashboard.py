"""The live rich dashboard: a view built only from daemon events, never from worker state."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.events import (
    STAGES,
    DaemonStarted,
    DaemonStopping,
    Event,
    FileDone,
    FileFailed,
    FileQueued,
    FileSettling,
    FileSkipped,
    ModelChanged,
    StageChanged,
    TrainFinished,
    TrainScheduled,
    WatcherRestarted,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

RECENT_ROWS = 12


@dataclass
class RecentFile:
    name: str
    ok: bool
    bpm: float | None = None
    genre: str | None = None
    confidence: float | None = None
    transcript: str = ""
    seconds: float | None = None
    tag_status: str = ""


@dataclass
class DashboardState:
    """Everything the dashboard shows, folded from events (`apply`); not thread-safe by itself."""

    folders: tuple[str, ...] = ()
    observer: str = ""
    workers: int = 0
    model_version: str | None = None
    next_training: str | None = None
    last_training: str | None = None
    settling: set[str] = field(default_factory=set)
    queued: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # path -> {stage: "start" | "done"}; several when there are several workers
    current: dict[str, dict[str, str]] = field(default_factory=dict)
    current_since: dict[str, float] = field(default_factory=dict)
    recent: deque[RecentFile] = field(default_factory=lambda: deque(maxlen=RECENT_ROWS))
    done: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    notices: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    stopping: bool = False

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        if isinstance(event, DaemonStarted):
            self.folders, self.observer, self.workers = event.folders, event.observer, event.workers
            self.model_version = event.model_version
        elif isinstance(event, FileSettling):
            self.settling.add(event.path)
        elif isinstance(event, FileQueued):
            self.settling.discard(event.path)
            self.queued[event.path] = None
        elif isinstance(event, StageChanged):
            self.queued.pop(event.path, None)
            if event.path not in self.current:
                self.current[event.path] = {}
                self.current_since[event.path] = event.timestamp
            self.current[event.path][event.stage] = event.state
        elif isinstance(event, FileDone):
            self._finish(event.path)
            self.done += 1
            self.recent.appendleft(
                RecentFile(
                    Path(event.path).name,
                    True,
                    event.bpm,
                    event.genre,
                    event.confidence,
                    event.transcript,
                    event.seconds,
                    event.tag_status,
                )
            )
        elif isinstance(event, FileFailed):
            self._finish(event.path)
            if event.final:
                self.failed += 1
                self.recent.appendleft(
                    RecentFile(
                        Path(event.path).name,
                        False,
                        transcript=event.reason,
                        tag_status="failed",
                    )
                )
            else:
                self.retried += 1
                self.notices.appendleft(
                    f"{Path(event.path).name}: attempt {event.attempt} failed ({event.reason}),"
                    f" retrying in {event.retry_in or 0:.0f}s"
                )
        elif isinstance(event, FileSkipped):
            self._finish(event.path)
            self.skipped += 1
        elif isinstance(event, ModelChanged):
            self.model_version = event.version
            self.notices.appendleft(f"model changed to {event.version}")
        elif isinstance(event, WatcherRestarted):
            self.observer = event.observer
            self.notices.appendleft(f"watcher restarted ({event.observer}): {event.reason}")
        elif isinstance(event, TrainScheduled):
            self.next_training = event.next_run
        elif isinstance(event, TrainFinished):
            self.last_training = event.result
            if event.promoted and event.model_version:
                self.model_version = event.model_version
        elif isinstance(event, DaemonStopping):
            self.stopping = True

    def _finish(self, path: str) -> None:
        self.settling.discard(path)
        self.queued.pop(path, None)
        self.current.pop(path, None)
        self.current_since.pop(path, None)


def _stage_line(stages: dict[str, str]) -> str:
    marks = []
    for stage in STAGES:
        state = stages.get(stage)
        if state == "done":
            marks.append(f"[green]✓ {stage}[/]")
        elif state == "start":
            marks.append(f"[yellow]▶ {stage}[/]")
        else:
            marks.append(f"[dim]· {stage}[/]")
    return "  ".join(marks)


def render(state: DashboardState, now: float | None = None) -> RenderableType:
    """Build the dashboard renderable from a state snapshot.

    Args:
        state: the folded events.
        now: clock for "elapsed" figures (tests pass a fixed one).

    Returns:
        A rich renderable (a Group of panels and tables).
    """
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    now = time.time() if now is None else now
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[bold]done[/] [green]{state.done}[/]",
        f"[bold]failed[/] [red]{state.failed}[/]",
        f"[bold]skipped[/] {state.skipped}",
        f"[bold]retries[/] {state.retried}",
        f"[bold]queue[/] {len(state.queued)}",
        f"[bold]settling[/] {len(state.settling)}",
    )
    head.add_row(
        f"[bold]model[/] {state.model_version or 'none'}",
        f"[bold]next training[/] {state.next_training or 'not scheduled'}",
        f"[bold]workers[/] {state.workers}",
        f"[bold]watcher[/] {state.observer or '-'}",
        "",
        "",
    )
    parts: list[RenderableType] = [
        Panel(
            head,
            title="bouncetag watch" + (" (stopping)" if state.stopping else ""),
            subtitle=", ".join(state.folders) or None,
        )
    ]

    current = Table.grid(padding=(0, 2))
    if state.current:
        for path, stages in state.current.items():
            elapsed = now - state.current_since.get(path, now)
            current.add_row(f"[bold]{Path(path).name}[/]", _stage_line(stages), f"{elapsed:.1f}s")
    else:
        current.add_row("[dim]idle[/]")
    if state.queued:
        names = [Path(p).name for p in state.queued]
        more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
        current.add_row(f"[dim]next: {', '.join(names[:5])}{more}[/]")
    parts.append(Panel(current, title="now"))

    recent = Table(title="recent files", expand=True, show_lines=False)
    recent.add_column("file", overflow="fold")
    recent.add_column("BPM", justify="right")
    recent.add_column("genre")
    recent.add_column("transcript / reason", overflow="ellipsis", max_width=40)
    recent.add_column("time", justify="right")
    recent.add_column("tags")
    for row in state.recent:
        if row.ok:
            genre = f"{row.genre} ({row.confidence:.0%})" if row.genre else "-"
            bpm = f"{row.bpm:.1f}" if row.bpm is not None else "-"
            secs = f"{row.seconds:.1f}s" if row.seconds is not None else ""
            recent.add_row(
                row.name, bpm, genre, row.transcript or "[dim]-[/]", secs, row.tag_status
            )
        else:
            recent.add_row(
                f"[red]{row.name}[/]", "", "", f"[red]{row.transcript}[/]", "", "[red]failed[/]"
            )
    parts.append(recent)
    if state.notices:
        parts.append("\n".join(f"[yellow]•[/] {n}" for n in state.notices))
    return Group(*parts)


class DashboardSink:
    """An EventSink that keeps a DashboardState and shows it in a rich Live display."""

    def __init__(self, console: Console, refresh_per_second: float = 4.0) -> None:
        self.console = console
        self.state = DashboardState()
        self._lock = threading.Lock()
        self._refresh = refresh_per_second
        self._live: Live | None = None

    def emit(self, event: Event) -> None:
        with self._lock:
            self.state.apply(event)

    def renderable(self) -> RenderableType:
        """The current view (a consistent snapshot)."""
        with self._lock:
            return render(self.state)

    def start(self) -> None:
        """Begin drawing (rich refreshes from its own daemon thread)."""
        from rich.live import Live

        self._live = Live(
            get_renderable=self.renderable,
            console=self.console,
            refresh_per_second=self._refresh,
            transient=False,
        )
        self._live.start()

    def stop(self) -> None:
        """Draw once more and stop."""
        if self._live is not None:
            self._live.update(self.renderable(), refresh=True)
            self._live.stop()
            self._live = None
