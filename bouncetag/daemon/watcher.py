"""Folder watching: watchdog observers whose handler only enqueues, filters, and the settle rule."""

from __future__ import annotations

import fnmatch
import logging
import os
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bouncetag.config import WatchConfig

log = logging.getLogger("bouncetag.daemon.watcher")

# File systems where inotify/FSEvents do not see changes made by other machines.
NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb",
    "smbfs",
    "smb3",
    "fuse.sshfs",
    "9p",
    "afpfs",
    "webdav",
    "davfs",
    "fuse.rclone",
    "ncpfs",
}


def is_candidate(path: Path | str, watch: WatchConfig) -> bool:
    """Whether a path looks like an export we should handle (audio extension, not temp/hidden).

    Args:
        path: the file path.
        watch: extensions and ignore patterns come from here.

    Returns:
        True for e.g. "Song.wav"; False for "Song.wav.tmp", "._Song.wav", ".Song.wav", "x.asd".
    """
    name = Path(path).name
    if not name.lower().endswith(tuple(e.lower() for e in watch.extensions)):
        return False
    return not any(fnmatch.fnmatch(name, pat) for pat in watch.ignore_patterns)


def _hidden_part(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return False
    return any(p.startswith(".") for p in parts)


def scan_folder(root: Path, watch: WatchConfig) -> Iterator[Path]:
    """Every candidate file under `root` (recursively if configured), skipping hidden folders."""
    if not root.is_dir():
        return
    if not watch.recursive:
        for entry in sorted(root.iterdir()):
            if entry.is_file() and is_candidate(entry, watch):
                yield entry
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if is_candidate(name, watch):
                yield Path(dirpath) / name


def is_network_fs(folder: Path, mounts_text: str | None = None) -> bool:
    """True when `folder` lives on a network file system (Linux /proc/mounts; else False).

    Args:
        folder: the watched folder.
        mounts_text: the mount table to use instead of /proc/mounts (tests).
    """
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/mounts").read_text()
        except OSError:
            return False
    mounts = mounts_text.splitlines()
    folder = folder.resolve()
    best, best_type = "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        if (
            str(folder) == mount_point or str(folder).startswith(mount_point.rstrip("/") + "/")
        ) and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type in NETWORK_FS


@dataclass(frozen=True)
class StatKey:
    """What identifies one version of a file on disk."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> StatKey | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime_ns)


def header_ok(path: Path) -> bool:
    """Whether the file opens and its audio header parses (soundfile, else mutagen)."""
    try:
        with path.open("rb") as fh:
            if not fh.read(12):
                return False
    except OSError:
        return False
    import soundfile as sf

    from bouncetag.audio import quiet_native_stderr

    try:
        with quiet_native_stderr():
            info = sf.info(str(path))
        return info.frames > 0 or info.duration > 0
    except Exception:  # noqa: BLE001 - libsndfile lacks MP4 etc.; mutagen decides then
        pass
    try:
        import mutagen

        audio = mutagen.File(str(path))
        return audio is not None and getattr(audio.info, "length", 0) > 0
    except Exception:  # noqa: BLE001
        return False


@dataclass
class _Candidate:
    key: StatKey | None
    first_seen: float
    stable_since: float
    observations: int


class Settler:
    """Decides when a noticed file is complete: same size and mtime for `settle_seconds`,
    openable, and with a parseable header. Not thread-safe: driven by one intake thread.

    A file whose header still fails after it has been stable for `settle_seconds + give_up`
    is released anyway so that the worker can fail it with a reason (a corrupt export).
    """

    def __init__(self, settle_seconds: float, give_up_seconds: float | None = None) -> None:
        self.settle_seconds = settle_seconds
        self.give_up_seconds = (
            give_up_seconds if give_up_seconds is not None else max(1.0, 2 * settle_seconds)
        )
        self._candidates: dict[Path, _Candidate] = {}

    def __len__(self) -> int:
        return len(self._candidates)

    def __contains__(self, path: Path) -> bool:
        return path in self._candidates

    def notice(self, path: Path, now: float | None = None) -> bool:
        """Start (or restart) watching a file; returns True when it was not being watched."""
        now = time.time() if now is None else now
        key = StatKey.of(path)
        existing = self._candidates.get(path)
        if existing is not None:
            if existing.key != key:
                existing.key, existing.stable_since, existing.observations = key, now, 1
            return False
        stable_since = now
        if key is not None:
            # A file last written before we saw it has been stable since then (a catch-up scan
            # or a finished file moved in); never credit a future mtime.
            stable_since = min(now, max(key.mtime_ns / 1e9, now - 3600))
        self._candidates[path] = _Candidate(key, now, stable_since, 1)
        return True

    def poll(self, now: float | None = None) -> tuple[list[tuple[Path, StatKey, bool]], list[Path]]:
        """Re-stat every candidate.

        Returns:
            (settled, vanished): settled holds (path, stat, header_ok) for files now ready.
        """
        now = time.time() if now is None else now
        settled: list[tuple[Path, StatKey, bool]] = []
        vanished: list[Path] = []
        for path, cand in list(self._candidates.items()):
            key = StatKey.of(path)
            if key is None:
                vanished.append(path)
                del self._candidates[path]
                continue
            if key != cand.key:
                cand.key, cand.stable_since, cand.observations = key, now, 1
                continue
            cand.observations += 1
            if cand.observations < 2 or now - cand.stable_since < self.settle_seconds:
                continue
            if key.size > 0 and header_ok(path):
                settled.append((path, key, True))
                del self._candidates[path]
            elif now - cand.stable_since >= self.settle_seconds + self.give_up_seconds:
                settled.append((path, key, False))
                del self._candidates[path]
        return settled, vanished


class _EnqueueHandler:
    """The watchdog handler: filter, then put the path on a queue. Nothing else, ever."""

    def __init__(self, out: queue.SimpleQueue[Path], watch: WatchConfig, root: Path) -> None:
        self._out = out
        self._watch = watch
        self._root = root

    def dispatch(self, event: Any) -> None:
        if event.is_directory:
            if event.event_type in ("moved", "created"):
                # A folder of bounces moved in: its files produce no events of their own.
                target = Path(getattr(event, "dest_path", "") or event.src_path)
                for path in scan_folder(target, self._watch):
                    self._out.put(path)
            return
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        path = Path(os.fsdecode(raw))
        if is_candidate(path, self._watch) and not _hidden_part(path, self._root):
            self._out.put(path)


class FolderWatcher:
    """One watchdog observer over several folders, restartable when it dies.

    Args:
        folders: existing folders to watch.
        watch: the [watch] config (recursive, polling, poll_interval, filters).
        out: where noticed paths go (the intake thread reads it).
        polling: force the polling observer.
    """

    def __init__(
        self,
        folders: list[Path],
        watch: WatchConfig,
        out: queue.SimpleQueue[Path],
        polling: bool = False,
    ) -> None:
        self.folders = folders
        self.watch = watch
        self.out = out
        self.want_polling = polling or watch.polling or any(is_network_fs(f) for f in folders)
        self.kind = "polling" if self.want_polling else "native"
        self._observer: Any = None
        self.missing: list[Path] = []

    def start(self) -> str:
        """Start observing; falls back to polling when native events are unavailable.

        Returns:
            "native" or "polling".
        """
        from watchdog.observers.polling import PollingObserver

        if not self.want_polling:
            try:
                from watchdog.observers import Observer

                self._observer = self._schedule(Observer())
                self._observer.start()
                self.kind = "native"
                return self.kind
            except OSError as exc:  # e.g. inotify watch limit reached
                log.warning("native file events unavailable (%s); polling instead", exc)
                self._stop_observer()
        self._observer = self._schedule(PollingObserver(timeout=self.watch.poll_interval))
        self._observer.start()
        self.kind = "polling"
        return self.kind

    def _schedule(self, observer: Any) -> Any:
        # A folder that is gone (an unmounted drive, a deleted folder) is skipped, so the
        # others keep being watched; `alive()` asks for a restart once it is back.
        self.missing = [f for f in self.folders if not f.is_dir()]
        for folder in self.missing:
            log.warning("watch folder %s is missing; watching the others", folder)
        for folder in self.folders:
            if folder in self.missing:
                continue
            observer.schedule(
                _EnqueueHandler(self.out, self.watch, folder),
                str(folder),
                recursive=self.watch.recursive,
            )
        return observer

    def alive(self) -> bool:
        """Whether the observer and all its emitters are still running."""
        obs = self._observer
        if obs is None or not obs.is_alive():
            return False
        watched = [f for f in self.folders if f not in self.missing]
        if any(f.is_dir() for f in self.missing) or any(not f.is_dir() for f in watched):
            return False  # a folder came back or went away: schedule again
        return all(e.is_alive() for e in getattr(obs, "emitters", ()))

    def restart(self) -> str:
        """Stop whatever is left of the observer and start a fresh one."""
        self._stop_observer()
        return self.start()

    def _stop_observer(self) -> None:
        obs, self._observer = self._observer, None
        if obs is None:
            return
        try:
            obs.stop()
            if obs.is_alive():
                obs.join(timeout=5)
        except Exception:  # noqa: BLE001 - a broken observer must not block shutdown
            log.exception("stopping the observer failed")

    def stop(self) -> None:
        self._stop_observer()
