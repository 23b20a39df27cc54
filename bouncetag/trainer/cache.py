"""Feature cache: each file's features computed once per (content hash, extractor, version).

Building it runs over all cores (a process pool; each worker loads its own models), shows rich
progress with an ETA, and commits every file as it finishes, so an interrupted build resumes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bouncetag.config import Config, TextConfig, TranscribeConfig
from bouncetag.errors import BounceTagError, TrainingError

if TYPE_CHECKING:
    from rich.console import Console

    from bouncetag.paths import AppPaths
    from bouncetag.store import Store

TRANSCRIPT_EXTRACTOR = "transcript"
# Text extractors whose output depends on a model trained per run; computed on the fly, not cached.
UNCACHED = frozenset({"w2v"})
# Below this many files a process pool costs more to start than it saves.
POOL_MIN_ITEMS = 4


def transcript_version(config: TranscribeConfig) -> str:
    """Cache key for transcripts: which backend and model made them."""
    if config.backend == "none":
        return "none"
    model = config.whisper_model if config.backend == "whisper" else config.wav2vec2_model
    return f"{config.backend}:{model or 'packaged'}:{config.max_seconds:g}:{int(config.vad)}"


@dataclass(frozen=True)
class CacheTask:
    """One file to bring into the cache (picklable: crosses into worker processes)."""

    path: str
    content_hash: str | None  # known already (user labels), else the worker computes it
    names: tuple[str, ...]  # cacheable extractors wanted
    need_transcript: bool


@dataclass(frozen=True)
class CacheOutcome:
    path: str
    content_hash: str | None
    vectors: dict[str, bytes]
    transcript: str | None
    error: str | None = None


@dataclass(frozen=True)
class CacheReport:
    """What a cache build did."""

    total: int
    computed: int
    cached: int
    failed: tuple[str, ...]  # one line per file that could not be decoded


class _HashIndex:
    """(path, size, mtime) -> content hash, so unchanged files are not decoded again."""

    def __init__(self, db_file: Path) -> None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(db_file), timeout=30, check_same_thread=False)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER,"
            " mtime_ns INTEGER, content_hash TEXT NOT NULL)"
        )
        self._conn.commit()

    def get(self, path: Path) -> str | None:
        try:
            st = path.stat()
        except OSError:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT content_hash FROM hashes WHERE path=? AND size=? AND mtime_ns=?",
                (str(path), st.st_size, st.st_mtime_ns),
            ).fetchone()
        return row[0] if row else None

    def put(self, path: Path, content_hash: str) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO hashes VALUES (?,?,?,?)",
                (str(path), st.st_size, st.st_mtime_ns, content_hash),
            )
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# ---- worker side (runs in each pool process, or in-process for small jobs) -----------------
_WORKER: dict[str, Any] = {}


def _init_worker(
    text_config: TextConfig, transcribe_config: TranscribeConfig, db_file: str, threads: int
) -> None:
    """Build this worker's own models and store handle (models load lazily on first use)."""
    from bouncetag.classifier.features import FeatureModels
    from bouncetag.store import Store

    if threads > 0:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
    _WORKER.clear()
    _WORKER["models"] = FeatureModels(text_config, transcribe_config)
    _WORKER["transcribe_config"] = transcribe_config
    _WORKER["store"] = Store(db_file)


def _worker_transcriber() -> Any:
    if "transcriber" not in _WORKER:
        from bouncetag.classifier.transcribe import make_transcriber

        _WORKER["transcriber"] = make_transcriber(_WORKER["transcribe_config"])
    return _WORKER["transcriber"]


def _compute(task: CacheTask) -> CacheOutcome:
    """Decode one file and compute what the cache lacks for it."""
    from bouncetag.audio import decode
    from bouncetag.classifier.features import EXTRACTORS, FeatureInput, extract_features
    from bouncetag.trainer.fingerprint import audio_fingerprint

    store = _WORKER["store"]
    tconf: TranscribeConfig = _WORKER["transcribe_config"]
    try:
        decoded = decode(task.path)
    except BounceTagError as exc:
        return CacheOutcome(task.path, task.content_hash, {}, None, error=str(exc))
    content_hash = audio_fingerprint(decoded)
    names = tuple(
        n for n in task.names
        if store.get_feature(content_hash, n, EXTRACTORS[n].version) is None
    )
    needs_text = any(EXTRACTORS[n].kind == "text" for n in names)
    transcript = "" if tconf.backend == "none" else None  # free, so always cached
    if tconf.backend != "none" and (task.need_transcript or needs_text):
        transcript = _stored_transcript(store, content_hash, tconf)
        if transcript is None:
            result = _worker_transcriber().transcribe(decoded.samples, decoded.sample_rate)
            transcript = result.text
    inp = FeatureInput(decoded.samples, decoded.sample_rate, transcript or "")
    try:
        vectors = extract_features(inp, _WORKER["models"], names)
    except BounceTagError as exc:
        return CacheOutcome(task.path, content_hash, {}, None, error=str(exc))
    return CacheOutcome(
        task.path, content_hash,
        {n: np.asarray(v, dtype="<f4").tobytes() for n, v in vectors.items()},
        transcript,
    )


def _stored_transcript(store: Store, content_hash: str, tconf: TranscribeConfig) -> str | None:
    rows = store.query(
        "SELECT transcript FROM features WHERE content_hash=? AND extractor=? AND version=?",
        (content_hash, TRANSCRIPT_EXTRACTOR, transcript_version(tconf)),
    )
    return rows[0]["transcript"] if rows else None


# ---- main side ----------------------------------------------------------------------------
class FeatureCache:
    """Cached features and transcripts for training, in the store's features table."""

    def __init__(self, store: Store, paths: AppPaths, config: Config) -> None:
        self.store = store
        self.paths = paths
        self.config = config
        self._index = _HashIndex(paths.feature_cache_dir / "hash_index.sqlite3")

    def close(self) -> None:
        self._index.close()

    def known_hash(self, path: Path) -> str | None:
        """The content hash of an unchanged file seen before, without decoding it."""
        return self._index.get(Path(path))

    def transcript(self, content_hash: str) -> str | None:
        return _stored_transcript(self.store, content_hash, self.config.transcribe)

    def vector(self, content_hash: str, name: str) -> np.ndarray | None:
        """One cached feature vector, or None."""
        from bouncetag.classifier.features import EXTRACTORS

        blob = self.store.get_feature(content_hash, name, EXTRACTORS[name].version)
        return None if blob is None else np.frombuffer(blob, dtype="<f4").copy()

    def _missing(self, content_hash: str | None, names: tuple[str, ...], need_tx: bool) -> bool:
        if content_hash is None:
            return True
        if need_tx and self.transcript(content_hash) is None:
            return True
        return any(self.vector(content_hash, n) is None for n in names)

    def ensure(
        self,
        entries: Iterable[tuple[Path | None, str | None]],
        names: tuple[str, ...],
        *,
        jobs: int | None = None,
        console: Console | None = None,
        on_done: Callable[[int, int], None] | None = None,
    ) -> tuple[CacheReport, dict[Path, str]]:
        """Compute and store whatever is missing for each (path, known content hash) entry.

        Args:
            entries: files to cover; a None path with a known hash is only looked up.
            names: extractors wanted (w2v is skipped: it is computed per run).
            jobs: worker processes (default: all cores).
            console: where rich progress goes (None: no progress display).
            on_done: called with (done, total) after each file.

        Returns:
            The report, and path -> content hash for every file that decoded.

        Raises:
            KeyboardInterrupt: passed on after the pool stops; finished files stay cached.
        """
        cacheable = tuple(n for n in names if n not in UNCACHED)
        need_tx = any(n in UNCACHED for n in names)
        hashes: dict[Path, str] = {}
        tasks: list[CacheTask] = []
        cached = 0
        entries = list(entries)
        for path, content_hash in entries:
            if path is None:
                continue
            content_hash = content_hash or self._index.get(path)
            if content_hash is not None and not self._missing(content_hash, cacheable, need_tx):
                hashes[path] = content_hash
                cached += 1
                continue
            tasks.append(CacheTask(str(path), content_hash, cacheable, need_tx))
        failed: list[str] = []
        if tasks:
            self._run(tasks, jobs, console, hashes, failed, on_done, cached)
        report = CacheReport(len(entries), len(tasks) - len(failed), cached, tuple(failed))
        return report, hashes

    def _commit(self, outcome: CacheOutcome, hashes: dict[Path, str], failed: list[str]) -> None:
        from bouncetag.classifier.features import EXTRACTORS

        if outcome.error or outcome.content_hash is None:
            failed.append(outcome.error or f"{outcome.path}: failed")
            return
        h = outcome.content_hash
        now = time.time()
        with self.store.transaction() as conn:
            for name, blob in outcome.vectors.items():
                conn.execute(
                    "INSERT OR REPLACE INTO features VALUES (?,?,?,?,?,?)",
                    (h, name, EXTRACTORS[name].version, blob, outcome.transcript, now),
                )
            if outcome.transcript is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO features VALUES (?,?,?,?,?,?)",
                    (h, TRANSCRIPT_EXTRACTOR, transcript_version(self.config.transcribe), b"",
                     outcome.transcript, now),
                )
        self._index.put(Path(outcome.path), h)
        hashes[Path(outcome.path)] = h

    def _run(
        self,
        tasks: list[CacheTask],
        jobs: int | None,
        console: Console | None,
        hashes: dict[Path, str],
        failed: list[str],
        on_done: Callable[[int, int], None] | None,
        already: int,
    ) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        jobs = max(1, jobs or os.cpu_count() or 1)
        jobs = min(jobs, len(tasks))
        total = len(tasks)
        progress = Progress(
            TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
            disable=console is None,
        )
        init_args = (
            self.config.text, self.config.transcribe, str(self.store.db_file),
            1 if jobs > 1 else 0,
        )
        done = 0
        with progress:
            bar = progress.add_task("features", total=total)

            def finished(outcome: CacheOutcome) -> None:
                nonlocal done
                self._commit(outcome, hashes, failed)
                done += 1
                progress.advance(bar)
                if on_done:
                    on_done(done, total)

            if jobs == 1 or total < POOL_MIN_ITEMS:
                _init_worker(*init_args[:3], 0)
                try:
                    for task in tasks:
                        finished(_compute(task))
                finally:
                    _WORKER["store"].close()
                    _WORKER.clear()
                return
            import multiprocessing

            # spawn: forking a process that already runs torch threads can deadlock.
            pool = ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=init_args,
            )
            try:
                pending: set[Future[CacheOutcome]] = {pool.submit(_compute, t) for t in tasks}
                while pending:
                    finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished_now:
                        try:
                            finished(future.result())
                        except BounceTagError:
                            raise
                        except Exception as exc:  # noqa: BLE001 - a worker crash names the cause
                            raise TrainingError(f"feature worker failed: {exc}") from exc
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
