"""Per-component budgets bind: a prunable component over its budget is compacted even
while the whole context is under the watermarks (the cost gate permitting)."""

from __future__ import annotations

from ctxbudget.budget.amounts import ComponentBudget
from ctxbudget.budget.policy import Policy
from ctxbudget.manager import ContextManager
from ctxbudget.session.items import Component, ComponentKind
from test_manager import TOOLS, exchange, output


def test_tool_results_over_their_budget_are_compacted_under_the_watermark() -> None:
    policy = Policy(
        name="tight-results",
        budgets=(
            ComponentBudget(
                component=Component.TOOL_RESULTS, share=0.10, kind=ComponentKind.PRUNABLE
            ),
        ),
        strategies=("clear_tool_results",),
    )
    mgr = ContextManager("gpt-4o", context_window=50_000, max_output_tokens=500, policy=policy)
    mgr.set_tools(TOOLS)
    mgr.extend([{"role": "user", "content": "Fix the failing test in src/module_0.py."}])
    for step in range(1, 12):
        mgr.extend(exchange(step, output(step, 120)))
    before = mgr.snapshot()
    row = before.row(Component.TOOL_RESULTS)
    assert row.budget is not None
    assert row.used > row.budget  # over its own budget...
    assert mgr.total() < mgr.accountant.ledger.allocation.high_watermark  # ...not the window's
    mgr.prepare()
    report = mgr.last_report
    assert report is not None
    assert report.records, report.deferred
    assert report.reason.startswith("tool_results at ")
    after = mgr.snapshot().row(Component.TOOL_RESULTS)
    assert after.used <= row.budget


def test_nothing_happens_while_every_component_is_within_budget() -> None:
    mgr = ContextManager("gpt-4o", context_window=200_000, max_output_tokens=500)
    mgr.set_tools(TOOLS)
    mgr.extend([{"role": "user", "content": "Fix it."}, *exchange(1, output(1))])
    mgr.prepare()
    report = mgr.last_report
    assert report is not None
    assert all(r.strategy not in ("clear_tool_results", "importance") for r in report.records)
