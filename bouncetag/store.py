"""SQLite state store: files seen, analyses, labels, tag-write journal, feature cache, train runs."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bouncetag.errors import StoreError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- One row per audio file path the daemon (or analyze --write) has seen.
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT,
    status TEXT NOT NULL,            -- pending | processing | done | failed | skipped
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    result_json TEXT,
    -- size/mtime right after our own tag write, so the watcher can ignore its own echo
    tagged_size INTEGER,
    tagged_mtime_ns INTEGER,
    processed_count INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_status ON files(status);

-- User genre labels, keyed by content hash so they survive renames and moves.
CREATE TABLE IF NOT EXISTS labels (
    content_hash TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    genre TEXT NOT NULL,
    source TEXT NOT NULL,            -- manual | folder | tags | csv
    created_at REAL NOT NULL
);

-- Every tag write with the values it replaced, for `bouncetag undo`.
CREATE TABLE IF NOT EXISTS tag_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    written_at REAL NOT NULL,
    old_json TEXT NOT NULL,
    new_json TEXT NOT NULL,
    undone_at REAL
);
CREATE INDEX IF NOT EXISTS tag_history_path ON tag_history(path);

-- Features per file content and extractor version, so retraining only trains the head.
CREATE TABLE IF NOT EXISTS features (
    content_hash TEXT NOT NULL,
    extractor TEXT NOT NULL,
    version TEXT NOT NULL,
    vector BLOB NOT NULL,            -- float32 little-endian
    transcript TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (content_hash, extractor, version)
);

CREATE TABLE IF NOT EXISTS train_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    finished_at REAL,
    model_version TEXT,
    promoted INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    metrics_json TEXT,
    fingerprint TEXT
);
"""


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: float
    result: dict[str, Any] | None
    tagged_size: int | None
    tagged_mtime_ns: int | None
    processed_count: int
    updated_at: float


@dataclass(frozen=True)
class Label:
    content_hash: str
    path: str
    genre: str
    source: str
    created_at: float


@dataclass(frozen=True)
class TagWrite:
    id: int
    path: str
    written_at: float
    old: dict[str, Any]
    new: dict[str, Any]
    undone_at: float | None


class Store:
    """A thread-safe handle on the SQLite store (WAL mode, so the daemon and CLI can share it).

    Raises:
        StoreError: the database cannot be opened or migrated.
    """

    def __init__(self, db_file: Path | str) -> None:
        self.db_file = Path(db_file)
        self._lock = threading.RLock()
        try:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.db_file), timeout=30, check_same_thread=False, isolation_level=None
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state store: {exc}", self.db_file) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: writers serialise, readers carry on (WAL)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"state store write failed: {exc}", self.db_file) from None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state store read failed: {exc}", self.db_file) from None

    # ---- files ---------------------------------------------------------------------------
    @staticmethod
    def _file(row: sqlite3.Row) -> FileRecord:
        return FileRecord(
            path=row["path"], size=row["size"], mtime_ns=row["mtime_ns"],
            content_hash=row["content_hash"], status=row["status"], attempts=row["attempts"],
            last_error=row["last_error"], next_attempt_at=row["next_attempt_at"],
            result=json.loads(row["result_json"]) if row["result_json"] else None,
            tagged_size=row["tagged_size"], tagged_mtime_ns=row["tagged_mtime_ns"],
            processed_count=row["processed_count"], updated_at=row["updated_at"],
        )

    def get_file(self, path: str | Path) -> FileRecord | None:
        rows = self.query("SELECT * FROM files WHERE path = ?", (str(path),))
        return self._file(rows[0]) if rows else None

    def files(self, status: str | None = None) -> list[FileRecord]:
        if status is None:
            rows = self.query("SELECT * FROM files ORDER BY updated_at")
        else:
            rows = self.query("SELECT * FROM files WHERE status = ? ORDER BY updated_at", (status,))
        return [self._file(r) for r in rows]

    def upsert_file(self, path: str | Path, **values: Any) -> None:
        """Insert or update a file row; `result` (a dict) is stored as JSON."""
        if "result" in values:
            result = values.pop("result")
            values["result_json"] = json.dumps(result) if result is not None else None
        values["updated_at"] = time.time()
        with self.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM files WHERE path = ?", (str(path),)).fetchone()
            if exists:
                sets = ", ".join(f"{k} = ?" for k in values)
                conn.execute(f"UPDATE files SET {sets} WHERE path = ?", (*values.values(), str(path)))
            else:
                values.setdefault("size", 0)
                values.setdefault("mtime_ns", 0)
                values.setdefault("status", "pending")
                cols = ", ".join(["path", *values])
                marks = ", ".join("?" * (len(values) + 1))
                conn.execute(f"INSERT INTO files ({cols}) VALUES ({marks})", (str(path), *values.values()))

    def status_counts(self) -> dict[str, int]:
        rows = self.query("SELECT status, COUNT(*) AS n FROM files GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    # ---- labels --------------------------------------------------------------------------
    def add_label(self, content_hash: str, path: str | Path, genre: str, source: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO labels(content_hash, path, genre, source, created_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT(content_hash) DO UPDATE SET path=excluded.path, genre=excluded.genre,"
                " source=excluded.source, created_at=excluded.created_at",
                (content_hash, str(path), genre, source, time.time()),
            )

    def remove_label(self, content_hash: str) -> bool:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM labels WHERE content_hash = ?", (content_hash,)).rowcount > 0

    def labels(self) -> list[Label]:
        rows = self.query("SELECT * FROM labels ORDER BY genre, path")
        return [Label(**dict(r)) for r in rows]

    # ---- tag history ---------------------------------------------------------------------
    def record_tag_write(self, path: str | Path, old: dict[str, Any], new: dict[str, Any]) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO tag_history(path, written_at, old_json, new_json) VALUES (?,?,?,?)",
                (str(path), time.time(), json.dumps(old), json.dumps(new)),
            )
            return int(cur.lastrowid)

    def tag_writes(self, path: str | Path | None = None, include_undone: bool = False) -> list[TagWrite]:
        """Tag writes, newest first; for one path or all."""
        sql = "SELECT * FROM tag_history WHERE 1=1"
        params: list[Any] = []
        if path is not None:
            sql += " AND path = ?"
            params.append(str(path))
        if not include_undone:
            sql += " AND undone_at IS NULL"
        rows = self.query(sql + " ORDER BY id DESC", tuple(params))
        return [
            TagWrite(r["id"], r["path"], r["written_at"], json.loads(r["old_json"]),
                     json.loads(r["new_json"]), r["undone_at"])
            for r in rows
        ]

    def mark_undone(self, write_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE tag_history SET undone_at = ? WHERE id = ?", (time.time(), write_id))

    # ---- feature cache -------------------------------------------------------------------
    def get_feature(self, content_hash: str, extractor: str, version: str) -> bytes | None:
        rows = self.query(
            "SELECT vector FROM features WHERE content_hash=? AND extractor=? AND version=?",
            (content_hash, extractor, version),
        )
        return bytes(rows[0]["vector"]) if rows else None

    def put_feature(
        self, content_hash: str, extractor: str, version: str, vector: bytes, transcript: str | None = None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO features VALUES (?,?,?,?,?,?)",
                (content_hash, extractor, version, vector, transcript, time.time()),
            )
