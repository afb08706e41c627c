"""The accountant: incremental totals equal a recount of the whole request; calibration works."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.budget.accounting import OVERHEAD_ID, TOOLS_ID, Accountant, counter_for
from ctxbudget.budget.models import resolve_model
from ctxbudget.errors import PolicyError, UsageError
from ctxbudget.session.items import Component, Item, TextPart, ToolResultPart, ToolSpec
from ctxbudget.tokens.backends import TiktokenTokenizer

GPT4O = resolve_model("gpt-4o")
CLAUDE = resolve_model("claude-sonnet-4-5")
TOOL = ToolSpec(
    name="bash",
    description="Run a shell command.",
    parameters={"type": "object", "properties": {"cmd": {"type": "string"}}},
)


def text_item(index: int, text: str, component: Component = Component.HISTORY) -> Item:
    role = "system" if component is Component.SYSTEM else "user"
    return Item(id=f"m{index}", role=role, component=component, parts=(TextPart(text=text),))


def result_item(index: int, text: str) -> Item:
    return Item(
        id=f"m{index}",
        role="tool",
        component=Component.TOOL_RESULTS,
        parts=(ToolResultPart(call_id=f"c{index}", content=text),),
    )


texts = st.text(min_size=0, max_size=200)
operations = st.lists(
    st.tuples(st.sampled_from(["add", "result", "remove"]), texts, st.integers(0, 50)),
    max_size=40,
)


def apply(accountant: Accountant, ops: list[tuple[str, str, int]]) -> dict[str, Item]:
    """Add and remove items as ``ops`` say; the items still accounted, by id."""
    live: dict[str, Item] = {}
    for index, (op, text, pick) in enumerate(ops):
        if op == "remove" and live:
            victim = sorted(live)[pick % len(live)]
            accountant.remove(victim)
            del live[victim]
        elif op != "remove":
            item = text_item(index, text) if op == "add" else result_item(index, text)
            accountant.add(item)
            live[item.id] = item
    return live


@settings(max_examples=60, deadline=None)
@given(operations)
def test_incremental_total_equals_a_whole_request_recount(ops: list[tuple[str, str, int]]) -> None:
    accountant = Accountant(GPT4O)
    accountant.set_tools([TOOL])
    live = apply(accountant, ops)
    recount = counter_for(GPT4O).count_request(list(live.values()), [TOOL])
    assert accountant.input_tokens == recount
    snapshot = accountant.snapshot()
    assert sum(r.used for r in snapshot.components) == recount.tokens


@settings(max_examples=40, deadline=None)
@given(operations, st.integers(1_000, 200_000))
def test_calibration_sees_the_same_request_as_a_whole_recount(
    ops: list[tuple[str, str, int]], billed: int
) -> None:
    """The running tally calibration uses equals the whole request's tally, however items
    came and went; so the factor it learns is the one a recount would give."""
    accountant, twin = Accountant(CLAUDE), Accountant(CLAUDE)
    for one in (accountant, twin):
        one.set_tools([TOOL])
    live = apply(accountant, ops)
    twin.extend(live.values())
    whole = twin.counter.tally_request(list(live.values()), [TOOL])
    accountant.observe_billed(billed)
    expected = twin._calibrator.observe(whole.raw, billed, whole.fixed)  # type: ignore[union-attr]
    assert accountant._calibrator == expected


def test_components_are_accounted_where_items_say() -> None:
    accountant = Accountant(GPT4O)
    accountant.add(text_item(0, "You are terse.", Component.SYSTEM))
    accountant.add(result_item(1, "x" * 400))
    snapshot = accountant.snapshot()
    enc = TiktokenTokenizer.load("o200k_base")
    assert snapshot.row(Component.TOOL_RESULTS).used > enc.count("x" * 400)
    assert snapshot.row(Component.TOOL_RESULTS).items == 1
    # system holds the item and the per-request framing overhead
    assert snapshot.row(Component.SYSTEM).items == 2
    assert accountant.count(OVERHEAD_ID).tokens == 3


def test_set_tools_replaces_the_schemas() -> None:
    accountant = Accountant(GPT4O)
    first = accountant.set_tools([TOOL])
    assert accountant.count(TOOLS_ID) == first
    assert accountant.set_tools([]).tokens == 0
    assert accountant.count(TOOLS_ID).tokens == 0


def test_usage_mistakes_are_clear() -> None:
    accountant = Accountant(GPT4O)
    accountant.add(text_item(0, "hi"))
    with pytest.raises(UsageError, match="already accounted"):
        accountant.add(text_item(0, "again"))
    with pytest.raises(UsageError, match="not accounted"):
        accountant.remove("nope")


def test_fixed_component_over_budget_names_it() -> None:
    small = resolve_model("gpt-4o", context_window=4_000, max_output_tokens=500)
    accountant = Accountant(small)
    accountant.add(text_item(0, "word " * 3_000, Component.SYSTEM))
    with pytest.raises(PolicyError) as caught:
        accountant.check_fixed()
    assert caught.value.component == "system"
    assert caught.value.size is not None
    assert caught.value.budget is not None
    assert caught.value.size > caught.value.budget


def test_exact_models_have_no_calibration() -> None:
    accountant = Accountant(GPT4O)
    accountant.add(text_item(0, "hello"))
    before = accountant.input_tokens
    assert accountant.calibration is None
    assert accountant.observe_billed(999) == before


def test_calibration_converges_on_billed_usage() -> None:
    """A provider whose tokenizer yields 1.37x the proxy's tokens: estimates converge."""
    accountant = Accountant(CLAUDE)
    proxy = TiktokenTokenizer.load("o200k_base")
    true_total = 0
    for turn in range(40):
        text = f"turn {turn}: " + "the quick brown fox jumps over the lazy dog " * (turn + 5)
        accountant.add(text_item(turn, text))
        true_total += round(proxy.count(text) * 1.37) + 5  # the provider's own count
        accountant.observe_billed(true_total)
    estimate = accountant.input_tokens
    assert estimate.exact is False
    assert abs(estimate.tokens - true_total) / true_total < 0.02
    calibration = accountant.calibration
    assert calibration is not None
    assert calibration.observations == 40
    assert calibration.factor == pytest.approx(1.37, rel=0.03)
