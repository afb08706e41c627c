"""SpendGuard on a real manager: the projection, the settled bill, a refusal before sending."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ctxbudget import ContextManager
from ctxbudget.billing.cost import price
from ctxbudget.billing.usage import Usage
from ctxbudget.errors import BudgetExceeded, UsageError
from ctxbudget.spend import (
    Bucket,
    Limit,
    Reservation,
    SpendGuard,
    Tags,
    open_ledger,
    projected_cost,
    to_nanos,
)

NOW = 1_750_000_000.0


def test_reserve_projection_then_settle_the_bill(tmp_path: Path) -> None:
    mgr = ContextManager("gpt-4o", max_output_tokens=1_000, clock=lambda: 0.0)
    mgr.append({"role": "user", "content": "Summarize the design doc. " * 200})
    with pytest.raises(UsageError, match="prepare"):
        projected_cost(mgr)
    mgr.prepare()
    report = mgr.last_report
    assert report is not None
    assert report.predicted_cost is not None
    prices = mgr.model.prices
    assert prices is not None
    assert prices.output is not None
    reserve = mgr.accountant.ledger.allocation.output_reserve
    expected = report.predicted_cost.input + Decimal(reserve) * prices.output / Decimal(10**6)
    assert projected_cost(mgr) == (expected, report.input_tokens.tokens + reserve)

    guard = SpendGuard(open_ledger(f"sqlite:///{tmp_path}/s.db"), Tags(team="t"), clock=lambda: NOW)
    held = guard.reserve(mgr)
    assert isinstance(held, Reservation)
    assert held.nanos == to_nanos(expected, up=True)
    usage = Usage(input_tokens=report.input_tokens.tokens, output_tokens=120)
    billed = guard.settle(held, usage, prices)
    cost = price(usage, prices)
    assert cost is not None
    assert billed == cost.total.quantize(Decimal("1e-9"))
    team = guard.ledger.totals()[Bucket(scope="team", key="t", period="day", bucket="2025-06-15")]
    assert (team.spent_nanos, team.reserved_nanos) == (to_nanos(cost.total), 0)

    guard.ledger.set_limit(Limit(scope="team", key="t", period="day", usd=cost.total))
    mgr.prepare()
    with pytest.raises(BudgetExceeded, match="team 't' per day"):
        guard.reserve(mgr)


def test_hold_releases_when_the_call_fails(tmp_path: Path) -> None:
    guard = SpendGuard(open_ledger(f"sqlite:///{tmp_path}/s.db"), Tags(user="u"), clock=lambda: NOW)
    with pytest.raises(RuntimeError), guard.hold(Decimal("0.5"), 10, model="m"):
        raise RuntimeError("provider down")
    assert not any(t.reserved_nanos for t in guard.ledger.totals().values())
