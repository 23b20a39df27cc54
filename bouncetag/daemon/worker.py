"""Workers: a bounded queue, N threads, and the per-file processor (analyse, then write tags)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bouncetag.config import Config
    from bouncetag.paths import AppPaths
    from bouncetag.store import Store

log = logging.getLogger("bouncetag.daemon.worker")

OnStage = Callable[[str, str], None]
SNIPPET_CHARS = 60


@dataclass(frozen=True)
class FileOutcome:
    """What processing one file produced, as the daemon records and reports it."""

    bpm: float | None
    genre: str | None
    confidence: float | None
    transcript: str
    tag_status: str  # "written", "unchanged", "dry-run", ...
    result: dict[str, Any] = field(default_factory=dict)  # Analysis.to_json() plus the tag report
    # The file's size/mtime right after our own tag write (None: not written, or unknown).
    tagged_size: int | None = None
    tagged_mtime_ns: int | None = None

    @property
    def snippet(self) -> str:
        text = " ".join(self.transcript.split())
        return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


class Processor(Protocol):
    """Processes one settled file: `(path, on_stage) -> FileOutcome`, raising on failure.

    Optional attributes the daemon uses when present: `model_version` and
    `reload_model_if_changed() -> bool`, `close()`.
    """

    def __call__(self, path: Path, on_stage: OnStage) -> FileOutcome: ...


class AnalyzerProcessor:
    """The real processor: `Analyzer.analyze_file`, then `tags.write_analysis` with the journal.

    With `two_pass`, BPM (and the genre, when the genre model uses no text features) are
    written first; the transcript (and a text-aware genre) follow in a second write, so tags
    appear before a slow transcription ends. Off by default: it journals two tag writes.

    Args:
        config: the validated config (tags policies, genre.min_confidence, transcribe backend).
        paths: app folders (models live under the data dir).
        store: passed to the tag writer so every write is journalled for `bouncetag undo`.
        dry_run: analyse but do not write tags.
        two_pass: write BPM first and the transcript in a second pass.
    """

    def __init__(
        self,
        config: Config,
        paths: AppPaths,
        store: Store | None,
        dry_run: bool = False,
        two_pass: bool = False,
    ):
        from bouncetag.runner import Analyzer

        self.config = config
        self.store = store
        self.dry_run = dry_run
        self.two_pass = two_pass and config.transcribe.backend != "none"
        self.analyzer = Analyzer(config, paths)
        self._reload_lock = threading.Lock()

    @property
    def model_version(self) -> str | None:
        return self.analyzer.model_version

    def reload_model_if_changed(self) -> bool:
        with self._reload_lock:
            return bool(self.analyzer.reload_model_if_changed())

    def _write(self, path: Path, analysis: Any, on_stage: OnStage) -> Any:
        from bouncetag import tags

        on_stage("tags", "start")
        report = tags.write_analysis(
            path,
            analysis,
            self.config.tags,
            self.config.genre.min_confidence,
            store=self.store,
            dry_run=self.dry_run,
        )
        on_stage("tags", "done")
        return report

    def _genre_needs_text(self) -> bool:
        model = self.analyzer.pipeline.genre_model
        if model is None:
            return False
        from bouncetag.classifier.features import EXTRACTORS

        return any(EXTRACTORS[n].kind == "text" for n in model.feature_names if n in EXTRACTORS)

    def _analyze_in_two_passes(self, path: Path, on_stage: OnStage) -> tuple[Any, list[Any]]:
        import dataclasses

        text_genre = self._genre_needs_text()
        first = self.analyzer.analyze_file(
            path, on_stage=on_stage, stages=("tempo",) if text_genre else ("tempo", "genre")
        )
        reports = [self._write(path, first, on_stage)]
        second = self.analyzer.analyze_file(
            path,
            on_stage=lambda stage, state: None if stage == "decode" else on_stage(stage, state),
            stages=("transcript", "genre") if text_genre else ("transcript",),
        )
        merged = dataclasses.replace(
            second,
            tempo=first.tempo,
            genre=second.genre if text_genre else first.genre,
            genre_note=second.genre_note if text_genre else first.genre_note,
            timings={**first.timings, **{k: v for k, v in second.timings.items() if k != "decode"}},
        )
        reports.append(self._write(path, merged, on_stage))
        return merged, reports

    def __call__(self, path: Path, on_stage: OnStage) -> FileOutcome:
        if not self.dry_run:
            from bouncetag import tags

            # A read-only bounce would be refused at the write: say so before a full analysis.
            tags.check_writable(path)
        if self.two_pass:
            analysis, reports = self._analyze_in_two_passes(path, on_stage)
        else:
            analysis = self.analyzer.analyze_file(path, on_stage=on_stage)
            reports = [self._write(path, analysis, on_stage)]
        written = [r for r in reports if r.written]
        last = written[-1] if written else reports[-1]
        if self.dry_run:
            status = "dry-run"
        elif written:
            status = "written"
        else:
            status = last.message or "unchanged"
        result = analysis.to_json()
        result["tags"] = {
            "written": bool(written),
            "message": "; ".join(r.message for r in reports if r.message),
            "passes": len(reports),
        }
        tempo = analysis.tempo
        beat_found = tempo is not None and (tempo.source != "estimate" or tempo.confidence > 0.0)
        return FileOutcome(
            bpm=tempo.bpm if beat_found else None,  # confidence 0 is only the estimator's prior
            genre=analysis.genre.genre if analysis.genre else None,
            confidence=analysis.genre.confidence if analysis.genre else None,
            transcript=analysis.transcript.text if analysis.transcript else "",
            tag_status=status,
            result=result,
            tagged_size=getattr(last, "size", None) if written else None,
            tagged_mtime_ns=getattr(last, "mtime_ns", None) if written else None,
        )


@dataclass(frozen=True)
class WorkItem:
    path: Path
    size: int
    mtime_ns: int


class WorkerPool:
    """N threads taking WorkItems from a bounded queue and handing each to `handle`.

    `handle` must not raise (the service catches per-file errors); if it does, the error is
    logged and the worker carries on, so one bad file never stops the queue.
    """

    def __init__(self, handle: Callable[[WorkItem], None], workers: int, queue_size: int) -> None:
        self.queue: queue.Queue[WorkItem] = queue.Queue(maxsize=max(1, queue_size))
        self._handle = handle
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"bouncetag-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def offer(self, item: WorkItem) -> bool:
        """Put an item if there is room; False when the queue is full (the caller keeps it)."""
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            return False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._handle(item)
            except Exception:  # noqa: BLE001
                log.exception("worker error on %s", item.path)
            finally:
                self.queue.task_done()

    def stop(self, timeout: float | None = None) -> list[threading.Thread]:
        """Stop taking work; wait up to `timeout` for current files. Returns threads still busy."""
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout)
        return [t for t in self._threads if t.is_alive()]

    def drain(self) -> list[WorkItem]:
        """Remove and return everything still queued (handed back to the store on stop)."""
        items = []
        while True:
            try:
                items.append(self.queue.get_nowait())
                self.queue.task_done()
            except queue.Empty:
                return items
