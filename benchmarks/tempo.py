"""Tempo accuracy and speed on generated loops: bouncetag against plain librosa beat_track.

Loops from 60 to 180 BPM in every bouncetag.synth style are synthesised at 44.1 kHz, written
as 16-bit WAV and decoded by bouncetag.audio.decode (the pipeline's 16 kHz path). Both
estimators see the same decoded samples; bouncetag uses its default 60-180 BPM range.

Ground truth is the loop's written tempo, also for "half_time" and "trap", whose snare on 3
makes them feel half as fast: the benchmark asks for the written tempo, which is what a DAW
session (and its TBPM) would say.

    .venv/bin/python benchmarks/tempo.py           # 60-180 every 5 BPM, 5 styles, 10 s loops
    .venv/bin/python benchmarks/tempo.py --quick   # every 15 BPM, 6 s loops (under a minute)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ACC1_TOLERANCE = 0.04
OCTAVE_FACTORS = (1.0, 2.0, 3.0, 1 / 2, 1 / 3)


def _acc1(estimate: float, truth: float) -> bool:
    return abs(estimate / truth - 1.0) <= ACC1_TOLERANCE


def _acc2(estimate: float, truth: float) -> bool:
    return any(_acc1(estimate, truth * factor) for factor in OCTAVE_FACTORS)


def _librosa_bpm(samples: np.ndarray, sample_rate: int) -> float:
    import librosa

    tempo, _ = librosa.beat.beat_track(y=samples, sr=sample_rate)
    return float(np.atleast_1d(tempo)[0])


def _bouncetag_bpm(samples: np.ndarray, sample_rate: int) -> float:
    from bouncetag.classifier.tempo import estimate_tempo

    return estimate_tempo(samples, sample_rate, 60.0, 180.0).bpm


ESTIMATORS = {"bouncetag": _bouncetag_bpm, "librosa": _librosa_bpm}


def _summary(rows: list[dict[str, Any]], name: str, audio_seconds: float) -> dict[str, float]:
    estimates = [(r[name], r["truth"]) for r in rows]
    return {
        "acc1": float(np.mean([_acc1(e, t) for e, t in estimates])),
        "acc2": float(np.mean([_acc2(e, t) for e, t in estimates])),
        "mae_bpm": float(np.mean([abs(e - t) for e, t in estimates])),
        "seconds_per_minute": sum(r[f"{name}_seconds"] for r in rows) / (audio_seconds / 60.0),
    }


def _ratio(ours: float, theirs: float) -> float | None:
    return float(f"{ours / theirs:.3g}") if theirs else None


def _three_minute_latency(sample_rate: int) -> dict[str, float]:
    """Median time for one BPM on a 3-minute 16 kHz signal (the analysis input)."""
    from bouncetag.classifier.tempo import estimate_tempo
    from bouncetag.synth import drum_loop

    samples = drum_loop(92.0, "swung", seconds=180.0, sample_rate=sample_rate, seed=3)
    out: dict[str, float] = {}
    for name, fn in (("bouncetag", estimate_tempo), ("librosa", _librosa_bpm)):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            fn(samples, sample_rate)
            times.append(time.perf_counter() - started)
        out[name] = statistics.median(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every 15 BPM, 6 s loops")
    parser.add_argument("--step", type=float, default=None, help="BPM step (default 5, quick 15)")
    parser.add_argument("--seconds", type=float, default=None, help="loop length (10, quick 6)")
    args = parser.parse_args()
    step = args.step or (15.0 if args.quick else 5.0)
    seconds = args.seconds or (6.0 if args.quick else 10.0)

    from rich.console import Console
    from rich.table import Table

    from bouncetag.audio import ANALYSIS_SAMPLE_RATE, decode
    from bouncetag.synth import STYLES, drum_loop, write_audio

    console = Console()
    if not console.is_terminal:  # piped or in CI: do not squeeze the table into 80 columns
        console = Console(width=130)
    tempi = [float(b) for b in np.arange(60.0, 180.0 + 1e-9, step)]
    console.print(
        f"{len(tempi)} tempi x {len(STYLES)} styles, {seconds:.0f} s loops, "
        "44.1 kHz WAV -> bouncetag.audio.decode (16 kHz)"
    )

    # Warm both up so one-off costs (imports, librosa's numba compilation) are not counted.
    warm = drum_loop(100.0, "straight", seconds=4.0, sample_rate=ANALYSIS_SAMPLE_RATE)
    for fn in ESTIMATORS.values():
        fn(warm, ANALYSIS_SAMPLE_RATE)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bouncetag-tempo-bench-") as tmp:
        for style in STYLES:
            for index, bpm in enumerate(tempi):
                path = Path(tmp) / f"{style}-{bpm:g}.wav"
                write_audio(path, drum_loop(bpm, style, seconds=seconds, seed=index))
                audio = decode(path)
                row: dict[str, Any] = {"style": style, "truth": bpm}
                for name, fn in ESTIMATORS.items():
                    started = time.perf_counter()
                    row[name] = round(fn(audio.samples, audio.sample_rate), 2)
                    row[f"{name}_seconds"] = time.perf_counter() - started
                rows.append(row)

    total_seconds = seconds * len(rows)
    overall = {name: _summary(rows, name, total_seconds) for name in ESTIMATORS}
    per_style = {
        style: {
            name: _summary([r for r in rows if r["style"] == style], name, seconds * len(tempi))
            for name in ESTIMATORS
        }
        for style in STYLES
    }
    ratios = {
        key: _ratio(overall["bouncetag"][key], overall["librosa"][key])
        for key in ("acc1", "acc2", "mae_bpm", "seconds_per_minute")
    }
    latency = _three_minute_latency(ANALYSIS_SAMPLE_RATE)

    table = Table(title="Tempo: bouncetag vs plain librosa.beat.beat_track (same 16 kHz input)")
    table.add_column("style")
    metrics = (
        ("acc1", "Acc1 (±4%)", "{:.1%}"),
        ("acc2", "Acc2 (octaves ok)", "{:.1%}"),
        ("mae_bpm", "MAE BPM", "{:.2f}"),
        ("seconds_per_minute", "s / min audio", "{:.3f}"),
    )
    for _, label, _ in metrics:
        table.add_column(f"{label}\nbouncetag | librosa", justify="right")

    def cells(figures: dict[str, dict[str, float]]) -> list[str]:
        return [
            f"{fmt.format(figures['bouncetag'][key])} | {fmt.format(figures['librosa'][key])}"
            for key, _, fmt in metrics
        ]

    for style in STYLES:
        table.add_row(style, *cells(per_style[style]))
    table.add_row("[bold]all[/bold]", *cells(overall), end_section=True)
    table.add_row(
        "bouncetag / librosa",
        *[f"x{ratios[key]:.3g}" if ratios[key] is not None else "-" for key, _, _ in metrics],
    )
    console.print(table)
    console.print(
        f"3-minute signal, one BPM (median of 3): bouncetag {latency['bouncetag']:.3f} s, "
        f"librosa {latency['librosa']:.3f} s"
    )
    misses = [r for r in rows if not _acc1(r["bouncetag"], r["truth"])]
    if misses:
        console.print(
            "bouncetag misses: "
            + ", ".join(f"{r['style']} {r['truth']:g} -> {r['bouncetag']:g}" for r in misses)
        )

    path = write_results(
        "tempo",
        {
            "settings": {
                "tempi": tempi,
                "styles": list(STYLES),
                "loop_seconds": seconds,
                "acc1_tolerance": ACC1_TOLERANCE,
                "acc2_octave_factors": list(OCTAVE_FACTORS),
                "bouncetag_range": [60.0, 180.0],
                "quick": args.quick,
                "truth": "written loop tempo (also for half_time and trap)",
            },
            "overall": overall,
            "per_style": per_style,
            "ratios_bouncetag_over_librosa": ratios,
            "three_minute_latency_seconds": latency,
            "rows": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                for r in rows
            ],
        },
    )
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
