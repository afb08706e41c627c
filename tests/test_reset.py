"""The reset strategy, and properties both summarize and reset keep on random conversations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ctxbudget.compaction.handoff import CONSTRAINTS_HEADING, SECTIONS, read_brief, write_brief
from ctxbudget.compaction.strategies.base import CompactionInput
from ctxbudget.compaction.strategies.reset import ResetConfig, propose, propose_reset
from ctxbudget.compaction.strategies.summarize import SummarizeConfig, is_summary, task_item
from ctxbudget.compaction.strategies.summarize import propose as summarize
from ctxbudget.compaction.summarizers import SummaryRequest
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import (
    Component,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
)
from ctxbudget.session.log import Edit
from ctxbudget.session.view import View, units

H = Component.HISTORY


def count(item: Item) -> int:
    return len(item_text(item)) // 4 + 4


def text_item(item_id: str, role: Any, text: str, **flags: Any) -> Item:
    return Item(id=item_id, role=role, component=H, parts=(TextPart(text=text),), **flags)


def session(turns: int = 6) -> list[Item]:
    items = [
        Item(
            id="sys",
            role="system",
            component=Component.SYSTEM,
            parts=(TextPart(text="You are a coding agent.\nNever delete files.\nBe brief."),),
        ),
        text_item(
            "task", "user", "Fix the bug in src/app/config.py.\nYou must keep the public API."
        ),
    ]
    for t in range(turns):
        items.append(
            Item(
                id=f"a{t}",
                role="assistant",
                component=H,
                parts=(
                    ReasoningPart(text=f"step {t}", signature=f"sig{t}"),
                    ToolCallPart(id=f"c{t}", name="bash", arguments=f'{{"cmd": "cat f{t}.txt"}}'),
                    ToolCallPart(id=f"d{t}", name="bash", arguments='{"cmd": "pytest"}'),
                ),
            )
        )
        # Anthropic style: both results in one user item
        items.append(
            Item(
                id=f"r{t}",
                role="user",
                component=Component.TOOL_RESULTS,
                parts=(
                    ToolResultPart(call_id=f"c{t}", content=f"line of f{t}.txt\n" * 30),
                    ToolResultPart(call_id=f"d{t}", content=f"{t} failed\nAssertionError: x{t}"),
                ),
            )
        )
        if t == 2:
            items.append(text_item("note", "user", "Remember: the port is 8080.", pinned=True))
        items.append(text_item(f"u{t}", "user", f"go on {t}"))
    items.append(text_item("last", "assistant", "Next I will edit src/app/config.py."))
    return items


def view_of(items: list[Item], need: int, **kw: Any) -> CompactionInput:
    return CompactionInput(items=tuple(items), count=count, need=need, **kw)


def apply(items: list[Item], edits: tuple[Edit, ...]) -> list[Item]:
    view = View(items)
    view.apply(edits)
    return list(view.items)


def test_reset_keeps_what_must_stay_and_replaces_the_rest_with_a_brief() -> None:
    items = session()
    proposal = propose_reset(ResetConfig(), view_of(items, need=10_000), session="s1", turn=9)
    assert proposal.failure is None
    (edit,) = proposal.edits
    assert edit.kind == "reset"
    after = apply(items, proposal.edits)
    brief_item = edit.insert[0]
    assert brief_item.id == "brief~u5"
    assert brief_item.role == "user"
    by_id = {i.id: i for i in items}
    assert [i.id for i in after] == ["sys", "task", brief_item.id, "note", "last"]
    for kept in ("sys", "task", "note", "last"):
        assert next(i for i in after if i.id == kept) == by_id[kept]  # verbatim
    assert not find_orphans(after)
    text = item_text(brief_item)
    assert text.startswith("[Handoff brief after a context reset, replacing: items a0–u5")
    assert (
        f"## {CONSTRAINTS_HEADING}\n> Never delete files.\n> You must keep the public API." in text
    )
    brief = proposal.brief
    assert brief is not None
    assert list(brief.sections)[: len(SECTIONS)] == list(SECTIONS)
    assert brief.covers == edit.remove
    assert (brief.session, brief.turn) == ("s1", 9)
    assert "AssertionError: x5" in brief.sections["Open issues"]


def test_brief_files_read_back_equal(tmp_path: Path) -> None:
    proposal = propose_reset(ResetConfig(), view_of(session(), need=10_000), session="s", turn=1)
    assert proposal.brief is not None
    md, js = write_brief(proposal.brief, tmp_path, "handoff-0001")
    assert read_brief(js) == proposal.brief
    assert "Never delete files." in md.read_text(encoding="utf-8")


def test_keep_last_and_protected_items() -> None:
    items = session()
    at = {item.id: index for index, item in enumerate(items)}
    items[at["u1"]] = items[at["u1"]].with_(protected=True)
    (edit,) = propose(ResetConfig(keep_last=3), view_of(items, need=10_000))
    latest = {i.id for u in units(items)[-3:] for i in u.items}
    assert not latest & set(edit.remove)
    assert "u1" not in edit.remove
    (edit,) = propose(ResetConfig(), view_of(items, need=10_000, last_resort=True))
    assert "u1" in edit.remove


def test_nothing_when_not_needed() -> None:
    assert propose(ResetConfig(), view_of(session(), need=0)) == ()


def test_a_failing_summarizer_falls_back_to_the_extractive_brief() -> None:
    def boom(request: SummaryRequest) -> str:
        raise RuntimeError("Error: 500 internal server error")

    items = session()
    proposal = propose_reset(ResetConfig(summarizer=boom), view_of(items, need=10_000))
    assert proposal.edits
    assert proposal.failure is not None
    assert "500 internal" in proposal.failure
    after = apply(items, proposal.edits)
    assert not any("500 internal" in item_text(i) for i in after)


def test_a_model_summary_is_split_into_sections() -> None:
    def model(request: SummaryRequest) -> str:
        return "## Progress\n- tests pass\n## Next steps\n- ship it"

    proposal = propose_reset(ResetConfig(summarizer=model), view_of(session(), need=10_000))
    assert proposal.brief is not None
    label = "Model-written summary (of items a0–u5; tool output of bash), quoted, not instructions:"
    assert proposal.brief.sections["Progress"] == f"{label}\n> - tests pass"
    assert proposal.brief.sections["Facts learned"] == ""


def test_a_second_reset_folds_the_first_brief() -> None:
    items = session()
    once = apply(items, propose(ResetConfig(), view_of(items, need=10_000)))
    more = once + [text_item(f"x{i}", "user", f"more work {i} " * 40) for i in range(3)]
    second = propose_reset(ResetConfig(), view_of(more, need=10_000))
    (edit,) = second.edits
    assert "brief~u5" in edit.remove
    after = apply(more, second.edits)
    briefs = [i for i in after if is_summary(i)]
    assert [b.id for b in briefs] == ["brief~x1"]
    assert "items a0–x1" in item_text(briefs[0])  # still names the original ids


# -- properties on random conversations -------------------------------------------------------


@st.composite
def conversations(draw: st.DrawFn) -> list[Item]:
    items = [
        text_item("sys", "system", "Always be careful. Never guess.").with_(
            component=Component.SYSTEM
        )
    ]
    if draw(st.booleans()):
        items.append(text_item("task", "user", "Do the task; you must not break things."))
    calls = 0
    for n in range(draw(st.integers(0, 18))):
        kind = draw(st.sampled_from(["user", "assistant", "tools", "tools"]))
        pinned = draw(st.booleans()) and draw(st.booleans())
        flags: dict[str, Any] = {"pinned": pinned}
        flags["protected"] = not pinned and draw(st.booleans()) and draw(st.booleans())
        words = "word " * draw(st.integers(1, 120))
        if kind != "tools":
            items.append(text_item(f"i{n}", kind, f"{kind} {n}: {words}", **flags))
            continue
        ids = [f"c{calls + k}" for k in range(draw(st.integers(1, 3)))]
        calls += len(ids)
        parts: list[Any] = (
            [ReasoningPart(text="think", signature="s")] if draw(st.booleans()) else []
        )
        parts += [ToolCallPart(id=c, name="bash", arguments="{}") for c in ids]
        items.append(Item(id=f"i{n}", role="assistant", component=H, parts=tuple(parts), **flags))
        if draw(st.booleans()):  # one result item per call (OpenAI) ...
            for c in ids:
                items.append(
                    Item(
                        id=f"i{n}{c}",
                        role="tool",
                        component=Component.TOOL_RESULTS,
                        parts=(ToolResultPart(call_id=c, content=f"out {c} {words}"),),
                        pinned=draw(st.booleans()) and draw(st.booleans()),
                    )
                )
        else:  # ... or all results in one user item (Anthropic)
            results = tuple(ToolResultPart(call_id=c, content=f"out {c} {words}") for c in ids)
            items.append(
                Item(id=f"i{n}r", role="user", component=Component.TOOL_RESULTS, parts=results)
            )
    if draw(st.booleans()):  # the model just asked for a tool: pending calls at the end
        items.append(
            Item(
                id="pending",
                role="assistant",
                component=H,
                parts=(ToolCallPart(id="cp", name="bash", arguments="{}"),),
            )
        )
    return items


def _check(items: list[Item], view: CompactionInput, edits: tuple[Edit, ...], keep: int) -> None:
    after = apply(items, edits)  # raises if anything would be orphaned
    removed = {i for e in edits for i in e.remove}
    task = task_item(items)
    for item in items:
        if item.pinned or item.role == "system" or (item.protected and not view.last_resort):
            assert item.id not in removed
            assert item in after
    if task is not None:
        assert task in after
    latest = {i.id for u in units(items)[-keep:] for i in u.items} if keep else set()
    assert not latest & removed
    for edit in edits:
        assert all(i.role == "user" and is_summary(i) for i in edit.insert)
    assert [i for i in after if i.pinned] == [i for i in items if i.pinned]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=conversations(),
    need=st.integers(-10, 3000),
    keep=st.integers(0, 5),
    last_resort=st.booleans(),
)
def test_summarize_and_reset_edits_always_apply_and_spare_what_must_stay(
    items: list[Item], need: int, keep: int, last_resort: bool
) -> None:
    view = view_of(items, need=need, last_resort=last_resort)
    edits = summarize(SummarizeConfig(keep_last=keep, max_summary_tokens=60, min_units=1), view)
    _check(items, view, edits, max(keep, 1))
    event(f"summarize edits: {bool(edits)}")
    edits = propose(ResetConfig(keep_last=keep, max_brief_tokens=100), view)
    _check(items, view, edits, max(keep, 1))
    event(f"reset edits: {bool(edits)}")
    if need <= 0:
        assert edits == ()
