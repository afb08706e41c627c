"""The spend ledger in SQL: SQLite (one machine) and PostgreSQL (a fleet).

Reserve and settle are each one transaction. SQLite's ``BEGIN IMMEDIATE`` takes the
database's writer lock before anything is read; PostgreSQL locks the call's bucket rows
with ``SELECT ... FOR UPDATE`` in one sorted order (so two workers cannot deadlock each
other), and retries the rare deadlock or serialization failure. Either way the check and
the write see the same totals: no read-modify-write race.

Expired reservations (``expires <= now``, state ``reserved``) are released by each reserve
in its transaction: their rows are taken (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two
workers never wait for each other's sweep), and their buckets are locked together with the
call's, in the one sorted order. A refused call still commits the sweep.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ctxbudget.errors import BudgetExceeded, StorageError, UsageError
from ctxbudget.spend.ledger import (
    MAX_SWEEP,
    RESERVATION_TTL,
    Bucket,
    Reservation,
    SpendLedger,
    Switch,
    Totals,
    crossings,
    plan,
    refusal,
)
from ctxbudget.spend.model import Limit, Tags, from_nanos
from ctxbudget.store.postgres import PostgresStore
from ctxbudget.store.sqlite import SqliteStore

__all__ = ["SqlLedger"]

T = TypeVar("T")
_RETRIES = 8
_BUCKET_COLUMNS = "spent_nanos, reserved_nanos, spent_tokens, reserved_tokens, calls"


class SqlLedger(SpendLedger):
    """Spend limits and tallies in the tables of a SQLite or PostgreSQL store."""

    def __init__(self, store: SqliteStore | PostgresStore) -> None:
        self.store = store
        self._pg = isinstance(store, PostgresStore)

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def _run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` in one transaction, retried on a PostgreSQL deadlock."""
        for attempt in range(_RETRIES):
            try:
                with self.store.transaction() as conn:
                    return work(conn)
            except StorageError as exc:
                code = getattr(exc.__cause__, "sqlstate", None)
                if code not in ("40P01", "40001") or attempt == _RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- limits ---------------------------------------------------------------------------

    def set_limit(self, limit: Limit) -> None:
        def work(conn: Any) -> None:
            conn.execute(
                self._q(
                    "DELETE FROM ctxbudget_spend_limits WHERE scope = ? AND key = ? AND period = ?"
                ),
                (limit.scope, limit.key, limit.period),
            )
            conn.execute(
                self._q(
                    "INSERT INTO ctxbudget_spend_limits (scope, key, period, usd_nanos, tokens, "
                    "action, fallback_model) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    limit.scope,
                    limit.key,
                    limit.period,
                    limit.usd_nanos,
                    limit.tokens,
                    limit.action,
                    limit.fallback_model,
                ),
            )

        self._run(work)

    def remove_limit(self, scope: str, key: str, period: str) -> bool:
        def work(conn: Any) -> bool:
            cursor = conn.execute(
                self._q(
                    "DELETE FROM ctxbudget_spend_limits WHERE scope = ? AND key = ? AND period = ?"
                ),
                (scope, key, period),
            )
            return bool(cursor.rowcount)

        return self._run(work)

    def limits(self) -> list[Limit]:
        return self._run(self._limits)

    def _limits(self, conn: Any) -> list[Limit]:
        rows = conn.execute(
            "SELECT scope, key, period, usd_nanos, tokens, action, fallback_model "
            "FROM ctxbudget_spend_limits ORDER BY scope, key, period"
        ).fetchall()
        return [
            Limit(
                scope=r[0],
                key=r[1],
                period=r[2],
                usd=None if r[3] is None else from_nanos(int(r[3])),
                tokens=None if r[4] is None else int(r[4]),
                action=r[5],
                fallback_model=r[6],
            )
            for r in rows
        ]

    # -- reserve / settle -----------------------------------------------------------------

    def reserve(
        self,
        tags: Tags,
        *,
        nanos: int,
        tokens: int,
        model: str,
        now: float,
        ttl: float = RESERVATION_TTL,
    ) -> Reservation | Switch:
        def work(conn: Any) -> Reservation | Switch | BudgetExceeded:
            expired = self._expired(conn, now)
            buckets, checks = plan(tags, self._limits(conn), now)
            totals = self._sweep(conn, expired, buckets)
            found = crossings(checks, totals, nanos, tokens)
            stop = refusal(found, checks)
            if stop is not None:
                return stop  # raised after the commit: the sweep stays
            for bucket in buckets:
                self._add(conn, bucket, reserved=(nanos, tokens))
            reservation = Reservation(
                id=uuid.uuid4().hex,
                nanos=nanos,
                tokens=tokens,
                model=model,
                buckets=tuple(buckets),
                warnings=tuple(found),
                expires=now + ttl,
            )
            conn.execute(
                self._q(
                    "INSERT INTO ctxbudget_spend_reservations (id, created, state, model, buckets, "
                    "reserved_nanos, reserved_tokens, expires) "
                    "VALUES (?, ?, 'reserved', ?, ?, ?, ?, ?)"
                ),
                (
                    reservation.id,
                    time.time(),
                    model,
                    json.dumps([b.id for b in buckets]),
                    nanos,
                    tokens,
                    now + ttl,
                ),
            )
            return reservation

        result = self._run(work)
        if isinstance(result, BudgetExceeded):
            raise result
        return result

    def expire(self, now: float) -> int:
        def work(conn: Any) -> int:
            expired = self._expired(conn, now)
            self._sweep(conn, expired, ())
            return len(expired)

        return self._run(work)

    def _expired(self, conn: Any, now: float) -> list[tuple[str, int, int, list[Bucket]]]:
        """The reservations expired at ``now`` (at most :data:`MAX_SWEEP`, oldest first),
        their rows locked: id, nano-dollars, tokens, buckets."""
        lock = " FOR UPDATE SKIP LOCKED" if self._pg else ""
        rows = conn.execute(
            self._q(
                "SELECT id, reserved_nanos, reserved_tokens, buckets "
                "FROM ctxbudget_spend_reservations WHERE state = 'reserved' AND expires <= ? "
                f"ORDER BY expires, id LIMIT {MAX_SWEEP}{lock}"
            ),
            (now,),
        ).fetchall()
        return [
            (str(r[0]), int(r[1]), int(r[2]), [Bucket.from_id(b) for b in json.loads(r[3])])
            for r in rows
        ]

    def _sweep(
        self,
        conn: Any,
        expired: Sequence[tuple[str, int, int, list[Bucket]]],
        buckets: Sequence[Bucket],
    ) -> dict[Bucket, Totals]:
        """Lock ``buckets`` and those of the ``expired`` reservations (one sorted order),
        release the expired ones; the totals of every bucket locked, after that."""
        every = sorted({*buckets, *(b for row in expired for b in row[3])})
        totals = {b: self._lock_bucket(conn, b) for b in every}
        for reservation_id, nanos, tokens, held in expired:
            for bucket in held:
                self._add(conn, bucket, reserved=(-nanos, -tokens))
                totals[bucket] = dataclasses.replace(
                    totals[bucket],
                    reserved_nanos=totals[bucket].reserved_nanos - nanos,
                    reserved_tokens=totals[bucket].reserved_tokens - tokens,
                )
            conn.execute(
                self._q(
                    "UPDATE ctxbudget_spend_reservations SET state = 'expired', settled = ? "
                    "WHERE id = ?"
                ),
                (time.time(), reservation_id),
            )
        return totals

    def settle(self, reservation_id: str, *, nanos: int, tokens: int) -> None:
        self._close(reservation_id, "settled", billed=(nanos, tokens))

    def release(self, reservation_id: str) -> None:
        self._close(reservation_id, "released", billed=None)

    def _close(self, reservation_id: str, state: str, billed: tuple[int, int] | None) -> None:
        def work(conn: Any) -> None:
            lock = " FOR UPDATE" if self._pg else ""
            row = conn.execute(
                self._q(
                    "SELECT state, reserved_nanos, reserved_tokens, buckets "
                    f"FROM ctxbudget_spend_reservations WHERE id = ?{lock}"
                ),
                (reservation_id,),
            ).fetchone()
            if row is None:
                raise UsageError(f"no spend reservation {reservation_id!r} in {self.store.url}")
            if row[0] not in ("reserved", "expired"):
                raise UsageError(
                    f"spend reservation {reservation_id!r} is already {row[0]}; settle or "
                    "release each reservation once"
                )
            held = (int(row[1]), int(row[2])) if row[0] == "reserved" else (0, 0)
            for text in sorted(json.loads(row[3])):
                bucket = Bucket.from_id(text)
                self._lock_bucket(conn, bucket)
                self._add(conn, bucket, reserved=(-held[0], -held[1]), spent=billed)
            conn.execute(
                self._q(
                    "UPDATE ctxbudget_spend_reservations SET state = ?, billed_nanos = ?, "
                    "billed_tokens = ?, settled = ? WHERE id = ?"
                ),
                (
                    state,
                    None if billed is None else billed[0],
                    None if billed is None else billed[1],
                    time.time(),
                    reservation_id,
                ),
            )

        self._run(work)

    def _lock_bucket(self, conn: Any, bucket: Bucket) -> Totals:
        """The bucket's totals, its row created if new and locked until commit."""
        key = (bucket.scope, bucket.key, bucket.period, bucket.bucket)
        conn.execute(
            self._q(
                "INSERT INTO ctxbudget_spend_buckets (scope, key, period, bucket) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            key,
        )
        lock = " FOR UPDATE" if self._pg else ""
        row = conn.execute(
            self._q(
                f"SELECT {_BUCKET_COLUMNS} FROM ctxbudget_spend_buckets "
                f"WHERE scope = ? AND key = ? AND period = ? AND bucket = ?{lock}"
            ),
            key,
        ).fetchone()
        return _totals(row)

    def _add(
        self,
        conn: Any,
        bucket: Bucket,
        *,
        reserved: tuple[int, int],
        spent: tuple[int, int] | None = None,
    ) -> None:
        money, tokens = spent or (0, 0)
        conn.execute(
            self._q(
                "UPDATE ctxbudget_spend_buckets SET reserved_nanos = reserved_nanos + ?, "
                "reserved_tokens = reserved_tokens + ?, spent_nanos = spent_nanos + ?, "
                "spent_tokens = spent_tokens + ?, calls = calls + ? "
                "WHERE scope = ? AND key = ? AND period = ? AND bucket = ?"
            ),
            (
                reserved[0],
                reserved[1],
                money,
                tokens,
                1 if spent is not None else 0,
                bucket.scope,
                bucket.key,
                bucket.period,
                bucket.bucket,
            ),
        )

    def totals(self) -> dict[Bucket, Totals]:
        def work(conn: Any) -> dict[Bucket, Totals]:
            rows = conn.execute(
                f"SELECT scope, key, period, bucket, {_BUCKET_COLUMNS} "
                "FROM ctxbudget_spend_buckets ORDER BY scope, key, period, bucket"
            ).fetchall()
            return {
                Bucket(scope=r[0], key=r[1], period=r[2], bucket=r[3]): _totals(r[4:]) for r in rows
            }

        return self._run(work)


def _totals(row: Any) -> Totals:
    return Totals(
        spent_nanos=int(row[0]),
        reserved_nanos=int(row[1]),
        spent_tokens=int(row[2]),
        reserved_tokens=int(row[3]),
        calls=int(row[4]),
    )
