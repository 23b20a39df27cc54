"""Reading tags, planning a write under the overwrite policy, the safe atomic write, and undo."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.errors import BounceTagError, FileBusyError, TagError
from bouncetag.tags import mapping as m
from bouncetag.tags.formats import Container, RawTags, Updates, detect

if TYPE_CHECKING:
    from bouncetag.classifier.results import Analysis
    from bouncetag.config import TagsConfig
    from bouncetag.store import Store, TagWrite

TEMP_SUFFIX = ".bouncetag-tmp"
_COUNTED = (*m.MAIN_FIELDS, *m.RIFF_SLOTS)  # fields a user cares about (not provenance)
_LABELS = {
    m.BPM: "bpm", m.BPM_PRECISE: "bpm (precise)", m.GENRE: "genre",
    m.GENRE_RIFF: "genre (RIFF INFO)", m.BPM_RIFF: "bpm (RIFF INFO)", m.TRANSCRIPT: "transcript",
}


@dataclass(frozen=True)
class TagSnapshot:
    """What a file's tags hold now.

    `fields` maps our field names (mapping.ALL_FIELDS, plus genre_riff/bpm_riff for WAV's RIFF
    INFO) to their text; multiple values are joined with "; ". A WAV with a genre or BPM only in
    RIFF INFO shows it under genre/bpm_precise too. `ours` names the fields whose current value
    is the one bouncetag wrote (per the provenance tag); any other value there is the user's.
    """

    path: str
    format: str
    fields: dict[str, str]
    other: dict[str, str]
    ours: frozenset[str]
    raw: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    stat_key: tuple[int, int, int] = field(default=(0, 0, 0), repr=False, compare=False)

    @property
    def bpm(self) -> float | None:
        """The precise BPM if present, else the integer one; None if absent or not a number."""
        for key in (m.BPM_PRECISE, m.BPM):
            value = _parse_bpm(self.fields.get(key))
            if value is not None:
                return value
        return None

    @property
    def genre(self) -> str | None:
        return self.fields.get(m.GENRE) or None


@dataclass(frozen=True)
class FieldChange:
    """One field in a plan. action: "write" | "keep" | "skip"; old/new are display text."""

    field: str
    old: str | None
    new: str | None
    action: str
    reason: str = ""


@dataclass(frozen=True)
class TagPlan:
    """What a write would do to one file, field by field."""

    path: str
    format: str
    changes: tuple[FieldChange, ...]
    updates: dict[str, tuple[str, ...] | None] = field(default_factory=dict, repr=False)
    previous: dict[str, tuple[str, ...] | None] = field(default_factory=dict, repr=False)
    stat_key: tuple[int, int, int] = field(default=(0, 0, 0), repr=False, compare=False)

    @property
    def writes(self) -> bool:
        """True if any tag would change."""
        return bool(self.updates)


@dataclass(frozen=True)
class TagWriteReport:
    """The outcome for one file. size/mtime_ns: the file right after our write (for the watcher)."""

    path: str
    plan: TagPlan
    written: bool
    message: str
    size: int | None = None
    mtime_ns: int | None = None


# ---- reading ----------------------------------------------------------------------------------
def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _join(values: tuple[str, ...] | list[str] | None) -> str | None:
    return "; ".join(values) if values else None


def _fingerprint(slot: str, text: str) -> str:
    if slot == m.TRANSCRIPT:
        return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    return text


def _wrote_map(raw: RawTags) -> dict[str, str]:
    try:
        value = json.loads(_join(raw.get(m.WROTE)) or "{}")
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _ours(raw: RawTags, fields: dict[str, str]) -> frozenset[str]:
    """The fields whose current value is the one bouncetag wrote (per BOUNCETAG_WROTE)."""
    wrote = _wrote_map(raw)
    ours = {
        slot for slot in m.MAIN_FIELDS
        if slot in wrote and fields.get(slot)
        and _fingerprint(slot, fields[slot]) == wrote[slot]
    }
    for riff_slot, main in ((m.GENRE_RIFF, m.GENRE), (m.BPM_RIFF, m.BPM_PRECISE)):
        if fields.get(riff_slot) and fields[riff_slot] == wrote.get(main):
            ours.add(riff_slot)
    return frozenset(ours)


def _snapshot(path: Path, container: Container) -> TagSnapshot:
    st = os.stat(path)
    raw, other = container.read(path)
    fields = {slot: _join(values) or "" for slot, values in raw.items()}
    # A WAV whose only genre/BPM is in RIFF INFO still shows it as its genre/BPM.
    for slot, riff_slot in ((m.GENRE, m.GENRE_RIFF), (m.BPM_PRECISE, m.BPM_RIFF)):
        if not fields.get(slot) and raw.get(riff_slot):
            fields[slot] = _join(raw[riff_slot]) or ""
    return TagSnapshot(str(path), container.name, fields, other, _ours(raw, fields), raw,
                       _stat_key(st))


def read_tags(path: Path | str) -> TagSnapshot:
    """Read our fields, the provenance and the common other tags of one file.

    Args:
        path: an audio file in any supported format (the format is found from its content).
    Returns:
        A TagSnapshot; `fields` holds only tags that are present.
    Raises:
        TagError: the file is missing, not a supported audio file, or its tags are unreadable.
    """
    path = Path(path)
    return _snapshot(path, detect(path))


def _parse_bpm(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text.split(";")[0].strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 < value < 1000 else None


def _acid_tempo(path: Path) -> float | None:
    """The tempo in a WAV `acid` chunk (little-endian float32 at offset 20 of its data)."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = path.stat().st_size
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            header = fh.read(8)
            (chunk_size,) = struct.unpack("<I", header[4:8])
            if header[:4] == b"acid" and chunk_size >= 24:
                data = fh.read(24)
                if len(data) < 24:
                    return None
                (tempo,) = struct.unpack("<f", data[20:24])
                return _parse_bpm(f"{tempo:.3f}")
            offset += 8 + chunk_size + (chunk_size & 1)
    return None


def read_file_bpm(path: Path | str) -> float | None:
    """A tempo the DAW or the user already put in the file, or None.

    Looks at ID3 TXXX:BPM / TBPM, Vorbis BPM, MP4 ----:com.apple.iTunes:BPM / tmpo, then a WAV
    `acid` chunk. A BPM that bouncetag itself wrote (per the provenance) is ignored, so an old
    estimate never masquerades as the DAW's tempo. Never raises: an unreadable or non-audio file
    gives None, and the decode stage reports the real problem.
    """
    path = Path(path)
    try:
        snapshot = read_tags(path)
        if not ({m.BPM, m.BPM_PRECISE} & snapshot.ours):
            bpm = snapshot.bpm
            if bpm is not None:
                return bpm
        if snapshot.format == "WAV":
            return _acid_tempo(path)
    except (BounceTagError, OSError, ValueError, struct.error):
        return None
    return None


# ---- planning ---------------------------------------------------------------------------------
def _decide(present: bool, same: bool, policy: str, ours: bool) -> tuple[str, str]:
    if not present:
        return "write", ""
    if same:
        return "keep", "unchanged"
    if policy == "always":
        return "write", "always"
    if policy == "ours":
        return ("write", "ours") if ours else ("keep", "set by the user; policy 'ours'")
    return "keep", "already set; policy 'never'"


def plan_write(
    path: Path | str, analysis: Analysis, tags_config: TagsConfig, min_confidence: float
) -> TagPlan:
    """Decide, field by field, what writing `analysis` into `path` would change.

    Policies (per field, from tags_config): "never" fills only empty fields, "ours" also
    replaces values bouncetag wrote itself (per the provenance), "always" replaces anything.
    A genre below `min_confidence` and an instrumental (empty) transcript are skipped.

    Args:
        path: the audio file.
        analysis: the results to write.
        tags_config: policies and whether to write the transcript.
        min_confidence: the lowest genre probability that is written.
    Returns:
        A TagPlan; `plan.writes` is False when nothing would change.
    Raises:
        TagError: the file is not a supported audio file, or is truncated or broken.
    """
    path = Path(path)
    container = detect(path)
    container.check(path)
    snap = _snapshot(path, container)
    raw = snap.raw
    changes: list[FieldChange] = []
    updates: Updates = {}

    def group(slots: tuple[str, ...], desired: dict[str, str], policy: str, owned: bool) -> None:
        present = any(raw.get(s) for s in slots)
        same = all(_join(raw.get(s)) == desired[s] for s in slots)
        action, reason = _decide(present, same, policy, owned)
        for slot in slots:
            old, new = _join(raw.get(slot)), desired[slot]
            if action == "write" and old != new:
                updates[slot] = (new,)
                changes.append(FieldChange(slot, old, new, "write", reason))
            elif action == "write":
                changes.append(FieldChange(slot, old, new, "keep", "unchanged"))
            else:
                changes.append(FieldChange(slot, old, new, "keep", reason))

    def skip(slots: tuple[str, ...], reason: str) -> None:
        for slot in slots:
            changes.append(FieldChange(slot, _join(raw.get(slot)), None, "skip", reason))

    riff = m.GENRE_RIFF in container.slots
    bpm_slots = (m.BPM, m.BPM_PRECISE, m.BPM_RIFF) if riff else (m.BPM, m.BPM_PRECISE)
    if analysis.tempo is None:
        skip(bpm_slots, "no tempo")
    elif analysis.tempo.source == "estimate" and analysis.tempo.confidence <= 0.0:
        # Silence, a lone tone or a clip too short to measure: the estimator's bpm is only its
        # prior, and a made-up tempo must not land in the file.
        skip(bpm_slots, "no beat found")
    else:
        precise = f"{analysis.tempo.bpm:.1f}"
        desired = {m.BPM: str(analysis.tempo.bpm_int), m.BPM_PRECISE: precise, m.BPM_RIFF: precise}
        owned = all(s in snap.ours for s in bpm_slots if raw.get(s))
        group(bpm_slots, desired, tags_config.bpm_policy, owned)

    genre_slots = (m.GENRE, m.GENRE_RIFF) if riff else (m.GENRE,)
    genre = analysis.genre
    if genre is None:
        skip(genre_slots, analysis.genre_note or "no genre model")
    elif genre.confidence < min_confidence:
        skip(genre_slots, f"confidence {genre.confidence:.2f} < {min_confidence:.2f}")
    else:
        owned = all(s in snap.ours for s in genre_slots if raw.get(s))
        group(genre_slots, {s: genre.genre for s in genre_slots}, tags_config.genre_policy, owned)

    transcript = analysis.transcript
    if not tags_config.write_transcript:
        skip((m.TRANSCRIPT,), "transcript writing is off")
    elif transcript is None or transcript.backend == "none":
        skip((m.TRANSCRIPT,), "not transcribed")
    elif transcript.is_instrumental:
        skip((m.TRANSCRIPT,), "instrumental: no speech")
    else:
        group((m.TRANSCRIPT,), {m.TRANSCRIPT: transcript.text.strip()},
              tags_config.transcript_policy, m.TRANSCRIPT in snap.ours)

    if updates:
        changes.extend(_provenance(raw, snap.ours, updates, analysis))
    previous = {slot: raw.get(slot) for slot in updates}
    return TagPlan(str(path), container.name, tuple(changes), dict(updates), previous,
                   snap.stat_key)


def _provenance(
    raw: RawTags, ours: frozenset[str], updates: Updates, analysis: Analysis
) -> list[FieldChange]:
    """Provenance updates (added to `updates` in place) for a write that changes something."""
    wrote = {k: v for k, v in _wrote_map(raw).items() if k in ours}
    for slot, values in list(updates.items()):
        if slot in m.MAIN_FIELDS and values:
            wrote[slot] = _fingerprint(slot, _join(values) or "")
    new: dict[str, str | None] = {
        m.TIME: datetime.now(UTC).replace(microsecond=0).isoformat(),
        m.WROTE: json.dumps(wrote, sort_keys=True, ensure_ascii=False),
    }
    genre = analysis.genre
    if m.GENRE in updates and genre is not None:
        new[m.MODEL] = genre.model_version or None
        new[m.CONFIDENCE] = f"{genre.confidence:.4f}"
        new[m.TOP3] = ", ".join(f"{label}:{p:.3f}" for label, p in genre.top[:3])
    elif m.GENRE not in wrote:
        new.update({m.MODEL: None, m.CONFIDENCE: None, m.TOP3: None})
    out = []
    for slot, value in new.items():
        old = _join(raw.get(slot))
        if value == old:
            continue
        updates[slot] = (value,) if value is not None else None
        out.append(FieldChange(slot, old, value, "write", "provenance"))
    return out


def _short(text: str | None, limit: int = 60) -> str:
    if text is None:
        return "(empty)"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_plan(plan: TagPlan) -> list[str]:
    """Human lines for a plan, e.g. "genre: (empty) → hiphop", "bpm: 91 → 92 (ours)".

    Provenance fields are summarised in one line rather than shown one by one.
    """
    lines = []
    # WAV's RIFF INFO copies follow their main field; show them only through it.
    riff_old = {main: c.old for c in plan.changes for main, riff in
                ((m.GENRE, m.GENRE_RIFF), (m.BPM_PRECISE, m.BPM_RIFF)) if c.field == riff}
    for change in plan.changes:
        if change.field in m.PROVENANCE_FIELDS or change.field in m.RIFF_SLOTS:
            continue
        if change.old is None and riff_old.get(change.field) is not None:
            change = replace(change, old=riff_old[change.field])
        label = _LABELS.get(change.field, change.field)
        if change.action == "write":
            new = "(removed)" if change.new is None else _short(change.new)
            line = f"{label}: {_short(change.old)} → {new}"
            if change.reason and change.old is not None:
                line += f" ({change.reason})"
        elif change.action == "skip":
            line = f"{label}: skip ({change.reason})"
        elif change.reason == "unchanged":
            line = f"{label}: {_short(change.old)} (unchanged)"
        elif change.old is None:
            continue  # an empty slot kept with its group says nothing useful
        else:
            line = f"{label}: keep {_short(change.old)} ({change.reason})"
        lines.append(line)
    if any(c.field in m.PROVENANCE_FIELDS for c in plan.changes):
        lines.append("provenance: bouncetag_* tags updated")
    return lines


# ---- the safe write ---------------------------------------------------------------------------
def temp_path_for(path: Path) -> Path:
    """The temp copy's name: hidden, same folder, and not ending in an audio extension."""
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive, non-blocking advisory lock on the original while we work on it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        raise FileBusyError("cannot open for reading (permission denied); left untouched",
                            path) from None
    except OSError as exc:
        raise TagError(f"cannot open: {exc.strerror or exc}", path) from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: os.replace fails on an open file
            pass
        except BlockingIOError:
            raise FileBusyError("locked by another program; left untouched", path) from None
        yield
    finally:
        os.close(fd)  # closing drops the lock


def check_writable(path: Path | str) -> None:
    """Refuse early, before any analysis, a file that a tag write would refuse anyway.

    Raises:
        TagError: not a regular file or unreadable.
        FileBusyError: the file or its folder is read-only.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise TagError(f"cannot stat: {exc.strerror}", path) from None
    _check_writable(path, st)


def _check_writable(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise TagError("not a regular file", path)
    # Mode bits, not only os.access: root may write anything, but a producer who made a bounce
    # read-only means "do not touch".
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(
        path, os.W_OK
    ):
        raise FileBusyError("read-only file; left untouched", path)
    folder_mode = path.parent.stat().st_mode
    if not folder_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(
        path.parent, os.W_OK | os.X_OK
    ):
        raise FileBusyError("its folder is read-only, so no safe temp copy can be made; "
                            "left untouched", path)


def _same(a: tuple[str, ...] | list[str] | None, b: tuple[str, ...] | list[str] | None) -> bool:
    return tuple(a or ()) == tuple(b or ())


def _stores(container: Container, slot: str) -> bool:
    """Whether this container keeps `slot` in a tag of its own (Vorbis derives the integer BPM)."""
    if slot in m.RIFF_SLOTS:
        return slot in container.slots
    keys = m.KEYS[slot]
    if container.name in ("FLAC", "OGG", "OPUS"):
        return keys.vorbis is not None
    return (keys.mp4 if container.name == "M4A" else keys.id3) is not None


def _id3_version_of(path: Path, container: Container) -> int:
    """The file's current ID3 major version (3 or 4), kept when no config says otherwise (undo)."""
    if container.name not in ("MP3", "WAV", "AIFF"):
        return 4
    import mutagen

    try:
        tags = mutagen.File(str(path)).tags
        return 3 if tags is not None and tags.version[1] == 3 else 4
    except Exception:  # noqa: BLE001 - unreadable here fails loudly in the write itself
        return 4


def _safe_apply(
    path: Path,
    container: Container,
    updates: Updates,
    id3_version: int | None,
    expect: tuple[int, int, int] | None,
) -> os.stat_result:
    """Write `updates` to a temp copy, verify it, and atomically replace the original.

    Returns:
        The stat of the new file.
    Raises:
        FileBusyError: read-only, locked, or changed before or during the write.
        TagError: the write could not be verified. In every failure the original is untouched.
    """
    st = os.stat(path)
    _check_writable(path, st)
    if expect is not None and expect != (0, 0, 0) and _stat_key(st) != expect:
        raise FileBusyError("changed since its tags were read; left untouched", path)
    tmp = temp_path_for(path)
    with _locked(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a stale copy from a killed writer: we hold the lock, so it is not live
        try:
            version = id3_version or _id3_version_of(path, container)
            payload_before = container.payload_digest(path)
            others_before = container.other_tags(path)
            container.write(path, tmp, updates, version)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            if hasattr(os, "geteuid") and os.geteuid() == 0 and st.st_uid != os.getuid():
                with contextlib.suppress(OSError):
                    os.chown(tmp, st.st_uid, st.st_gid)
            _verify(tmp, path, container, updates, payload_before, others_before)
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            if _stat_key(os.stat(path)) != _stat_key(st):
                raise FileBusyError("changed while being tagged; left untouched", path)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, PermissionError):
                raise FileBusyError(f"permission denied ({exc.strerror}); left untouched",
                                    path) from None
            if isinstance(exc, OSError):  # e.g. the disk is full
                raise TagError(f"cannot write the tagged copy ({exc.strerror or exc}); "
                               "left untouched", path) from None
            raise
    _fsync_dir(path.parent)
    return os.stat(path)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _verify(
    tmp: Path, original: Path, container: Container, updates: Updates,
    payload_before: str, others_before: dict[str, str],
) -> None:
    try:
        container.check(tmp)
        raw_after = container.read(tmp)[0]
        others_after = container.other_tags(tmp)
        payload_after = container.payload_digest(tmp)
    except TagError as exc:
        raise TagError(f"the tagged copy did not read back ({exc.message}); left untouched",
                       original) from None
    if payload_after != payload_before:
        raise TagError("the audio changed while writing tags; left untouched", original)
    for slot, values in updates.items():
        if _stores(container, slot) and not _same(raw_after.get(slot), values):
            raise TagError(f"{slot} did not read back as written; left untouched", original)
    if others_after != others_before:
        changed = sorted(k for k in others_before.keys() | others_after.keys()
                         if others_before.get(k) != others_after.get(k))
        hint = ""
        if any(k.startswith("ID3:") for k in changed):
            hint = " (with tags.id3_version = 3, these may be ID3v2.4-only frames)"
        raise TagError(f"writing would change or drop your other tags {', '.join(changed[:5])}"
                       f"{hint}; left untouched", original)


def _as_json(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values else None


def write_analysis(
    path: Path | str,
    analysis: Analysis,
    tags_config: TagsConfig,
    min_confidence: float,
    store: Store | None = None,
    dry_run: bool = False,
) -> TagWriteReport:
    """Write an analysis into a file's tags, safely, and journal the old values for undo.

    The write goes to a hidden temp copy in the same folder (`.<name>.bouncetag-tmp`), which is
    re-read and checked (tags present, audio payload byte-identical, other tags unchanged);
    the original must not have changed meanwhile (size, mtime, inode); then os.replace swaps it
    in atomically. The file keeps its mode; its mtime becomes the time of the write.

    Args:
        path: the audio file.
        analysis: what to write.
        tags_config: overwrite policies, ID3 version, transcript on/off.
        min_confidence: genre probabilities below this are not written.
        store: where to journal the write (None: no undo record).
        dry_run: plan only; nothing is written or journaled.
    Returns:
        A TagWriteReport with the plan; `written` tells whether the file changed.
    Raises:
        FileBusyError: the file is read-only, locked, or changed while being tagged.
        TagError: the file is not a supported audio file, is broken, or the write did not
            verify. The original is byte-identical after any failure.
    """
    # A symlinked bounce: tag the real file (replacing the link would leave the target as it was).
    path = Path(path).absolute()
    if path.is_symlink():
        path = path.resolve()
    plan = plan_write(path, analysis, tags_config, min_confidence)
    main_writes = [c for c in plan.changes if c.action == "write" and c.field in _COUNTED]
    shown = sum(1 for c in main_writes if c.field in m.MAIN_FIELDS) or len(main_writes)
    if dry_run:
        return TagWriteReport(str(path), plan, False,
                              f"dry run: {shown} field(s) would change")
    if not main_writes:
        return TagWriteReport(str(path), plan, False, "nothing to change")
    container = detect(path)
    new_stat = _safe_apply(path, container, plan.updates, tags_config.id3_version, plan.stat_key)
    if store is not None:
        store.record_tag_write(
            str(path.resolve()),
            {s: _as_json(v) for s, v in plan.previous.items()},
            {s: _as_json(v) for s, v in plan.updates.items()},
        )
    return TagWriteReport(str(path), plan, True, f"wrote {shown} field(s)",
                          new_stat.st_size, new_stat.st_mtime_ns)


# ---- undo -------------------------------------------------------------------------------------
def _undo_write(write: TagWrite, store: Store, id3_version: int | None) -> TagWriteReport:
    path = Path(write.path)
    container = detect(path)
    container.check(path)
    snap = _snapshot(path, container)
    updates: Updates = {}
    changes: list[FieldChange] = []
    for slot in sorted(set(write.old) | set(write.new), key=_slot_order):
        current, ours, old = snap.raw.get(slot), write.new.get(slot), write.old.get(slot)
        if _stores(container, slot) and not _same(current, ours):
            changes.append(FieldChange(slot, _join(current), _join(old), "keep",
                                       "changed since bouncetag wrote it"))
            continue
        if _same(current, old):
            continue
        updates[slot] = tuple(old) if old else None
        changes.append(FieldChange(slot, _join(current), _join(old), "write", "undo"))
    plan = TagPlan(str(path), container.name, tuple(changes), updates,
                   {s: snap.raw.get(s) for s in updates}, snap.stat_key)
    kept = [_LABELS.get(c.field, c.field) for c in changes if c.action == "keep"]
    note = f"; kept later edits to {', '.join(kept)}" if kept else ""
    if not updates:
        store.mark_undone(write.id)
        return TagWriteReport(str(path), plan, False, "nothing to restore" + note)
    new_stat = _safe_apply(path, container, updates, id3_version, snap.stat_key)
    store.mark_undone(write.id)
    restored = sum(1 for s in updates if s in m.MAIN_FIELDS) or sum(
        1 for s in updates if s in _COUNTED)
    return TagWriteReport(str(path), plan, True, f"restored {restored} field(s){note}",
                          new_stat.st_size, new_stat.st_mtime_ns)


def _slot_order(slot: str) -> int:
    order = (*m.ALL_FIELDS, *m.RIFF_SLOTS)
    return order.index(slot) if slot in order else len(order)


def undo(path: Path | str, store: Store, id3_version: int | None = None) -> TagWriteReport:
    """Restore the tags a file had before bouncetag's latest (not yet undone) write to it.

    Fields the user changed after that write are left as the user set them. Fields that did
    not exist before are deleted again. The restore uses the same safe write.

    Args:
        path: the audio file.
        store: the journal.
        id3_version: 3 or 4; None keeps the file's current ID3 version.
    Returns:
        A TagWriteReport.
    Raises:
        TagError: nothing to undo for this file, or the file cannot be written safely.
    """
    resolved = Path(path).resolve()
    writes = store.tag_writes(str(resolved))
    if not writes:
        raise TagError("no bouncetag tag write to undo for this file", resolved)
    return _undo_write(writes[0], store, id3_version)


def undo_last(store: Store, n: int, id3_version: int | None = None) -> list[TagWriteReport]:
    """Undo the `n` most recent tag writes across all files, newest first.

    Args:
        store: the journal.
        n: how many writes to undo.
        id3_version: 3 or 4; None keeps each file's current ID3 version.
    Returns:
        One report per write; a file that fails is reported (written=False, the message says
        why) and the rest carry on.
    """
    reports = []
    for write in store.tag_writes()[: max(n, 0)]:
        try:
            reports.append(_undo_write(write, store, id3_version))
        except BounceTagError as exc:
            empty = TagPlan(write.path, "?", ())
            reports.append(TagWriteReport(write.path, empty, False, str(exc)))
    return reports


def clean_stale_temps(folder: Path | str, recursive: bool = True) -> list[Path]:
    """Delete temp copies a killed writer left in `folder` (and below, if recursive).

    A temp copy whose original is locked by a live writer is left alone.

    Args:
        folder: a watched folder.
        recursive: also look in subfolders.
    Returns:
        The temp files removed.
    """
    removed = []
    pattern = f".*{TEMP_SUFFIX}"
    found = Path(folder).rglob(pattern) if recursive else Path(folder).glob(pattern)
    for tmp in found:
        original = tmp.with_name(tmp.name[1:-len(TEMP_SUFFIX)])
        try:
            if original.exists():
                with _locked(original):
                    tmp.unlink()
            else:
                tmp.unlink()
            removed.append(tmp)
        except (BounceTagError, OSError):
            continue
    return removed
