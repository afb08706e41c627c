"""Session logs in Redis, for fleets: a list per session, appended by a Lua script.

The script checks the list's length against the caller's position and pushes the whole
batch in one atomic step, so two writers at the same position cannot both succeed and an
exchange is never interleaved. Keys start with a prefix (``?prefix=`` in the URL, default
``ctxbudget:``). Durability is the server's: run Redis with ``appendonly yes`` (and
``appendfsync always`` to survive a server crash, not only a client's).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from ctxbudget.errors import ConfigError, StorageError
from ctxbudget.store.base import (
    LogConflict,
    SessionInfo,
    SessionStore,
    check_batch,
    check_session_id,
)
from ctxbudget.store.events import StoredEvent
from ctxbudget.store.migrations import REDIS, Migration

__all__ = ["RedisStore"]

_APPEND = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {-1, 0} end
local n = redis.call('LLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then return {0, n} end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[2], 'updated', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return {1, n + #ARGV - 3}
"""

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'created', ARGV[2], 'updated', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


def _redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the extra is part of the test deps
        raise ConfigError("the Redis store needs redis-py: pip install 'ctxbudget[redis]'") from exc
    return redis


class RedisStore(SessionStore):
    """Session logs (and the spend ledger) in a Redis server."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ctxbudget:",
        display_url: str | None = None,
        migrations: tuple[Migration, ...] = REDIS,
    ) -> None:
        self.url = display_url or url
        self.prefix = prefix
        self._redis = _redis()
        self._lock = threading.RLock()
        with self.translated("connect"):
            self.client = self._redis.Redis.from_url(url, decode_responses=True)
            self.client.ping()
            self._append = self.client.register_script(_APPEND)
            self._create = self.client.register_script(_CREATE)
            for migration in migrations:
                self.client.hsetnx(self.key("migrations"), str(migration.version), migration.name)

    def key(self, *parts: str) -> str:
        """A key under this store's prefix."""
        return self.prefix + ":".join(parts)

    def _session_key(self, session_id: str, what: str) -> str:
        # {id} is a hash tag: a session's keys land on one Redis Cluster slot
        return self.key("s", "{" + session_id + "}", what)

    def schema_version(self) -> int:
        with self.translated("read"):
            versions = cast(dict[str, str], self.client.hgetall(self.key("migrations")))
        return max((int(v) for v in versions), default=0)

    def create(self, session_id: str, meta: Mapping[str, Any] | None = None) -> SessionInfo:
        check_session_id(session_id)
        with self.translated("write"):
            self._create(
                keys=[self._session_key(session_id, "meta"), self.key("sessions")],
                args=[json.dumps(dict(meta or {}), sort_keys=True), repr(time.time()), session_id],
            )
        return self.require(session_id)

    def info(self, session_id: str) -> SessionInfo | None:
        with self.translated("read"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(self._session_key(session_id, "meta"))
            pipe.llen(self._session_key(session_id, "events"))
            meta, length = pipe.execute()
        if not meta:
            return None
        return SessionInfo(
            session_id=session_id,
            events=int(length),
            meta=json.loads(meta["meta"]),
            created=float(meta["created"]),
            updated=float(meta["updated"]),
        )

    def append(self, session_id: str, events: Sequence[StoredEvent]) -> None:
        first = check_batch(events)
        with self.translated("write"):
            status, length = self._append(
                keys=[
                    self._session_key(session_id, "events"),
                    self._session_key(session_id, "meta"),
                    self.key("sessions"),
                ],
                args=[
                    first,
                    repr(time.time()),
                    session_id,
                    *(f"{e.kind}\n{e.body}" for e in events),
                ],
            )
        if status == -1:
            raise StorageError(f"no session {session_id!r} in {self.url}; create it first")
        if status == 0:
            raise LogConflict(session_id, expected=first, actual=int(length))

    def load(self, session_id: str, start: int = 0) -> list[StoredEvent]:
        with self.translated("read"):
            raw = cast(
                list[str], self.client.lrange(self._session_key(session_id, "events"), start, -1)
            )
        events = []
        for offset, element in enumerate(raw):
            kind, _, body = element.partition("\n")
            events.append(StoredEvent(seq=start + offset, kind=cast(Any, kind), body=body))
        return events

    def sessions(self) -> list[SessionInfo]:
        with self.translated("read"):
            ids = cast(list[str], self.client.zrevrange(self.key("sessions"), 0, -1))
        infos = [self.info(i) for i in ids]
        return [i for i in infos if i is not None]

    def close(self) -> None:
        with self._lock:
            self.client.close()

    @contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """redis-py errors become one StorageError that says where and what to do."""
        try:
            with self._lock:
                yield
        except self._redis.ConnectionError as exc:
            raise StorageError(
                f"Redis store {self.url}: {what} failed: {exc}. Check the server is running "
                "and the URL's host, port, password and database number."
            ) from exc
        except self._redis.RedisError as exc:
            raise StorageError(f"Redis store {self.url}: {what} failed: {exc}") from exc
