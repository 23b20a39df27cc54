"""kill -9 of a real daemon process mid-drop, then a restart: every file tagged exactly once."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf

from bouncetag.paths import AppPaths
from bouncetag.store import Store
from bouncetag.synth import drum_loop

RATE = 22050
N_FILES = 10


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition on another process's output or the store until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def events(log: Path) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut short by kill -9
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_mid_drop_then_restart_tags_every_file_exactly_once(tmp_path: Path) -> None:
    from bouncetag.tags import read_tags

    paths = AppPaths.default().ensure()  # BOUNCETAG_HOME is this test's own folder
    paths.config_file.write_text('[transcribe]\nbackend = "none"\n[watch]\nsettle_seconds = 0.2\n')
    drop = tmp_path / "Bounces"
    drop.mkdir()
    cmd = [sys.executable, "-m", "bouncetag", "watch", str(drop), "--headless", "--workers", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first_log = tmp_path / "first.jsonl"
    with first_log.open("w") as out:
        daemon = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(
            lambda: any(e["event"] == "DaemonStarted" for e in events(first_log)),
            60,
            "the daemon to start",
        )
        files = []
        for i in range(N_FILES):  # the drop arrives while the daemon runs
            buf = io.BytesIO()
            sf.write(
                buf,
                drum_loop(80 + 7 * i, seconds=20.0, sample_rate=RATE, seed=i),
                RATE,
                format="FLAC",
            )
            path = drop / f"bounce {i:02d}.flac"
            path.write_bytes(buf.getvalue())
            files.append(path)

        def mid_run() -> bool:
            evs = events(first_log)
            done = {e["path"] for e in evs if e["event"] == "FileDone"}
            # A file is being decoded or its tempo estimated: well before its tag write.
            latest = {e["path"]: e["stage"] for e in evs if e["event"] == "StageChanged"}
            early = [
                p for p, stage in latest.items() if p not in done and stage in ("decode", "tempo")
            ]
            return len(done) >= 2 and bool(early)

        wait_until(mid_run, 120, "two files done and a third under way")
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=30)
    assert daemon.returncode == -signal.SIGKILL
    done_before = {e["path"] for e in events(first_log) if e["event"] == "FileDone"}
    assert 2 <= len(done_before) < N_FILES, "the kill did not land mid-drop"
    with Store(paths.db_file) as store:
        interrupted = {r.path for r in store.files("processing")}
    assert interrupted, "no file was mid-analysis when the daemon died"

    second_log = tmp_path / "second.jsonl"
    with second_log.open("w") as out:
        restarted = subprocess.run(
            [*cmd, "--once"], stdout=out, stderr=subprocess.STDOUT, env=env, timeout=180
        )
    assert restarted.returncode == 0, second_log.read_text()[-2000:]
    done_after = {e["path"] for e in events(second_log) if e["event"] == "FileDone"}
    assert not done_before & done_after, "a file finished before the kill was processed again"
    assert interrupted <= done_after
    with Store(paths.db_file) as store:
        for path in files:
            row = store.get_file(path.resolve())
            assert row is not None and row.status == "done", path
            assert row.processed_count == 1, path
            assert read_tags(path).fields.get("bpm"), path
        assert store.status_counts() == {"done": N_FILES}
