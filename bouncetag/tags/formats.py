"""One tag adapter per container (MP3, WAV, AIFF, FLAC, Ogg Vorbis/Opus, M4A) behind one interface.

Each adapter reads and writes our fields as raw value lists ("slots"), checks that a file's
structure is sound before we touch it, and fingerprints the audio payload so a write can prove
it left the audio alone. mutagen does the tag work; the structure checks and the RIFF INFO list
are parsed here because mutagen does not cover them.
"""

from __future__ import annotations

import hashlib
import mmap
import shutil
import struct
from pathlib import Path
from typing import Any, BinaryIO

from bouncetag.errors import TagError
from bouncetag.tags import mapping as m

# slot -> values; a missing slot means the tag is absent. Values are strings exactly as stored.
RawTags = dict[str, tuple[str, ...]]
# slot -> new values, or None to delete the tag.
Updates = dict[str, tuple[str, ...] | None]


class Container:
    """The interface every format implements. Methods raise TagError naming the file."""

    name = "?"
    slots: tuple[str, ...] = m.ALL_FIELDS

    def check(self, path: Path) -> None:
        """Raise TagError if the file is truncated or its structure is broken."""

    def read(self, path: Path) -> tuple[RawTags, dict[str, str]]:
        """Our slots and the other tags (title, artist, album, date, comment)."""
        raise NotImplementedError

    def write(self, src: Path, dst: Path, updates: Updates, id3_version: int) -> None:
        """Copy `src` to `dst` (a new file) and apply `updates` to the copy only."""
        shutil.copyfile(src, dst)
        self._apply(dst, updates, id3_version)

    def _apply(self, path: Path, updates: Updates, id3_version: int) -> None:
        raise NotImplementedError

    def payload_digest(self, path: Path) -> str:
        """A hash of the audio payload only (not the tags): equal before and after a tag write."""
        raise NotImplementedError

    def other_tags(self, path: Path) -> dict[str, str]:
        """Every tag that is not one of ours, as key -> text (binary values hashed).

        A write must leave this exactly as it was: the user's tags are never lost.
        """
        raise NotImplementedError


def _value_text(value: Any) -> str:
    """Text for comparing a tag value; big binary values (pictures) are hashed."""
    if isinstance(value, bytes | bytearray):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return str(value)


def _fail(path: Path, message: str) -> TagError:
    return TagError(message, path)


def _mutagen_call(path: Path, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a mutagen call, turning its many exception types into one TagError."""
    import mutagen

    try:
        return fn(*args, **kwargs)
    except TagError:
        raise
    except (mutagen.MutagenError, OSError, ValueError, struct.error, EOFError, IndexError) as exc:
        detail = str(exc) or type(exc).__name__
        raise _fail(path, f"cannot {what}: {detail}") from None


# ---- ID3 (MP3, and the ID3 chunk inside WAV and AIFF) -------------------------------------------
def _id3_get(tags: Any, slot: str) -> tuple[str, ...] | None:
    key = m.KEYS[slot].id3 if slot in m.KEYS else None
    if key is None or tags is None:
        return None
    if key == "USLT":
        frames = [f for f in tags.getall("USLT") if f.desc == ""]
        return (str(frames[0].text),) if frames else None
    frames = tags.getall(key)
    if not frames:
        return None
    values = tuple(str(t) for t in frames[0].text)
    return values or None


def _id3_set(tags: Any, slot: str, values: tuple[str, ...] | None) -> None:
    from mutagen import id3

    key = m.KEYS[slot].id3 if slot in m.KEYS else None
    if key is None:
        return
    if key == "USLT":
        for frame in [f for f in tags.getall("USLT") if f.desc == ""]:
            del tags[frame.HashKey]
        if values:
            tags.add(id3.USLT(encoding=3, lang="eng", desc="", text=values[0]))
        return
    tags.delall(key)
    if not values:
        return
    if key.startswith("TXXX:"):
        tags.add(id3.TXXX(encoding=3, desc=key[5:], text=list(values)))
    else:
        tags.add(id3.Frames[key](encoding=3, text=list(values)))


def _to_id3_version(tags: Any, version: int) -> None:
    """mutagen saves v2.4 frames under a v2.3 header unless the frames are converted first.

    The conversion drops v2.4-only frames (TMOO, TSOP, ...); the write's verification then
    refuses the file rather than lose them.
    """
    if version == 3:
        tags.update_to_v23()
    else:
        tags.update_to_v24()


def _id3_others(tags: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if tags is None:
        return out
    for name, key in m.OTHER_ID3.items():
        frames = tags.getall(key)
        if frames and frames[0].text:
            out[name] = "; ".join(str(t) for t in frames[0].text)
    # ffmpeg writes the comment as TXXX:comment, everyone else as COMM
    comments = [f for f in tags.getall("COMM") if f.text] or tags.getall("TXXX:comment")
    if comments and comments[0].text:
        out["comment"] = "; ".join(str(t) for t in comments[0].text)
    return out


_ID3_OURS = {k.id3 for k in m.FIELD_TABLE if k.id3 and k.id3 != "USLT"}


def _id3_other_tags(tags: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if tags is None:
        return out
    for key, frame in tags.items():
        if key in _ID3_OURS or key.startswith("USLT::"):  # USLT with no description: ours
            continue
        text = frame.pprint()
        data = getattr(frame, "data", None)
        if isinstance(data, bytes):
            text += " " + _value_text(data)
        out[f"ID3:{key}"] = text
    return out


def _id3_read(tags: Any, slots: tuple[str, ...]) -> RawTags:
    raw: RawTags = {}
    for slot in slots:
        values = _id3_get(tags, slot)
        if values is not None:
            raw[slot] = values
    return raw


class Mp3Container(Container):
    name = "MP3"

    def _load(self, path: Path) -> Any:
        from mutagen import id3

        def load() -> Any:
            try:
                return id3.ID3(str(path))
            except id3.ID3NoHeaderError:
                return id3.ID3()

        return _mutagen_call(path, "read ID3 tags", load)

    def check(self, path: Path) -> None:
        from mutagen.mp3 import MP3

        _mutagen_call(path, "read MP3 stream", MP3, str(path))
        _check_mpeg_frames(path)

    def read(self, path: Path) -> tuple[RawTags, dict[str, str]]:
        tags = self._load(path)
        return _id3_read(tags, self.slots), _id3_others(tags)

    def other_tags(self, path: Path) -> dict[str, str]:
        out = _id3_other_tags(self._load(path))
        with path.open("rb") as fh:  # an ID3v1 tag is rewritten from the v2 values by mutagen
            fh.seek(max(path.stat().st_size - 128, 0))
            tail = fh.read(128)
        if tail[:3] == b"TAG":
            out["ID3v1:title+artist"] = tail[3:63].decode("latin-1")
        return out

    def _apply(self, path: Path, updates: Updates, id3_version: int) -> None:
        tags = self._load(path)
        for slot, values in updates.items():
            _id3_set(tags, slot, values)
        _to_id3_version(tags, id3_version)
        _mutagen_call(path, "write ID3 tags", tags.save, str(path), v2_version=id3_version)

    def payload_digest(self, path: Path) -> str:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start, end = _mpeg_bounds(data)
            return hashlib.sha256(data[start:end]).hexdigest()


def _id3v2_size(data: bytes | mmap.mmap, offset: int = 0) -> int:
    """Bytes taken by an ID3v2 tag at `offset` (0 if none)."""
    head = data[offset:offset + 10]
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for b in head[6:10]:
        size = (size << 7) | (b & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _mpeg_bounds(data: bytes | mmap.mmap) -> tuple[int, int]:
    """(start, end) of the MPEG audio frames: after the ID3v2 tag, before ID3v1/APEv2 tags."""
    start = _id3v2_size(data)
    end = len(data)
    if end - start >= 128 and data[end - 128:end - 125] == b"TAG":
        end -= 128
    if end - start >= 32 and data[end - 32:end - 24] == b"APETAGEX":
        (ape_size,) = struct.unpack("<I", data[end - 20:end - 16])
        end -= ape_size + (32 if data[end - 9] & 0x80 else 0)  # flags bit 31: has a header
        end = max(end, start)
    return start, end


_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_length(h: bytes | mmap.mmap) -> int | None:
    """Length of the MPEG audio frame whose 4-byte header is `h`, or None if not a header."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return None
    version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    bitrate_index, rate_index, padding = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    table = (3 if version == 3 else 2, layer if version == 3 or layer == 3 else 2)
    bitrate = _BITRATES[table][bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    if layer == 3:  # Layer I
        return (12 * bitrate // rate + padding) * 4
    if layer == 1 and version != 3:  # Layer III, MPEG-2/2.5
        return 72 * bitrate // rate + padding
    return 144 * bitrate // rate + padding


def _check_mpeg_frames(path: Path) -> None:
    """Walk the MPEG frames; raise TagError if the last one runs past the end of the file."""
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            raise _fail(path, "empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start, end = _mpeg_bounds(data)
            if start > len(data):
                raise _fail(path, "truncated: the ID3 tag is longer than the file")
            pos = start
            limit = min(end, start + 65536)
            while pos + 4 <= limit:  # first frame whose successor is also a frame
                length = _mpeg_frame_length(data[pos:pos + 4])
                if length and (pos + length + 4 > end or _mpeg_frame_length(
                        data[pos + length:pos + length + 4])):
                    break
                pos += 1
            else:
                raise _fail(path, "not an MP3 file: no MPEG audio frames found")
            first, frames = pos, 0
            xing_frames = _xing_frame_count(data[first:first + 200])
            while pos + 4 <= end:
                length = _mpeg_frame_length(data[pos:pos + 4])
                if length is None:
                    break  # trailing junk or an unknown tag: not ours to judge
                if pos + length > end:
                    raise _fail(
                        path, f"truncated MP3: the last audio frame needs {pos + length - end} "
                        "more bytes than the file holds")
                pos += length
                frames += 1
            # Encoders disagree on whether the count includes the Xing frame itself, so allow
            # one frame of slack rather than ever refuse a complete file.
            if xing_frames is not None and frames < xing_frames and pos >= end:
                raise _fail(path, f"truncated MP3: header says {xing_frames} frames, "
                            f"file holds {frames - 1}")


def _xing_frame_count(frame: bytes) -> int | None:
    """The frame count of a Xing/Info header, which sits right after the side info."""
    for at in (36, 21, 13):  # MPEG-1 stereo, MPEG-1 mono / MPEG-2 stereo, MPEG-2 mono
        if frame[at:at + 4] in (b"Xing", b"Info") and at + 12 <= len(frame):
            (flags,) = struct.unpack(">I", frame[at + 4:at + 8])
            if flags & 1:
                return struct.unpack(">I", frame[at + 8:at + 12])[0]
    return None


# ---- RIFF / IFF chunk walking (WAV, AIFF) -------------------------------------------------------
def _chunks(path: Path, big_endian: bool) -> list[tuple[bytes, int, int]]:
    """Top-level (id, header offset, data size) of a RIFF or FORM file; TagError if broken."""
    size = path.stat().st_size
    fmt = ">I" if big_endian else "<I"
    out: list[tuple[bytes, int, int]] = []
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12:
            raise _fail(path, "truncated: shorter than a RIFF/IFF header")
        (declared,) = struct.unpack(fmt, head[4:8])
        if declared + 8 > size:
            raise _fail(path, f"broken chunk size: the file header declares {declared + 8} "
                        f"bytes but the file has {size}")
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            header = fh.read(8)
            chunk_id = header[:4]
            (chunk_size,) = struct.unpack(fmt, header[4:8])
            if offset + 8 + chunk_size > size:
                raise _fail(path, f"broken chunk size: chunk {chunk_id.decode('latin-1')!r} at "
                            f"byte {offset} declares {chunk_size} bytes, only "
                            f"{size - offset - 8} remain")
            out.append((chunk_id, offset, chunk_size))
            offset += 8 + chunk_size + (chunk_size & 1)
    return out


def _chunk_digest(
    path: Path, chunks: list[tuple[bytes, int, int]], wanted: tuple[bytes, ...]
) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk_id, offset, size in chunks:
            if chunk_id in wanted:
                digest.update(chunk_id + struct.pack("<Q", size))
                fh.seek(offset + 8)
                _copy_range(fh, size, digest.update)
    return digest.hexdigest()


def _copy_range(fh: BinaryIO, length: int, sink: Any) -> None:
    while length > 0:
        block = fh.read(min(length, 1 << 20))
        if not block:
            raise TagError("unexpected end of file while copying")
        sink(block)
        length -= len(block)


def _parse_info(data: bytes) -> dict[str, str]:
    """RIFF INFO sub-chunks (after the 'INFO' form type) as id -> text."""
    out: dict[str, str] = {}
    pos = 4
    while pos + 8 <= len(data):
        sub_id = data[pos:pos + 4].decode("latin-1")
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        raw = data[pos + 8:pos + 8 + size].split(b"\0", 1)[0]
        try:
            out[sub_id] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out[sub_id] = raw.decode("latin-1")
        pos += 8 + size + (size & 1)
    return out


def _build_info(entries: dict[str, str]) -> bytes:
    body = b"INFO"
    for sub_id, text in entries.items():
        value = text.encode("utf-8") + b"\0"
        body += sub_id.encode("latin-1")[:4].ljust(4) + struct.pack("<I", len(value)) + value
        if len(value) & 1:
            body += b"\0"
    return body


class _IffId3Container(Container):
    """Shared by WAV and AIFF: an ID3 tag in its own chunk."""

    big_endian = False
    audio_chunks: tuple[bytes, ...] = ()

    def _mutagen_class(self) -> Any:
        raise NotImplementedError

    def _load(self, path: Path) -> Any:
        cls = self._mutagen_class()
        audio = _mutagen_call(path, f"read {self.name}", cls, str(path))
        if audio.tags is None:
            audio.add_tags()
        return audio

    def check(self, path: Path) -> None:
        chunks = _chunks(path, self.big_endian)
        ids = {c[0] for c in chunks}
        missing = [c.decode() for c in self.audio_chunks if c not in ids]
        if missing:
            raise _fail(path, f"broken {self.name}: no {', '.join(missing)} chunk")
        self._load(path)

    def read(self, path: Path) -> tuple[RawTags, dict[str, str]]:
        audio = self._load(path)
        return _id3_read(audio.tags, self.slots), _id3_others(audio.tags)

    def other_tags(self, path: Path) -> dict[str, str]:
        return _id3_other_tags(self._load(path).tags)

    def _apply(self, path: Path, updates: Updates, id3_version: int) -> None:
        audio = self._load(path)
        for slot, values in updates.items():
            if slot not in m.RIFF_SLOTS:
                _id3_set(audio.tags, slot, values)
        _to_id3_version(audio.tags, id3_version)
        _mutagen_call(path, "write the ID3 chunk", audio.save, v2_version=id3_version)

    def payload_digest(self, path: Path) -> str:
        return _chunk_digest(path, _chunks(path, self.big_endian), self.audio_chunks)


class AiffContainer(_IffId3Container):
    name = "AIFF"
    big_endian = True
    audio_chunks = (b"COMM", b"SSND")

    def _mutagen_class(self) -> Any:
        from mutagen.aiff import AIFF

        return AIFF


class WavContainer(_IffId3Container):
    name = "WAV"
    audio_chunks = (b"fmt ", b"data")
    slots = (*m.ALL_FIELDS, *m.RIFF_SLOTS)

    def _mutagen_class(self) -> Any:
        from mutagen.wave import WAVE

        return WAVE

    def _info(self, path: Path) -> dict[str, str]:
        with path.open("rb") as fh:
            for chunk_id, offset, size in _chunks(path, False):
                if chunk_id == b"LIST":
                    fh.seek(offset + 8)
                    data = fh.read(size)
                    if data[:4] == b"INFO":
                        return _parse_info(data)
        return {}

    def read(self, path: Path) -> tuple[RawTags, dict[str, str]]:
        raw, others = super().read(path)
        info = self._info(path)
        for slot, key in m.RIFF_SLOTS.items():
            if info.get(key):
                raw[slot] = (info[key],)
        for name, key in m.OTHER_RIFF.items():
            if name not in others and info.get(key):
                others[name] = info[key]
        return raw, others

    def other_tags(self, path: Path) -> dict[str, str]:
        out = super().other_tags(path)
        ours = set(m.RIFF_SLOTS.values())
        out.update({f"INFO:{k}": v for k, v in self._info(path).items() if k not in ours})
        return out

    def write(self, src: Path, dst: Path, updates: Updates, id3_version: int) -> None:
        riff = {key: updates[slot] for slot, key in m.RIFF_SLOTS.items() if slot in updates}
        if riff:
            self._copy_with_info(src, dst, riff)
        else:
            shutil.copyfile(src, dst)
        self._apply(dst, updates, id3_version)

    def _copy_with_info(
        self, src: Path, dst: Path, riff: dict[str, tuple[str, ...] | None]
    ) -> None:
        """Copy chunk by chunk, setting (or removing) entries of the LIST INFO chunk."""
        chunks = _chunks(src, False)
        done = False
        with src.open("rb") as fin, dst.open("wb") as fout:
            fout.write(b"RIFF\0\0\0\0WAVE")
            for chunk_id, offset, size in chunks:
                fin.seek(offset + 8)
                if chunk_id == b"LIST" and not done:
                    data = fin.read(size)
                    if data[:4] == b"INFO":
                        info = _parse_info(data)
                        for key, values in riff.items():
                            info.pop(key, None)
                            if values:
                                info[key] = "; ".join(values)
                        done = True
                        if len(info) > 0:
                            body = _build_info(info)
                            fout.write(b"LIST" + struct.pack("<I", len(body)) + body)
                        continue
                    fout.write(chunk_id + struct.pack("<I", size) + data)
                else:
                    fout.write(chunk_id + struct.pack("<I", size))
                    _copy_range(fin, size, fout.write)
                if size & 1:
                    pad = fin.read(1)
                    fout.write(pad or b"\0")
            new_info = {key: "; ".join(values) for key, values in riff.items() if values}
            if not done and new_info:
                body = _build_info(new_info)
                fout.write(b"LIST" + struct.pack("<I", len(body)) + body)
            total = fout.tell()
            fout.seek(4)
            fout.write(struct.pack("<I", total - 8))


# ---- Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus) -----------------------------------------------
class _VorbisContainer(Container):
    header_packets = 0

    def _mutagen_class(self) -> Any:
        raise NotImplementedError

    def _load(self, path: Path) -> Any:
        audio = _mutagen_call(path, f"read {self.name}", self._mutagen_class(), str(path))
        if audio.tags is None:
            audio.add_tags()
        return audio

    def check(self, path: Path) -> None:
        self._load(path)
        self.payload_digest(path)  # walks every page / block: a truncated file fails here

    def read(self, path: Path) -> tuple[RawTags, dict[str, str]]:
        tags = self._load(path).tags
        raw: RawTags = {}
        for slot in self.slots:
            key = m.KEYS[slot].vorbis
            if slot == m.BPM:  # Vorbis keeps one BPM (the precise one); derive the integer
                key = m.KEYS[m.BPM_PRECISE].vorbis
            values = tags.get(key) if key else None
            if values:
                raw[slot] = tuple(values)
        if m.BPM in raw:
            raw[m.BPM] = tuple(_int_text(v) for v in raw[m.BPM])
        others = {}
        for name, key in m.OTHER_VORBIS.items():
            values = tags.get(key) or (tags.get("DESCRIPTION") if name == "comment" else None)
            if values:
                others[name] = "; ".join(values)
        return raw, others

    def other_tags(self, path: Path) -> dict[str, str]:
        ours = {k.vorbis.lower() for k in m.FIELD_TABLE if k.vorbis}
        tags = self._load(path).tags.as_dict()
        return {f"VC:{k}": repr(v) for k, v in sorted(tags.items()) if k.lower() not in ours}

    def _apply(self, path: Path, updates: Updates, id3_version: int) -> None:
        audio = self._load(path)
        for slot, values in updates.items():
            key = m.KEYS[slot].vorbis
            if key is None:
                continue
            if key in audio.tags:
                del audio.tags[key]
            if values:
                audio.tags[key] = list(values)
        _mutagen_call(path, "write Vorbis comments", audio.save)


def _int_text(value: str) -> str:
    try:
        return str(int(round(float(value))))
    except ValueError:
        return value


class FlacContainer(_VorbisContainer):
    name = "FLAC"

    def _mutagen_class(self) -> Any:
        from mutagen.flac import FLAC

        return FLAC

    def payload_digest(self, path: Path) -> str:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(10)
            offset = _id3v2_size(head) if head[:3] == b"ID3" else 0
            fh.seek(offset)
            if fh.read(4) != b"fLaC":
                raise _fail(path, "not a FLAC file")
            offset += 4
            streaminfo = b""
            while True:
                fh.seek(offset)
                header = fh.read(4)
                if len(header) < 4:
                    raise _fail(path, "truncated FLAC: metadata runs past the end of the file")
                block_size = int.from_bytes(header[1:4], "big")
                if header[0] & 0x7F == 0:
                    streaminfo = fh.read(block_size)
                offset += 4 + block_size
                if offset > size:
                    raise _fail(path, "truncated FLAC: metadata runs past the end of the file")
                if header[0] & 0x80:
                    break
            digest = hashlib.sha256(streaminfo)
            fh.seek(offset)
            _copy_range(fh, size - offset, digest.update)
            return digest.hexdigest()


class _OggContainer(_VorbisContainer):
    def payload_digest(self, path: Path) -> str:
        """Hash of every audio packet (the header packets, which hold the tags, are skipped)."""
        from mutagen.ogg import OggPage

        digest = hashlib.sha256()
        partial: dict[int, bytes] = {}
        counts: dict[int, int] = {}
        with path.open("rb") as fh:
            while True:
                try:
                    page = OggPage(fh)
                except EOFError:
                    break
                except Exception as exc:  # mutagen raises its own error for a torn page
                    raise _fail(path, f"broken Ogg page: {exc}") from None
                packets = list(page.packets)
                serial = page.serial
                if page.continued and serial in partial and packets:
                    packets[0] = partial.pop(serial) + packets[0]
                if not page.complete and packets:
                    partial[serial] = packets.pop()
                for packet in packets:
                    index = counts.get(serial, 0)
                    counts[serial] = index + 1
                    if index >= self.header_packets:
                        digest.update(struct.pack("<IQ", serial, len(packet)) + packet)
        if not counts:
            raise _fail(path, "not an Ogg file: no pages")
        return digest.hexdigest()


class OggVorbisContainer(_OggContainer):
    name = "OGG"
    header_packets = 3

    def _mutagen_class(self) -> Any:
        from mutagen.oggvorbis import OggVorbis

        return OggVorbis


class OpusContainer(_OggContainer):
    name = "OPUS"
    header_packets = 2

    def _mutagen_class(self) -> Any:
        from mutagen.oggopus import OggOpus

        return OggOpus


# ---- MP4 atoms (M4A) ----------------------------------------------------------------------------
def _top_atoms(path: Path) -> list[tuple[bytes, int, int, int]]:
    """Top-level (type, offset, header length, total size) atoms; TagError if one overruns."""
    size = path.stat().st_size
    out = []
    with path.open("rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            header = fh.read(16)
            (atom_size,) = struct.unpack(">I", header[:4])
            kind, header_len = header[4:8], 8
            if atom_size == 1:
                (atom_size,) = struct.unpack(">Q", header[8:16])
                header_len = 16
            elif atom_size == 0:
                atom_size = size - offset
            if atom_size < header_len or offset + atom_size > size:
                raise _fail(path, f"broken MP4: atom {kind.decode('latin-1')!r} at byte {offset} "
                            f"declares {atom_size} bytes, only {size - offset} remain")
            out.append((kind, offset, header_len, atom_size))
            offset += atom_size
    return out


class Mp4Container(Container):
    name = "M4A"

    def _load(self, path: Path) -> Any:
        from mutagen.mp4 import MP4

        audio = _mutagen_call(path, "read MP4", MP4, str(path))
        if audio.tags is None:
            audio.add_tags()
        return audio

    def check(self, path: Path) -> None:
        atoms = _top_atoms(path)
        kinds = {a[0] for a in atoms}
        if b"moov" not in kinds or b"mdat" not in kinds:
            raise _fail(path, "broken MP4: no moov or mdat atom")
        self._load(path)

    def read(self, path: Path) -> tuple[RawTags, dict[str, str]]:
        tags = self._load(path).tags
        raw: RawTags = {}
        for slot in self.slots:
            key = m.KEYS[slot].mp4
            if key and key in tags:
                values = tuple(_mp4_text(v) for v in tags[key])
                if values:
                    raw[slot] = values
        others = {}
        for name, key in m.OTHER_MP4.items():
            if key in tags and tags[key]:
                others[name] = "; ".join(_mp4_text(v) for v in tags[key])
        return raw, others

    def other_tags(self, path: Path) -> dict[str, str]:
        ours = {k.mp4 for k in m.FIELD_TABLE if k.mp4}
        tags = self._load(path).tags
        return {
            f"MP4:{k}": "|".join(_value_text(v) for v in (vs if isinstance(vs, list) else [vs]))
            for k, vs in tags.items() if k not in ours
        }

    def _apply(self, path: Path, updates: Updates, id3_version: int) -> None:
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        audio = self._load(path)
        for slot, values in updates.items():
            key = m.KEYS[slot].mp4
            if key is None:
                continue
            if key in audio.tags:
                del audio.tags[key]
            if not values:
                continue
            if key == "tmpo":
                audio.tags[key] = [int(round(float(v))) for v in values]
            elif key.startswith("----:"):
                audio.tags[key] = [
                    MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8) for v in values
                ]
            else:
                audio.tags[key] = list(values)
        _mutagen_call(path, "write MP4 atoms", audio.save)

    def payload_digest(self, path: Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for kind, offset, header_len, size in _top_atoms(path):
                if kind == b"mdat":
                    fh.seek(offset + header_len)
                    _copy_range(fh, size - header_len, digest.update)
        return digest.hexdigest()


def _mp4_text(value: Any) -> str:
    if isinstance(value, bytes):  # MP4FreeForm is a bytes subclass
        return bytes(value).decode("utf-8", "replace")
    return str(value)


# ---- detection ----------------------------------------------------------------------------------
def detect(path: Path) -> Container:
    """The adapter for a file, chosen by its content (a .mp3 that is really a WAV is a WAV).

    Raises:
        TagError: the file cannot be read, or is not a format we tag.
    """
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            # A FIFO or device named like audio: opening it could block forever.
            raise _fail(path, "not a regular file")
        with path.open("rb") as fh:
            head = fh.read(64)
            id3_skip = _id3v2_size(head) if head[:3] == b"ID3" else 0
            if id3_skip:
                fh.seek(id3_skip)
                after = fh.read(4)
                if after == b"fLaC":
                    return FlacContainer()
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not an audio file") from None
    except OSError as exc:
        raise _fail(path, f"cannot open: {exc.strerror or exc}") from None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WavContainer()
    if head[:4] == b"RF64":
        raise _fail(path, "RF64 (over 4 GB) WAV files are not supported for tagging")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AiffContainer()
    if head[:4] == b"fLaC":
        return FlacContainer()
    if head[:4] == b"OggS":
        first_packet = head[28:40]
        if first_packet.startswith(b"\x01vorbis"):
            return OggVorbisContainer()
        if first_packet.startswith(b"OpusHead"):
            return OpusContainer()
        raise _fail(path, "unsupported Ogg codec (only Vorbis and Opus are tagged)")
    if head[4:8] == b"ftyp":
        return Mp4Container()
    if id3_skip or _mpeg_frame_length(head[:4]):
        return Mp3Container()
    if not head:
        raise _fail(path, "empty file, not audio")
    raise _fail(path, "not an audio file we can tag (unknown header)")
