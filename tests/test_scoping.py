"""Tool scoping: cache-stable keeps the prefix byte-identical; remove mode pays a priced rewrite."""

from __future__ import annotations

import json
import warnings
from decimal import Decimal
from typing import Any

import pytest

from ctxbudget import ContextManager
from ctxbudget.budget.policy import Policy
from ctxbudget.compaction.cost_planner import CostGate
from ctxbudget.errors import ConfigError, PolicyError
from ctxbudget.routing import RoutingDecision
from ctxbudget.scoping import (
    ANTHROPIC_TOOL_SEARCH_BETA,
    ToolRegistry,
    ToolScope,
    allowed_tools_choice,
)


def tool(name: str, words: int = 20) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name}: " + "does careful work on the repository " * words,
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "a file path"}},
                "required": ["path"],
            },
        },
    }


NAMES = ["think", "read_file", "grep", "write_file", "apply_patch", "run_tests", "deploy"]
GROUPS = {
    "core": ["think"],
    "explore": ["read_file", "grep"],
    "edit": ["write_file", "apply_patch"],
    "test": ["run_tests"],
    "deploy": ["deploy"],
}
PHASES = {"explore": ["explore"], "edit": ["explore", "edit"], "test": ["test"], "ship": ["deploy"]}


def registry(words: int = 20) -> ToolRegistry:
    return ToolRegistry.build(
        [tool(n, words) for n in NAMES], groups=GROUPS, phases=PHASES, always=["core"]
    )


def manager(provider: str = "openai", **kwargs: Any) -> ContextManager:
    model = "claude-sonnet-4-5" if provider == "anthropic" else "gpt-4o"
    mgr = ContextManager(model, clock=lambda: 0.0, **kwargs)
    mgr.set_system("You are a careful engineer. Never edit tests. " * 200)
    mgr.append({"role": "user", "content": "Find why test_parse fails."})
    return mgr


def turn(mgr: ContextManager, n: int) -> None:
    mgr.append({"role": "assistant", "content": f"Step {n}: looking further."})
    mgr.append({"role": "user", "content": f"Go on with step {n + 1}."})


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] if "function" in t else t["name"] for t in body["tools"]]


def prefix_bytes(body: dict[str, Any], provider: str, messages: int) -> str:
    key = "input" if provider == "openai_responses" else "messages"
    head: dict[str, Any] = {"tools": body["tools"], key: body[key][:messages]}
    for name in ("system", "instructions"):
        if name in body:
            head[name] = body[name]
    return json.dumps(head, sort_keys=True)


# -- the registry -----------------------------------------------------------------------------


def test_registry_keeps_one_order_and_adds_the_always_groups() -> None:
    reg = registry()
    assert reg.names == tuple(NAMES)
    assert reg.phase_tools("edit") == ("think", "read_file", "grep", "write_file", "apply_patch")
    assert reg.phase_tools("test") == ("think", "run_tests")
    assert reg.covering_phase(["test"]) == "test"
    assert reg.covering_phase(["edit"]) == "edit"
    assert reg.covering_phase(["test", "deploy"]) is None


@pytest.mark.parametrize(
    ("groups", "phases", "always", "message"),
    [
        ({"x": ["nope"]}, {"p": ["x"]}, [], "not registered: nope"),
        ({"x": ["grep"]}, {"p": ["y"]}, [], "unknown tool group 'y'"),
        ({"x": ["grep"]}, {}, [], "at least one phase"),
        ({"x": ["grep"]}, {"p": ["x"]}, ["core"], "unknown tool group 'core'"),
    ],
)
def test_registry_rejects_bad_setups_with_a_clear_error(
    groups: dict[str, list[str]], phases: dict[str, list[str]], always: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ToolRegistry.build([tool(n) for n in NAMES], groups=groups, phases=phases, always=always)


def test_duplicate_tools_and_unknown_phases_are_named() -> None:
    with pytest.raises(ConfigError, match="more than once: grep"):
        ToolRegistry.build([tool("grep"), tool("grep")], groups={}, phases={"p": []})
    with pytest.raises(ConfigError, match="unknown phase 'debug'"):
        ToolScope(registry()).set_phase("debug")
    with pytest.raises(ConfigError, match="scope mode"):
        ToolScope(registry(), mode="mask")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown provider"):
        ToolScope(registry()).options("gemini")


# -- cache-stable mode --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "openai_responses"])
def test_cache_stable_keeps_the_prefix_byte_identical_across_phase_changes(provider: str) -> None:
    mgr, scope = manager(provider), ToolScope(registry(), mode="cache_stable")
    bodies = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cache-bust warning may fire
        for n, phase in enumerate(["explore", "edit", "test", "ship", "explore"]):
            scope.set_phase(phase)
            body, report = scope.prepare(mgr, provider)
            bodies.append(body)
            assert report.prefix_change is None
            assert report.allowed == registry().phase_tools(phase)
            turn(mgr, n)
    first = bodies[0]
    size = len(first["input" if provider == "openai_responses" else "messages"])
    for body in bodies[1:]:
        assert prefix_bytes(body, provider, size) == prefix_bytes(first, provider, size)
        assert tool_names(body) == NAMES  # every schema, every time
    allowed = [b["tool_choice"] for b in bodies]
    assert allowed[0] == allowed_tools_choice(("think", "read_file", "grep"), provider)
    assert allowed[2] == allowed_tools_choice(("think", "run_tests"), provider)
    assert mgr.cache.busts == 0
    prepared = mgr.last_report
    assert prepared is not None
    assert prepared.predicted is not None
    assert prepared.predicted.cache_read_tokens > 0
    assert [c.rewrite_tokens for c in scope.changes] == [0, 0, 0, 0]


def test_allowed_tools_have_each_providers_shape() -> None:
    chat = allowed_tools_choice(["a"], "openai", "required")
    assert chat == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "a"}}],
        },
    }
    responses = allowed_tools_choice(["a"], "openai_responses")
    assert responses == {
        "type": "allowed_tools",
        "mode": "auto",
        "tools": [{"type": "function", "name": "a"}],
    }
    with pytest.raises(ConfigError, match="'auto' or 'required'"):
        allowed_tools_choice(["a"], "openai", "none")  # type: ignore[arg-type]


def test_anthropic_cache_stable_defers_all_but_the_always_groups() -> None:
    mgr, scope = manager("anthropic"), ToolScope(registry(), mode="cache_stable")
    first, _report = scope.prepare(mgr, "anthropic")
    turn(mgr, 1)
    scope.set_phase("test")
    second, later = scope.prepare(mgr, "anthropic")
    assert first["tools"][0] == {
        "type": "tool_search_tool_bm25_20251119",
        "name": "tool_search_tool_bm25",
    }
    deferred = {t["name"] for t in first["tools"] if t.get("defer_loading")}
    assert deferred == set(NAMES) - {"think"}
    assert "tool_choice" not in second
    assert json.dumps(first["tools"]) == json.dumps(second["tools"])
    assert first["system"] == second["system"]
    assert later.prefix_change is None
    assert dict(later.headers) == {"anthropic-beta": ANTHROPIC_TOOL_SEARCH_BETA}
    assert set(later.deferred) == deferred
    assert later.loaded_tool_tokens.tokens < later.tool_tokens.tokens


def test_anthropic_full_sends_every_schema_as_is() -> None:
    mgr = manager("anthropic")
    body, report = ToolScope(registry(), anthropic="full").prepare(mgr, "anthropic")
    assert tool_names(body) == NAMES
    assert not any("defer_loading" in t for t in body["tools"])
    assert report.headers == ()


# -- remove mode ---------------------------------------------------------------------------------


def test_remove_mode_changes_the_prefix_and_prices_the_rewrite() -> None:
    mgr, scope = manager(), ToolScope(registry(), mode="remove")
    first, report = scope.prepare(mgr, "openai")
    assert tool_names(first) == ["think", "read_file", "grep"]
    assert report.change is None
    assert "tool_choice" not in first
    turn(mgr, 1)
    scope.set_phase("test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the planned change raises no cache-bust warning
        second, report = scope.prepare(mgr, "openai")
    assert tool_names(second) == ["think", "run_tests"]
    assert json.dumps(second["tools"]) != json.dumps(first["tools"])
    assert report.prefix_change is not None
    assert report.prefix_change.label == "tools"
    change = report.change
    assert change is not None
    assert change.applied
    assert change.added == ("run_tests",)
    assert change.removed == ("read_file", "grep")
    assert change.rewrite_tokens > 0
    gate = CostGate(prices=mgr.model.prices, ttl="5m")
    assert change.rewrite_cost == gate.rewrite_cost(change.rewrite_tokens, cached=True)
    assert change.rewrite_cost is not None
    assert change.rewrite_cost > Decimal(0)
    assert "rewrite" in change.describe()
    billed = mgr.last_report
    assert billed is not None
    assert billed.predicted is not None
    assert billed.predicted.cache_read_tokens == 0  # the whole request is written again


def test_remove_mode_sends_fewer_schema_tokens_than_cache_stable() -> None:
    removed = ToolScope(registry(), mode="remove", phase="test").prepare(manager(), "openai")[1]
    stable = ToolScope(registry(), phase="test").prepare(manager(), "openai")[1]
    assert removed.tool_tokens.tokens < stable.tool_tokens.tokens
    assert not removed.tool_tokens.exact  # tool schema counts are estimates: labelled so


def test_a_shrink_is_held_while_it_does_not_pay() -> None:
    mgr, scope = manager(), ToolScope(registry(), mode="remove", phase="edit", horizon=5)
    scope.prepare(mgr, "openai")
    turn(mgr, 1)
    scope.set_phase("explore")  # only removes tools: worth it only over enough turns
    body, report = scope.prepare(mgr, "openai")
    assert report.change is not None
    assert not report.change.applied
    assert "held" in report.change.reason
    assert tool_names(body) == list(registry().phase_tools("edit"))
    assert report.prefix_change is None  # nothing rewritten
    assert report.allowed == registry().phase_tools("explore")


def test_a_shrink_goes_through_when_it_pays() -> None:
    mgr = manager()
    scope = ToolScope(registry(words=200), mode="remove", phase="edit", horizon=100)
    scope.prepare(mgr, "openai")
    turn(mgr, 1)
    scope.set_phase("explore")
    body, report = scope.prepare(mgr, "openai")
    assert report.change is not None
    assert report.change.applied, report.change
    assert tool_names(body) == ["think", "read_file", "grep"]
    assert report.change.saving_tokens > 0


def test_the_tools_budget_is_enforced_per_phase() -> None:
    policy = Policy.from_dict({"name": "tight", "budgets": {"tools": 300}})
    mgr = manager(policy=policy)
    with pytest.raises(PolicyError, match="phase 'edit'"):
        ToolScope(registry(), mode="remove", phase="edit").prepare(mgr, "openai")
    small = ToolScope(registry(words=2), mode="remove", phase="test")
    small.prepare(mgr, "openai")  # fits


def test_a_routing_decision_picks_the_smallest_covering_phase() -> None:
    scope = ToolScope(registry())
    decision = RoutingDecision(
        query="run the tests", domains=(), tool_groups=("test",), method="rules"
    )
    assert scope.follow(decision) == "test"
    assert scope.use_groups(["test", "deploy"]) == "test+deploy"
    assert scope.allowed == ("think", "run_tests", "deploy")
    with pytest.raises(ConfigError, match="unknown tool group"):
        scope.use_groups(["nope"])
