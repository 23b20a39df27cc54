"""`python -m bouncetag.demo [DIR]`: make a demo bounce (92 BPM loop, espeak-ng vocals), analyse, tag it."""

from __future__ import annotations

import sys
from pathlib import Path

DEMO_NAME = "demo-bounce.wav"


def make_demo_bounce(folder: Path) -> Path:
    """Write a fresh 20 s stereo 24-bit WAV demo bounce at 92 BPM with vocals; returns its path."""
    from bouncetag.synth import demo_bounce, write_audio

    folder.mkdir(parents=True, exist_ok=True)
    return write_audio(
        folder / DEMO_NAME, demo_bounce(seconds=20.0, bpm=92.0), channels=2, subtype="PCM_24"
    )


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from bouncetag.cli import main as cli_main

    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(".demo")
    console = Console(stderr=True)
    console.rule("bouncetag demo")
    path = make_demo_bounce(root / "bounces")
    console.print(f"made a demo bounce: {path} (92 BPM drum loop with espeak-ng vocals)")
    console.print(f"$ bouncetag analyze --write {path}")
    code = cli_main(["analyze", "--write", str(path)])
    if code != 0:
        return code
    console.print(f"$ bouncetag tags {path}")
    return cli_main(["tags", str(path)])


if __name__ == "__main__":
    sys.exit(main())
