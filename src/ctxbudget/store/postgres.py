"""Session logs in PostgreSQL (``psycopg`` 3), for fleets of workers on many machines.

An append is one transaction: ``UPDATE ... SET length = length + n WHERE length = expected``
takes the session row's lock and checks the position in one statement, so of two writers
at the same position exactly one succeeds and the other gets :class:`LogConflict`. Bodies
are stored as ``TEXT`` (not ``jsonb``, which would reorder keys and change the bytes).
``?schema=name`` in the URL keeps ctxbudget's tables in their own schema.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from ctxbudget.store.migrations import MIGRATIONS_TABLE, POSTGRES, Migration, apply_sql

__all__ = ["PostgresStore"]

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_LOCK = 0x63747862  # pg_advisory_xact_lock key: one migrator at a time


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the extra is part of the test deps
        raise ConfigError(
            "the PostgreSQL store needs psycopg 3: pip install 'ctxbudget[postgres]'"
        ) from exc
    return psycopg


class PostgresStore(SessionStore):
    """Session logs (and the spend ledger) in a PostgreSQL database."""

    backend = "postgresql"

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        display_url: str | None = None,
        migrations: tuple[Migration, ...] = POSTGRES,
    ) -> None:
        if not _SCHEMA.match(schema):
            raise ConfigError(
                f"PostgreSQL schema {schema!r} must be a lowercase identifier (letters, digits, _)"
            )
        self.schema = schema
        self.url = display_url or conninfo
        self._psycopg = _psycopg()
        self._lock = threading.RLock()
        with self._translated("connect"):
            self.connection = self._psycopg.connect(conninfo, autocommit=True)
            self.connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self.connection.execute(f"SET search_path TO {schema}")
        self._migrate(migrations)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction on the connection (rolled back on error)."""
        with self._lock, self._translated("write"), self.connection.transaction():
            yield self.connection

    def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            apply_sql(conn, migrations, param="%s", applied_type="DOUBLE PRECISION")

    def schema_version(self) -> int:
        with self._lock, self._translated("read"):
            row = self.connection.execute(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}").fetchone()
        return int(row[0] or 0)

    def create(self, session_id: str, meta: Mapping[str, Any] | None = None) -> SessionInfo:
        check_session_id(session_id)
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO ctxbudget_sessions (id, length, meta, created, updated) "
                "VALUES (%s, 0, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (session_id, json.dumps(dict(meta or {}), sort_keys=True), now, now),
            )
        return self.require(session_id)

    def info(self, session_id: str) -> SessionInfo | None:
        with self._lock, self._translated("read"):
            row = self.connection.execute(
                "SELECT id, length, meta, created, updated FROM ctxbudget_sessions WHERE id = %s",
                (session_id,),
            ).fetchone()
        return SessionInfo.from_row(row) if row is not None else None

    def append(self, session_id: str, events: Sequence[StoredEvent]) -> None:
        first = check_batch(events)
        with self.transaction() as conn:
            row = conn.execute(
                "UPDATE ctxbudget_sessions SET length = length + %s, updated = %s "
                "WHERE id = %s AND length = %s RETURNING length",
                (len(events), time.time(), session_id, first),
            ).fetchone()
            if row is None:
                found = conn.execute(
                    "SELECT length FROM ctxbudget_sessions WHERE id = %s", (session_id,)
                ).fetchone()
                if found is None:
                    raise StorageError(f"no session {session_id!r} in {self.url}; create it first")
                raise LogConflict(session_id, expected=first, actual=int(found[0]))
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO ctxbudget_events (session_id, seq, kind, body) "
                    "VALUES (%s, %s, %s, %s)",
                    [(session_id, e.seq, e.kind, e.body) for e in events],
                )

    def load(self, session_id: str, start: int = 0) -> list[StoredEvent]:
        with self._lock, self._translated("read"):
            rows = self.connection.execute(
                "SELECT seq, kind, body FROM ctxbudget_events WHERE session_id = %s AND seq >= %s "
                "ORDER BY seq",
                (session_id, start),
            ).fetchall()
        return [StoredEvent(seq=int(s), kind=k, body=b) for s, k, b in rows]

    def sessions(self) -> list[SessionInfo]:
        with self._lock, self._translated("read"):
            rows = self.connection.execute(
                "SELECT id, length, meta, created, updated FROM ctxbudget_sessions "
                "ORDER BY updated DESC, id"
            ).fetchall()
        return [SessionInfo.from_row(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """psycopg errors become one StorageError that says where and what to do."""
        try:
            yield
        except self._psycopg.OperationalError as exc:
            raise StorageError(
                f"PostgreSQL store {self.url}: {what} failed: {str(exc).strip()}. Check the "
                "server is running and the URL's user, password, host, port and database."
            ) from exc
        except self._psycopg.Error as exc:
            raise StorageError(
                f"PostgreSQL store {self.url}: {what} failed: {str(exc).strip()}"
            ) from exc
