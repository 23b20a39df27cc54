"""The dashboard shows what the events say, rendered by rich's recording console."""

from __future__ import annotations

from rich.console import Console

from bouncetag.daemon.dashboard import DashboardSink, DashboardState, render
from bouncetag.events import (
    DaemonStarted,
    FileDone,
    FileFailed,
    FileQueued,
    FileSettling,
    FileSkipped,
    ModelChanged,
    StageChanged,
    TrainScheduled,
)


def _text(renderable, width: int = 140) -> str:
    console = Console(record=True, width=width, force_terminal=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def _busy_state() -> DashboardState:
    state = DashboardState()
    for event in [
        DaemonStarted(("/music/bounces",), 2, "native", "genre-v1"),
        TrainScheduled("2026-11-26T03:00"),
        FileQueued("/music/bounces/first.wav", 1),
        StageChanged("/music/bounces/first.wav", "decode", "start"),
        StageChanged("/music/bounces/first.wav", "decode", "done"),
        StageChanged("/music/bounces/first.wav", "tempo", "start"),
        StageChanged("/music/bounces/first.wav", "tempo", "done"),
        StageChanged("/music/bounces/first.wav", "transcript", "start"),
        FileQueued("/music/bounces/next-up.wav", 2),
        FileSettling("/music/bounces/still-writing.wav", 2.0),
        FileDone(
            "/music/bounces/done-one.wav", 92.4, "hiphop", 0.83, "we ride tonight", 3.2, "written"
        ),
        FileFailed("/music/bounces/broken.wav", "truncated: 4000 bytes short", 3, True),
        FileSkipped("/music/bounces/gone.wav", "vanished before it settled"),
    ]:
        state.apply(event)
    return state


def test_dashboard_shows_counters_model_and_next_training() -> None:
    text = _text(render(_busy_state()))
    assert "done 1" in text
    assert "failed 1" in text
    assert "skipped 1" in text
    assert "queue 1" in text
    assert "settling 1" in text
    assert "model genre-v1" in text
    assert "next training 2026-11-26T03:00" in text
    assert "/music/bounces" in text


def test_dashboard_shows_the_current_file_with_per_stage_progress() -> None:
    text = _text(render(_busy_state()))
    line = next(ln for ln in text.splitlines() if "first.wav" in ln)
    assert "✓ decode" in line
    assert "✓ tempo" in line
    assert "▶ transcript" in line
    assert "· genre" in line
    assert "· tags" in line
    assert "next: next-up.wav" in text


def test_dashboard_recent_table_has_bpm_genre_confidence_snippet_time_and_tag_status() -> None:
    text = _text(render(_busy_state()))
    row = next(ln for ln in text.splitlines() if "done-one.wav" in ln)
    for expected in ("92.4", "hiphop (83%)", "we ride tonight", "3.2s", "written"):
        assert expected in row
    failed = next(ln for ln in text.splitlines() if "broken.wav" in ln)
    assert "truncated" in failed and "failed" in failed


def test_finished_file_leaves_the_current_panel_and_model_changes_show() -> None:
    state = _busy_state()
    state.apply(FileDone("/music/bounces/first.wav", 120.0, None, None, "", 1.0, "written"))
    state.apply(ModelChanged("genre-v2"))
    text = _text(render(state))
    assert "done 2" in text
    assert "model genre-v2" in text
    assert "▶ transcript" not in text
    row = next(ln for ln in text.splitlines() if "first.wav" in ln)
    assert "120.0" in row


def test_dashboard_sink_renders_live_into_a_recording_console() -> None:
    console = Console(record=True, width=120, force_terminal=True, color_system=None)
    sink = DashboardSink(console, refresh_per_second=20)
    sink.start()
    try:
        sink.emit(DaemonStarted(("/drop",), 1, "polling", None))
        sink.emit(FileDone("/drop/live.wav", 128.0, "house", 0.5, "", 0.4, "written"))
    finally:
        sink.stop()
    text = console.export_text()
    assert "live.wav" in text
    assert "house (50%)" in text
    assert "watcher polling" in text
    assert "model none" in text
