"""Telemetry: the per-call metrics record, decay signals, their actions, and the alert rules."""

from __future__ import annotations

import dataclasses
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget import ContextManager, Item, TextPart, Usage
from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.session.items import Component
from ctxbudget.telemetry import (
    Alert,
    AlertMonitor,
    AlertRules,
    CallMetrics,
    CompactionMetrics,
    SignalActions,
)
from ctxbudget.telemetry.signals import is_reminder
from test_manager import agent, exchange, output


def run(mgr: ContextManager, steps: int, lines: int = 60, start: int = 1) -> None:
    for step in range(start, start + steps):
        mgr.prepare()
        mgr.extend(exchange(step, output(step, lines)))


def record(turn: int, utilization: float, **changes: Any) -> CallMetrics:
    """A synthetic record whose input is ``utilization`` of a 1,000-token limit."""
    base = CallMetrics(
        session_id="s",
        turn=turn,
        stage="prepared",
        time=0.0,
        model="m",
        provider="openai",
        components=(),
        input_tokens=round(utilization * 1000),
        exact=True,
        limit=1000,
        before_tokens=0,
        compactions=(),
        predicted=None,
        predicted_cost=None,
        compacted_tokens=0,
        constraint_distance=0,
        retrieval_hit_rate=None,
    )
    return dataclasses.replace(base, **changes)


# -- the record ------------------------------------------------------------------------------


def test_every_prepare_publishes_a_record_with_the_ledger_and_the_prediction() -> None:
    mgr = agent(window=8_000)
    seen: list[CallMetrics] = []
    mgr.metrics.subscribe(seen.append)
    run(mgr, 3)
    body = mgr.prepare()
    rec = mgr.metrics.last
    assert rec is not None
    assert rec is seen[-1]
    assert [r.turn for r in mgr.metrics] == [1, 2, 3, 4]
    assert rec.session_id == mgr.session_id
    assert rec.stage == "prepared"
    report = mgr.last_report
    assert report is not None
    assert rec.input_tokens == report.input_tokens.tokens
    assert rec.exact == report.input_tokens.exact
    assert rec.limit == report.limit
    assert rec.remaining == report.limit - rec.input_tokens
    used = {c.component: c.used for c in rec.components}
    assert used == {r.component.value: r.used for r in report.after.components}
    assert rec.predicted == report.predicted
    assert rec.constraint_distance > 0
    assert body["messages"][0]["role"] == "system"
    line = json.loads(json.dumps(rec.as_dict()))
    assert line["count"] == ("exact" if rec.exact else "estimate")
    assert line["turn"] == 4


def test_billed_usage_replaces_the_turn_and_reaches_subscribers_again() -> None:
    mgr = agent(window=8_000)
    seen: list[CallMetrics] = []
    mgr.metrics.subscribe(seen.append)
    mgr.prepare()
    billed = Usage(input_tokens=300, cache_read_tokens=200, output_tokens=40)
    mgr.observe_usage(billed)
    assert [r.stage for r in seen] == ["prepared", "billed"]
    assert len(mgr.metrics) == 1
    rec = mgr.metrics.last
    assert rec is not None
    assert rec.billed == billed
    assert rec.cache_hit_rate == pytest.approx(200 / 300)
    assert rec.billed_cost is not None
    assert rec.cost == rec.billed_cost > 0


def test_compaction_is_recorded_with_freed_and_rewritten_tokens() -> None:
    mgr = agent(window=6_000)
    run(mgr, 12)
    pruned = [r for r in mgr.metrics if r.compactions]
    assert pruned, "a 6K window must compact within 12 exchanges of ~600 tokens"
    for rec in pruned:
        for c in rec.compactions:
            assert c.freed > 0
            assert 0 < c.rewritten <= rec.before_tokens
    last = mgr.metrics.last
    assert last is not None
    assert last.compression_ratio > 1.0
    assert last.compacted_tokens == sum(c.freed for r in mgr.metrics for c in r.compactions)


def test_estimated_counts_are_labelled_estimate() -> None:
    mgr = ContextManager("claude-sonnet-4-5", context_window=20_000, max_output_tokens=1_000)
    mgr.extend([{"role": "user", "content": "hello"}])
    mgr.prepare("anthropic")
    rec = mgr.metrics.last
    assert rec is not None
    assert not rec.exact
    assert rec.as_dict()["count"] == "estimate"


def test_a_failing_subscriber_is_logged_and_does_not_stop_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mgr = agent()

    def broken(record: CallMetrics) -> None:
        raise RuntimeError("exporter down")

    mgr.metrics.subscribe(broken)
    mgr.prepare()
    assert "metrics sink" in caplog.text
    assert "exporter down" in caplog.text
    assert len(mgr.metrics) == 1


# -- signals and actions ---------------------------------------------------------------------


def test_constraints_are_restated_once_the_generation_point_drifts_past_the_threshold() -> None:
    mgr = agent(window=60_000, actions=SignalActions(reinject_at=2_000))
    run(mgr, 3)
    assert not any(r.reinjected for r in mgr.metrics)
    run(mgr, 6, start=4)
    assert any(r.reinjected for r in mgr.metrics)
    reminders = [i for i in mgr.view.items if is_reminder(i)]
    assert len(reminders) == 1, "an older restatement leaves the view"
    reminder = reminders[0]
    assert reminder.role == "user"
    assert reminder.component is Component.WORKING
    assert "Never edit tests." in reminder.parts[0].text  # type: ignore[union-attr]
    assert mgr.signals().constraint_distance <= 2_000 + 1_500
    hidden = [r for r in mgr.log.records() if r.strategy == "reinject"]
    for rec in hidden:
        for edit in rec.edits:
            for item_id in edit.remove:
                assert is_reminder(mgr.recall(item_id)), "restorable from the log"


def test_constraint_distance_counts_everything_after_the_system_prompt() -> None:
    mgr = agent(window=60_000, actions=SignalActions(reinject_at=None))
    before = mgr.signals().constraint_distance
    items = mgr.extend(exchange(1, output(1)))
    after = mgr.signals().constraint_distance
    assert after - before == sum(mgr.accountant.count(i.id).tokens for i in items)
    assert not mgr.signals().reinject_constraints


def test_history_occupancy_compacts_early_when_asked() -> None:
    def chatty(mgr: ContextManager) -> None:
        for n in range(30):
            mgr.extend(
                [
                    {"role": "user", "content": f"question {n}: " + "why " * 200},
                    {"role": "assistant", "content": f"answer {n}: " + "because " * 200},
                ]
            )
            mgr.prepare()

    lazy = agent(window=40_000)
    chatty(lazy)
    eager = agent(window=40_000, actions=SignalActions(compact_history_at=0.8), cost_aware=False)
    chatty(eager)

    def first_turn(mgr: ContextManager) -> int | None:
        return next((n for n, r in enumerate(mgr.metrics) if r.compactions), None)

    # budgets bind at 100% of history's budget anyway; asked, it compacts from 80%: earlier
    lazy_first, eager_first = first_turn(lazy), first_turn(eager)
    assert eager_first is not None
    assert lazy_first is None or eager_first < lazy_first
    first = next(r for r in eager.metrics if r.compactions)
    assert "history at" in first.compactions[0].reason
    signals = eager.signals()
    assert signals.history_occupancy is not None


def knowledge(n: int) -> Item:
    return Item(
        id=f"kb-{n}",
        role="user",
        component=Component.KNOWLEDGE,
        parts=(TextPart(text=f"Document {n}: " + "facts " * 50),),
    )


def test_retrieval_hit_rate_over_a_scripted_session() -> None:
    mgr = agent(window=60_000)
    script = [(["kb-1", "kb-2"], ["kb-1"]), (["kb-3", "kb-4"], []), (["kb-5"], ["kb-5"])]
    for n, (retrieved, used) in enumerate(script, start=1):
        mgr.extend([knowledge(int(i.split("-")[1])) for i in retrieved])
        mgr.prepare()
        mgr.extend([{"role": "assistant", "content": f"answer {n}"}])
        mgr.note_retrieval(retrieved, used)
    assert mgr.signals().retrieval_hit_rate == pytest.approx(2 / 5)
    mgr.prepare()
    rec = mgr.metrics.last
    assert rec is not None
    assert rec.retrieval_hit_rate == pytest.approx(2 / 5)
    with pytest.raises(UsageError, match="subset"):
        mgr.note_retrieval(["kb-9"], ["kb-8"])


def test_low_hit_rate_narrows_the_knowledge_layer() -> None:
    mgr = agent(window=60_000, actions=SignalActions(narrow_knowledge_below=0.5))
    mgr.extend([knowledge(1), knowledge(2), knowledge(3)])
    mgr.prepare()
    mgr.extend([{"role": "assistant", "content": "used document 1"}])
    mgr.note_retrieval(["kb-1", "kb-2", "kb-3"], ["kb-1"])
    assert mgr.signals().narrow_knowledge
    mgr.extend([{"role": "user", "content": "next"}])
    mgr.prepare()
    ids = {i.id for i in mgr.view.items}
    assert "kb-1" in ids
    assert not ids & {"kb-2", "kb-3"}
    rec = mgr.metrics.last
    assert rec is not None
    assert rec.compactions[0].strategy == "narrow_knowledge"
    assert mgr.recall("kb-2").id == "kb-2"


def test_routing_decision_lands_in_the_next_record_only() -> None:
    mgr = agent()
    mgr.note_routing({"query": "fix test", "domains": ["code"], "method": "keywords"})
    mgr.prepare()
    mgr.prepare()
    records = list(mgr.metrics)
    assert records[0].routing == {"query": "fix test", "domains": ["code"], "method": "keywords"}
    assert records[1].routing is None
    with pytest.raises(UsageError, match="as_dict"):
        mgr.note_routing(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"reinject_at": 0},
        {"compact_history_at": 1.5},
        {"narrow_knowledge_below": 0},
        {"window": 0},
    ],
)
def test_bad_signal_actions_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SignalActions(**bad)


# -- alerts ----------------------------------------------------------------------------------


def feed(monitor: AlertMonitor, values: list[float], **changes: Any) -> list[Alert]:
    records: list[CallMetrics] = []
    out: list[Alert] = []
    for turn, value in enumerate(values, start=1):
        records.append(record(turn, value, **changes))
        out.extend(monitor.evaluate(records))
    return out


def test_utilization_alerts_fire_in_order_and_resolve_with_hysteresis() -> None:
    monitor = AlertMonitor()
    alerts = feed(monitor, [0.5, 0.72, 0.86, 0.96, 0.93, 0.96, 0.5])
    assert [(a.name, a.state) for a in alerts] == [
        ("utilization_70", "firing"),
        ("utilization_85", "firing"),
        ("utilization_95", "firing"),
        ("utilization_70", "resolved"),
        ("utilization_85", "resolved"),
        ("utilization_95", "resolved"),
    ]
    assert [a.level for a in alerts[:3]] == ["info", "warning", "critical"]


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=60))
def test_an_alert_never_flaps_inside_its_hysteresis_band(values: list[float]) -> None:
    """Between two changes of state the value moves by at least the hysteresis margin."""
    monitor = AlertMonitor(AlertRules(utilization=((0.85, "warning"),), hysteresis=0.05))
    alerts = feed(monitor, values)
    states = [a.state for a in alerts]
    assert all(a != b for a, b in itertools.pairwise(states)), "alternates"
    for fired, resolved in zip(alerts[::2], alerts[1::2], strict=False):
        assert fired.value >= 0.85
        assert resolved.value < 0.80
        assert fired.message.startswith("context at")
        assert resolved.message == (
            f"resolved: utilization_85 is back at {resolved.value:.0%} (alert threshold 85%)"
        )


def test_pruning_frequency_alert_waits_for_the_window_and_needs_more_than_the_share() -> None:
    rules = AlertRules(utilization=(), window=10, pruning_rate=0.2, cache_hit_rate=None)
    pruned = (CompactionMetrics(strategy="clear_tool_results", freed=10, rewritten=10, reason=""),)
    monitor = AlertMonitor(rules)
    records = [record(t, 0.5, compactions=pruned if t in (3, 6) else ()) for t in range(1, 11)]
    changes = [a for n in range(1, 11) for a in monitor.evaluate(records[:n])]
    assert changes == [], "2 of 10 is not more than 20%"
    records.append(record(11, 0.5, compactions=pruned))
    (alert,) = monitor.evaluate(records[-10:])
    assert alert.name == "pruning_frequency"
    assert alert.value == pytest.approx(0.3)


def test_cache_hit_rate_and_session_cost_alerts() -> None:
    rules = AlertRules(utilization=(), window=3, session_cost="0.01")
    monitor = AlertMonitor(rules)
    cold = Usage(input_tokens=1000, cache_read_tokens=100)
    records = [record(t, 0.5, predicted=cold) for t in (1, 2, 3)]
    alerts = monitor.evaluate(records, session_cost=Decimal("0.02"))
    assert {(a.name, a.level) for a in alerts} == {
        ("cache_hit_rate", "warning"),
        ("session_cost", "critical"),
    }
    assert "0.0200" in next(a for a in alerts if a.name == "session_cost").message


def test_alert_sinks_get_changes_and_bad_rules_are_config_errors() -> None:
    mgr = agent(window=3_000, alerts=AlertRules(utilization=((0.01, "info"),)))
    got: list[Alert] = []
    mgr.alerts.subscribe(got.append)
    mgr.prepare()
    assert [a.name for a in got] == ["utilization_1"]
    assert mgr.alerts.active == tuple(got)
    with pytest.raises(ConfigError):
        AlertRules(utilization=((1.5, "info"),))
    with pytest.raises(ConfigError):
        AlertRules(session_cost="lots")


def test_a_scope_following_a_route_notes_the_decision_in_the_metrics() -> None:
    from ctxbudget.routing import KeywordRouter, Rule
    from ctxbudget.scoping import ToolRegistry, ToolScope

    mgr = ContextManager("gpt-4o", session_id="routed")
    mgr.append({"role": "user", "content": "Refund my ticket, please."})
    router = KeywordRouter(
        [Rule(name="refund", keywords=("refund",), domains=("policy",), tool_groups=("pay",))],
        default_groups=("pay",),
    )
    registry = ToolRegistry.build(
        [{"type": "function", "function": {"name": "pay", "parameters": {"type": "object"}}}],
        groups={"pay": ["pay"]},
        phases={"pay": ["pay"]},
    )
    scope = ToolScope(registry, mode="cache_stable")
    decision = router.route("Refund my ticket, please.")
    scope.follow(decision, manager=mgr)
    mgr.prepare()
    rec = mgr.metrics.last
    assert rec is not None
    assert rec.routing == decision.as_dict()
    assert rec.as_dict()["routing"]["method"] == decision.method


def test_mark_used_with_the_manager_reports_knowledge_item_ids() -> None:
    from ctxbudget.retrieval import BM25Index, BudgetedRetriever, Document

    index = BM25Index(
        [
            Document(id="refunds", text="Refunds go back to the original payment in 7 days."),
            Document(id="bags", text="Each passenger may check two bags of 23 kilograms."),
        ]
    )
    retriever = BudgetedRetriever(index, candidates=5)
    mgr = ContextManager("gpt-4o")
    mgr.append({"role": "user", "content": "How do refunds and bags work?"})
    retrieval = retriever.retrieve(mgr, "refunds bags")
    mgr.prepare()
    mgr.append({"role": "assistant", "content": "Refunds take 7 days."})
    retriever.mark_used("Refunds take 7 days.", cited=["refunds"], manager=mgr)
    assert mgr.signals().retrieval_hit_rate == pytest.approx(0.5)
    used_item = retrieval.item_ids[retrieval.ids.index("refunds")]
    assert mgr.recall(used_item).component is Component.KNOWLEDGE
