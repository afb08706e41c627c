"""The mechanical strategies: dedup, truncate, clear tool results, sliding window, importance.

Unit tests on small handmade conversations, then hypothesis properties shared by all five:
the edits always apply (no orphan, valid ids), never touch pinned / fixed / system items
(nor protected ones unless last resort), keep every removed original recallable, and free
``need`` whenever the strategy can free that much at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ctxbudget.compaction.strategies import (
    clear_tool_results,
    dedup,
    importance,
    sliding_window,
    truncate,
)
from ctxbudget.compaction.strategies._bm25 import bm25_scores, terms
from ctxbudget.compaction.strategies.base import CompactionInput, derived_id
from ctxbudget.compaction.strategies.clear_tool_results import ClearToolResultsConfig
from ctxbudget.compaction.strategies.dedup import DedupConfig, similarity
from ctxbudget.compaction.strategies.importance import ImportanceConfig
from ctxbudget.compaction.strategies.sliding_window import SlidingWindowConfig
from ctxbudget.compaction.strategies.truncate import TruncateConfig
from ctxbudget.errors import ConfigError
from ctxbudget.session.exchanges import assign_exchanges
from ctxbudget.session.items import (
    Component,
    ComponentKind,
    ImagePart,
    Item,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
    part_text,
)
from ctxbudget.session.log import CompactionRecord, Edit, SessionLog
from ctxbudget.session.view import View, units
from ctxbudget.tokens import TiktokenTokenizer, TokenCounter

O200K = TiktokenTokenizer.load("o200k_base")
COUNTER = TokenCounter(O200K, "openai")
KINDS = {Component.SYSTEM: ComponentKind.FIXED, Component.MEMORY: ComponentKind.PROTECTED}


def count(item: Item) -> int:
    return COUNTER.count_item(item).tokens


# -- building conversations --------------------------------------------------------------


def text_item(item_id: str, role: Any, text: str, **flags: Any) -> Item:
    component = {"system": Component.SYSTEM}.get(role, Component.HISTORY)
    return Item(id=item_id, role=role, component=component, parts=(TextPart(text=text),), **flags)


def call(call_id: str, name: str, **args: Any) -> ToolCallPart:
    return ToolCallPart(id=call_id, name=name, arguments=json.dumps(args))


def turn(item_id: str, *calls: ToolCallPart, reasoning: ReasoningPart | None = None) -> Item:
    parts: tuple[Part, ...] = ((reasoning,) if reasoning else ()) + calls
    return Item(id=item_id, role="assistant", component=Component.HISTORY, parts=parts)


def result(item_id: str, call_id: str, content: Any, **flags: Any) -> Item:
    part = ToolResultPart(call_id=call_id, content=content)
    return Item(id=item_id, role="tool", component=Component.TOOL_RESULTS, parts=(part,), **flags)


def results(item_id: str, *pairs: tuple[str, Any], **flags: Any) -> Item:
    """An Anthropic-style user item answering several parallel calls."""
    parts = tuple(ToolResultPart(call_id=c, content=x) for c, x in pairs)
    return Item(id=item_id, role="user", component=Component.TOOL_RESULTS, parts=parts, **flags)


def big(seed: str, words: int = 200) -> str:
    return " ".join(f"{seed}{i}" for i in range(words))


def inp(items: Sequence[Item], need: int, **kw: Any) -> CompactionInput:
    kw.setdefault("kinds", KINDS)
    return CompactionInput(items=tuple(assign_exchanges(items)), count=count, need=need, **kw)


def applied(view: CompactionInput, edits: Sequence[Edit]) -> dict[str, Item]:
    out = View(view.items)
    out.apply(edits)
    return {i.id: i for i in out.items}


def freed(view: CompactionInput, edits: Sequence[Edit]) -> int:
    by_id = {i.id: i for i in view.items}
    removed = sum(count(by_id[r]) for e in edits for r in e.remove)
    return removed - sum(count(i) for e in edits for i in e.insert)


def content_of(items: dict[str, Item], item_id: str, index: int = 0) -> Any:
    part = items[item_id].parts[index]
    assert isinstance(part, ToolResultPart)
    return part.content


def session(*, repeat: str = "", tail_user: bool = True) -> list[Item]:
    """System, task, three exchanges (one parallel, Anthropic style), a closing user turn."""
    out = [
        text_item("sys", "system", "You are a coding agent."),
        text_item("u0", "user", "Fix the bug in src/parser.py"),
        turn("a1", call("c1", "bash", cmd="ls")),
        result("r1", "c1", big("file", 300)),
        turn("a2", call("c2", "read", path="src/parser.py"), call("c3", "grep", q="TODO")),
        results("r2", ("c2", big("parser", 300)), ("c3", big("todo", 100))),
        turn("a3", call("c4", "bash", cmd="ls")),
        result("r3", "c4", repeat or big("other", 300)),
    ]
    if tail_user:
        out.append(text_item("u1", "user", "Go on."))
    return out


# -- sliding window ----------------------------------------------------------------------


def test_sliding_window_hides_oldest_units_whole_and_keeps_the_task() -> None:
    view = inp(session(), need=50, keep_last=1)
    edits = sliding_window.propose(SlidingWindowConfig(), view)
    assert [e.remove for e in edits] == [("a1", "r1")]
    assert all(e.kind == "hide" and not e.insert for e in edits)
    more = sliding_window.propose(SlidingWindowConfig(), replace(view, need=10**6))
    hidden = [i for e in more for i in e.remove]
    assert "u0" not in hidden
    assert "sys" not in hidden
    assert ("a3", "r3") not in [e.remove for e in more]  # min_units=2 keeps a3+r3 and u1
    assert applied(view, more)


def test_sliding_window_options() -> None:
    view = inp(session(), need=10**6, keep_last=0)
    edits = sliding_window.propose(SlidingWindowConfig(keep_first_user=False, min_units=0), view)
    assert [e.remove for e in edits] == [("u0",), ("a1", "r1"), ("a2", "r2"), ("a3", "r3"), ("u1",)]
    assert sliding_window.propose(SlidingWindowConfig(), replace(view, need=0)) == ()


def test_sliding_window_skips_pinned_and_protected_units() -> None:
    items = session()
    items[3] = items[3].with_(pinned=True)  # r1
    items[5] = items[5].with_(protected=True)  # r2
    view = inp(items, need=10**6)
    hidden = [
        i for e in sliding_window.propose(SlidingWindowConfig(min_units=0), view) for i in e.remove
    ]
    assert not {"a1", "r1", "a2", "r2"} & set(hidden)
    last = sliding_window.propose(SlidingWindowConfig(min_units=0), replace(view, last_resort=True))
    assert ("a2", "r2") in [e.remove for e in last]


def test_sliding_window_never_hides_half_of_a_split_exchange() -> None:
    # A result that does not directly follow its call forms its own unit: hiding either
    # unit would orphan the other, so neither is hidden.
    items = [
        text_item("u0", "user", "task"),
        turn("a1", call("c1", "bash", cmd="ls")),
        text_item("u1", "user", "interjection " * 50),
        result("r1", "c1", big("x")),
        text_item("u2", "user", "more"),
    ]
    view = inp(items, need=10**6, keep_last=0)
    edits = sliding_window.propose(SlidingWindowConfig(keep_first_user=False, min_units=0), view)
    assert [e.remove for e in edits] == [("u0",), ("u1",), ("u2",)]


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="min_units"):
        SlidingWindowConfig(min_units=-1)
    with pytest.raises(ConfigError, match="kind"):
        SlidingWindowConfig(kind="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="recency_weight"):
        ImportanceConfig(recency_weight=1.5)
    with pytest.raises(ConfigError, match="near_threshold"):
        DedupConfig(near_threshold=0)
    with pytest.raises(ConfigError, match="min_tokens"):
        DedupConfig(min_tokens=-5)
    with pytest.raises(ConfigError, match="max_tokens"):
        TruncateConfig(max_tokens=10)
    with pytest.raises(ConfigError, match="head_share"):
        TruncateConfig(head_share=float("nan"))
    with pytest.raises(ConfigError, match="keep_last"):
        ClearToolResultsConfig(keep_last=-1)
    with pytest.raises(ConfigError, match="exclude_tools"):
        ClearToolResultsConfig(exclude_tools="bash")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="clear_at_least"):
        ClearToolResultsConfig(clear_at_least=True)


# -- importance --------------------------------------------------------------------------


def test_bm25_terms_and_scores() -> None:
    assert terms("Open src/Parser.py now") == [
        "open",
        "src/parser.py",
        "src",
        "parser",
        "py",
        "now",
    ]
    assert terms("max_tokens") == ["max_tokens", "max", "tokens"]
    docs = [terms("the parser fails"), terms("weather is nice"), terms("parser parser parser")]
    scores = bm25_scores(terms("parser bug"), docs)
    assert scores[1] == 0.0
    assert scores[2] > scores[0] > 0
    assert bm25_scores(["x"], []) == []


def test_importance_hides_irrelevant_units_first() -> None:
    items = [
        text_item("u0", "user", "Fix the bug in src/parser.py"),
        turn("a1", call("c1", "read", path="src/parser.py")),
        result("r1", "c1", "def parse(): # src/parser.py has the parser bug\n" + big("code", 80)),
        turn("a2", call("c2", "bash", cmd="weather")),
        result("r2", "c2", big("sunny", 80)),
        text_item("u1", "user", "ok"),
    ]
    view = inp(items, need=10, keep_last=1, task="Fix the bug in src/parser.py")
    edits = importance.propose(ImportanceConfig(), view)
    assert [e.remove for e in edits] == [("a2", "r2")]
    oldest = importance.propose(ImportanceConfig(recency_weight=1.0), view)
    assert [e.remove for e in oldest] == [("u0",)]
    assert importance.propose(ImportanceConfig(), replace(view, need=0)) == ()


def test_importance_ties_go_to_the_older_unit_and_it_is_deterministic() -> None:
    items = [text_item(f"u{i}", "user", f"note {i}") for i in range(5)]
    view = inp(items, need=1, keep_last=1, task="")
    config = ImportanceConfig(recency_weight=0.0)
    assert [e.remove for e in importance.propose(config, view)] == [("u0",)]
    assert importance.propose(config, view) == importance.propose(config, view)


def test_importance_with_embeddings() -> None:
    seen: list[list[str]] = []

    def embed(texts: Sequence[str]) -> list[list[float]]:
        seen.append(list(texts))
        return [[1.0, 0.0] if "parser" in t else [0.0, 1.0] for t in texts]

    items = [
        text_item("u0", "user", "about the parser"),
        text_item("u1", "user", "about lunch"),
        text_item("u2", "user", "end"),
    ]
    view = inp(items, need=1, keep_last=1, task="parser")
    edits = importance.propose(ImportanceConfig(embed=embed, recency_weight=0.1), view)
    assert [e.remove for e in edits] == [("u1",)]
    assert seen == [["parser", "about the parser", "about lunch"]]

    def broken(texts: Sequence[str]) -> list[list[float]]:
        return [[1.0]]

    with pytest.raises(ConfigError, match="one vector per text"):
        importance.propose(ImportanceConfig(embed=broken), view)


# -- dedup -------------------------------------------------------------------------------


def test_dedup_collapses_earlier_copies_into_a_pointer_to_the_latest() -> None:
    same = big("file", 300)
    items = session(repeat=same)
    items[6] = turn("a3", ToolCallPart(id="c4", name="bash", arguments='{ "cmd" : "ls" }'))
    view = inp(items, need=1)
    edits = dedup.propose(DedupConfig(), view)
    assert [(e.kind, e.remove) for e in edits] == [("dedup", ("r1",))]
    new = edits[0].insert[0]
    assert new.id == derived_id("r1", "dedup")
    part = new.parts[0]
    assert isinstance(part, ToolResultPart)
    assert part.call_id == "c1"
    assert part.content == (
        f'[duplicate tool result removed to save context: bash {{"cmd": "ls"}} → '
        f"{count(items[3]):,} tokens; the same output as the later result in r3. "
        'Full text: recall("r1")]'
    )
    assert freed(view, edits) > 200
    assert dedup.propose(DedupConfig(), replace(view, need=0)) == ()


def test_dedup_near_duplicates_and_thresholds() -> None:
    lines = [f"line {i}: some content here" for i in range(60)]
    changed = [*lines[:30], "line 30: CHANGED", *lines[31:]]
    items = session(repeat="\n".join(changed))
    items[3] = result("r1", "c1", "\n".join(lines))
    view = inp(items, need=1)
    assert similarity("\n".join(lines), "\n".join(changed)) > 0.9
    edits = dedup.propose(DedupConfig(), view)
    assert [e.remove for e in edits] == [("r1",)]
    assert "nearly the same output" in part_text(edits[0].insert[0].parts[0])
    assert dedup.propose(DedupConfig(near_threshold=1.0), view) == ()


def test_dedup_needs_same_tool_and_arguments_and_size() -> None:
    same = big("file", 300)
    items = session(repeat=same)
    other_args = items.copy()
    other_args[6] = turn("a3", call("c4", "bash", cmd="ls -la"))
    assert dedup.propose(DedupConfig(), inp(other_args, need=1)) == ()
    other_tool = items.copy()
    other_tool[6] = turn("a3", call("c4", "shell", cmd="ls"))
    assert dedup.propose(DedupConfig(), inp(other_tool, need=1)) == ()
    assert dedup.propose(DedupConfig(min_tokens=10_000), inp(items, need=1)) == ()


def test_dedup_keeps_the_latest_copy_of_each_output() -> None:
    # A, A, B for the same call: the first A points at the second A; B is new output.
    a, b = big("old", 100), big("new", 100)
    items = [
        text_item("u0", "user", "task"),
        turn("a1", call("c1", "cat", path="f")),
        result("r1", "c1", a),
        turn("a2", call("c2", "cat", path="f")),
        result("r2", "c2", a),
        turn("a3", call("c3", "cat", path="f")),
        result("r3", "c3", b),
        text_item("u1", "user", "next"),
    ]
    edits = dedup.propose(DedupConfig(), inp(items, need=1))
    assert [e.remove for e in edits] == [("r1",)]
    assert "later result in r2" in part_text(edits[0].insert[0].parts[0])


def test_dedup_parallel_results_pinned_and_keep_last() -> None:
    text = big("dup", 100)
    items = [
        text_item("u0", "user", "task"),
        turn("a1", call("c1", "cat", path="f"), call("c2", "cat", path="g")),
        results("r1", ("c1", text), ("c2", text)),
        turn("a2", call("c3", "cat", path="f"), call("c4", "cat", path="g")),
        results("r2", ("c3", text), ("c4", text)),
        text_item("u1", "user", "next"),
    ]
    edits = dedup.propose(DedupConfig(), inp(items, need=1))
    assert [e.remove for e in edits] == [("r1",)]  # one edit for both parts of the item
    new = edits[0].insert[0]
    assert [p.call_id for p in new.tool_results] == ["c1", "c2"]
    assert all(p.content != text for p in new.tool_results)
    pinned = items.copy()
    pinned[2] = pinned[2].with_(pinned=True)
    assert dedup.propose(DedupConfig(), inp(pinned, need=1)) == ()
    assert dedup.propose(DedupConfig(), inp(items, need=1, keep_last=4)) == ()


# -- truncate ----------------------------------------------------------------------------


def test_truncate_cuts_every_large_result_even_the_latest() -> None:
    config = TruncateConfig(max_tokens=100, tokenizer=O200K)
    items = session(tail_user=False)
    view = inp(items, need=0, keep_last=5)
    edits = truncate.propose(config, view)
    assert [e.remove for e in edits] == [("r1",), ("r2",), ("r3",)]
    after = applied(view, edits)
    text = content_of(after, derived_id("r1", "truncate"))
    assert O200K.count(text) <= 100
    assert text.startswith("file0 file1")
    assert text.endswith("file299")
    assert 'recall("r1")' in text
    assert "tokens omitted" in text
    both = after[derived_id("r2", "truncate")]
    assert [p.call_id for p in both.tool_results] == ["c2", "c3"]
    assert truncate.propose(config, inp(list(after.values()), need=0)) == ()


def test_truncate_leaves_pinned_fixed_and_small_results() -> None:
    config = TruncateConfig(max_tokens=1000, tokenizer=O200K)
    assert truncate.propose(config, inp(session(), need=0)) == ()
    items = session()
    items[3] = items[3].with_(pinned=True)
    edits = truncate.propose(TruncateConfig(max_tokens=100, tokenizer=O200K), inp(items, need=0))
    assert "r1" not in [i for e in edits for i in e.remove]


def test_truncate_parts_content_keeps_images() -> None:
    content = (
        TextPart(text="short caption"),
        ImagePart(url="https://example.com/a.png"),
        TextPart(text=big("log", 400)),
    )
    items = [
        text_item("u0", "user", "task"),
        turn("a1", call("c1", "screenshot")),
        result("r1", "c1", content),
    ]
    config = TruncateConfig(max_tokens=120, tokenizer=O200K)
    edits = truncate.propose(config, inp(items, need=0))
    new = edits[0].insert[0].tool_results[0].content
    assert isinstance(new, tuple)
    assert new[0] == content[0]
    assert new[1] == content[1]
    assert sum(O200K.count(p.text) for p in new if isinstance(p, TextPart)) <= 120


def test_truncate_needs_a_tokenizer() -> None:
    with pytest.raises(ConfigError, match="tokenizer"):
        truncate.propose(TruncateConfig(), inp(session(), need=0))


# -- clear tool results ------------------------------------------------------------------


def test_clear_oldest_first_until_need() -> None:
    items = session()
    view = inp(items, need=10)
    edits = clear_tool_results.propose(ClearToolResultsConfig(keep_last=1), view)
    assert [(e.kind, e.remove) for e in edits] == [("placeholder", ("r1",))]
    new = edits[0].insert[0]
    assert (new.id, new.role, new.component) == ("r1~clear", "tool", Component.TOOL_RESULTS)
    assert new.exchange_id == "x:a1"
    assert content_of({new.id: new}, new.id) == (
        '[tool result cleared to save context: bash {"cmd": "ls"} → '
        f'{count(items[3]):,} tokens. Full text: recall("r1")]'
    )
    assert clear_tool_results.propose(ClearToolResultsConfig(), replace(view, need=0)) == ()


def test_clear_keeps_last_results_and_excluded_tools() -> None:
    view = inp(session(), need=10**6)
    everything = clear_tool_results.propose(ClearToolResultsConfig(keep_last=0), view)
    assert [e.remove for e in everything] == [("r1",), ("r2",), ("r3",)]
    keep3 = clear_tool_results.propose(ClearToolResultsConfig(), view)  # c2, c3, c4 kept
    assert [e.remove for e in keep3] == [("r1",)]
    config = ClearToolResultsConfig(keep_last=0, exclude_tools=("bash", "grep"))
    edits = clear_tool_results.propose(config, view)
    assert [e.remove for e in edits] == [("r2",)]
    new = edits[0].insert[0].tool_results
    assert new[0].content != content_of({"r2": session()[5]}, "r2")  # read: cleared
    assert new[1].content == big("todo", 100)  # grep: excluded, verbatim


def test_clear_at_least_or_nothing() -> None:
    view = inp(session(), need=10)
    config = ClearToolResultsConfig(keep_last=0, clear_at_least=500)
    edits = clear_tool_results.propose(config, view)
    assert freed(view, edits) >= 500
    assert clear_tool_results.propose(replace(config, clear_at_least=10**6), view) == ()


def reasoning_session() -> list[Item]:
    signed = ReasoningPart(text="I should list files. " * 20, signature="sig-1")
    return [
        text_item("u0", "user", "task"),
        turn("a1", call("c1", "bash", cmd="ls"), reasoning=signed),
        result("r1", "c1", big("file", 300)),
        text_item("u1", "user", "now the next step"),  # a new turn starts here
        turn("a2", call("c2", "bash", cmd="pwd"), reasoning=replace(signed, signature="sig-2")),
        result("r2", "c2", big("dir", 300)),
        turn("a3", call("c3", "read", path="x"), reasoning=ReasoningPart(text="plain " * 30)),
        result("r3", "c3", big("x", 300)),
        turn("a4", call("c4", "bash", cmd="ls"), reasoning=replace(signed, signature="sig-4")),
        result("r4", "c4", big("y", 300)),
    ]


def test_clear_inputs_and_reasoning_respect_the_current_turn() -> None:
    config = ClearToolResultsConfig(keep_last=0, clear_tool_inputs=True, clear_reasoning=True)
    view = inp(reasoning_session(), need=10**6, keep_last=0)
    edits = clear_tool_results.propose(config, view)
    after = applied(view, edits)
    a1, a2, a3 = after["a1~clear"], after["a2~clear"], after["a3~clear"]
    assert a1.tool_calls[0].arguments == "{}"
    assert not [p for p in a1.parts if isinstance(p, ReasoningPart)]  # previous turn: dropped
    assert [p.signature for p in a2.parts if isinstance(p, ReasoningPart)] == ["sig-2"]
    assert not [p for p in a3.parts if isinstance(p, ReasoningPart)]  # unsigned: dropped
    a4 = after["a4~clear"]  # the latest assistant item: inputs cleared, thinking kept
    assert a4.tool_calls[0].arguments == "{}"
    assert [p.signature for p in a4.parts if isinstance(p, ReasoningPart)] == ["sig-4"]
    r1 = content_of(after, "r1~clear")
    assert "arguments were cleared" in r1
    assert 'recall("a1")' in r1


def test_clear_inputs_of_parallel_calls_keep_pairs() -> None:
    config = ClearToolResultsConfig(keep_last=0, clear_tool_inputs=True)
    view = inp(session(), need=10**6)
    after = applied(view, clear_tool_results.propose(config, view))
    a2 = after["a2~clear"]
    assert [(c.id, c.arguments) for c in a2.tool_calls] == [("c2", "{}"), ("c3", "{}")]
    assert [r.call_id for r in after["r2~clear"].tool_results] == ["c2", "c3"]
    items = session()
    items[4] = items[4].with_(pinned=True)  # a2: its inputs stay, and the note says nothing
    view = inp(items, need=10**6)
    after = applied(view, clear_tool_results.propose(config, view))
    assert after["a2"] is view.items[4]
    assert "arguments" not in content_of(after, "r2~clear")
    assert "arguments were cleared" in content_of(after, "r1~clear")


# -- properties shared by all five -------------------------------------------------------

_TOOLS = ("bash", "read", "grep", "memory")
_ARGS = ({"cmd": "ls"}, {"path": "src/a.py"}, {"path": "src/a.py", "limit": 5}, {})
_OUTPUTS = ("ok", big("ls", 40), big("cat", 250), big("cat", 249) + " CHANGED", "数据 " * 150)
_REASONING = (
    None,
    ReasoningPart(text="thinking " * 20),
    ReasoningPart(text="signed thinking " * 20, signature="sig"),
    ReasoningPart(redacted_data="opaque"),
)


def _flags(draw: st.DrawFn) -> dict[str, bool]:
    roll = draw(st.integers(0, 9))
    return {"pinned": roll == 0, "protected": roll == 1}


@st.composite
def conversations(draw: st.DrawFn) -> list[Item]:
    """System, task, then user / memory / assistant items and exchanges (parallel calls,
    both result styles, reasoning), some repeating an earlier call; maybe a pending call."""
    items = [text_item("sys", "system", "You are an agent.")]
    items.append(text_item("m0", "user", "Fix src/a.py", **_flags(draw)))
    done: list[list[tuple[str, str, str]]] = []
    for n in range(1, draw(st.integers(0, 9)) + 1):
        kind = draw(st.sampled_from(["user", "memory", "assistant", "exchange", "exchange"]))
        if kind in ("user", "memory"):
            item = text_item(f"m{n}", "user", draw(st.sampled_from(_OUTPUTS)), **_flags(draw))
            items.append(item.with_(component=Component(kind.replace("user", "history"))))
            continue
        if kind == "assistant":
            items.append(text_item(f"m{n}", "assistant", "Done. " * draw(st.integers(1, 50))))
            continue
        if done and draw(st.booleans()):
            spec = draw(st.sampled_from(done))  # the same calls again, same outputs
        else:
            spec = [
                (
                    draw(st.sampled_from(_TOOLS)),
                    json.dumps(draw(st.sampled_from(_ARGS)), sort_keys=draw(st.booleans())),
                    draw(st.sampled_from(_OUTPUTS)),
                )
                for _ in range(draw(st.integers(1, 3)))
            ]
            done.append(spec)
        calls = [
            ToolCallPart(id=f"c{n}_{j}", name=tool, arguments=args)
            for j, (tool, args, _) in enumerate(spec)
        ]
        items.append(turn(f"m{n}", *calls, reasoning=draw(st.sampled_from(_REASONING))))
        outputs = [(c.id, out) for c, (_, _, out) in zip(calls, spec, strict=True)]
        if draw(st.booleans()):
            items.append(results(f"m{n}r", *outputs, **_flags(draw)))
        else:
            items.extend(
                result(f"m{n}r{j}", cid, out, **_flags(draw))
                for j, (cid, out) in enumerate(outputs)
            )
    if draw(st.booleans()):
        items.append(turn("pending", call("cp", "bash", cmd="ls")))
    return items


Propose = Callable[[CompactionInput], tuple[Edit, ...]]

STRATEGIES: dict[str, Propose] = {
    "dedup": lambda v: dedup.propose(DedupConfig(), v),
    "truncate": lambda v: truncate.propose(TruncateConfig(max_tokens=100, tokenizer=O200K), v),
    "clear": lambda v: clear_tool_results.propose(
        ClearToolResultsConfig(keep_last=1, exclude_tools=("memory",)), v
    ),
    "clear_all": lambda v: clear_tool_results.propose(
        ClearToolResultsConfig(
            keep_last=0, clear_tool_inputs=True, clear_reasoning=True, clear_at_least=100
        ),
        v,
    ),
    "sliding_window": lambda v: sliding_window.propose(SlidingWindowConfig(), v),
    "importance": lambda v: importance.propose(ImportanceConfig(), v),
}


def _untouchable(item: Item, view: CompactionInput) -> bool:
    kind = view.kind(item.component)
    if item.pinned or item.role == "system" or kind is ComponentKind.FIXED:
        return True
    return (item.protected or kind is ComponentKind.PROTECTED) and not view.last_resort


def _check(name: str, view: CompactionInput, edits: tuple[Edit, ...]) -> None:
    before = {i.id: i for i in view.items}
    after = applied(view, edits)  # never raises: ids valid, no orphan
    removed = [r for e in edits for r in e.remove]
    assert len(removed) == len(set(removed))
    assert set(removed) <= set(before)
    for item in view.items:
        if _untouchable(item, view):
            assert after.get(item.id) is item
    if name != "truncate":
        all_units = units(view.items)
        tail = all_units[max(len(all_units) - view.keep_last, 0) :] if view.keep_last else []
        assert all(after.get(i.id) is i for u in tail for i in u.items)
    for edit in edits:
        for new in edit.insert:
            assert new.id not in before
            (old_id,) = edit.remove
            old = before[old_id]
            assert new.id.startswith(f"{old_id}~")
            same = ("role", "component", "exchange_id", "name")
            assert [getattr(new, f) for f in same] == [getattr(old, f) for f in same]
            assert [r.call_id for r in new.tool_results] == [r.call_id for r in old.tool_results]
            for was, now in zip(old.tool_results, new.tool_results, strict=True):
                if now.content != was.content:  # says how to get the original back
                    assert f'recall("{old_id}")' in part_text(now)
            assert [(c.id, c.name) for c in new.tool_calls] == [
                (c.id, c.name) for c in old.tool_calls
            ]
    log = SessionLog()
    for item in view.items:
        log.append(item)
    log.compact(
        CompactionRecord(strategy=name, edits=edits, tokens_before=0, tokens_after=0, exact=True)
    )
    assert View.replay(log).items == tuple(after.values())
    assert all(log.recall(r) is before[r] for r in removed)


@settings(max_examples=400, deadline=None)
@given(
    items=conversations(),
    need=st.integers(-10, 3000),
    keep_last=st.integers(0, 3),
    last_resort=st.booleans(),
    name=st.sampled_from(sorted(STRATEGIES)),
)
def test_every_strategy_keeps_the_invariants(
    items: list[Item], need: int, keep_last: int, last_resort: bool, name: str
) -> None:
    view = inp(items, need=need, keep_last=keep_last, last_resort=last_resort, task="src/a.py")
    propose = STRATEGIES[name]
    edits = propose(view)
    event(f"{name}: {'edits' if edits else 'no edits'}")
    _check(name, view, edits)
    assert propose(view) == edits  # deterministic
    if name == "truncate":
        for edit in edits:
            for part in edit.insert[0].tool_results:
                text = part.content if isinstance(part.content, str) else ""
                assert O200K.count(text) <= 100
        return
    if need <= 0:
        assert edits == ()
        return
    most = freed(view, propose(replace(view, need=10**9)))
    if need <= most:
        assert freed(view, edits) >= need
    if name in ("sliding_window", "importance") and edits:
        assert freed(view, edits[:-1]) < need  # stops once enough is freed


# -- text-only agents' observations ------------------------------------------------------


def test_clear_tool_results_clears_text_observations_whole_and_recallably() -> None:
    """mini-swe-agent v1 / SWE-agent: output comes back as user text marked TOOL_RESULTS."""

    def observation(item_id: str, text: str) -> Item:
        part = TextPart(text=text)
        return Item(id=item_id, role="user", component=Component.TOOL_RESULTS, parts=(part,))

    items = [
        text_item("sys", "system", "You are a coding agent."),
        text_item("u0", "user", "Fix the bug in src/parser.py"),
        text_item("a1", "assistant", "THOUGHT: look.\n```bash\nls\n```"),
        observation("o1", big("file", 300)),
        text_item("a2", "assistant", "THOUGHT: read.\n```bash\ncat src/parser.py\n```"),
        observation("o2", big("parser", 300)),
        text_item("u1", "user", "Format error: one bash block please."),  # harness note
        text_item("a3", "assistant", "THOUGHT: again.\n```bash\ncat src/parser.py\n```"),
        observation("o3", big("again", 300)),
    ]
    view = inp(items, need=100_000)
    edits = clear_tool_results.propose(ClearToolResultsConfig(keep_last=1), view)
    after = applied(view, edits)
    cleared = {e.remove[0] for e in edits}
    assert cleared == {"o1", "o2"}  # the newest observation and every other item stay
    for edit in edits:
        (new,) = edit.insert
        assert new.role == "user"
        assert new.component is Component.TOOL_RESULTS
        assert f'recall("{edit.remove[0]}")' in item_text(new)
        assert "environment output cleared" in item_text(new)
    assert item_text(after["u1"]) == "Format error: one bash block please."
    assert freed(view, edits) > 500
