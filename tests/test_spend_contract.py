"""The spend-ledger contract, run against SQLite, PostgreSQL and Redis alike."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest

from _stores import store_url
from ctxbudget.errors import BudgetExceeded, ConfigError, UsageError
from ctxbudget.spend import (
    Bucket,
    Limit,
    Reservation,
    SpendGuard,
    SpendWarning,
    Switch,
    Tags,
    open_ledger,
    to_nanos,
)

__all__ = ["store_url"]

NOW = 1_750_000_000.0  # 2025-06-15 UTC
TEAM = Tags(team="research", user="ana", session="s1")


def _guard(url: str) -> SpendGuard:
    return SpendGuard(open_ledger(url), TEAM, clock=lambda: NOW)


def test_limits_are_stored_replaced_and_removed(store_url: str) -> None:
    ledger = open_ledger(store_url)
    a = Limit(scope="team", key="research", period="day", usd=Decimal("5"))
    b = Limit(scope="global", period="month", tokens=1000, action="warn")
    ledger.set_limit(a)
    ledger.set_limit(b)
    ledger.set_limit(Limit(scope="team", key="research", period="day", usd=Decimal("7.5")))
    assert ledger.limits() == [
        b,
        Limit(scope="team", key="research", period="day", usd=Decimal("7.5")),
    ]
    assert ledger.remove_limit("global", "*", "month")
    assert not ledger.remove_limit("global", "*", "month")
    assert len(ledger.limits()) == 1


def test_reserve_then_settle_moves_reserved_to_spent(store_url: str) -> None:
    guard = _guard(store_url)
    held = guard.reserve_amount(Decimal("0.30"), 1500, model="gpt-4o")
    assert isinstance(held, Reservation)
    totals = guard.ledger.totals()
    team_day = Bucket(scope="team", key="research", period="day", bucket="2025-06-15")
    assert totals[team_day].reserved == Decimal("0.3")
    assert totals[team_day].spent == 0
    guard.ledger.settle(held.id, nanos=to_nanos(Decimal("0.12")), tokens=900)
    after = guard.ledger.totals()
    for scope, key in TEAM.scopes():
        for period, bucket in (("day", "2025-06-15"), ("month", "2025-06")):
            tally = after[Bucket(scope=scope, key=key, period=period, bucket=bucket)]
            assert (tally.spent, tally.reserved, tally.spent_tokens, tally.calls) == (
                Decimal("0.12"),
                0,
                900,
                1,
            )
    with pytest.raises(UsageError, match="already settled"):
        guard.ledger.settle(held.id, nanos=1, tokens=1)
    with pytest.raises(UsageError, match="no spend reservation"):
        guard.ledger.release("nope")


def test_refuse_names_scope_limit_and_spend(store_url: str) -> None:
    guard = _guard(store_url)
    guard.ledger.set_limit(Limit(scope="team", key="research", period="day", usd=Decimal("1")))
    first = guard.reserve_amount(Decimal("0.6"), 10, model="m")
    assert isinstance(first, Reservation)
    with pytest.raises(BudgetExceeded) as info:
        guard.reserve_amount(Decimal("0.5"), 10, model="m")
    error = info.value
    assert (error.scope, error.key, error.period, error.unit) == ("team", "research", "day", "usd")
    assert (error.limit, error.spent, error.reserved, error.requested) == (
        Decimal(1),
        0,
        Decimal("0.6"),
        Decimal("0.5"),
    )
    assert "team 'research' per day" in str(error)
    assert "$1.000000" in str(error)
    guard.release(first)  # the reservation is given back: now it fits
    assert isinstance(guard.reserve_amount(Decimal("0.5"), 10, model="m"), Reservation)
    other_team = SpendGuard(guard.ledger, Tags(team="infra"), clock=lambda: NOW)
    assert isinstance(other_team.reserve_amount(Decimal("0.9"), 10, model="m"), Reservation)


def test_switch_warn_per_call_tokens_and_wildcards(store_url: str) -> None:
    guard = _guard(store_url)
    ledger = guard.ledger
    ledger.set_limit(
        Limit(
            scope="session",
            period="call",
            usd=Decimal("0.10"),
            action="switch",
            fallback_model="gpt-4o-mini",
        )
    )
    ledger.set_limit(Limit(scope="user", key="*", period="month", tokens=5000, action="warn"))
    switch = guard.reserve_amount(Decimal("0.25"), 100, model="gpt-4o")
    assert isinstance(switch, Switch)
    assert switch.model == "gpt-4o-mini"
    assert not any(t.reserved_nanos for t in ledger.totals().values())  # nothing was reserved
    with pytest.warns(SpendWarning, match="each user per month"):
        held = guard.reserve_amount(Decimal("0.05"), 6000, model="gpt-4o-mini")
    assert isinstance(held, Reservation)
    assert held.warnings[0].unit == "tokens"
    ledger.set_limit(Limit(scope="global", period="month", tokens=100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpendWarning)
        with pytest.raises(BudgetExceeded) as info:
            guard.reserve_amount(Decimal("0.01"), 10, model="gpt-4o-mini")
    assert info.value.unit == "tokens"
    assert info.value.reserved == 6000


def test_limit_validation() -> None:
    with pytest.raises(ConfigError, match="needs usd"):
        Limit(scope="team", key="x")
    with pytest.raises(ConfigError, match="fallback_model"):
        Limit(scope="team", usd=Decimal(1), action="switch")
    with pytest.raises(ConfigError, match="scope"):
        Limit(scope="planet", usd=Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="global limit has no key"):
        Limit(scope="global", key="x", usd=Decimal(1))
    with pytest.raises(ConfigError, match="non-negative Decimal"):
        Limit(scope="team", usd=Decimal("-1"))
    assert to_nanos(Decimal("0.0000000001"), up=True) == 1
    assert to_nanos(Decimal("0.0000000004")) == 0
