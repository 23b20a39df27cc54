"""The live dashboard in a real terminal (tmux): it shows a tagged file and stops on Ctrl-C."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf

from bouncetag.paths import AppPaths
from bouncetag.synth import drum_loop

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def test_dashboard_draws_in_tmux_and_ctrl_c_stops_it_cleanly(tmp_path: Path) -> None:
    paths = AppPaths.default().ensure()
    drop = tmp_path / "Bounces"
    drop.mkdir()
    sf.write(drop / "groove.flac", drum_loop(96, seconds=3.0, sample_rate=22050), 22050)
    session = f"bouncetag-test-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "exit-code"
    command = " ".join(
        [
            f"BOUNCETAG_HOME={shlex.quote(str(paths.config_dir.parent))}",
            shlex.quote(sys.executable),
            "-m",
            "bouncetag",
            "watch",
            shlex.quote(str(drop)),
            "--no-transcript",
            "--settle",
            "0.2",
            f"; echo $? > {shlex.quote(str(status_file))}; sleep 30",
        ]
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "40", command], check=True
    )

    def screen() -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    try:
        wait_until(
            lambda: "groove.flac" in screen() and "done 1" in screen(),
            60,
            "the dashboard to show the tagged file",
        )
        text = screen()
        assert "bouncetag watch" in text
        row = next(line for line in text.splitlines() if "groove.flac" in line)
        assert re.search(r"\b9[4-8]\.\d\b", row), row  # the BPM column, near 96
        assert "written" in row
        assert "watcher native" in text
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        wait_until(status_file.exists, 30, "the daemon to exit after Ctrl-C")
        wait_until(lambda: status_file.read_text().strip() != "", 5, "the exit code")
        assert status_file.read_text().strip() == "130"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
