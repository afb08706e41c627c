"""A long real session replayed with a small window: the alerts fire in order and the system
constraints are restated in the view, as an ops team would see it happen."""

from __future__ import annotations

import dataclasses

import pytest

from _traces import TRACES, requires_traces
from ctxbudget import ContextManager, preset
from ctxbudget.session.items import item_text
from ctxbudget.telemetry import Alert, SignalActions
from ctxbudget.telemetry.signals import is_reminder
from ctxbudget.traces import Session, load_sessions

pytestmark = requires_traces


@pytest.fixture(scope="module")
def longest() -> Session:
    """The mini-swe-agent session with the most calls (145 calls, ~290 items)."""
    sessions = load_sessions(TRACES / "mini-swe-agent-v1")
    return max(sessions, key=lambda s: (len(s.calls), s.name))


def replay(session: Session, manager: ContextManager) -> None:
    """Feed the session call by call, as the agent saw it, preparing each request."""
    if session.tools:
        manager.set_tools(list(session.tools))
    fed = 0
    for call in session.calls:
        manager.extend(list(session.items[fed : call.position]))
        manager.prepare("anthropic")
        manager.extend([session.items[call.position]])
        fed = call.position + 1


@pytest.mark.filterwarnings("ignore::ctxbudget.CacheBustWarning")
def test_small_window_fires_70_85_95_then_pruning_and_restates_the_constraints(
    longest: Session,
) -> None:
    # A 16K window filled up to 97% before compacting down to 90%: the tightest setting an
    # aggressive operator might choose, and the one these alerts exist to catch (no component
    # budgets, which would bind long before).
    policy = dataclasses.replace(
        preset("agent"), budgets=(), high_watermark=0.97, low_watermark=0.90
    )
    manager = ContextManager(
        "claude-sonnet-4-5",
        context_window=16_000,
        max_output_tokens=2_048,
        policy=policy,
        actions=SignalActions(reinject_at=6_000),
        session_id="replay",
    )
    fired: list[Alert] = []
    manager.alerts.subscribe(lambda a: fired.append(a) if a.state == "firing" else None)
    replay(longest, manager)

    first: dict[str, int] = {}
    for alert in fired:
        first.setdefault(alert.name, alert.turn)
    assert first["utilization_70"] < first["utilization_85"] < first["utilization_95"]
    assert "pruning_frequency" in first
    assert first["pruning_frequency"] > first["utilization_95"]
    levels = {a.name: a.level for a in fired}
    assert levels["utilization_95"] == "critical"
    assert levels["pruning_frequency"] == "warning"

    records = list(manager.metrics)
    assert len(records) == len(longest.calls)
    for rec in records:
        assert rec.input_tokens <= rec.limit, "never exceeds the window"
    assert any(r.reinjected for r in records)
    reminders = [i for i in manager.view.items if is_reminder(i)]
    assert len(reminders) == 1
    system = next(i for i in longest.items if i.role == "system")
    assert item_text(system)[:200] in item_text(reminders[0])
    assert manager.signals().constraint_distance < 6_000 + max(
        manager.accountant.count(i.id).tokens for i in manager.view.items
    )
