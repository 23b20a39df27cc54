"""Daemon latency (finished export -> tags on disk) and throughput on a drop of 200 small files.

Runs the real daemon (watchdog observer, settle rule, store, Analyzer, tag writer) in-process,
fed by files written into a temp folder the way a DAW does (temp file, then rename).
Baseline in the same run: the same files analysed and tagged in a plain loop with no daemon,
so the daemon's own overhead (settle wait, queueing, store) shows up as the difference.

    .venv/bin/python benchmarks/latency.py [--files 5] [--drop 200] [--workers 2]
        [--settle 2.0] [--whisper] [--name latency]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, write_results  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def _loop_flac(bpm: float, seconds: float, seed: int) -> bytes:
    import soundfile as sf

    from bouncetag.synth import drum_loop

    buf = io.BytesIO()
    sf.write(
        buf, drum_loop(bpm, seconds=seconds, sample_rate=22050, seed=seed), 22050, format="FLAC"
    )
    return buf.getvalue()


def _vocal_flac(bpm: float, seconds: float) -> bytes:
    """A loop with an espeak-ng rap line, so that Whisper has words to transcribe."""
    import soundfile as sf

    from bouncetag.synth import demo_bounce

    buf = io.BytesIO()
    sf.write(buf, demo_bounce(seconds=seconds, bpm=bpm, sample_rate=22050), 22050, format="FLAC")
    return buf.getvalue()


def _export(folder: Path, name: str, payload: bytes) -> Path:
    """Write like a DAW: a temp file in the same folder, then an atomic rename."""
    tmp = folder / f"{name}.part"
    tmp.write_bytes(payload)
    final = folder / name
    os.replace(tmp, final)
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5, help="files for the latency figure")
    parser.add_argument("--drop", type=int, default=200, help="files in the throughput drop")
    parser.add_argument("--corrupt", type=int, default=10, help="corrupt files in the drop")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=2.0, help="watch.settle_seconds")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of latency files")
    parser.add_argument(
        "--whisper",
        action="store_true",
        help="transcribe too (default: off); latency files then carry an espeak-ng vocal",
    )
    parser.add_argument("--name", default="latency", help="results file name (without .json)")
    args = parser.parse_args()
    os.environ.setdefault("BOUNCETAG_HOME", tempfile.mkdtemp(prefix="bouncetag-bench-"))
    # The corrupt files' failures are expected; keep their log lines off the console.
    logging.getLogger("bouncetag").addHandler(logging.NullHandler())
    logging.getLogger("bouncetag").propagate = False

    from rich.console import Console
    from rich.table import Table

    from bouncetag.config import Config
    from bouncetag.daemon.service import DaemonService
    from bouncetag.events import FileDone, FileFailed, RecordingSink
    from bouncetag.paths import AppPaths
    from bouncetag.runner import Analyzer
    from bouncetag.store import Store
    from bouncetag.tags import read_tags, write_analysis

    console = Console()
    paths = AppPaths.default().ensure()
    config = Config().replace(
        "watch",
        settle_seconds=args.settle,
        workers=args.workers,
        retry_backoff_seconds=0.2,
        max_attempts=2,
        queue_size=1000,
    )
    if not args.whisper:
        config = config.replace("transcribe", backend="none")
    work = Path(tempfile.mkdtemp(prefix="bouncetag-latency-"))
    drop = work / "Bounces"
    drop.mkdir()

    # ---- baseline: analyse + tag in a plain loop, no daemon --------------------------------
    base_dir = work / "baseline"
    base_dir.mkdir()
    analyzer = Analyzer(config, paths)
    warm = base_dir / "warm.flac"
    warm.write_bytes(
        _vocal_flac(100, args.seconds) if args.whisper else _loop_flac(100, args.seconds, 99)
    )
    analyzer.analyze_file(warm)  # imports, JIT and model loading are not latency
    baseline = []
    for i in range(args.files):
        path = base_dir / f"base {i}.flac"
        if args.whisper:
            path.write_bytes(_vocal_flac(90 + 9 * i, args.seconds))
        else:
            path.write_bytes(_loop_flac(90 + 9 * i, args.seconds, i))
        t0 = time.perf_counter()
        write_analysis(path, analyzer.analyze_file(path), config.tags, config.genre.min_confidence)
        baseline.append(time.perf_counter() - t0)

    # ---- latency: one finished export at a time ---------------------------------------------
    sink = RecordingSink()
    service = DaemonService(config, paths, [drop.resolve()], sink)
    service.start()
    latencies: list[float] = []
    try:
        for i in range(args.files):
            if args.whisper:
                payload = _vocal_flac(90 + 9 * i, args.seconds)
            else:
                payload = _loop_flac(90 + 9 * i, args.seconds, i)
            exported_at = time.time()
            path = _export(drop, f"latency {i}.flac", payload).resolve()
            done = sink.wait_for(
                lambda e, p=str(path): isinstance(e, FileDone) and e.path == p,
                timeout=120 + args.settle,
            )[0]
            if not read_tags(path).fields.get("bpm"):
                raise SystemExit(f"{path}: no BPM tag after FileDone")
            latencies.append(done.timestamp - exported_at)

        # ---- throughput: a drop of many small files, some corrupt --------------------------
        before_done = len(sink.of_type(FileDone))
        n_good = args.drop - args.corrupt
        payloads = [_loop_flac(80 + (i % 80), 2.0, i) for i in range(n_good)]
        drop_dir = drop / "drop"
        drop_dir.mkdir()
        t0 = time.time()
        for i, payload in enumerate(payloads):
            _export(drop_dir, f"small {i:03d}.flac", payload)
        for i in range(args.corrupt):
            _export(drop_dir, f"corrupt {i:02d}.wav", os.urandom(3000))
        dropped = time.time() - t0
        sink.wait_for(lambda e: isinstance(e, FileDone), timeout=600, count=before_done + n_good)
        sink.wait_for(
            lambda e: isinstance(e, FileFailed) and e.final, timeout=120, count=args.corrupt
        )
        drop_seconds = max(e.timestamp for e in sink.of_type(FileDone)) - t0
        alive = service.started
    finally:
        service.stop(grace=30)

    with Store(paths.db_file) as store:
        rows = [r for r in store.files() if "/drop/" in r.path]
    good_done = sum(1 for r in rows if r.status == "done" and r.processed_count == 1)
    corrupt_failed = sum(1 for r in rows if r.status == "failed" and r.last_error)

    figures = {
        "config": {
            "settle_seconds": args.settle,
            "workers": args.workers,
            "transcribe": config.transcribe.backend,
            "latency_file_seconds": args.seconds,
        },
        "latency_seconds": {
            "median": round(statistics.median(latencies), 3),
            "p95": round(_percentile(latencies, 0.95), 3),
            "all": [round(x, 3) for x in latencies],
        },
        "baseline_analyse_and_tag_seconds": {
            "median": round(statistics.median(baseline), 3),
            "p95": round(_percentile(baseline, 0.95), 3),
        },
        "drop": {
            "files": args.drop,
            "corrupt": args.corrupt,
            "good_tagged_once": good_done,
            "corrupt_failed_with_reason": corrupt_failed,
            "daemon_alive": alive,
            "write_seconds": round(dropped, 3),
            "seconds_to_last_tag": round(drop_seconds, 3),
            "files_per_second": round(n_good / drop_seconds, 2),
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    path = write_results(args.name, figures)

    table = Table(
        title=f"daemon latency and throughput (settle {args.settle}s, "
        f"{args.workers} workers, transcribe {config.transcribe.backend})"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    lat = figures["latency_seconds"]
    table.add_row(
        f"export -> tags on disk, median ({args.files} files of {args.seconds:.0f}s)",
        f"{lat['median']:.2f} s",
    )
    table.add_row("export -> tags on disk, p95", f"{lat['p95']:.2f} s")
    table.add_row(
        "baseline: analyse + tag in a loop, median",
        f"{figures['baseline_analyse_and_tag_seconds']['median']:.2f} s",
    )
    d = figures["drop"]
    table.add_row(f"drop of {d['files']} files: to last tag", f"{d['seconds_to_last_tag']:.1f} s")
    table.add_row("drop throughput", f"{d['files_per_second']:.1f} files/s")
    table.add_row("good files tagged exactly once", f"{d['good_tagged_once']}/{n_good}")
    table.add_row(
        "corrupt files failed with a reason", f"{d['corrupt_failed_with_reason']}/{d['corrupt']}"
    )
    table.add_row("peak RSS", f"{figures['peak_rss_mb']:.0f} MB")
    console.print(table)
    console.print(f"wrote {path}")
    return 0 if good_done == n_good and corrupt_failed == args.corrupt else 1


if __name__ == "__main__":
    sys.exit(main())
