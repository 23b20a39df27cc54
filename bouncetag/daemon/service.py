"""The daemon: watcher + settle + store-backed exactly-once queue + workers, publishing events."""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bouncetag.config import Config
from bouncetag.daemon.watcher import FolderWatcher, Settler, StatKey, scan_folder
from bouncetag.daemon.worker import FileOutcome, Processor, WorkerPool, WorkItem
from bouncetag.errors import BounceTagError, ConfigError, StoreError
from bouncetag.events import (
    DaemonStarted,
    DaemonStopping,
    EventSink,
    FileDiscovered,
    FileDone,
    FileFailed,
    FileQueued,
    FileSettling,
    FileSkipped,
    ModelChanged,
    StageChanged,
    TrainFinished,
    TrainScheduled,
    WatcherRestarted,
)
from bouncetag.paths import AppPaths
from bouncetag.store import FileRecord, Store

log = logging.getLogger("bouncetag.daemon")

LOCK_NAME = "watch.lock"
WATCHER_CHECK_SECONDS = 1.0


class DaemonAlreadyRunning(StoreError):
    """Another `bouncetag watch` holds the store's lock (exit code 6, a state store error)."""


def _describe_lock_holder(text: str) -> str:
    """'pid 4242, watching /music' from the lock file's JSON, for the "already running" error."""
    try:
        info = json.loads(text)
        described = f"pid {int(info['pid'])}"
    except (ValueError, TypeError, KeyError):
        return "pid unknown"
    folders = info.get("folders") or []
    if isinstance(folders, list) and folders:
        described += ", watching " + ", ".join(str(f) for f in folders)
    return described


def file_hash(path: Path) -> str | None:
    """SHA-256 of the file's bytes (None when unreadable); the store's content identity."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def resolve_folders(config: Config, extra: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """The folders to watch: the command line's plus the config's, expanded, de-duplicated.

    Raises:
        ConfigError: none given, or one does not exist.
    """
    folders: list[Path] = []
    for raw in [*extra, *config.watch.folders]:
        folder = Path(raw).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"watch.folders: {folder} is not an existing folder")
        if folder not in folders:
            folders.append(folder)
    if not folders:
        raise ConfigError("watch.folders: no folder to watch (give one: bouncetag watch DIR)")
    return folders


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BounceTagError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class DaemonInfo:
    """What the lock file says about a running daemon."""

    pid: int
    started_at: float
    folders: tuple[str, ...]


def read_daemon_info(paths: AppPaths) -> DaemonInfo | None:
    """The running daemon's pid and folders, or None when no daemon holds the lock."""
    lock_file = paths.data_dir / LOCK_NAME
    if not lock_file.exists():
        return None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, trust the file
        fcntl = None  # type: ignore[assignment]
    try:
        with lock_file.open("r") as fh:
            if fcntl is not None:
                try:
                    fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                    return None  # nobody holds it: the last daemon has exited
                except OSError:
                    pass
            data = json.loads(fh.read() or "{}")
    except (OSError, ValueError):
        return None
    return DaemonInfo(
        int(data.get("pid", 0)), float(data.get("started_at", 0)), tuple(data.get("folders", ()))
    )


class DaemonService:
    """Watches folders and processes every settled export exactly once.

    Exactly once: the store identifies a file version by path + size + mtime_ns (+ content
    hash). Before work starts its row is `pending`, then `processing`, then `done` or `failed`.
    A row left `processing` by a crash is queued again on the next start. After our own tag
    write the new size/mtime are recorded, so the watcher's echo of that write is ignored,
    while a re-export (a new size/mtime and content) is processed again.

    Args:
        config: validated config ([watch], [tags], [genre], [transcribe] are used).
        paths: app folders (store, lock file).
        folders: folders to watch (already resolved; see `resolve_folders`).
        sink: receives every event.
        processor: per-file work; default `AnalyzerProcessor` (real analysis + tag write).
        store: an open store to use (default: open paths.db_file, closed on stop).
        polling: force the polling observer.
        watch: False to only scan and process (`--once`), without an observer.
        dry_run: analyse without writing tags (default processor only).
        two_pass: write BPM (and an audio-only genre) first, the transcript second.
        training_scheduler: a `TrainScheduler` to run (default: one built from train.schedule,
            if set); its results are published as TrainFinished / TrainScheduled events.
    """

    def __init__(
        self,
        config: Config,
        paths: AppPaths,
        folders: list[Path],
        sink: EventSink,
        *,
        processor: Processor | None = None,
        store: Store | None = None,
        polling: bool = False,
        watch: bool = True,
        dry_run: bool = False,
        two_pass: bool = False,
        training_scheduler: Any = None,
    ) -> None:
        self.config = config
        self.paths = paths
        self.folders = [Path(f) for f in folders]
        self.sink = sink
        self.processor: Any = processor
        self._own_store = store is None
        self.store: Store | None = store
        self._polling = polling
        self._watch_events = watch
        self._dry_run = dry_run
        self._two_pass = two_pass
        self.settle_seconds = config.watch.settle_seconds
        self._tick = max(0.02, min(0.25, self.settle_seconds / 4))

        self._notices: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._settler = Settler(self.settle_seconds)
        self._backlog: deque[WorkItem] = deque()
        self._lock = threading.Lock()  # guards _active, _dirty, _retries
        self._active: set[Path] = set()
        self._dirty: set[Path] = set()
        self._retries: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._scan_done = threading.Event()
        self._intake: threading.Thread | None = None
        self._pool: WorkerPool | None = None
        self._watcher: FolderWatcher | None = None
        self._lock_fh: IO[str] | None = None
        self._model_version: str | None = None
        self._scheduler: Any = training_scheduler
        self._recovered: list[Path] = []
        self._watcher_failing = False
        self.observer_kind = "none"
        self.started = False

    # ---- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Take the lock, recover from a crash, start workers, watcher and the intake thread.

        Raises:
            DaemonAlreadyRunning: another daemon uses this store.
            StoreError: the store cannot be opened.
        """
        self.paths.ensure()
        self._take_lock()
        try:
            if self.store is None:
                self.store = Store(self.paths.db_file)
            if self.processor is None:
                from bouncetag.daemon.worker import AnalyzerProcessor

                self.processor = AnalyzerProcessor(
                    self.config,
                    self.paths,
                    self.store,
                    dry_run=self._dry_run,
                    two_pass=self._two_pass,
                )
            self._model_version = getattr(self.processor, "model_version", None)
            self._recover()
            self._pool = WorkerPool(
                self._handle, self.config.watch.workers, self.config.watch.queue_size
            )
            self._pool.start()
            if self._watch_events:
                self._watcher = FolderWatcher(
                    self.folders, self.config.watch, self._notices, polling=self._polling
                )
                self.observer_kind = self._watcher.start()
            self.sink.emit(
                DaemonStarted(
                    tuple(str(f) for f in self.folders),
                    self.config.watch.workers,
                    self.observer_kind,
                    self._model_version,
                )
            )
            self._start_training_schedule()
            self._intake = threading.Thread(target=self._intake_loop, name="bouncetag-intake")
            self._intake.start()
            self.started = True
        except BaseException:
            if self._pool is not None:
                self._pool.stop(timeout=5)
            self._teardown()
            raise

    def stop(self, grace: float | None = 30.0, reason: str = "stopped") -> list[str]:
        """Stop watching, let workers finish their current file for up to `grace` seconds, and
        hand back to the store whatever is unfinished (it is processed on the next start).

        Returns:
            The paths handed back.
        """
        handed_back: list[str] = []
        if not self.started:
            self._teardown()
            return handed_back
        self.started = False
        self._stop.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._intake is not None:
            self._intake.join()
        busy = self._pool.stop(timeout=grace) if self._pool else []
        leftovers = [*self._backlog, *(self._pool.drain() if self._pool else [])]
        self._backlog.clear()
        with self._lock:
            unfinished = {item.path for item in leftovers} | set(self._active if busy else ())
        for path in sorted(unfinished):
            try:
                row = self.store.get_file(path) if self.store else None
                if row is not None and row.status in ("pending", "processing"):
                    self.store.upsert_file(path, status="pending")
                    handed_back.append(str(path))
            except BounceTagError:
                log.exception("could not hand back %s", path)
        self.sink.emit(DaemonStopping(reason, tuple(handed_back)))
        self._teardown(close_store=not busy)
        return handed_back

    def _teardown(self, close_store: bool = True) -> None:
        if self._scheduler is not None:
            try:
                # Do not wait for a training run in progress: a stop must stay prompt (the
                # trainer only promotes a finished, validated model, so nothing half-done stays).
                self._scheduler.shutdown(wait=False)
            except Exception:  # noqa: BLE001
                log.exception("stopping the training scheduler failed")
            self._scheduler = None
        if self._watcher is not None:
            self._watcher.stop()
        close = getattr(self.processor, "close", None)
        if callable(close):
            close()
        if self._own_store and self.store is not None and close_store:
            self.store.close()
            self.store = None
        if self._lock_fh is not None:
            self._lock_fh.close()  # releases the flock
            self._lock_fh = None

    def __enter__(self) -> DaemonService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is settling, queued, running or waiting for a retry.

        Returns:
            True when idle, False on timeout.
        """
        return self._idle.wait(timeout)

    def notice(self, path: Path | str) -> None:
        """Ask the daemon to look at a path (what the watcher does for each file event)."""
        self._notices.put(Path(path))

    # ---- lock ------------------------------------------------------------------------------
    def _take_lock(self) -> None:
        lock_file = self.paths.data_dir / LOCK_NAME
        fh = lock_file.open("a+")
        try:
            import fcntl

            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                other = _describe_lock_holder(fh.read())
                fh.close()
                raise DaemonAlreadyRunning(
                    f"another bouncetag watch ({other}) is using this store; stop it first",
                    lock_file,
                ) from None
        except ImportError:  # pragma: no cover - Windows
            pass
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "started_at": time.time(),
                    "folders": [str(f) for f in self.folders],
                }
            )
        )
        fh.flush()
        self._lock_fh = fh

    # ---- start-up --------------------------------------------------------------------------
    def _under_folders(self, path: Path) -> bool:
        return any(path.is_relative_to(f) for f in self.folders)

    def _recover(self) -> None:
        """Queue again what a previous run left pending or processing (crash, kill -9)."""
        assert self.store is not None
        now = time.time()
        self._clean_temps(self.folders, self.config.watch.recursive)
        for status in ("processing", "pending"):
            for row in self.store.files(status):
                path = Path(row.path)
                if not self._under_folders(path):
                    continue
                if status == "processing":
                    self.store.upsert_file(path, status="pending")
                    log.info("recovering %s, left processing by an earlier run", path)
                if row.next_attempt_at > now:
                    self._schedule_retry(path, row.next_attempt_at)
                else:
                    self._recovered.append(path)

    @staticmethod
    def _clean_temps(folders: list[Path], recursive: bool) -> None:
        """Remove temp copies a killed tag write left behind (they are never audio files)."""
        try:
            from bouncetag.tags import clean_stale_temps
        except ImportError:
            return
        for folder in folders:
            try:
                for tmp in clean_stale_temps(folder, recursive=recursive):
                    log.info("removed a stale tag-write temp file %s", tmp)
            except Exception:  # noqa: BLE001 - housekeeping never blocks start-up
                log.exception("cleaning temp files in %s failed", folder)

    def _start_training_schedule(self) -> None:
        """Start scheduled retraining when train.schedule is set (or a scheduler was given)."""
        if self._scheduler is None:
            if not self.config.train.schedule:
                return
            try:
                from bouncetag.trainer.schedule import TrainScheduler

                self._scheduler = TrainScheduler(self.paths, self.config)
            except Exception as exc:  # noqa: BLE001 - training must never stop the daemon
                log.exception("could not set up the training scheduler")
                self.sink.emit(TrainFinished(f"training schedule not started: {exc}"))
                return
        self._scheduler.on_result = self._on_training_result
        try:
            self._scheduler.start()
        except Exception as exc:  # noqa: BLE001
            log.exception("could not start the training scheduler")
            self.sink.emit(TrainFinished(f"training schedule not started: {exc}"))
            self._scheduler = None
            return
        self._emit_next_training()

    def _on_training_result(self, outcome: Any) -> None:
        result = getattr(outcome, "result", None)
        promoted = bool(getattr(result, "promoted", False))
        version = getattr(result, "version", None)
        self.sink.emit(
            TrainFinished(
                str(getattr(outcome, "message", outcome)), promoted, version if promoted else None
            )
        )
        self._emit_next_training()

    def _emit_next_training(self) -> None:
        next_run = getattr(self._scheduler, "next_run_time", None)
        if callable(next_run):
            next_run = next_run()
        text = (
            next_run.isoformat(timespec="minutes")
            if hasattr(next_run, "isoformat")
            else (str(next_run) if next_run else None)
        )
        self.sink.emit(TrainScheduled(text))

    # ---- intake: notices -> settle -> admit -> queue ----------------------------------------
    def _intake_loop(self) -> None:
        last_check = time.monotonic()
        try:
            for path in self._recovered:
                self._consider(path, "recovery")
            for folder in self.folders:
                for path in scan_folder(folder, self.config.watch):
                    if self._stop.is_set():
                        return
                    self._consider(path, "scan")
            self._scan_done.set()
            while not self._stop.is_set():
                self._drain_notices()
                self._poll_settler()
                self._due_retries()
                self._feed_workers()
                if (
                    self._watcher is not None
                    and time.monotonic() - last_check > WATCHER_CHECK_SECONDS
                ):
                    last_check = time.monotonic()
                    self._check_watcher()
                self._update_idle()
                self._stop.wait(self._tick)
        except Exception:  # noqa: BLE001 - keep the reason in the log, then restart the loop
            log.exception("intake loop crashed")
            if not self._stop.is_set():
                self._intake = threading.Thread(target=self._intake_loop, name="bouncetag-intake")
                self._intake.start()

    def _drain_notices(self) -> None:
        while True:
            try:
                path = self._notices.get_nowait()
            except queue.Empty:
                return
            self._consider(path, "watch")

    def _consider(self, path: Path, source: str) -> None:
        with self._lock:
            if path in self._active:
                self._dirty.add(path)  # look again once the current work on it finishes
                return
        if path in self._settler:
            self._settler.notice(path)
            return
        key = StatKey.of(path)
        if key is None:
            return
        assert self.store is not None
        row = self.store.get_file(path)
        if row is not None and self._known_version(row, key):
            return  # our own tag write echoing back, or a file already handled
        self.sink.emit(FileDiscovered(str(path), source))
        self._settler.notice(path)
        self.sink.emit(FileSettling(str(path), self.settle_seconds))

    @staticmethod
    def _known_version(row: FileRecord, key: StatKey) -> bool:
        """Whether this stat is one we already finished with (done, failed or skipped)."""
        if row.status not in ("done", "failed", "skipped"):
            return False
        return (key.size, key.mtime_ns) in {
            (row.size, row.mtime_ns),
            (row.tagged_size, row.tagged_mtime_ns),
        }

    def _poll_settler(self) -> None:
        if not len(self._settler):
            return
        settled, vanished = self._settler.poll()
        for path in vanished:
            self.sink.emit(FileSkipped(str(path), "vanished before it settled"))
        for path, key, _header_ok in settled:
            self._admit(path, key)

    def _admit(self, path: Path, key: StatKey) -> None:
        """Decide, from the store, whether a settled file version needs work; queue it if so."""
        assert self.store is not None
        row = self.store.get_file(path)
        attempts = 0
        if row is not None:
            same = (key.size, key.mtime_ns) == (row.size, row.mtime_ns)
            if self._known_version(row, key):
                return
            if row.status == "done" and row.content_hash and file_hash(path) == row.content_hash:
                # Same bytes as after our write (e.g. touched or copied back): nothing to do.
                self.store.upsert_file(path, tagged_size=key.size, tagged_mtime_ns=key.mtime_ns)
                self.sink.emit(FileSkipped(str(path), "unchanged since it was tagged"))
                return
            if row.status in ("pending", "processing") and same:
                if row.next_attempt_at > time.time():
                    self._schedule_retry(path, row.next_attempt_at)
                    return
                attempts = row.attempts  # a retry or a recovered file keeps its count
        self.store.upsert_file(
            path,
            size=key.size,
            mtime_ns=key.mtime_ns,
            status="pending",
            attempts=attempts,
            next_attempt_at=0,
            **({} if attempts else {"last_error": None}),
        )
        with self._lock:
            self._active.add(path)
            self._idle.clear()
        # Announce before a worker can pick it up, so that consumers see queued -> started.
        self.sink.emit(FileQueued(str(path), len(self._backlog) + self._queued() + 1, attempts + 1))
        self._backlog.append(WorkItem(path, key.size, key.mtime_ns))
        self._feed_workers()

    def _queued(self) -> int:
        return self._pool.queue.qsize() if self._pool else 0

    def _feed_workers(self) -> None:
        while self._backlog and self._pool is not None:
            if not self._pool.offer(self._backlog[0]):
                return
            self._backlog.popleft()

    def _schedule_retry(self, path: Path, due: float) -> None:
        with self._lock:
            heapq.heappush(self._retries, (due, str(path)))
            self._idle.clear()

    def _due_retries(self) -> None:
        now = time.time()
        due: list[Path] = []
        with self._lock:
            while self._retries and self._retries[0][0] <= now:
                due.append(Path(heapq.heappop(self._retries)[1]))
        for path in due:
            self._consider(path, "retry")

    def _check_watcher(self) -> None:
        assert self._watcher is not None
        if self._watcher.alive():
            return
        before = set(self._watcher.missing)
        try:
            self.observer_kind = self._watcher.restart()
        except Exception as exc:  # noqa: BLE001 - retried at the next check
            if not self._watcher_failing:  # report a failure streak once, not every second
                log.exception("restarting the watcher failed")
                self.sink.emit(WatcherRestarted("none", f"restart failed: {exc}"))
            self._watcher_failing = True
            return
        missing = set(self._watcher.missing)
        if self._watcher_failing or before == missing:
            reason = "observer thread died"
        elif missing - before:
            reason = "folder missing: " + ", ".join(str(f) for f in sorted(missing - before))
        else:
            reason = "folder back: " + ", ".join(str(f) for f in sorted(before - missing))
        self._watcher_failing = False
        log.warning("folder watcher restarted (%s): %s", self.observer_kind, reason)
        self.sink.emit(WatcherRestarted(self.observer_kind, reason))
        for folder in self.folders:  # catch up on what happened while it was down
            for path in scan_folder(folder, self.config.watch):
                self._consider(path, "scan")

    def _update_idle(self) -> None:
        with self._lock:
            busy = bool(self._active or self._retries)
        if (
            busy
            or len(self._settler)
            or self._backlog
            or not self._notices.empty()
            or not self._scan_done.is_set()
        ):
            self._idle.clear()
        else:
            self._idle.set()

    # ---- worker side -----------------------------------------------------------------------
    def _handle(self, item: WorkItem) -> None:
        path = item.path
        try:
            self._process(item)
        except Exception:  # noqa: BLE001 - e.g. the store failed; the file is retried next start
            log.exception("processing %s failed unexpectedly", path)
        finally:
            with self._lock:
                again = path in self._dirty
                self._dirty.discard(path)
                if again:
                    self._notices.put(path)
                self._active.discard(path)

    def _process(self, item: WorkItem) -> None:
        assert self.store is not None
        path = item.path
        key = StatKey.of(path)
        if key is None:
            self.store.upsert_file(path, status="skipped", last_error="file disappeared")
            self.sink.emit(FileSkipped(str(path), "file disappeared before processing"))
            return
        if (key.size, key.mtime_ns) != (item.size, item.mtime_ns):
            with self._lock:
                self._dirty.add(path)  # changed while queued: settle the new version first
            return
        row = self.store.get_file(path)
        attempt = (row.attempts if row else 0) + 1
        # The content hash is taken after our tag write (below): it identifies the file as we
        # left it, so a touch or copy-back of that exact file is not analysed again.
        self.store.upsert_file(path, status="processing", attempts=attempt)
        self._maybe_reload_model()

        def on_stage(stage: str, state: str) -> None:
            self.sink.emit(StageChanged(str(path), stage, state))

        started = time.monotonic()
        try:
            outcome: FileOutcome = self.processor(path, on_stage)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the queue
            self._failed(path, _reason(exc), attempt)
            return
        seconds = time.monotonic() - started
        if outcome.tagged_size is not None and outcome.tagged_mtime_ns is not None:
            after = StatKey(outcome.tagged_size, outcome.tagged_mtime_ns)
        else:
            after = StatKey.of(path) or key
        result = dict(outcome.result)
        result.setdefault("tag_status", outcome.tag_status)
        result.setdefault("seconds", round(seconds, 3))
        self.store.upsert_file(
            path,
            status="done",
            result=result,
            last_error=None,
            next_attempt_at=0,
            tagged_size=after.size,
            tagged_mtime_ns=after.mtime_ns,
            content_hash=file_hash(path),
            processed_count=(row.processed_count if row else 0) + 1,
        )
        self.sink.emit(
            FileDone(
                str(path),
                outcome.bpm,
                outcome.genre,
                outcome.confidence,
                outcome.snippet,
                round(seconds, 3),
                outcome.tag_status,
            )
        )

    def _failed(self, path: Path, reason: str, attempt: int) -> None:
        assert self.store is not None
        watch = self.config.watch
        if attempt < watch.max_attempts:
            delay = watch.retry_backoff_seconds * (2 ** (attempt - 1))
            due = time.time() + delay
            self.store.upsert_file(path, status="pending", last_error=reason, next_attempt_at=due)
            self._schedule_retry(path, due)
            self.sink.emit(FileFailed(str(path), reason, attempt, False, round(delay, 3)))
            log.warning("%s: attempt %d failed: %s", path, attempt, reason)
        else:
            self.store.upsert_file(path, status="failed", last_error=reason, next_attempt_at=0)
            self.sink.emit(FileFailed(str(path), reason, attempt, True))
            log.error("%s: failed after %d attempts: %s", path, attempt, reason)

    def _maybe_reload_model(self) -> None:
        reload: Callable[[], bool] | None = getattr(self.processor, "reload_model_if_changed", None)
        if reload is None:
            return
        try:
            changed = reload()
        except Exception:  # noqa: BLE001 - keep the old model rather than stop
            log.exception("reloading the genre model failed")
            return
        if changed:
            version = getattr(self.processor, "model_version", None)
            with self._lock:
                if version == self._model_version:
                    return
                self._model_version = version
            self.sink.emit(ModelChanged(version))
