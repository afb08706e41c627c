"""Numbered, append-only schema migrations, recorded in a table.

Each backend has its list; a store applies, in order and in one transaction each, every
migration whose number is not yet in ``ctxbudget_migrations``. Never edit a migration that
shipped: add the next number. Money is stored as integer nano-dollars (1e-9 USD), exact in
SQL and in Redis' Lua.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["MIGRATIONS_TABLE", "POSTGRES", "REDIS", "SQLITE", "Migration", "apply_sql", "latest"]

MIGRATIONS_TABLE = "ctxbudget_migrations"


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema step."""

    version: int
    """Its number (1, 2, ...), applied in order."""
    name: str
    """What it does, in a few words."""
    statements: tuple[str, ...]
    """SQL statements (none for Redis, which has no schema; the step is still recorded)."""


def _sessions(real: str, big: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE ctxbudget_sessions (
            id TEXT PRIMARY KEY,
            length {big} NOT NULL DEFAULT 0,
            meta TEXT NOT NULL,
            created {real} NOT NULL,
            updated {real} NOT NULL)""",
        f"""CREATE TABLE ctxbudget_events (
            session_id TEXT NOT NULL REFERENCES ctxbudget_sessions (id),
            seq {big} NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (session_id, seq))""",
        "CREATE INDEX ctxbudget_sessions_updated ON ctxbudget_sessions (updated)",
    )


def _spend(real: str, big: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE ctxbudget_spend_limits (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            period TEXT NOT NULL,
            usd_nanos {big},
            tokens {big},
            action TEXT NOT NULL,
            fallback_model TEXT,
            PRIMARY KEY (scope, key, period))""",
        f"""CREATE TABLE ctxbudget_spend_buckets (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            period TEXT NOT NULL,
            bucket TEXT NOT NULL,
            spent_nanos {big} NOT NULL DEFAULT 0,
            reserved_nanos {big} NOT NULL DEFAULT 0,
            spent_tokens {big} NOT NULL DEFAULT 0,
            reserved_tokens {big} NOT NULL DEFAULT 0,
            calls {big} NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, key, period, bucket))""",
        f"""CREATE TABLE ctxbudget_spend_reservations (
            id TEXT PRIMARY KEY,
            created {real} NOT NULL,
            state TEXT NOT NULL,
            model TEXT NOT NULL,
            buckets TEXT NOT NULL,
            reserved_nanos {big} NOT NULL,
            reserved_tokens {big} NOT NULL,
            billed_nanos {big},
            billed_tokens {big},
            settled {real})""",
    )


def _expiry(real: str) -> tuple[str, ...]:
    # reservations held before this step (no expiry yet) get the 10-minute default
    return (
        f"ALTER TABLE ctxbudget_spend_reservations ADD COLUMN expires {real}",
        "UPDATE ctxbudget_spend_reservations SET expires = created + 600 WHERE state = 'reserved'",
        "CREATE INDEX ctxbudget_spend_reservations_expiry "
        "ON ctxbudget_spend_reservations (state, expires)",
    )


SQLITE: tuple[Migration, ...] = (
    Migration(version=1, name="session logs", statements=_sessions("REAL", "INTEGER")),
    Migration(version=2, name="spend ledger", statements=_spend("REAL", "INTEGER")),
    Migration(version=3, name="spend reservation expiry", statements=_expiry("REAL")),
)
POSTGRES: tuple[Migration, ...] = (
    Migration(version=1, name="session logs", statements=_sessions("DOUBLE PRECISION", "BIGINT")),
    Migration(version=2, name="spend ledger", statements=_spend("DOUBLE PRECISION", "BIGINT")),
    Migration(version=3, name="spend reservation expiry", statements=_expiry("DOUBLE PRECISION")),
)
REDIS: tuple[Migration, ...] = (
    Migration(version=1, name="session logs", statements=()),
    Migration(version=2, name="spend ledger", statements=()),
    Migration(version=3, name="spend reservation expiry", statements=()),
)


def latest(migrations: tuple[Migration, ...]) -> int:
    """The number of the last migration."""
    return migrations[-1].version


def apply_sql(
    conn: Any, migrations: tuple[Migration, ...], *, param: str, applied_type: str
) -> None:
    """Apply, on a DB-API connection inside the caller's transaction, every migration not
    yet recorded in the migrations table, and record it. ``param`` is the driver's
    placeholder (``?`` or ``%s``); ``applied_type`` the column type of the timestamp."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        f"(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied {applied_type})"
    )
    done = {row[0] for row in conn.execute(f"SELECT version FROM {MIGRATIONS_TABLE}")}
    for migration in migrations:
        if migration.version in done:
            continue
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied) "
            f"VALUES ({param}, {param}, {param})",
            (migration.version, migration.name, time.time()),
        )
