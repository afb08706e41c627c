"""Baseline policies: observation masking, LangChain-style tool-use clearing, the registry.

Handmade sessions pin what each baseline masks and what it leaves (same objects, same ids,
no orphans); hypothesis checks the structure on random tool sessions; the real traces
check that masking every call of every session never orphans a call or a result.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _sessions import trace_sessions
from _traces import requires_traces
from ctxbudget.errors import ConfigError
from ctxbudget.session.exchanges import assign_exchanges, find_orphans
from ctxbudget.session.items import (
    Component,
    Item,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
    part_text,
)
from ctxbudget.simulate.baselines import (
    BASELINES,
    baseline,
    clear_tool_uses,
    full_history,
    mask_observations,
)


def text(iid: str, body: str, role: Role = "user") -> Item:
    component = Component.SYSTEM if role == "system" else Component.HISTORY
    return Item(id=iid, role=role, component=component, parts=(TextPart(text=body),))


def tool_session(turns: Sequence[int]) -> list[Item]:
    """System, task, then per turn an assistant item making ``n`` calls and their results."""
    items = [text("sys", "You are an agent.", "system"), text("task", "Fix the bug.")]
    for k, n in enumerate(turns):
        calls = tuple(
            ToolCallPart(id=f"c{k}_{j}", name="bash", arguments='{"cmd": "ls"}') for j in range(n)
        )
        items.append(
            Item(
                id=f"a{k}",
                role="assistant",
                component=Component.HISTORY,
                parts=(TextPart(text=f"step {k}"), *calls),
            )
        )
        for j in range(n):
            result = ToolResultPart(call_id=f"c{k}_{j}", content=f"out {k} {j}\nline two")
            items.append(
                Item(
                    id=f"t{k}_{j}",
                    role="tool",
                    component=Component.TOOL_RESULTS,
                    parts=(result,),
                )
            )
    return assign_exchanges(items)


def text_session(turns: int) -> list[Item]:
    """A mini-swe-agent style session: commands in text, outputs as user messages."""
    items = [text("sys", "system", "system"), text("task", "the task"), text("demo", "a demo")]
    for k in range(turns):
        items.append(text(f"a{k}", f"THOUGHT: run\n```bash\nls dir_{k}\n```", "assistant"))
        items.append(text(f"o{k}", f"<returncode>0</returncode>\nfile_{k}.py\nmore"))
    return items


def results(items: Sequence[Item]) -> list[str]:
    return [part_text(r) for item in items for r in item.tool_results]


def same_shape(before: Sequence[Item], after: Sequence[Item]) -> None:
    assert [i.id for i in after] == [i.id for i in before]
    assert [i.role for i in after] == [i.role for i in before]
    assert [i.exchange_id for i in after] == [i.exchange_id for i in before]
    assert [[r.call_id for r in i.tool_results] for i in after] == [
        [r.call_id for r in i.tool_results] for i in before
    ]
    assert [i.tool_calls for i in after] == [i.tool_calls for i in before]
    assert not find_orphans(after, allow_pending_tail=False)


# --- mask_observations ------------------------------------------------------------------


def test_masking_keeps_the_last_ten_observations_and_every_action() -> None:
    items = tool_session([1] * 14)
    out = mask_observations(items)
    same_shape(items, out)
    assert results(out)[:4] == ["Old environment output: (2 lines omitted)"] * 4
    assert results(out)[4:] == results(items)[4:]
    masked = {i.id for i, o in zip(items, out, strict=True) if i is not o}
    assert masked == {f"t{k}_0" for k in range(4)}
    for before, after in zip(items, out, strict=True):
        if before.id not in masked:
            assert after is before  # untouched items are the very same objects


def test_masking_counts_turns_so_parallel_results_stay_together() -> None:
    items = tool_session([3, 1, 2])
    out = mask_observations(items, keep_last=2)
    same_shape(items, out)
    assert [i.id for i, o in zip(items, out, strict=True) if i is not o] == [
        "t0_0",
        "t0_1",
        "t0_2",
    ]


def test_masking_text_only_sessions_masks_user_items_after_the_task() -> None:
    items = text_session(13)
    out = mask_observations(items, placeholder="[masked]")
    same_shape(items, out)
    changed = [o for i, o in zip(items, out, strict=True) if i is not o]
    assert [o.id for o in changed] == ["o0", "o1", "o2"]
    assert all(item_text(o) == "[masked]" and o.role == "user" for o in changed)
    assert out[:3] == items[:3]  # system, task and the demonstration before the first move


def test_masking_has_nothing_to_do_under_the_window() -> None:
    items = tool_session([1] * 10)
    out = mask_observations(items)
    assert all(o is i for o, i in zip(out, items, strict=True))
    assert mask_observations([]) == []


def test_masking_keep_zero_masks_all_but_never_pinned_items() -> None:
    items = tool_session([1] * 3)
    items[3] = items[3].with_(pinned=True)
    out = mask_observations(items, keep_last=0)
    assert out[3] is items[3]
    assert results(out)[1:] == ["Old environment output: (2 lines omitted)"] * 2
    assert results(items)[0] == "out 0 0\nline two"  # the input is never changed


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_masking_rejects_a_bad_window(bad: object) -> None:
    with pytest.raises(ConfigError, match="keep_last"):
        mask_observations(tool_session([1]), keep_last=bad)  # type: ignore[arg-type]


# --- clear_tool_uses --------------------------------------------------------------------


def chars(items: Sequence[Item]) -> int:
    return sum(len(item_text(i)) for i in items)


def test_clearing_waits_for_the_trigger() -> None:
    items = tool_session([1] * 6)
    size = chars(items)
    kept = clear_tool_uses(items, chars, trigger=size)
    assert all(o is i for o, i in zip(kept, items, strict=True))
    out = clear_tool_uses(items, chars, trigger=size - 1)
    same_shape(items, out)
    assert results(out) == ["[cleared]"] * 3 + results(items)[3:]


def test_clearing_counts_results_and_may_split_an_item_of_several() -> None:
    # Anthropic style: one user item carrying three results
    call = [ToolCallPart(id=f"c{j}", name="read", arguments="{}") for j in range(3)]
    many = [ToolResultPart(call_id=f"c{j}", content=f"text {j}") for j in range(3)]
    items = [
        text("task", "go"),
        Item(id="a", role="assistant", component=Component.HISTORY, parts=tuple(call)),
        Item(id="r", role="user", component=Component.TOOL_RESULTS, parts=(*many,)),
    ]
    out = clear_tool_uses(items, lambda _: 1, trigger=0, keep=1, placeholder="[gone]")
    assert results(out) == ["[gone]", "[gone]", "text 2"]
    same_shape(items, out)
    assert results(clear_tool_uses(items, lambda _: 1, trigger=0, keep=0)) == ["[cleared]"] * 3


def test_clearing_does_nothing_without_tool_results() -> None:
    items = text_session(8)
    out = clear_tool_uses(items, lambda _: 10**9)
    assert all(o is i for o, i in zip(out, items, strict=True))


def test_clearing_counts_the_whole_request_once() -> None:
    seen: list[int] = []

    def count(items: Sequence[Item]) -> int:
        seen.append(len(items))
        return 200_000

    items = tool_session([1] * 5)
    clear_tool_uses(items, count)
    assert seen == [len(items)]


@pytest.mark.parametrize(("name", "value"), [("trigger", -5), ("keep", -1), ("keep", None)])
def test_clearing_rejects_bad_settings(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        clear_tool_uses(tool_session([1]), chars, **{name: value})  # type: ignore[arg-type]


# --- registry ---------------------------------------------------------------------------


def test_registry_names_every_baseline() -> None:
    assert baseline("mask_observations") is mask_observations
    assert baseline("clear_tool_uses") is clear_tool_uses
    assert baseline("full_history") is full_history
    assert sorted(BASELINES) == ["clear_tool_uses", "full_history", "mask_observations"]


def test_unknown_baseline_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="clear_tool_uses, full_history, mask_observations"):
        baseline("summarize_everything")


def test_full_history_is_a_copy() -> None:
    items = tool_session([2])
    out = full_history(items)
    assert out == items
    assert out is not items


# --- properties -------------------------------------------------------------------------


@given(st.lists(st.integers(1, 3), max_size=15), st.integers(0, 12))
def test_masking_random_sessions_keeps_structure_and_the_recent_tail(
    turns: list[int], keep: int
) -> None:
    items = tool_session(turns)
    out = mask_observations(items, keep_last=keep)
    same_shape(items, out)
    changed = [n for n, (i, o) in enumerate(zip(items, out, strict=True)) if i is not o]
    assert all(items[n].role == "tool" for n in changed)
    masked_turns = max(len(turns) - keep, 0)
    assert len(changed) == sum(turns[:masked_turns])
    ids = [i.id for i in items]
    first_kept = ids.index(f"a{masked_turns}") if masked_turns < len(turns) else len(items)
    assert all(o is i for o, i in zip(out[first_kept:], items[first_kept:], strict=True))


@given(st.lists(st.integers(1, 3), max_size=15), st.integers(0, 6), st.integers(0, 400))
def test_clearing_random_sessions_keeps_structure(
    turns: list[int], keep: int, trigger: int
) -> None:
    items = tool_session(turns)
    out = clear_tool_uses(items, chars, trigger=trigger, keep=keep)
    same_shape(items, out)
    cleared = sum(r == "[cleared]" for r in results(out))
    total = sum(turns)
    assert cleared == (max(total - keep, 0) if chars(items) > trigger else 0)


# --- real sessions ----------------------------------------------------------------------


@requires_traces
def test_real_sessions_masked_at_every_call_keep_every_pair() -> None:
    masked_calls = 0
    for session in trace_sessions():
        name, items = session.name, session.items
        for index, item in enumerate(items):
            if item.role != "assistant":
                continue
            history = items[:index]
            for view in (
                mask_observations(history),
                clear_tool_uses(history, chars, trigger=20_000),
            ):
                assert [i.id for i in view] == [i.id for i in history], name
                assert not find_orphans(view, allow_pending_tail=False), name
                assert all(i.role == o.role for i, o in zip(history, view, strict=True))
                masked_calls += any(o is not i for o, i in zip(view, history, strict=True))
    assert masked_calls > 1_000
