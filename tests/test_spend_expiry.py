"""Spend reservations expire: a worker that died between reserve and settle stops holding
the budget after the reservation's lifetime, against SQLite, PostgreSQL and Redis."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from _stores import drop, fresh_url, store_url
from ctxbudget.errors import BudgetExceeded, ConfigError, UsageError
from ctxbudget.spend import Bucket, Limit, Reservation, SpendGuard, Tags, open_ledger, to_nanos
from ctxbudget.spend.ledger import RESERVATION_TTL
from ctxbudget.store import migrations
from ctxbudget.store.postgres import PostgresStore
from ctxbudget.store.sqlite import SqliteStore

__all__ = ["store_url"]

NOW = 1_750_000_000.0  # 2025-06-15 UTC
TEAM = Tags(team="research", user="ana", session="s1")
DAY = Bucket(scope="team", key="research", period="day", bucket="2025-06-15")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _workers(url: str, ttl: float = RESERVATION_TTL) -> tuple[SpendGuard, SpendGuard, Clock]:
    """Two workers on one ledger with a $1/day team limit, sharing one clock."""
    clock = Clock()
    first = SpendGuard(open_ledger(url), TEAM, clock=clock, reservation_ttl=ttl)
    first.ledger.set_limit(Limit(scope="team", key="research", period="day", usd=Decimal("1")))
    second = SpendGuard(open_ledger(url), Tags(team="research", user="bo"), clock=clock)
    return first, second, clock


def _reserved(guard: SpendGuard) -> tuple[Decimal, Decimal, int]:
    tally = guard.ledger.totals()[DAY]
    return tally.reserved, tally.spent, tally.calls


def test_a_crashed_workers_reservation_stops_counting_after_its_lifetime(store_url: str) -> None:
    crashed, other, clock = _workers(store_url)
    held = crashed.reserve_amount(Decimal("0.80"), 1000, model="gpt-4o")
    assert isinstance(held, Reservation)
    assert held.expires == NOW + RESERVATION_TTL == NOW + 600
    clock.now = NOW + RESERVATION_TTL - 1  # still alive: it counts
    with pytest.raises(BudgetExceeded):
        other.reserve_amount(Decimal("0.50"), 1000, model="gpt-4o")
    clock.now = NOW + RESERVATION_TTL  # expired: the next reserve releases it first
    later = other.reserve_amount(Decimal("0.50"), 1000, model="gpt-4o")
    assert isinstance(later, Reservation)
    assert _reserved(other) == (Decimal("0.5"), 0, 0)
    other.settle(later, _usage(400), None)  # unknown price: the reservation is kept
    assert _reserved(other) == (0, Decimal("0.5"), 1)


def test_a_refused_call_still_releases_expired_reservations(store_url: str) -> None:
    crashed, other, clock = _workers(store_url)
    crashed.reserve_amount(Decimal("0.80"), 1000, model="gpt-4o")
    clock.now = NOW + 3600
    with pytest.raises(BudgetExceeded):
        other.reserve_amount(Decimal("5"), 1000, model="gpt-4o")
    assert _reserved(other) == (0, 0, 0)
    assert other.ledger.expire(clock.now) == 0  # nothing left to release


def test_settled_and_released_reservations_are_not_touched(store_url: str) -> None:
    worker, other, clock = _workers(store_url)
    settled = worker.reserve_amount(Decimal("0.40"), 1000, model="gpt-4o")
    released = worker.reserve_amount(Decimal("0.20"), 1000, model="gpt-4o")
    assert isinstance(settled, Reservation)
    assert isinstance(released, Reservation)
    worker.ledger.settle(settled.id, nanos=to_nanos(Decimal("0.30")), tokens=900)
    worker.release(released)
    clock.now = NOW + 7200
    assert worker.ledger.expire(clock.now) == 0
    assert _reserved(worker) == (0, Decimal("0.3"), 1)
    assert isinstance(other.reserve_amount(Decimal("0.70"), 10, model="gpt-4o"), Reservation)
    with pytest.raises(BudgetExceeded):  # $0.30 spent + $0.70 reserved: the day is full
        other.reserve_amount(Decimal("0.01"), 10, model="gpt-4o")
    with pytest.raises(UsageError, match="already settled"):
        worker.ledger.settle(settled.id, nanos=1, tokens=1)


def test_a_late_settle_records_what_was_billed(store_url: str) -> None:
    slow, other, clock = _workers(store_url, ttl=30)
    held = slow.reserve_amount(Decimal("0.80"), 1000, model="gpt-4o")
    assert isinstance(held, Reservation)
    assert held.expires == NOW + 30
    clock.now = NOW + 31
    assert slow.ledger.expire(clock.now) == 1
    assert _reserved(slow) == (0, 0, 0)
    fresh = other.reserve_amount(Decimal("0.60"), 1000, model="gpt-4o")
    assert isinstance(fresh, Reservation)
    # the slow call ends after all: its bill counts (even past the limit), and only the
    # other worker's reservation stays reserved
    slow.ledger.settle(held.id, nanos=to_nanos(Decimal("0.70")), tokens=900)
    assert _reserved(slow) == (Decimal("0.6"), Decimal("0.7"), 1)
    with pytest.raises(UsageError, match="already settled"):
        slow.ledger.settle(held.id, nanos=1, tokens=1)
    other.release(fresh)
    assert _reserved(slow) == (0, Decimal("0.7"), 1)


def test_releasing_an_expired_reservation_changes_no_tally(store_url: str) -> None:
    slow, _, clock = _workers(store_url, ttl=30)
    held = slow.reserve_amount(Decimal("0.80"), 1000, model="gpt-4o")
    assert isinstance(held, Reservation)
    clock.now = NOW + 60
    assert slow.ledger.expire(clock.now) == 1
    slow.release(held)
    assert _reserved(slow) == (0, 0, 0)
    with pytest.raises(UsageError, match="already released"):
        slow.release(held)


def test_settling_after_expiry_before_any_sweep_is_a_plain_settle(store_url: str) -> None:
    slow, _, clock = _workers(store_url, ttl=30)
    held = slow.reserve_amount(Decimal("0.80"), 1000, model="gpt-4o")
    assert isinstance(held, Reservation)
    clock.now = NOW + 60  # expired, but no reserve has released it yet
    slow.ledger.settle(held.id, nanos=to_nanos(Decimal("0.50")), tokens=900)
    assert _reserved(slow) == (0, Decimal("0.5"), 1)
    assert slow.ledger.expire(clock.now) == 0


def test_reservation_ttl_must_be_positive(store_url: str) -> None:
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="reservation_ttl"):
            SpendGuard(open_ledger(store_url), TEAM, reservation_ttl=bad)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_3_gives_held_reservations_the_default_lifetime(
    backend: str, tmp_path: Path
) -> None:
    url = fresh_url(backend, tmp_path)
    try:
        if backend == "sqlite":
            old: SqliteStore | PostgresStore = SqliteStore(
                url[len("sqlite:///") :], migrations=migrations.SQLITE[:2]
            )
            param = "?"
        else:
            base, schema = url.split("?schema=")
            old = PostgresStore(base, schema=schema, migrations=migrations.POSTGRES[:2])
            param = "%s"
        assert old.schema_version() == 2
        with old.transaction() as conn:
            conn.execute(
                "INSERT INTO ctxbudget_spend_reservations (id, created, state, model, buckets, "
                f"reserved_nanos, reserved_tokens) VALUES ({param}, {param}, 'reserved', "
                f"'gpt-4o', '[]', 5, 5)",
                ("r1", NOW),
            )
        old.close()
        store = open_ledger(url).store  # type: ignore[attr-defined]
        assert store.schema_version() == 3
        row = store.connection.execute(
            "SELECT expires FROM ctxbudget_spend_reservations WHERE id = 'r1'"
        ).fetchone()
        assert row[0] == NOW + 600
        assert open_ledger(url).expire(NOW + 600) == 1
    finally:
        drop(url)


def _usage(tokens: int) -> object:
    from ctxbudget.billing.usage import Usage

    return Usage(input_tokens=tokens, output_tokens=10)


def test_a_free_reservation_expires_and_settles(store_url: str) -> None:
    worker, _, clock = _workers(store_url, ttl=30)
    free = worker.reserve_amount(Decimal("0"), 0, model="gpt-4o")
    settled = worker.reserve_amount(Decimal("0"), 0, model="gpt-4o")
    assert isinstance(free, Reservation)
    assert isinstance(settled, Reservation)
    worker.ledger.settle(settled.id, nanos=0, tokens=0)
    clock.now = NOW + 60
    assert worker.ledger.expire(clock.now) == 1
    worker.ledger.settle(free.id, nanos=0, tokens=0)
    assert _reserved(worker) == (0, 0, 2)
