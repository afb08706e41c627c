"""The summarize strategy: whole units in, one summary item out, failures reported."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from ctxbudget.compaction.handoff import SECTIONS
from ctxbudget.compaction.strategies.base import CompactionInput
from ctxbudget.compaction.strategies.summarize import (
    SummarizeConfig,
    is_summary,
    propose,
    propose_with_status,
    summary_body,
    summary_request,
)
from ctxbudget.compaction.summarizers import PreSummarizer, SummaryRequest
from ctxbudget.errors import ConfigError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import (
    Component,
    ComponentKind,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
)
from ctxbudget.session.view import View, units

H = Component.HISTORY


def count(item: Item) -> int:
    return len(item_text(item)) // 4 + 4


def conversation(turns: int = 8) -> list[Item]:
    """System, task, then turns of reasoning + two parallel tool calls + results + user."""
    items = [
        Item(
            id="sys",
            role="system",
            component=Component.SYSTEM,
            parts=(TextPart(text="You are a coding agent. Never delete files."),),
        ),
        Item(
            id="task",
            role="user",
            component=H,
            parts=(TextPart(text="Fix the bug in src/app/config.py; you must keep the API."),),
        ),
    ]
    for t in range(turns):
        items.append(
            Item(
                id=f"a{t}",
                role="assistant",
                component=H,
                parts=(
                    ReasoningPart(
                        text=f"I will inspect file_{t}.py because of step {t}.", signature=f"s{t}"
                    ),
                    ToolCallPart(
                        id=f"c{t}x", name="read_file", arguments=f'{{"path": "src/file_{t}.py"}}'
                    ),
                    ToolCallPart(id=f"c{t}y", name="bash", arguments='{"cmd": "pytest -q"}'),
                ),
            )
        )
        for suffix, content in (
            ("x", f"contents of file_{t}.py\n" * 20),
            ("y", f"{t} failed, 9 passed\nValueError: bad {t}"),
        ):
            items.append(
                Item(
                    id=f"r{t}{suffix}",
                    role="tool",
                    component=Component.TOOL_RESULTS,
                    parts=(ToolResultPart(call_id=f"c{t}{suffix}", content=content),),
                )
            )
        items.append(
            Item(id=f"u{t}", role="user", component=H, parts=(TextPart(text=f"continue {t}"),))
        )
    return items


def view_of(items: list[Item], need: int, **kw: object) -> CompactionInput:
    return CompactionInput(items=tuple(items), count=count, need=need, **kw)  # type: ignore[arg-type]


def apply(items: list[Item], edits: tuple[object, ...]) -> list[Item]:
    view = View(items)
    view.apply(edits)  # type: ignore[arg-type]
    return list(view.items)


def test_summarize_replaces_old_units_with_one_summary_that_applies_cleanly() -> None:
    items = conversation()
    config = SummarizeConfig(keep_last=4, max_summary_tokens=400)
    proposal = propose_with_status(config, view_of(items, need=300))
    assert proposal.failure is None
    (edit,) = proposal.edits
    assert edit.kind == "summarize"
    after = apply(items, proposal.edits)
    summaries = [i for i in after if is_summary(i)]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary.role == "user"
    assert summary.component is H
    assert summary.id == f"summary~{edit.remove[0]}~{edit.remove[-1]}"
    text = item_text(summary)
    assert text.startswith(f"[Summary of earlier conversation: items {edit.remove[0]}–")
    assert f'recall("{edit.remove[0]}")' in text
    assert all(f"## {name}" in text for name in SECTIONS)
    assert "src/file_0.py" in text
    # the system prompt and the task stay first and verbatim; the summary follows them
    assert after[:3] == [items[0], items[1], summary]
    # the latest four units stay verbatim
    assert [u.items for u in units(after)[-4:]] == [u.items for u in units(items)[-4:]]
    assert not find_orphans(after)
    assert sum(map(count, after)) <= sum(map(count, items)) - 1


def test_takes_only_as_much_as_needed() -> None:
    items = conversation(12)
    small = propose(SummarizeConfig(max_summary_tokens=200), view_of(items, need=50))
    big = propose(SummarizeConfig(max_summary_tokens=200), view_of(items, need=5000))
    assert 0 < len(small[0].remove) < len(big[0].remove)


def test_nothing_when_not_needed_or_too_little_to_summarize() -> None:
    items = conversation(8)
    assert propose(SummarizeConfig(), view_of(items, need=0)) == ()
    short = conversation(2)  # sys, task, 2 turns = 4 units + task: only 1 unit outside keep_last
    proposal = propose_with_status(SummarizeConfig(keep_last=3, min_units=2), view_of(short, 100))
    assert proposal.edits == ()
    assert proposal.failure is None


def test_view_keep_last_wins_when_larger() -> None:
    items = conversation(6)
    (edit,) = propose(SummarizeConfig(keep_last=1), view_of(items, need=10_000, keep_last=6))
    kept = {i.id for u in units(items)[-6:] for i in u.items}
    assert not kept & set(edit.remove)


def test_pinned_protected_and_system_items_are_never_summarized() -> None:
    items = conversation(8)
    at = {item.id: index for index, item in enumerate(items)}
    items[at["r0y"]] = items[at["r0y"]].with_(pinned=True)  # its whole exchange stays
    items[at["r1y"]] = items[at["r1y"]].with_(protected=True)
    (edit,) = propose(SummarizeConfig(), view_of(items, need=10_000))
    assert not {"sys", "task", "a0", "r0x", "r0y", "a1", "r1x", "r1y"} & set(edit.remove)
    after = apply(items, (edit,))
    assert items[at["r0y"]] in after
    assert items[at["r1y"]] in after
    # with last_resort, protected content may go (pinned never)
    (edit,) = propose(SummarizeConfig(), view_of(items, need=10_000, last_resort=True))
    assert "r1y" in edit.remove
    assert "r0y" not in edit.remove


def test_a_protected_component_is_left_alone() -> None:
    items = conversation(8)
    kinds = {Component.TOOL_RESULTS: ComponentKind.PROTECTED}
    tiny = SummarizeConfig(summarizer=lambda r: "## Progress\n- ok")
    items = [  # longer user turns, so that a summary of them pays
        i.with_(parts=(TextPart(text=f"{item_text(i)}: " + "more words " * 10),))
        if i.id.startswith("u")
        else i
        for i in items
    ]
    (edit,) = propose(tiny, view_of(items, need=10_000, kinds=kinds))
    assert edit.remove
    assert all(i.startswith("u") for i in edit.remove)


def test_a_second_summary_folds_in_the_first() -> None:
    items = conversation(12)
    config = SummarizeConfig(max_summary_tokens=600)
    first = propose(config, view_of(items, need=400))
    once = apply(items, first)
    earlier = next(i for i in once if is_summary(i))
    second = propose(config, view_of(once, need=400))
    assert earlier.id in second[0].remove
    twice = apply(once, second)
    summaries = [i for i in twice if is_summary(i)]
    assert len(summaries) == 1
    assert summaries[0].id != earlier.id
    assert summaries[0].id.startswith(f"summary~{first[0].remove[0]}~")  # names the originals
    assert "src/file_0.py" in item_text(summaries[0])  # carried over from the first summary


def test_a_failing_summarizer_proposes_nothing_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = conversation()

    def boom(request: SummaryRequest) -> str:
        raise RuntimeError("Error: upstream 529 overloaded")

    def slow(request: SummaryRequest) -> str:
        time.sleep(1)
        return "## Progress\n- late"

    for summarizer, reason in (
        (boom, "error"),
        (slow, "timeout"),
        (lambda r: "", "empty"),
        (lambda r: None, "not_text"),
    ):
        config = SummarizeConfig(summarizer=summarizer, timeout=0.05)  # type: ignore[arg-type]
        proposal = propose_with_status(config, view_of(items, need=300))
        assert proposal.edits == ()
        assert proposal.failure is not None
        assert f"({reason})" in proposal.failure
    with caplog.at_level(logging.WARNING, logger="ctxbudget.compaction.strategies.summarize"):
        assert propose(SummarizeConfig(summarizer=boom), view_of(items, need=300)) == ()
    assert "upstream 529" in caplog.text


def test_async_summarizer_from_inside_a_running_loop() -> None:
    items = conversation()

    async def summarize(request: SummaryRequest) -> str:
        await asyncio.sleep(0)
        return f"## Progress\n- async summary of {len(request.items)} items"

    async def main() -> tuple[object, ...]:
        return propose(SummarizeConfig(summarizer=summarize), view_of(items, need=300))

    (edit,) = asyncio.run(main())
    assert "async summary of" in item_text(edit.insert[0])  # type: ignore[attr-defined]


def test_presummarized_text_is_used_without_calling_the_summarizer() -> None:
    items = conversation()
    view = view_of(items, need=300)

    def never(request: SummaryRequest) -> str:
        raise AssertionError("the pre-computed summary should have been used")

    request = summary_request(SummarizeConfig(), view)
    assert request is not None
    with PreSummarizer(lambda r: "## Progress\n- precomputed", timeout=5) as pre:
        pre.start(request)
        deadline = time.monotonic() + 5
        while not pre.ready(request.key) and time.monotonic() < deadline:
            time.sleep(0.01)
        config = SummarizeConfig(summarizer=never, presummarized=pre.take)
        (edit,) = propose(config, view)
    assert edit.remove == request.key
    text = item_text(edit.insert[0])
    assert "), quoted, not instructions:\n> ## Progress\n> - precomputed" in text  # a model's
    assert summary_body(edit.insert[0]) == "## Progress\n- precomputed"  # what a replay gets


def test_presummary_for_other_ids_is_ignored() -> None:
    items = conversation()
    config = SummarizeConfig(presummarized=lambda ids: "stale" if ids == ("a0",) else None)
    (edit,) = propose(config, view_of(items, need=300))
    assert "stale" not in item_text(edit.insert[0])


def test_a_summary_bigger_than_what_it_replaces_is_not_proposed() -> None:
    items = conversation(8)
    huge = "## Progress\n" + "- padding line with words\n" * 2000
    proposal = propose_with_status(
        SummarizeConfig(summarizer=lambda r: huge), view_of(items, need=10)
    )
    assert proposal.edits == ()
    assert proposal.failure is not None
    assert "not smaller" in proposal.failure


def test_bad_config_raises() -> None:
    with pytest.raises(ConfigError):
        SummarizeConfig(min_units=0)
    with pytest.raises(ConfigError):
        SummarizeConfig(timeout=0)
    with pytest.raises(ConfigError):
        SummarizeConfig(keep_last=-1)
