"""The embedded default store: one SQLite file in WAL mode.

Each append is one ``BEGIN IMMEDIATE`` transaction (the writer lock is taken before the
log length is read, so two processes cannot both pass the position check). With WAL, a
committed transaction survives the writing process being killed; ``synchronous=full``
(``sqlite:///path?synchronous=full``) also makes it survive a power cut, at an fsync per
append.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctxbudget.errors import ConfigError, StorageError
from ctxbudget.store.base import (
    LogConflict,
    SessionInfo,
    SessionStore,
    check_batch,
    check_session_id,
)
from ctxbudget.store.events import StoredEvent
from ctxbudget.store.migrations import MIGRATIONS_TABLE, SQLITE, Migration, apply_sql

__all__ = ["SqliteStore"]

_SYNCHRONOUS = ("off", "normal", "full", "extra")


class SqliteStore(SessionStore):
    """Session logs (and the spend ledger) in one SQLite file."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "normal",
        migrations: tuple[Migration, ...] = SQLITE,
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise ConfigError(
                f"sqlite synchronous={synchronous!r} is not one of {', '.join(_SYNCHRONOUS)}"
            )
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        with _translated(self.url, "open"):
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute(f"PRAGMA synchronous={synchronous}")
            self.connection.execute("PRAGMA busy_timeout=60000")
            self.connection.execute("PRAGMA foreign_keys=ON")
        self._migrate(migrations)

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error): the writer lock held."""
        with self._lock, _translated(self.url, "write"):
            conn = self.connection
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        with self.transaction() as conn:
            apply_sql(conn, migrations, param="?", applied_type="REAL NOT NULL")

    def schema_version(self) -> int:
        with self._lock, _translated(self.url, "read"):
            row = self.connection.execute(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}").fetchone()
        return int(row[0] or 0)

    # -- sessions -------------------------------------------------------------------------

    def create(self, session_id: str, meta: Mapping[str, Any] | None = None) -> SessionInfo:
        check_session_id(session_id)
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO ctxbudget_sessions (id, length, meta, created, updated) "
                "VALUES (?, 0, ?, ?, ?)",
                (session_id, json.dumps(dict(meta or {}), sort_keys=True), now, now),
            )
        return self.require(session_id)

    def info(self, session_id: str) -> SessionInfo | None:
        with self._lock, _translated(self.url, "read"):
            row = self.connection.execute(
                "SELECT id, length, meta, created, updated FROM ctxbudget_sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
        return SessionInfo.from_row(row) if row is not None else None

    def append(self, session_id: str, events: Sequence[StoredEvent]) -> None:
        first = check_batch(events)
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT length FROM ctxbudget_sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise StorageError(f"no session {session_id!r} in {self.url}; create it first")
            if row[0] != first:
                raise LogConflict(session_id, expected=first, actual=int(row[0]))
            conn.executemany(
                "INSERT INTO ctxbudget_events (session_id, seq, kind, body) VALUES (?, ?, ?, ?)",
                [(session_id, e.seq, e.kind, e.body) for e in events],
            )
            conn.execute(
                "UPDATE ctxbudget_sessions SET length = ?, updated = ? WHERE id = ?",
                (first + len(events), time.time(), session_id),
            )

    def load(self, session_id: str, start: int = 0) -> list[StoredEvent]:
        with self._lock, _translated(self.url, "read"):
            rows = self.connection.execute(
                "SELECT seq, kind, body FROM ctxbudget_events WHERE session_id = ? AND seq >= ? "
                "ORDER BY seq",
                (session_id, start),
            ).fetchall()
        return [StoredEvent(seq=int(s), kind=k, body=b) for s, k, b in rows]

    def sessions(self) -> list[SessionInfo]:
        with self._lock, _translated(self.url, "read"):
            rows = self.connection.execute(
                "SELECT id, length, meta, created, updated FROM ctxbudget_sessions "
                "ORDER BY updated DESC, id"
            ).fetchall()
        return [SessionInfo.from_row(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self.connection.close()


@contextmanager
def _translated(url: str, what: str) -> Iterator[None]:
    """sqlite3 errors become one StorageError that says where and what to do."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(
            f"SQLite store {url}: {what} failed: {exc}. Check the path is writable and not "
            "on a network file system, and that no other program holds a lock on it."
        ) from exc
