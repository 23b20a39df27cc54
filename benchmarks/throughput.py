"""End-to-end speed on a 3-minute stereo 44.1 kHz bounce: load time, BPM-ready time, total, peak RSS.

Baseline in the same run: the original approach's BPM path, `librosa.load` + plain
`librosa.beat.beat_track` on the same file.

    .venv/bin/python benchmarks/throughput.py [--seconds 180] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("BOUNCETAG_HOME", tempfile.mkdtemp(prefix="bouncetag-bench-"))

    from rich.console import Console
    from rich.table import Table

    from bouncetag.classifier.features import FEATURE_SETS, FeatureInput, extract_features
    from bouncetag.config import Config
    from bouncetag.paths import AppPaths
    from bouncetag.runner import Analyzer
    from bouncetag.synth import demo_bounce, write_audio

    console = Console()
    work = Path(tempfile.mkdtemp(prefix="bouncetag-throughput-"))
    path = write_audio(
        work / "bounce.wav", demo_bounce(seconds=args.seconds), channels=2, subtype="PCM_24"
    )
    console.print(f"bounce: {args.seconds:.0f} s stereo 44.1 kHz 24-bit WAV with vocals")

    # Model load, once per process, measured apart.
    started = time.perf_counter()
    analyzer = Analyzer(Config(), AppPaths.default())
    pipeline = analyzer.pipeline
    pipeline.transcriber.model  # noqa: B018 - load Whisper now
    feature_models = pipeline.feature_models
    feature_models.bert  # noqa: B018
    import librosa  # noqa: F401 - part of start-up cost, not per file

    load_seconds = time.perf_counter() - started

    # Warm-up (numba JIT inside librosa) so the per-file figures are steady-state.
    analyzer.analyze_file(path, stages=("tempo",))

    totals, bpm_ready, stage_times = [], [], []
    for _ in range(args.repeats):
        marks: dict[str, float] = {}
        started = time.perf_counter()

        def on_stage(stage: str, state: str, _marks=marks, _t0=started) -> None:
            if state == "done":
                _marks[stage] = time.perf_counter() - _t0

        analysis = analyzer.analyze_file(path, on_stage=on_stage)
        # With no genre head installed the genre stage has nothing to run, so time the full
        # feature set a head would need, on the same decoded audio, and count it.
        from bouncetag.audio import decode

        audio = decode(path)
        f_start = time.perf_counter()
        extract_features(
            FeatureInput(audio.samples, audio.sample_rate, analysis.transcript.text),
            feature_models, FEATURE_SETS["all"],
        )
        feature_seconds = time.perf_counter() - f_start
        total = marks["genre"] + (feature_seconds if analysis.genre is None else 0.0)
        totals.append(total)
        bpm_ready.append(marks["tempo"])
        stage_times.append({**analysis.timings, "genre_features_all": feature_seconds})

    # Baseline: the original BPM path on the same file.
    import numpy as np

    base_times, base_bpm = [], 0.0
    for _ in range(args.repeats):
        started = time.perf_counter()
        y, sr = librosa.load(str(path), sr=22050, mono=True)
        tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
        base_times.append(time.perf_counter() - started)
        base_bpm = float(np.atleast_1d(tempo)[0])

    median_stage = {
        k: round(statistics.median(s[k] for s in stage_times), 3) for k in stage_times[0]
    }
    figures = {
        "audio_seconds": args.seconds,
        "model_load_seconds": round(load_seconds, 2),
        "end_to_end_seconds_median": round(statistics.median(totals), 2),
        "bpm_ready_seconds_median": round(statistics.median(bpm_ready), 3),
        "stage_seconds_median": median_stage,
        "bpm": analysis.tempo.bpm,
        "transcript_words": len(analysis.transcript.text.split()),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "baseline_librosa_bpm_seconds_median": round(statistics.median(base_times), 3),
        "baseline_librosa_bpm": round(base_bpm, 2),
        "bpm_ready_ratio_vs_baseline": round(
            statistics.median(bpm_ready) / statistics.median(base_times), 3
        ),
        "targets": {"end_to_end_seconds": 10.0, "bpm_ready_seconds": 1.0},
    }
    table = Table(title=f"throughput: {args.seconds:.0f} s bounce, {os.cpu_count()} CPUs")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if key not in ("stage_seconds_median", "targets"):
            table.add_row(key, str(value))
    for key, value in median_stage.items():
        table.add_row(f"  stage {key} (s)", str(value))
    console.print(table)
    out = write_results("throughput", figures)
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
