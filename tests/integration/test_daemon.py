"""The daemon end to end: real files, real analysis (no Whisper), real tag writes and store."""

from __future__ import annotations

import io
import json
import os
import plistlib
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bouncetag.config import Config
from bouncetag.daemon.service import DaemonAlreadyRunning, DaemonService, read_daemon_info
from bouncetag.daemon.watcher import Settler, StatKey, is_candidate
from bouncetag.daemon.worker import FileOutcome
from bouncetag.events import (
    DaemonStarted,
    FileDone,
    FileFailed,
    FileQueued,
    FileSkipped,
    ModelChanged,
    RecordingSink,
    StageChanged,
    WatcherRestarted,
)
from bouncetag.paths import AppPaths
from bouncetag.store import Store
from bouncetag.synth import drum_loop

RATE = 22050


def fast_config(**watch: object) -> Config:
    """Real analysis without Whisper; short settle and back-off so tests stay quick."""
    values = {
        "settle_seconds": 0.3,
        "retry_backoff_seconds": 0.05,
        "max_attempts": 2,
        "poll_interval": 0.1,
    }
    values.update(watch)
    return Config().replace("transcribe", backend="none").replace("watch", **values)


def loop_bytes(bpm: float, fmt: str = "WAV", seconds: float = 2.0, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(
        buf,
        drum_loop(bpm, seconds=seconds, sample_rate=RATE, seed=seed),
        RATE,
        format=fmt,
        subtype="PCM_16",
    )
    return buf.getvalue()


def write_loop(path: Path, bpm: float = 120.0, seed: int = 0) -> Path:
    fmt = {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF"}[path.suffix]
    path.write_bytes(loop_bytes(bpm, fmt, seed=seed))
    return path


def tagged_bpm(path: Path) -> str | None:
    """The BPM tag bouncetag wrote into the file (read back from disk)."""
    from bouncetag.tags import read_tags

    return read_tags(path).fields.get("bpm")


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.default().ensure()


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "Bounces"
    folder.mkdir()
    return folder


@pytest.fixture
def run_daemon(paths: AppPaths):
    """Start a DaemonService; always stopped at test end (no leaked threads)."""
    started: list[DaemonService] = []

    def start(
        folder: Path, config: Config | None = None, **kwargs
    ) -> tuple[DaemonService, RecordingSink]:
        sink = RecordingSink()
        service = DaemonService(config or fast_config(), paths, [folder.resolve()], sink, **kwargs)
        service.start()
        started.append(service)
        return service, sink

    yield start
    for service in started:
        service.stop(grace=30)


def done_for(sink: RecordingSink, path: Path) -> list[FileDone]:
    return [e for e in sink.of_type(FileDone) if e.path == str(path.resolve())]


# ---- the "done when" ---------------------------------------------------------------
def test_file_written_slowly_is_tagged_once_after_it_is_complete(drop, paths, run_daemon) -> None:
    service, sink = run_daemon(drop, fast_config(settle_seconds=1.0))
    sink.wait_for(lambda e: isinstance(e, DaemonStarted), 5)
    target = drop / "slow export.wav"
    payload = loop_bytes(100.0, seconds=3.0)
    pieces = np.array_split(np.frombuffer(payload, dtype=np.uint8), 8)
    finished_at: list[float] = []

    def daw_writes_slowly() -> None:  # the DAW: 8 pieces, 0.3 s apart (about 2.4 s in all)
        with target.open("wb") as fh:
            for piece in pieces:
                fh.write(piece.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
                time.sleep(0.3)  # the simulated DAW's pacing, not a wait for a result
        finished_at.append(time.time())

    writer = threading.Thread(target=daw_writes_slowly)
    writer.start()
    try:
        sink.wait_for(lambda e: isinstance(e, FileDone), timeout=30)
    finally:
        writer.join()
    first_read = next(e for e in sink.of_type(StageChanged) if e.stage == "decode")
    assert first_read.timestamp >= finished_at[0], "work started before the export was complete"
    assert service.wait_idle(10)
    with Store(paths.db_file) as store:
        row = store.get_file(target.resolve())
    assert row is not None and row.status == "done"
    assert row.processed_count == 1
    assert len(done_for(sink, target)) == 1
    assert not sink.of_type(FileFailed), "a half-written export was read"
    assert row.result["duration"] == pytest.approx(3.0, abs=0.05)  # the whole file was analysed
    assert tagged_bpm(target) is not None


def test_drop_of_many_files_some_corrupt(drop, paths, run_daemon) -> None:
    good = [write_loop(drop / f"good {i:02d}.flac", 90 + i, seed=i) for i in range(34)]
    corrupt = [
        drop / "garbage.wav",
        drop / "truncated.wav",
        drop / "empty.flac",
        drop / "text.mp3",
        drop / "noise.aiff",
        drop / "half.flac",
    ]
    rng = np.random.default_rng(0)
    corrupt[0].write_bytes(rng.integers(0, 255, 4000, dtype=np.uint8).tobytes())
    corrupt[1].write_bytes(loop_bytes(120.0)[:3000])
    corrupt[2].write_bytes(b"")
    corrupt[3].write_text("this is not an mp3\n" * 50)
    corrupt[4].write_bytes(b"FORM\x00\x00\x00\x04AIFF" + bytes(100))
    corrupt[5].write_bytes(loop_bytes(120.0, "FLAC")[:200])
    service, sink = run_daemon(drop, fast_config(workers=2))

    sink.wait_for(lambda e: isinstance(e, FileDone), timeout=90, count=len(good))
    sink.wait_for(lambda e: isinstance(e, FileFailed) and e.final, timeout=60, count=len(corrupt))
    with Store(paths.db_file) as store:
        for path in good:
            row = store.get_file(path.resolve())
            assert row is not None and row.status == "done", path
            assert row.processed_count == 1
            assert tagged_bpm(path) is not None, path
        for path in corrupt:
            row = store.get_file(path.resolve())
            assert row is not None and row.status == "failed", path
            assert row.last_error, path
            assert row.attempts == 2
    # Still alive: a new export after the storm is handled.
    late = write_loop(drop / "after the storm.flac", 128.0)
    sink.wait_for(lambda e: isinstance(e, FileDone) and e.path == str(late.resolve()), 30)
    assert len(sink.of_type(FileDone)) == len(good) + 1


# ---- exactly once: own writes, re-exports, temp files, moves ---------------------------------
def test_own_tag_write_is_ignored_but_a_reexport_is_processed_again(
    drop, paths, run_daemon
) -> None:
    target = write_loop(drop / "mix.flac", 100.0)
    service, sink = run_daemon(drop)
    sink.wait_for(lambda e: isinstance(e, FileDone), 30)
    assert service.wait_idle(10)
    assert len(done_for(sink, target)) == 1
    queued = [e for e in sink.of_type(FileQueued) if e.path == str(target.resolve())]
    assert len(queued) == 1, "our own tag write was queued again"

    # Re-export over the same name, the way DAWs do: write a temp file, rename over.
    tmp = drop / "mix.flac.tmp"
    tmp.write_bytes(loop_bytes(140.0, "FLAC", seed=3))
    os.replace(tmp, target)
    sink.wait_for(lambda e: isinstance(e, FileDone), 30, count=2)
    assert service.wait_idle(10)
    with Store(paths.db_file) as store:
        row = store.get_file(target.resolve())
    assert row.processed_count == 2
    assert len(done_for(sink, target)) == 2
    assert not any(e.path.endswith(".tmp") for e in sink.of_type(FileQueued))


def test_touching_a_tagged_file_does_not_reprocess_it(drop, paths, run_daemon) -> None:
    target = write_loop(drop / "touched.flac")
    service, sink = run_daemon(drop)
    sink.wait_for(lambda e: isinstance(e, FileDone), 30)
    assert service.wait_idle(10)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    skipped = sink.wait_for(lambda e: isinstance(e, FileSkipped), 10)
    assert "unchanged" in skipped[0].reason
    assert len(done_for(sink, target)) == 1


def test_silence_shows_no_bpm_and_gets_none_written(drop, tmp_path, run_daemon) -> None:
    service, sink = run_daemon(drop)
    sink.wait_for(lambda e: isinstance(e, DaemonStarted), 5)
    staged = tmp_path / "silence.wav"
    sf.write(staged, np.zeros(RATE * 3, dtype=np.float32), RATE, subtype="PCM_16")
    shutil.move(staged, drop / "silence.wav")
    (done,) = sink.wait_for(lambda e: isinstance(e, FileDone), 30)
    assert service.wait_idle(10)
    assert done.bpm is None  # not the tempo prior (110) at confidence 0
    assert tagged_bpm(drop / "silence.wav") is None


def test_file_moved_into_the_folder_and_nested_folders_are_processed(
    drop, tmp_path, run_daemon
) -> None:
    service, sink = run_daemon(drop)
    sink.wait_for(lambda e: isinstance(e, DaemonStarted), 5)
    outside = write_loop(tmp_path / "elsewhere.flac")
    shutil.move(outside, drop / "moved in.flac")
    (drop / "album").mkdir()
    write_loop(drop / "album" / "nested.wav")
    (drop / ".hidden.wav").write_bytes(loop_bytes(120.0))
    (drop / "song.wav.reapeaks").write_bytes(b"peaks")
    sink.wait_for(lambda e: isinstance(e, FileDone), 30, count=2)
    assert service.wait_idle(10)
    names = sorted(Path(e.path).name for e in sink.of_type(FileDone))
    assert names == ["moved in.flac", "nested.wav"]


def test_second_daemon_on_the_same_store_is_refused(drop, paths, run_daemon) -> None:
    service, sink = run_daemon(drop)
    info = read_daemon_info(paths)
    assert info is not None and info.pid == os.getpid()
    other = DaemonService(fast_config(), paths, [drop.resolve()], RecordingSink())
    with pytest.raises(DaemonAlreadyRunning) as refused:
        other.start()
    assert refused.value.exit_code == 6  # a state store error, not 1 ("--once left failures")
    assert f"another bouncetag watch (pid {os.getpid()}, watching {drop.resolve()})" in str(
        refused.value
    )


# ---- failures, retries, recovery ---------------------------------------------------------------
def test_failures_are_retried_with_backoff_then_marked_failed_and_the_queue_goes_on(
    drop, paths, run_daemon
) -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(path: Path, on_stage) -> FileOutcome:
        with lock:
            calls[path.name] = calls.get(path.name, 0) + 1
            n = calls[path.name]
        on_stage("decode", "start")
        if path.name == "always.wav":
            raise RuntimeError("disk on fire")
        if path.name == "once.wav" and n == 1:
            raise OSError("file busy")
        on_stage("decode", "done")
        return FileOutcome(100.0, None, None, "", "written", {"ok": True})

    for name in ("always.wav", "once.wav", "fine.wav"):
        write_loop(drop / name)
    service, sink = run_daemon(drop, fast_config(max_attempts=3), processor=flaky)
    final = sink.wait_for(lambda e: isinstance(e, FileFailed) and e.final, 30)
    sink.wait_for(lambda e: isinstance(e, FileDone), 30, count=2)
    assert final[0].path.endswith("always.wav")
    assert final[0].attempt == 3
    assert "disk on fire" in final[0].reason
    retries = [e for e in sink.of_type(FileFailed) if not e.final]
    backoffs = [e.retry_in for e in retries if e.path.endswith("always.wav")]
    assert backoffs == [0.05, 0.1]  # exponential back-off
    assert calls == {"always.wav": 3, "once.wav": 2, "fine.wav": 1}
    with Store(paths.db_file) as store:
        assert (
            store.get_file((drop / "always.wav").resolve()).last_error
            == "RuntimeError: disk on fire"
        )
        once = store.get_file((drop / "once.wav").resolve())
        assert once.status == "done" and once.attempts == 2 and once.processed_count == 1


def test_rows_left_processing_by_a_crash_are_finished_once_on_start(
    drop, paths, run_daemon
) -> None:
    crashed = write_loop(drop / "was processing.flac")
    finished = write_loop(drop / "already done.flac")
    st = crashed.stat()
    with Store(paths.db_file) as store:
        store.upsert_file(
            crashed.resolve(),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            status="processing",
            attempts=1,
        )
        fst = finished.stat()
        store.upsert_file(
            finished.resolve(),
            size=fst.st_size,
            mtime_ns=fst.st_mtime_ns,
            status="done",
            processed_count=1,
            tagged_size=fst.st_size,
            tagged_mtime_ns=fst.st_mtime_ns,
        )
    service, sink = run_daemon(drop)
    sink.wait_for(lambda e: isinstance(e, FileDone), 30)
    assert service.wait_idle(10)
    assert [Path(e.path).name for e in sink.of_type(FileDone)] == ["was processing.flac"]
    with Store(paths.db_file) as store:
        assert store.get_file(crashed.resolve()).processed_count == 1
        assert store.get_file(crashed.resolve()).attempts == 2
        assert store.get_file(finished.resolve()).processed_count == 1


def test_a_dead_watcher_is_restarted_and_reported(drop, run_daemon) -> None:
    service, sink = run_daemon(drop, fast_config(polling=True))
    assert service.observer_kind == "polling"
    service._watcher._observer.stop()  # simulate the observer thread dying
    restarted = sink.wait_for(lambda e: isinstance(e, WatcherRestarted), 10)
    assert restarted[0].observer == "polling"
    late = write_loop(drop / "after restart.flac")
    sink.wait_for(lambda e: isinstance(e, FileDone) and e.path == str(late.resolve()), 30)


def test_stop_hands_back_queued_files_to_the_next_start(drop, paths, run_daemon, capsys) -> None:
    gate = threading.Event()

    def slow(path: Path, on_stage) -> FileOutcome:
        on_stage("decode", "start")
        gate.wait(10)
        return FileOutcome(1.0, None, None, "", "written", {})

    for i in range(3):
        write_loop(drop / f"q{i}.wav")
    service, sink = run_daemon(drop, processor=slow)
    sink.wait_for(lambda e: isinstance(e, StageChanged), 10)
    sink.wait_for(lambda e: isinstance(e, FileQueued), 10, count=3)
    # The current file outlives the grace period: it and the two queued are handed back.
    handed = service.stop(grace=0.2)
    assert sorted(Path(p).name for p in handed) == ["q0.wav", "q1.wav", "q2.wav"]
    with Store(paths.db_file) as store:
        assert store.status_counts() == {"pending": 3}
    gate.set()  # the busy worker finishes after all; its result is still recorded once
    sink.wait_for(lambda e: isinstance(e, FileDone), 10)
    with Store(paths.db_file) as store:
        assert store.status_counts() == {"done": 1, "pending": 2}
    from bouncetag.cli import main

    assert main(["status"]) == 0
    assert "2 file(s) were left unfinished" in capsys.readouterr().out


# ---- settle rule and filters (unit level, no threads) ------------------------------------------
def test_settler_waits_for_a_stable_file_then_checks_its_header(tmp_path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(loop_bytes(120.0)[:100])
    settler = Settler(settle_seconds=1.0, give_up_seconds=1.0)
    now = time.time() + 0.0
    os.utime(path, ns=(int(now * 1e9), int(now * 1e9)))
    settler.notice(path, now)
    assert settler.poll(now + 0.5) == ([], [])  # not stable long enough
    with path.open("ab") as fh:
        fh.write(b"\0" * 100)  # still growing: the clock restarts
    assert settler.poll(now + 1.2) == ([], [])
    assert settler.poll(now + 2.0) == ([], [])
    path.write_bytes(loop_bytes(120.0))
    settler.notice(path, now + 3.0)
    os.utime(path, ns=(int((now + 3) * 1e9),) * 2)
    assert settler.poll(now + 3.1) == ([], [])
    settled, _ = settler.poll(now + 4.2)
    assert settled == [(path, StatKey.of(path), True)]


def test_settler_releases_a_corrupt_file_after_the_grace_period_so_it_can_fail(tmp_path) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(b"not audio at all" * 10)
    old = time.time() - 100
    os.utime(path, (old, old))
    settler = Settler(settle_seconds=0.5, give_up_seconds=0.5)
    settler.notice(path)
    settled, _ = settler.poll()
    assert settled == [(path, StatKey.of(path), False)]


def test_settler_reports_files_that_vanish(tmp_path) -> None:
    path = tmp_path / "gone.wav"
    path.write_bytes(b"x")
    settler = Settler(1.0)
    settler.notice(path)
    path.unlink()
    assert settler.poll() == ([], [path])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Song.wav", True),
        ("Song.WAV", True),
        ("Song.m4a", True),
        ("Song.wav.tmp", False),
        ("Song.part", False),
        ("Song.asd", False),
        ("Song.wav.reapeaks", False),
        ("._Song.wav", False),
        (".Song.wav", False),
        ("notes.txt", False),
    ],
)
def test_candidate_filter(name: str, expected: bool) -> None:
    assert is_candidate(Path("/x") / name, Config().watch) is expected


# ---- the CLI: --once --headless, status, service install --------------------------------------
def _write_fast_config(paths: AppPaths) -> Path:
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        '[transcribe]\nbackend = "none"\n[watch]\nsettle_seconds = 0.2\nmax_attempts = 1\n'
    )
    return paths.config_file


def test_watch_once_headless_prints_json_lines_and_status_reports(drop, paths, capsys) -> None:
    from bouncetag.cli import main

    _write_fast_config(paths)
    write_loop(drop / "a.flac", 110.0)
    write_loop(drop / "b.wav", 95.0)
    (drop / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    code = main(["watch", str(drop), "--headless", "--once"])
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert code == 1  # one file failed
    assert kinds[0] == "DaemonStarted" and kinds[-1] == "DaemonStopping"
    assert kinds.count("FileDone") == 2
    done = [e for e in events if e["event"] == "FileDone"]
    assert all(e["bpm"] > 0 and e["tag_status"] for e in done)
    failed = [e for e in events if e["event"] == "FileFailed"]
    assert failed[0]["final"] is True and failed[0]["path"].endswith("broken.wav")
    assert (paths.log_dir / "bouncetag.log").read_text().count("FileDone") == 2

    # A second --once run finds nothing new to do.
    assert main(["watch", str(drop), "--headless", "--once"]) == 1
    again = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert "FileQueued" not in again

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "not running" in text
    assert "done" in text and "broken.wav" in text
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"done": 2, "failed": 1}
    assert status["failures"][0]["path"].endswith("broken.wav")


def test_service_install_writes_a_systemd_unit_or_launchd_plist(
    drop, paths, tmp_path, capsys
) -> None:
    from bouncetag.cli import main

    assert main(["service", "install", str(drop), "--print", "--kind", "systemd"]) == 0
    unit = capsys.readouterr().out
    assert "[Service]" in unit and "watch --headless" in unit and str(drop.resolve()) in unit
    assert "WantedBy=default.target" in unit

    dest = tmp_path / "units"
    assert main(["service", "install", str(drop), "--kind", "systemd", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    written = dest / "bouncetag.service"
    assert written.read_text() == unit
    assert "systemctl --user enable --now bouncetag.service" in out

    plist_path = tmp_path / "agent.plist"
    assert (
        main(["service", "install", str(drop), "--kind", "launchd", "--dest", str(plist_path)]) == 0
    )
    plist = plistlib.loads(plist_path.read_bytes())
    assert plist["ProgramArguments"][-3:] == ["watch", "--headless", str(drop.resolve())]
    assert "launchctl load -w" in capsys.readouterr().out


def test_service_install_refuses_a_folder_that_does_not_exist(paths, tmp_path, capsys) -> None:
    from bouncetag.cli import main

    missing = tmp_path / "Bounces-typo"
    dest = tmp_path / "units"
    assert main(["service", "install", str(missing), "--dest", str(dest)]) == 2
    assert f"{missing} is not an existing folder" in capsys.readouterr().err
    assert not dest.exists()


def test_watch_without_a_folder_is_a_config_error(paths, capsys) -> None:
    from bouncetag.cli import main

    assert main(["watch", "--once", "--headless"]) == 2
    assert "no folder to watch" in capsys.readouterr().err


def test_scheduled_training_results_reach_the_events(drop, paths, run_daemon) -> None:
    from types import SimpleNamespace

    from bouncetag.events import TrainFinished, TrainScheduled
    from bouncetag.trainer.schedule import TrainScheduler

    def fake_training(paths, config, options, store=None):
        return SimpleNamespace(promoted=True, version="genre-test-1", new_score=0.9)

    scheduler = TrainScheduler(paths, fast_config(), interval_seconds=0.2, train_fn=fake_training)
    service, sink = run_daemon(drop, training_scheduler=scheduler)
    first = sink.wait_for(lambda e: isinstance(e, TrainScheduled), 5)[0]
    assert first.next_run is not None
    finished = sink.wait_for(lambda e: isinstance(e, TrainFinished), 10)[0]
    assert finished.result  # a one-line message for the dashboard
    if "trained" in finished.result:
        assert finished.promoted and finished.model_version == "genre-test-1"
    sink.wait_for(lambda e: isinstance(e, TrainScheduled), 5, count=2)


def _instant(path: Path, on_stage) -> FileOutcome:
    on_stage("decode", "start")
    on_stage("decode", "done")
    return FileOutcome(120.0, None, None, "", "written", {})


def test_a_watched_folder_that_vanishes_and_returns_is_watched_again(drop, run_daemon) -> None:
    service, sink = run_daemon(drop, processor=_instant)
    sink.wait_for(lambda e: isinstance(e, DaemonStarted), 5)
    shutil.rmtree(drop)
    gone = sink.wait_for(lambda e: isinstance(e, WatcherRestarted), 10)[0]
    assert gone.reason.startswith("folder missing")
    drop.mkdir()
    back = sink.wait_for(lambda e: isinstance(e, WatcherRestarted), 10, count=2)[1]
    assert back.reason.startswith("folder back")
    late = write_loop(drop / "after remount.wav")
    sink.wait_for(lambda e: isinstance(e, FileDone) and e.path == str(late.resolve()), 10)
    assert len(sink.of_type(WatcherRestarted)) == 2  # reported once each, not every second


def test_native_events_unavailable_falls_back_to_polling(drop, run_daemon, monkeypatch) -> None:
    import watchdog.observers

    class NoInotify:
        def __init__(self, *args, **kwargs) -> None:
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watchdog.observers, "Observer", NoInotify)
    service, sink = run_daemon(drop, processor=_instant)
    assert sink.wait_for(lambda e: isinstance(e, DaemonStarted), 5)[0].observer == "polling"
    new = write_loop(drop / "polled.wav")
    sink.wait_for(lambda e: isinstance(e, FileDone) and e.path == str(new.resolve()), 10)


def test_network_drives_are_detected_for_polling(tmp_path) -> None:
    from bouncetag.daemon.watcher import is_network_fs

    mounts = f"/dev/sda1 / ext4 rw 0 0\n//nas/music {tmp_path / 'nas'} cifs rw 0 0\n"
    assert is_network_fs(tmp_path / "nas" / "Bounces", mounts)
    assert not is_network_fs(tmp_path / "local", mounts)


def test_a_promoted_model_is_picked_up_between_files(drop, run_daemon) -> None:
    class Promoting:
        model_version = "v1"

        def __init__(self) -> None:
            self.calls = 0

        def reload_model_if_changed(self) -> bool:
            self.calls += 1
            if self.calls == 2:  # promoted while the first file was being processed
                self.model_version = "v2"
                return True
            return False

        def __call__(self, path: Path, on_stage) -> FileOutcome:
            return FileOutcome(100.0, "rock", 0.9, "", "written", {"model": self.model_version})

    processor = Promoting()
    write_loop(drop / "first.wav")
    service, sink = run_daemon(drop, processor=processor)
    assert sink.wait_for(lambda e: isinstance(e, DaemonStarted), 5)[0].model_version == "v1"
    sink.wait_for(lambda e: isinstance(e, FileDone), 10)
    write_loop(drop / "second.wav")
    changed = sink.wait_for(lambda e: isinstance(e, ModelChanged), 10)
    assert changed[0].version == "v2"
    sink.wait_for(lambda e: isinstance(e, FileDone), 10, count=2)


def test_a_reexport_during_analysis_is_processed_in_its_new_version(
    drop, paths, run_daemon
) -> None:
    from bouncetag.errors import FileBusyError

    target = write_loop(drop / "busy.wav", 100.0)
    new_bytes = loop_bytes(150.0, seconds=3.0)
    seen: list[int] = []

    def reexport_midway(path: Path, on_stage) -> FileOutcome:
        seen.append(path.stat().st_size)
        if len(seen) == 1:  # the DAW overwrites the file while we analyse it
            path.write_bytes(new_bytes)
            raise FileBusyError("changed while being tagged; left untouched", path)
        return FileOutcome(150.0, None, None, "", "written", {})

    service, sink = run_daemon(
        drop, fast_config(retry_backoff_seconds=30), processor=reexport_midway
    )
    sink.wait_for(lambda e: isinstance(e, FileDone), 15)
    assert seen[-1] == len(new_bytes)  # the second run read the new export
    with Store(paths.db_file) as store:
        row = store.get_file(target.resolve())
    assert row.status == "done" and row.processed_count == 1
    assert row.size == len(new_bytes) and row.attempts == 1  # a new version starts afresh


@pytest.mark.slow
def test_two_pass_writes_bpm_first_then_the_transcript(drop, paths, run_daemon) -> None:
    from bouncetag.synth import espeak_speech, mix
    from bouncetag.tags import read_tags

    speech = espeak_speech("hello world, this is the second verse", sample_rate=RATE)
    beat = drum_loop(100, seconds=len(speech) / RATE + 0.5, sample_rate=RATE)
    target = drop / "vocal take.wav"
    sf.write(target, mix(beat[: len(speech)] * 0.3, speech), RATE)
    config = Config().replace("watch", settle_seconds=0.3)  # real Whisper tiny.en
    service, sink = run_daemon(drop, config, two_pass=True)
    done = sink.wait_for(lambda e: isinstance(e, FileDone), 120)[0]
    assert service.wait_idle(10)
    stages = [(e.stage, e.state) for e in sink.of_type(StageChanged)]
    first_tags_done = stages.index(("tags", "done"))
    assert first_tags_done < stages.index(("transcript", "start"))  # BPM on disk before Whisper
    assert stages.count(("tags", "done")) == 2
    with Store(paths.db_file) as store:
        writes = list(reversed(store.tag_writes(target.resolve())))
        row = store.get_file(target.resolve())
    assert len(writes) == 2
    assert "transcript" not in writes[0].new and any("bpm" in k for k in writes[0].new)
    assert any("transcript" in k for k in writes[1].new)
    assert row.processed_count == 1 and len(sink.of_type(FileDone)) == 1
    fields = read_tags(target).fields
    assert fields.get("bpm") and "world" in fields.get("transcript", "").lower()
    assert "world" in done.transcript.lower()


def test_start_removes_temp_copies_left_by_a_killed_tag_write(drop, paths, run_daemon) -> None:
    from bouncetag.tags import temp_path_for

    (drop / "album").mkdir()
    original = write_loop(drop / "album" / "cut short.flac")
    stale = temp_path_for(original)
    stale.write_bytes(original.read_bytes()[:500])
    service, sink = run_daemon(drop)
    sink.wait_for(lambda e: isinstance(e, FileDone), 30)
    assert not stale.exists()
    assert [Path(e.path).name for e in sink.of_type(FileQueued)] == ["cut short.flac"]


def test_read_only_bounce_fails_before_any_analysis_and_stays_untouched(
    drop, paths, run_daemon
) -> None:
    locked = write_loop(drop / "locked.wav", 100.0)
    locked.chmod(0o444)
    before = locked.read_bytes()
    service, sink = run_daemon(drop, fast_config())
    sink.wait_for(lambda e: isinstance(e, FileFailed) and e.final, timeout=60)
    assert not [e for e in sink.of_type(StageChanged) if e.path == str(locked.resolve())]
    with Store(paths.db_file) as store:
        row = store.get_file(locked.resolve())
    assert row is not None and row.status == "failed" and "read-only" in row.last_error
    assert locked.read_bytes() == before
