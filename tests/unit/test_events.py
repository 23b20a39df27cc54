"""Events are immutable and serialise to JSON; the sinks are thread-safe and waitable."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading

import pytest

from bouncetag.events import (
    DaemonStarted,
    DaemonStopping,
    FileDiscovered,
    FileDone,
    FileFailed,
    FileQueued,
    FileSettling,
    FileSkipped,
    JsonLinesSink,
    LoggingSink,
    ModelChanged,
    MultiSink,
    RecordingSink,
    StageChanged,
    TrainFinished,
    TrainScheduled,
    WatcherRestarted,
)

ALL_EVENTS = [
    DaemonStarted(("/music",), 2, "native", "v3"),
    DaemonStopping("SIGTERM", ("/music/a.wav",)),
    FileDiscovered("/music/a.wav", "scan"),
    FileSettling("/music/a.wav", 2.0),
    FileQueued("/music/a.wav", 3),
    StageChanged("/music/a.wav", "tempo", "start"),
    FileDone("/music/a.wav", 92.0, "hiphop", 0.81, "yeah yeah", 1.25, "written"),
    FileFailed("/music/b.wav", "truncated", 1, False, 5.0),
    FileSkipped("/music/c.wav", "vanished before it settled"),
    ModelChanged("v4"),
    WatcherRestarted("polling", "observer thread died"),
    TrainScheduled("2026-11-26T03:00+00:00"),
    TrainFinished("promoted v4 (macro-F1 0.71 >= 0.69)", True, "v4"),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.kind)
def test_every_event_is_frozen_and_round_trips_through_json(event) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.timestamp = 0.0  # type: ignore[misc]
    obj = json.loads(json.dumps(event.to_json()))
    assert obj["event"] == type(event).__name__
    assert obj["time"].endswith("+00:00")
    for f in dataclasses.fields(event):
        if f.name != "timestamp":
            value = getattr(event, f.name)
            assert obj[f.name] == (list(value) if isinstance(value, tuple) else value)


def test_json_lines_sink_writes_one_parseable_line_per_event_from_many_threads() -> None:
    stream = io.StringIO()
    sink = JsonLinesSink(stream)

    def emit_many(n: int) -> None:
        for i in range(50):
            sink.emit(FileQueued(f"/x/{n}-{i}.wav", i))

    threads = [threading.Thread(target=emit_many, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 200
    paths = {json.loads(line)["path"] for line in lines}
    assert len(paths) == 200


def test_recording_sink_wait_for_wakes_on_a_matching_event_from_another_thread() -> None:
    sink = RecordingSink()
    done = FileDone("/a.wav", 120.0, None, None, "", 0.1, "written")
    t = threading.Timer(0.05, sink.emit, args=(done,))
    t.start()
    try:
        got = sink.wait_for(lambda e: isinstance(e, FileDone), timeout=5)
    finally:
        t.join()
    assert got == [done]
    assert sink.of_type(FileDone) == [done]


def test_recording_sink_wait_for_times_out_naming_what_it_saw() -> None:
    sink = RecordingSink()
    sink.emit(FileQueued("/a.wav", 1))
    with pytest.raises(TimeoutError, match="FileQueued"):
        sink.wait_for(lambda e: isinstance(e, FileDone), timeout=0.05)


def test_multi_sink_keeps_going_when_one_sink_raises(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def emit(self, event) -> None:
            raise RuntimeError("boom")

    recorder = RecordingSink()
    MultiSink([Broken(), recorder]).emit(ModelChanged("v2"))
    assert recorder.of_type(ModelChanged)[0].version == "v2"


def test_logging_sink_logs_failures_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("bouncetag.test-events")
    with caplog.at_level(logging.INFO, logger="bouncetag.test-events"):
        LoggingSink(logger).emit(FileFailed("/b.wav", "truncated", 3, True))
    assert caplog.records[0].levelno == logging.WARNING
    assert "truncated" in caplog.records[0].getMessage()
