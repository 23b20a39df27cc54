"""SIGKILL a tag writer at random points: the file is always the old or the new one, never torn."""

from __future__ import annotations

import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bouncetag.config import AUDIO_EXTENSIONS
from bouncetag.tags import TEMP_SUFFIX, clean_stale_temps, read_tags

# The child alternates two analyses forever and prints a line after each completed write.
# KILL_AT, if set, makes it SIGKILL itself at one exact point of the write instead.
WRITER = r"""
import os, signal, sys
from pathlib import Path
from bouncetag.classifier.results import Analysis, GenrePrediction, TempoEstimate, Transcript
from bouncetag.config import TagsConfig
from bouncetag.tags import writer, formats

def analysis(bpm, genre):
    return Analysis("", 1.0, TempoEstimate(bpm, 0.9, "estimate"), Transcript("la la", "whisper"),
                    GenrePrediction(((genre, 0.9),), "kill-test"))

def die(*_a, **_k):
    os.kill(os.getpid(), signal.SIGKILL)

kill_at = os.environ.get("KILL_AT")
if kill_at == "after_copy":
    real_write = formats.Container.write
    def write_then_die(self, src, dst, updates, v):
        real_write(self, src, dst, updates, v)
        die()
    for cls in (formats.Container, formats.WavContainer):
        cls.write = write_then_die
elif kill_at == "before_replace":
    writer.os.replace = die
elif kill_at == "after_replace":
    real_replace = os.replace
    def replace_then_die(a, b):
        real_replace(a, b)
        die()
    writer.os.replace = replace_then_die

path = Path(sys.argv[1])
config = TagsConfig(genre_policy="always", bpm_policy="always")
pairs = [analysis(120.0, "house"), analysis(90.0, "hiphop")]
i = 0
while True:
    writer.write_analysis(path, pairs[i % 2], config, 0.35)
    print(i, flush=True)
    i += 1
"""
STATES = {None: None, "house": "120", "hiphop": "90"}  # genre -> the bpm written with it


def _make(folder: Path, ext: str) -> Path:
    path = folder / f"take.{ext}"
    rate = 44100
    t = np.arange(rate * 4) / rate  # 4 s: big enough that a write takes a little while
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32")
    if ext in ("mp3", "m4a"):
        wav = folder / "src.wav"
        sf.write(str(wav), tone, rate)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
        wav.unlink()
    elif ext == "flac":
        sf.write(str(path), np.stack([tone, tone], axis=1), rate, format="FLAC")
    else:
        sf.write(str(path), np.stack([tone, tone], axis=1), rate, subtype="PCM_24")
    return path


def _payload(path: Path) -> str:
    from bouncetag.tags.formats import detect

    return detect(path).payload_digest(path)


def _start(path: Path, kill_at: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if kill_at:
        env["KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _read_lines(proc: subprocess.Popen[str], count: int, timeout: float = 30.0) -> None:
    """Wait (with a timeout) until the child reports `count` finished writes."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while seen < count:
            left = deadline - time.monotonic()
            assert left > 0, "writer made no progress"
            if sel.select(timeout=left):
                line = proc.stdout.readline()
                assert line, f"writer died: {proc.stderr.read()}"
                seen += 1
    finally:
        sel.close()


def _assert_old_or_new(path: Path, payload: str) -> None:
    assert _payload(path) == payload  # audio intact, file parses end to end
    snap = read_tags(path)
    assert snap.genre in STATES, snap.fields
    assert snap.fields.get("bpm") == STATES[snap.genre], snap.fields  # never half-written
    leftovers = [p for p in path.parent.iterdir() if p != path]
    for extra in leftovers:  # only our hidden temp name, never something that looks like audio
        assert extra.name.startswith(".") and extra.name.endswith(TEMP_SUFFIX), extra
        assert extra.suffix.lower() not in AUDIO_EXTENSIONS
    clean_stale_temps(path.parent)
    assert [p for p in path.parent.iterdir()] == [path]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("ext", ["wav", "mp3", "flac", "m4a"])
def test_random_sigkill_leaves_old_or_new_file(ext: str, tmp_path: Path) -> None:
    path = _make(tmp_path, ext)
    payload = _payload(path)
    rng = random.Random(f"kill-{ext}")
    for _ in range(5):
        proc = _start(path)
        try:
            _read_lines(proc, rng.randint(1, 4))
            # A random extra delay spreads the kill over every stage of the next write.
            time.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        _assert_old_or_new(path, payload)


@pytest.mark.parametrize("kill_at", ["after_copy", "before_replace", "after_replace"])
def test_sigkill_at_each_stage(kill_at: str, tmp_path: Path) -> None:
    path = _make(tmp_path, "wav")
    payload = _payload(path)
    before = path.read_bytes()
    proc = _start(path, kill_at)
    try:
        proc.wait(timeout=30)
    finally:
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    if kill_at == "after_replace":
        assert read_tags(path).genre == "house"  # the new file, complete
    else:
        assert path.read_bytes() == before  # the old file, byte for byte
        assert (tmp_path / f".take.wav{TEMP_SUFFIX}").exists()  # the stale copy is left...
    _assert_old_or_new(path, payload)  # ...and cleaned away
