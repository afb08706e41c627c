"""Spend budgets: limits in dollars (and tokens) per scope and period, reserved atomically.

A feature: may import the manager and everything below it, never another feature.

::

    ledger = open_ledger("postgresql://.../db")             # or sqlite:///..., redis://...
    ledger.set_limit(Limit(scope="team", key="research", period="day", usd=Decimal("50")))
    guard = SpendGuard(ledger, Tags(team="research", user="ana", session="run-42"))
    body = mgr.prepare()
    held = guard.reserve(mgr)          # BudgetExceeded, a Switch(model=...), or a Reservation
    ...call the model...
    guard.settle(held, usage, mgr.model.prices)

The ledger lives in the same stores as sessions: SQLite for one machine, PostgreSQL or
Redis for a fleet.
"""

from __future__ import annotations

from ctxbudget.errors import ConfigError
from ctxbudget.spend.guard import SpendGuard, SpendWarning, projected_cost
from ctxbudget.spend.ledger import Bucket, Crossing, Reservation, SpendLedger, Switch, Totals
from ctxbudget.spend.model import Action, Limit, Period, Scope, Tags, from_nanos, to_nanos
from ctxbudget.store.base import SessionStore
from ctxbudget.store.url import open_store

__all__ = [
    "Action",
    "Bucket",
    "Crossing",
    "Limit",
    "Period",
    "Reservation",
    "Scope",
    "SpendGuard",
    "SpendLedger",
    "SpendWarning",
    "Switch",
    "Tags",
    "Totals",
    "from_nanos",
    "ledger_for",
    "open_ledger",
    "projected_cost",
    "to_nanos",
]


def ledger_for(store: SessionStore) -> SpendLedger:
    """The spend ledger kept in ``store``'s database."""
    from ctxbudget.store.postgres import PostgresStore
    from ctxbudget.store.redis import RedisStore
    from ctxbudget.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore | PostgresStore):
        from ctxbudget.spend.sql import SqlLedger

        return SqlLedger(store)
    if isinstance(store, RedisStore):
        from ctxbudget.spend.redis import RedisLedger

        return RedisLedger(store)
    raise ConfigError(f"no spend ledger for a {type(store).__name__} store")


def open_ledger(url: str | None = None) -> SpendLedger:
    """Connect to the store a URL names (see ``ctxbudget.store.open_store``) and its ledger."""
    return ledger_for(open_store(url))
