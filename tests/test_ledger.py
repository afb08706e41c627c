"""Ledger: incremental sums equal a recount, exactness, watermarks, errors."""

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.budget.ledger import ComponentUsage, Ledger, LedgerSnapshot
from ctxbudget.budget.policy import Allocation, Amount, Policy, preset
from ctxbudget.errors import PolicyError, UsageError
from ctxbudget.session.items import Component
from ctxbudget.tokens.count import TokenCount


def _small() -> Allocation:
    """usable 900, high watermark 720, low 450; history budget 300, scratchpad budget 0."""
    return Policy.from_dict(
        {
            "budgets": {"history": {"tokens": 300}, "scratchpad": {"tokens": 0}},
            "output_reserve": 100,
            "safety_margin": 0,
            "high_watermark": 0.8,
            "low_watermark": 0.5,
        }
    ).allocate(1_000, 200)


def _recount(
    allocation: Allocation, live: dict[str, tuple[Component, TokenCount]]
) -> LedgerSnapshot:
    rows = []
    for entry in allocation.components:
        counts = [count for component, count in live.values() if component is entry.component]
        rows.append(
            ComponentUsage(
                component=entry.component,
                kind=entry.kind,
                used=sum(c.tokens for c in counts),
                budget=entry.budget,
                items=len(counts),
                exact=all(c.exact for c in counts),
            )
        )
    return LedgerSnapshot(
        components=tuple(rows),
        total=TokenCount(
            sum(c.tokens for _, c in live.values()), all(c.exact for _, c in live.values())
        ),
        context_window=allocation.context_window,
        output_reserve=allocation.output_reserve,
        safety_margin=allocation.safety_margin,
        usable=allocation.usable,
        high_watermark=allocation.high_watermark,
        low_watermark=allocation.low_watermark,
    )


counts = st.builds(TokenCount, st.integers(min_value=0, max_value=5_000), st.booleans())
ids = st.sampled_from([f"i{n}" for n in range(8)])
components = st.sampled_from(list(Component))
ops = st.one_of(
    st.tuples(st.just("add"), ids, components, counts),
    st.tuples(st.just("remove"), ids, components, counts),
    st.tuples(st.just("replace"), ids, st.none() | components, counts),
)


@given(st.lists(ops, max_size=60))
def test_incremental_snapshot_equals_a_recount(sequence: list[tuple[object, ...]]) -> None:
    allocation = preset("agent").allocate(128_000, 16_384)
    ledger = Ledger(allocation)
    live: dict[str, tuple[Component, TokenCount]] = {}
    for op, item_id, component, count in sequence:
        assert isinstance(item_id, str)
        assert isinstance(count, TokenCount)
        if op == "add":
            assert isinstance(component, Component)
            if item_id in live:
                with pytest.raises(UsageError):
                    ledger.add(item_id, component, count)
            else:
                ledger.add(item_id, component, count)
                live[item_id] = (component, count)
        elif op == "remove":
            if item_id in live:
                assert ledger.remove(item_id) == live.pop(item_id)[1]
            else:
                with pytest.raises(UsageError):
                    ledger.remove(item_id)
        elif item_id in live:
            assert component is None or isinstance(component, Component)
            old_component, old = live[item_id]
            assert ledger.replace(item_id, count, component=component) == old
            live[item_id] = (component or old_component, count)
        else:
            with pytest.raises(UsageError):
                ledger.replace(item_id, count)
        snapshot = ledger.snapshot()
        assert snapshot == _recount(allocation, live)
        assert ledger.total == snapshot.total
        assert len(ledger) == len(live)
        assert set(ledger) == set(live)
    for component in Component:
        row = ledger.snapshot().row(component)
        assert ledger.used(component) == TokenCount(row.used, row.exact)


def test_rows_report_used_budget_remaining_and_utilization() -> None:
    ledger = Ledger(_small())
    ledger.add("a", Component.HISTORY, TokenCount(150, True))
    ledger.add("b", Component.HISTORY, TokenCount(200, False))
    ledger.add("tools", Component.TOOLS, TokenCount(80, True))  # fixed overhead entry
    ledger.add("s", Component.SCRATCHPAD, TokenCount(5, True))
    snapshot = ledger.snapshot()
    history = snapshot.row(Component.HISTORY)
    assert (history.used, history.budget, history.remaining) == (350, 300, -50)
    assert history.utilization == pytest.approx(350 / 300)
    assert history.over_budget
    assert not history.exact
    assert history.items == 2
    tools = snapshot.row(Component.TOOLS)
    assert (tools.used, tools.budget, tools.remaining, tools.utilization) == (80, None, None, None)
    assert tools.exact
    assert not tools.over_budget
    scratch = snapshot.row(Component.SCRATCHPAD)
    assert (scratch.budget, scratch.utilization, scratch.remaining) == (0, None, -5)
    assert snapshot.over_budget == (Component.HISTORY, Component.SCRATCHPAD)
    assert snapshot.total == TokenCount(435, False)
    assert (snapshot.usable, snapshot.remaining) == (900, 465)
    assert snapshot.occupancy == pytest.approx(435 / 900)
    assert snapshot.fits
    ledger.remove("b")
    assert ledger.used(Component.HISTORY) == TokenCount(150, True)
    assert ledger.total.exact
    json.dumps(snapshot.to_dict())


def test_watermark_helpers_at_their_boundaries() -> None:
    allocation = _small()
    assert (allocation.high_watermark, allocation.low_watermark) == (720, 450)
    ledger = Ledger(allocation)
    ledger.add("x", Component.HISTORY, TokenCount(450, True))
    assert ledger.under_low_watermark
    assert ledger.snapshot().under_low_watermark
    assert not ledger.over_high_watermark
    ledger.replace("x", TokenCount(451, True))
    assert not ledger.under_low_watermark
    ledger.replace("x", TokenCount(720, True))
    assert not ledger.over_high_watermark
    assert not ledger.snapshot().over_high_watermark
    ledger.replace("x", TokenCount(721, True))
    assert ledger.over_high_watermark
    assert ledger.snapshot().over_high_watermark
    ledger.replace("x", TokenCount(901, True))
    assert not ledger.snapshot().fits


def test_replace_can_move_an_entry_to_another_component() -> None:
    ledger = Ledger(_small())
    ledger.add("r", Component.TOOL_RESULTS, TokenCount(100, False))
    ledger.replace("r", TokenCount(10, True), component=Component.HISTORY)
    assert ledger.used(Component.TOOL_RESULTS) == TokenCount(0, True)
    assert ledger.used(Component.HISTORY) == TokenCount(10, True)
    assert ledger.get("r") == (Component.HISTORY, TokenCount(10, True))
    assert ledger.get("missing") is None
    assert "r" in ledger


def test_misuse_raises_usage_errors() -> None:
    ledger = Ledger(_small())
    ledger.add("a", Component.HISTORY, TokenCount(1, True))
    with pytest.raises(UsageError, match="already has an entry 'a'"):
        ledger.add("a", Component.HISTORY, TokenCount(1, True))
    with pytest.raises(UsageError, match="no entry 'zz'"):
        ledger.remove("zz")
    with pytest.raises(UsageError, match="no entry 'zz'"):
        ledger.replace("zz", TokenCount(1, True))
    with pytest.raises(UsageError):
        ledger.add("", Component.HISTORY, TokenCount(1, True))
    with pytest.raises(UsageError):
        ledger.add("b", "history", TokenCount(1, True))  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        ledger.add("b", Component.HISTORY, 5)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        ledger.add("b", Component.HISTORY, TokenCount(-1, True))
    with pytest.raises(UsageError):
        ledger.replace("a", TokenCount(-1, True))
    with pytest.raises(UsageError):
        Ledger(Policy())  # type: ignore[arg-type]
    assert ledger.total == TokenCount(1, True)  # failed calls changed nothing
    assert Counter(ledger) == Counter(["a"])


def test_check_fixed_through_the_ledger() -> None:
    ledger = Ledger(preset("research-128k").allocate(128_000, 16_384))
    ledger.add("system", Component.SYSTEM, TokenCount(12_000, True))
    ledger.check_fixed()
    ledger.add("system-2", Component.SYSTEM, TokenCount(1_000, True))
    with pytest.raises(PolicyError) as info:
        ledger.check_fixed()
    assert (info.value.component, info.value.size, info.value.budget) == ("system", 13_000, 12_800)
    assert "13,000" in str(info.value)
    assert "12,800" in str(info.value)


def test_reallocate_keeps_entries() -> None:
    ledger = Ledger(_small())
    ledger.add("a", Component.HISTORY, TokenCount(500, True))
    assert not ledger.over_high_watermark
    bigger = Policy(output_reserve=Amount(tokens=100), high_watermark=0.1, low_watermark=0.05)
    ledger.reallocate(bigger.allocate(2_000, 200))
    assert ledger.over_high_watermark
    assert ledger.snapshot().row(Component.HISTORY).budget is None
    assert ledger.total == TokenCount(500, True)
