"""Budget policy: presets, allocation arithmetic, validation, plain-data round trips."""

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.budget.models import resolve_model
from ctxbudget.budget.policy import (
    DEFAULT_KINDS,
    DEFAULT_STRATEGIES,
    PRESETS,
    Allocation,
    Amount,
    ComponentBudget,
    Policy,
    preset,
)
from ctxbudget.errors import ConfigError, PolicyError, UsageError
from ctxbudget.session.items import Component, ComponentKind

W = 128_000
FIXED, PROTECTED, PRUNABLE = ComponentKind.FIXED, ComponentKind.PROTECTED, ComponentKind.PRUNABLE


def _budgets(allocation: Allocation) -> dict[str, int]:
    return {c.component.value: c.budget for c in allocation.components if c.budget is not None}


def test_research_preset_reproduces_the_seed_numbers_on_128k() -> None:
    allocation = preset("research-128k").allocate(W, 16_384)
    assert _budgets(allocation) == {
        "system": 12_800,
        "memory": 12_800,
        "history": 44_800,
        "tool_results": 38_400,
        "scratchpad": 12_800,
    }
    assert allocation.output_reserve == 6_400
    assert allocation.safety_margin == 0
    assert allocation.usable == W - 6_400
    assert sum(_budgets(allocation).values()) + allocation.output_reserve == W
    assert allocation.kind(Component.SYSTEM) is FIXED
    assert allocation.kind(Component.MEMORY) is PROTECTED
    assert allocation.budget(Component.TOOLS) is None  # unbudgeted: counts against the total


def test_four_layer_preset_shares_the_usable_window() -> None:
    allocation = preset("four-layer").allocate(W, 16_384)
    assert allocation.output_reserve == 16_384
    assert allocation.safety_margin == 2_560  # 2%: estimated counts
    usable = W - 16_384 - 2_560
    assert allocation.usable == usable == 109_056
    assert _budgets(allocation) == {
        "system": 8_724,
        "knowledge": 32_716,
        "history": 43_622,
        "working": 23_992,
    }
    for name, share in (("system", 0.08), ("working", 0.22), ("knowledge", 0.30), ("history", 0.4)):
        assert _budgets(allocation)[name] == math.floor(share * usable + 1e-9)
    exact = preset("four-layer").allocate(W, 16_384, exact_counts=True)
    assert exact.safety_margin == 640
    assert exact.usable == W - 16_384 - 640


@pytest.mark.parametrize("window", [8_192, 128_000, 200_000, 1_048_576])
def test_quality_preset_keeps_use_under_60_percent(window: int) -> None:
    allocation = preset("quality").allocate(window, min(window // 2, 16_384))
    assert allocation.usable <= 0.6 * window
    assert allocation.high_watermark <= 0.6 * window
    assert sum(_budgets(allocation).values()) <= allocation.usable


def test_agent_preset_kinds() -> None:
    allocation = preset("agent").allocate(W, 16_384)
    kinds = {c.component: c.kind for c in allocation.components}
    assert kinds[Component.SYSTEM] is kinds[Component.TOOLS] is FIXED
    assert kinds[Component.WORKING] is PROTECTED
    for c in (Component.HISTORY, Component.TOOL_RESULTS, Component.SCRATCHPAD):
        assert kinds[c] is PRUNABLE
    assert allocation.high_watermark > allocation.low_watermark
    assert allocation.policy_name == "agent"


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "gpt-4"])
def test_every_preset_fits_every_model(name: str, model: str) -> None:
    spec = resolve_model(model)
    if name == "four-layer" and spec.context_window <= 16_384:
        with pytest.raises(PolicyError, match="output_reserve"):  # its 16K reserve fills gpt-4
            preset(name).allocate_for(spec)
        return
    allocation = preset(name).allocate_for(spec)
    assert allocation.output_reserve <= spec.max_output_tokens
    budgeted = sum(_budgets(allocation).values())
    assert budgeted + allocation.output_reserve + allocation.safety_margin <= spec.context_window
    margin = preset(name).allocate(spec.context_window, spec.max_output_tokens).safety_margin
    if preset(name).safety_margin is None and not spec.exact_tokenizer:
        assert allocation.safety_margin == margin


def test_default_policy_leaves_everything_unbudgeted() -> None:
    policy = Policy()
    assert policy.strategies == DEFAULT_STRATEGIES
    allocation = policy.allocate(W, 16_384)
    assert all(c.budget is None for c in allocation.components)
    assert {c.component: c.kind for c in allocation.components} == dict(DEFAULT_KINDS)


@pytest.mark.parametrize(
    ("window", "max_output", "reserve"),
    [(8_192, 8_192, 2_048), (200_000, 64_000, 16_384), (16_385, 4_096, 4_096)],
)
def test_default_output_reserve(window: int, max_output: int, reserve: int) -> None:
    assert Policy().allocate(window, max_output).output_reserve == reserve


def test_output_reserve_is_capped_at_the_model_output_limit() -> None:
    allocation = preset("four-layer").allocate(200_000, 8_192)
    assert allocation.output_reserve == 8_192


def test_window_shares_must_leave_room_for_reserve_and_margin() -> None:
    with pytest.raises(PolicyError, match="reserve"):
        Policy(
            shares_of="window",
            budgets=(ComponentBudget(component=Component.HISTORY, kind=PRUNABLE, share=0.97),),
            output_reserve=Amount(share=0.05),
        )


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"budgets": {"system": 0.6, "history": 0.6}}, "add up to 1.2"),
        ({"budgets": {"system": 1.5}}, "share 1.5"),
        ({"budgets": {"system": -3}}, "non-negative"),
        ({"budgets": {"system": {"share": 0.1, "tokens": 10}}}, "exactly one"),
        ({"budgets": {"system": {"share": 0.1, "size": 10}}}, "unknown keys"),
        ({"budgets": {"system": {"share": 0.1, "kind": "sticky"}}}, "unknown component kind"),
        ({"budgets": {"sytem": 0.1}}, "did you mean 'system'"),
        ({"budgets": ["system"]}, "mapping"),
        ({"high_watermark": 0.5, "low_watermark": 0.6}, "below high_watermark"),
        ({"high_watermark": 1.5}, "(0, 1]"),
        ({"low_watermark": 0}, "(0, 1]"),
        ({"max_fill": 2}, "max_fill"),
        ({"shares_of": "total"}, "shares_of"),
        ({"output_reserve": "lots"}, "cannot read"),
        ({"output_reserve": {"tokens": 5, "share": 0.1}}, "exactly one"),
        ({"strategies": "dedup"}, "list"),
        ({"strategies": ["dedup", "dedup"]}, "distinct"),
        ({"budget": {}}, "did you mean 'budgets'"),
        ({"preset": "agnt"}, "did you mean 'agent'"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_policies_say_what_to_change(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    assert needle in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_duplicate_components_are_rejected() -> None:
    budget = ComponentBudget(component=Component.SYSTEM, kind=FIXED, share=0.1)
    with pytest.raises(PolicyError, match="more than once: system"):
        Policy(budgets=(budget, budget))


def test_component_budget_accepts_names_and_rejects_unknown_ones() -> None:
    budget = ComponentBudget(component="history", kind="prunable", tokens=5)  # type: ignore[arg-type]
    assert budget.component is Component.HISTORY
    assert budget.kind is PRUNABLE
    with pytest.raises(PolicyError, match="unknown component"):
        ComponentBudget(component="histroy", kind=PRUNABLE, tokens=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "window", "max_output", "needle"),
    [
        (Policy(output_reserve=Amount(share=1.0)), 1_000, 1_000, "below the context window"),
        (Policy(output_reserve=Amount(tokens=0)), 1_000, 100, "at least 1"),
        (Policy(safety_margin=Amount(share=0.9)), 1_000, 200, "no room left"),
        (Policy.from_dict({"budgets": {"history": 900}}), 1_000, 200, "budgets total 900"),
        (Policy(), 0, 100, "context_window"),
        (Policy(), 1_000, True, "max_output_tokens"),
    ],
)
def test_allocation_errors(policy: Policy, window: int, max_output: int, needle: str) -> None:
    with pytest.raises(PolicyError, match=needle):
        policy.allocate(window, max_output)


def test_fixed_component_over_budget_names_component_size_and_budget() -> None:
    allocation = preset("research-128k").allocate(W, 16_384)
    with pytest.raises(PolicyError) as info:
        allocation.check_fixed({Component.SYSTEM: 15_000, Component.HISTORY: 99_999})
    error = info.value
    assert (error.component, error.size, error.budget) == ("system", 15_000, 12_800)
    message = str(error)
    assert "'system'" in message
    assert "15,000" in message
    assert "12,800" in message
    allocation.check_fixed({Component.SYSTEM: 12_800, Component.HISTORY: 99_999})  # not fixed


def test_fixed_content_must_fit_the_usable_window_even_unbudgeted() -> None:
    allocation = Policy(safety_margin=Amount(tokens=0)).allocate(10_000, 1_000)
    allocation.check_fixed({Component.SYSTEM: 4_000, Component.TOOLS: 5_000})
    with pytest.raises(PolicyError) as info:
        allocation.check_fixed({Component.SYSTEM: 5_000, Component.TOOLS: 5_000})
    assert (info.value.component, info.value.size, info.value.budget) == ("fixed", 10_000, 9_000)
    with pytest.raises(UsageError):
        allocation.check_fixed({Component.SYSTEM: -1})


def test_allocation_must_list_every_component() -> None:
    allocation = Policy().allocate(W, 16_384)
    with pytest.raises(PolicyError):
        Allocation(
            context_window=W,
            output_reserve=1,
            safety_margin=0,
            usable=W - 1,
            high_watermark=10,
            low_watermark=5,
            components=allocation.components[:-1],
        )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_plain_data(name: str) -> None:
    policy = preset(name)
    assert Policy.from_dict(policy.to_dict()) == policy
    assert policy.name == name


def test_from_dict_extends_a_preset() -> None:
    policy = Policy.from_dict(
        {
            "preset": "agent",
            "budgets": {"scratchpad": None, "knowledge": "5%", "system": {"tokens": 4_000}},
            "output_reserve": 8_000,
            "safety_margin": "1%",
            "high_watermark": 0.9,
        }
    )
    assert policy.name == "agent"
    assert policy.budget_for(Component.SCRATCHPAD) is None
    knowledge = policy.budget_for(Component.KNOWLEDGE)
    assert knowledge is not None
    assert (knowledge.share, knowledge.kind) == (0.05, PRUNABLE)
    system = policy.budget_for(Component.SYSTEM)
    assert system is not None
    assert (system.tokens, system.kind) == (4_000, FIXED)
    assert policy.output_reserve == Amount(tokens=8_000)
    assert policy.safety_margin == Amount(share=0.01)
    assert policy.high_watermark == 0.9
    assert preset("agent").high_watermark == 0.8  # presets are not mutated


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        (16_384, Amount(tokens=16_384)),
        ("16_384", Amount(tokens=16_384)),
        (0.05, Amount(share=0.05)),
        ("5%", Amount(share=0.05)),
        ("12.5%", Amount(share=0.125)),
        ({"share": 0.2}, Amount(share=0.2)),
        ({"tokens": 10}, Amount(tokens=10)),
    ],
)
def test_amount_parse(raw: object, amount: Amount) -> None:
    assert Amount.parse(raw) == amount


@pytest.mark.parametrize("raw", [True, None, "5 tokens", 1.5, -1, [1], {"size": 3}])
def test_amount_parse_rejects(raw: object) -> None:
    with pytest.raises(PolicyError):
        Amount.parse(raw)


shares = st.floats(min_value=0, max_value=0.3, allow_nan=False)


@given(
    budgets=st.dictionaries(st.sampled_from(list(Component)), shares, max_size=9),
    window=st.integers(min_value=4_000, max_value=2_000_000),
    max_output=st.integers(min_value=1, max_value=200_000),
    max_fill=st.none() | st.floats(min_value=0.3, max_value=1),
)
def test_allocations_never_exceed_the_window(
    budgets: dict[Component, float], window: int, max_output: int, max_fill: float | None
) -> None:
    total = sum(budgets.values())
    scale = 1 / total if total > 1 else 1
    policy = Policy(
        budgets=tuple(
            ComponentBudget(component=c, kind=DEFAULT_KINDS[c], share=s * scale * 0.999)
            for c, s in budgets.items()
        ),
        max_fill=max_fill,
    )
    allocation = policy.allocate(window, min(max_output, window))
    budgeted = sum(c.budget or 0 for c in allocation.components)
    assert budgeted <= allocation.usable
    assert allocation.usable + allocation.output_reserve + allocation.safety_margin <= window
    assert 0 <= allocation.low_watermark <= allocation.high_watermark <= allocation.usable
    assert allocation.output_reserve <= max_output
