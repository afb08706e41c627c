"""The append-only log and the view replayed from it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.errors import UsageError
from ctxbudget.session.items import Component, Item, TextPart, ToolCallPart, ToolResultPart
from ctxbudget.session.log import CompactionRecord, Edit, SessionLog
from ctxbudget.session.view import View, units


def user(i: int, text: str = "hi") -> Item:
    return Item(id=f"u{i}", role="user", component=Component.HISTORY, parts=(TextPart(text=text),))


def call(i: int, *calls: str) -> Item:
    return Item(
        id=f"a{i}",
        role="assistant",
        component=Component.HISTORY,
        parts=tuple(ToolCallPart(id=c, name="bash", arguments="{}") for c in calls),
    )


def result(call_id: str) -> Item:
    return Item(
        id=f"r{call_id}",
        role="tool",
        component=Component.TOOL_RESULTS,
        parts=(ToolResultPart(call_id=call_id, content=f"out {call_id}"),),
    )


def conversation() -> list[Item]:
    return [
        user(0),
        call(1, "c1", "c2"),
        result("c1"),
        result("c2"),
        user(2),
        call(3, "c3"),
        result("c3"),
    ]


def record(*edits: Edit) -> CompactionRecord:
    return CompactionRecord(
        strategy="test", edits=edits, tokens_before=10, tokens_after=5, exact=True
    )


def test_units_keep_parallel_calls_with_all_results() -> None:
    groups = [u.ids for u in units(conversation())]
    assert groups == [("u0",), ("a1", "rc1", "rc2"), ("u2",), ("a3", "rc3")]


def test_replay_equals_the_live_view() -> None:
    log, live = SessionLog(), View()
    for item in conversation():
        log.append(item)
        live.append(item)
    placeholder = result("c3").with_(id="rc3~placeholder")
    edits = (
        Edit(kind="hide", remove=("a1", "rc1", "rc2")),
        Edit(kind="placeholder", remove=("rc3",), insert=(placeholder,)),
    )
    live.apply(edits)
    log.compact(record(*edits))
    assert View.replay(log).items == live.items
    assert [i.id for i in live] == ["u0", "u2", "a3", "rc3~placeholder"]


def test_orphaning_edits_are_rejected_and_change_nothing() -> None:
    view = View(conversation())
    before = view.items
    with pytest.raises(UsageError, match="orphan"):
        view.apply([Edit(kind="hide", remove=("rc1",))])
    with pytest.raises(UsageError, match="orphan"):
        view.apply([Edit(kind="hide", remove=("a3",))])
    assert view.items == before


def test_edits_naming_missing_items_are_rejected() -> None:
    view = View(conversation())
    with pytest.raises(UsageError, match="not in the view"):
        view.apply([Edit(kind="hide", remove=("nope",))])
    with pytest.raises(UsageError, match="twice"):
        view.apply([Edit(kind="hide", remove=("u0", "u0"))])


def test_recall_returns_every_original_and_ids_are_unique() -> None:
    log = SessionLog()
    for item in conversation():
        log.append(item)
    summary = user(99, "summary").with_(id="summary~a1")
    log.compact(record(Edit(kind="summarize", remove=("a1", "rc1", "rc2"), insert=(summary,))))
    assert log.recall("rc1") == result("c1")
    assert log.recall("summary~a1") == summary
    with pytest.raises(UsageError, match="already in this session"):
        log.append(user(0))
    with pytest.raises(UsageError, match="no item"):
        log.recall("missing")


@given(st.lists(st.integers(0, 3), min_size=1, max_size=15), st.data())
def test_hiding_whole_units_never_orphans(calls: list[int], data: st.DataObject) -> None:
    items: list[Item] = []
    for turn, n in enumerate(calls):
        items.append(user(turn))
        ids = [f"c{turn}_{k}" for k in range(n)]
        if ids:
            items.append(call(turn, *ids))
            items.extend(result(c) for c in ids)
    all_units = units(items)
    chosen = data.draw(st.lists(st.sampled_from(all_units), unique_by=lambda u: u.start))
    view = View(items)
    view.apply([Edit(kind="hide", remove=u.ids) for u in chosen])
    hidden = {i for u in chosen for i in u.ids}
    assert [i.id for i in view] == [i.id for i in items if i.id not in hidden]


def test_orphans_already_in_the_view_do_not_block_other_edits() -> None:
    # a log that ended mid-call: a1's second call was never answered
    items = [user(0), call(1, "c1", "c9"), result("c1"), user(2), call(3, "c3"), result("c3")]
    view = View(items)
    view.apply([Edit(kind="hide", remove=("a3", "rc3"))])
    assert [i.id for i in view] == ["u0", "a1", "rc1", "u2"]
    with pytest.raises(UsageError, match="orphan"):
        view.apply([Edit(kind="hide", remove=("rc1",))])


@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.data())
def test_a_batch_equals_applying_edits_one_by_one(calls: list[int], data: st.DataObject) -> None:
    items: list[Item] = []
    for turn, n in enumerate(calls):
        items.append(user(turn))
        ids = [f"c{turn}_{k}" for k in range(n)]
        if ids:
            items.append(call(turn, *ids))
            items.extend(result(c) for c in ids)
    chosen = data.draw(st.lists(st.sampled_from(units(items)), unique_by=lambda u: u.start))
    edits = [
        Edit(kind="summarize", remove=u.ids, insert=(user(1000 + n, "s").with_(id=f"s{n}"),))
        if n % 2
        else Edit(kind="hide", remove=u.ids)
        for n, u in enumerate(chosen)
    ]
    batch, single = View(items), View(items)
    batch.apply(edits)
    for edit in edits:
        single.apply([edit])
    assert batch.items == single.items
    # an edit that removes what an earlier one inserted takes the sequential path
    if edits and edits[-1].insert:
        view = View(items)
        view.apply([*edits, Edit(kind="hide", remove=(edits[-1].insert[0].id,))])
        assert edits[-1].insert[0].id not in view
