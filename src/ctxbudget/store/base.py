"""The one small interface every session store implements, and its conflict error.

A session is its append-only event log. A store keeps, per session id, the events in
order plus a little metadata (the model it was recorded with, when it was created).
:meth:`SessionStore.append` is optimistic: the caller says at which position its events
start (the length of the log it has seen); if another writer got there first the store
writes nothing and raises :class:`LogConflict`, so events are never lost or interleaved.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ctxbudget.errors import StorageError, UsageError
from ctxbudget.store.events import StoredEvent

__all__ = ["LogConflict", "SessionInfo", "SessionStore", "check_batch", "check_session_id"]

_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$")


def _no_meta() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """What a store knows about one session besides its events."""

    session_id: str
    """The session's id."""
    events: int
    """How many events its log holds."""
    created: float
    """When it was created (Unix seconds)."""
    updated: float
    """When an event was last appended (Unix seconds)."""
    meta: Mapping[str, Any] = field(default_factory=_no_meta)
    """Settings recorded with it (``model``...), JSON values."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> SessionInfo:
        """From a SQL row ``(id, length, meta JSON, created, updated)``."""
        return cls(
            session_id=row[0],
            events=int(row[1]),
            meta=json.loads(row[2]),
            created=float(row[3]),
            updated=float(row[4]),
        )


class LogConflict(StorageError):
    """Another writer appended to the session first: nothing was written; reload and retry."""

    def __init__(self, session_id: str, *, expected: int, actual: int) -> None:
        super().__init__(
            f"session {session_id!r} changed under you: you appended at position {expected} "
            f"but the log now holds {actual} events (another worker wrote first). Nothing was "
            "written; reopen the session (ContextManager.open) and retry."
        )
        self.session_id = session_id
        self.expected = expected
        self.actual = actual


class SessionStore(ABC):
    """Where session logs live: SQLite (default), PostgreSQL or Redis."""

    backend: str = ""
    """``sqlite``, ``postgresql`` or ``redis``."""
    url: str = ""
    """Where it is, passwords hidden."""

    @abstractmethod
    def create(self, session_id: str, meta: Mapping[str, Any] | None = None) -> SessionInfo:
        """The session, created empty with ``meta`` if it does not exist yet."""

    @abstractmethod
    def info(self, session_id: str) -> SessionInfo | None:
        """The session's metadata and length, or None if there is no such session."""

    @abstractmethod
    def append(self, session_id: str, events: Sequence[StoredEvent]) -> None:
        """Write ``events`` (consecutive seqs) at once, in one transaction.

        Raises :class:`LogConflict` if the log's length is not ``events[0].seq``.
        """

    @abstractmethod
    def load(self, session_id: str, start: int = 0) -> list[StoredEvent]:
        """The session's events from position ``start`` on, in order."""

    @abstractmethod
    def sessions(self) -> list[SessionInfo]:
        """Every session, most recently updated first."""

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied (see ``ctxbudget.store.migrations``)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def require(self, session_id: str) -> SessionInfo:
        """The session's info; a clear error when it does not exist."""
        info = self.info(session_id)
        if info is None:
            raise StorageError(
                f"no session {session_id!r} in {self.url}; `ctxbudget sessions list` shows "
                "the sessions it holds"
            )
        return info

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_session_id(session_id: object) -> str:
    """A usable session id, or a UsageError saying what one looks like."""
    if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
        raise UsageError(
            f"session id {session_id!r} is not usable: use 1-200 characters, letters, digits "
            "and . _ : @ / + = - (starting with a letter or digit)"
        )
    return session_id


def check_batch(events: Sequence[StoredEvent]) -> int:
    """The position a batch starts at; refuses an empty or non-consecutive batch."""
    if not events:
        raise UsageError("append needs at least one event")
    first = events[0].seq
    for offset, event in enumerate(events):
        if event.seq != first + offset:
            raise UsageError(
                f"events to append must have consecutive seqs; got {event.seq} after "
                f"{first + offset - 1}"
            )
    return first
