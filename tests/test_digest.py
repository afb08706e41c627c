"""Append-only digests: answered tool outputs frozen into their own lines, once.

The digest and shorten strategies on handmade views, then through a real ContextManager:
an output is whole until the agent answers it, then digested on the next request (and
recallable); earlier blocks never change again; the Anthropic rolling breakpoint stands in
front of what the next request will change, so it is never written to the cache.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.compaction.strategies import DigestConfig, ShortenConfig, digest, shorten
from ctxbudget.compaction.strategies.base import CompactionInput
from ctxbudget.compaction.strategies.digest import digest_text
from ctxbudget.compaction.strategies.shorten import shorten_text
from ctxbudget.errors import ConfigError
from ctxbudget.manager import ContextManager
from ctxbudget.session.items import (
    Component,
    Item,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
)
from ctxbudget.tokens import TiktokenTokenizer, TokenCounter

HISTORY, RESULTS = Component.HISTORY, Component.TOOL_RESULTS
O200K = TiktokenTokenizer.load("o200k_base")
COUNTER = TokenCounter(O200K, "openai")
BASH = {
    "name": "bash",
    "description": "Run a shell command.",
    "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}},
}


def count(item: Item) -> int:
    return COUNTER.count_item(item).tokens


def pytest_log(failing: str = "test_parse_header") -> str:
    lines = ["============================= test session starts =============================="]
    lines += [f"tests/test_mod_{n}.py::test_case_{n} PASSED" for n in range(120)]
    lines += [
        f"tests/test_io.py::{failing} FAILED",
        "    def test_parse_header():",
        ">       assert parse_header(b'\\x00') == Header(size=0)",
        "E       ValueError: invalid header length 1 in src/pkg/io.py:88",
        "=========================== 1 failed, 120 passed in 3.21s ===========================",
    ]
    return "\n".join(lines)


def lint_log(n: int = 1) -> str:
    lines = [f"src/pkg/mod_{k}.py:{k}: W0611 unused import helper_{k}" for k in range(300)]
    return "\n".join([*lines, f"src/pkg/parser.py:{88 + n}: E0602 undefined name 'parse_header'"])


def call_and_result(n: int, text: str) -> list[Item]:
    call = ToolCallPart(id=f"c{n}", name="bash", arguments='{"cmd": "pytest -q"}')
    return [
        Item(
            id=f"a{n}",
            role="assistant",
            component=HISTORY,
            parts=(TextPart(text="Running the tests."), call),
        ),
        Item(
            id=f"r{n}",
            role="tool",
            component=RESULTS,
            parts=(ToolResultPart(call_id=f"c{n}", content=text),),
        ),
    ]


def view_of(items: list[Item]) -> CompactionInput:
    return CompactionInput(items=tuple(items), count=count, need=0)


# -- the digest itself -----------------------------------------------------------------------


def test_digest_keeps_whole_lines_in_order_within_budget_and_names_the_original() -> None:
    text = pytest_log()
    out = digest_text(
        text, reply="parse_header fails", budget=150, tokenizer=O200K, item_id="r1", label=""
    )
    header, *kept = out.splitlines()
    assert 'recall("r1")' in header
    source = text.splitlines()
    positions = [source.index(line) for line in kept]
    assert positions == sorted(positions)  # verbatim lines, in their order
    assert O200K.count("\n".join(kept)) <= 150 + len(kept)
    assert any("ValueError: invalid header length" in line for line in kept)
    assert any("1 failed, 120 passed" in line for line in kept)


def test_digest_prefers_the_lines_the_reply_used() -> None:
    lines = [f"module_{n:03d}/file_{n:03d}.py: 1 warning" for n in range(200)]
    text = "\n".join(lines)
    out = digest_text(
        text,
        reply="I will look at module_177/file_177.py next",
        budget=40,
        tokenizer=O200K,
        item_id="r9",
        label="",
    )
    assert "module_177/file_177.py: 1 warning" in out.splitlines()


def test_names_line_lists_what_the_kept_lines_miss() -> None:
    text = "\n".join(f"def handler_{n}(request_{n}): pass" for n in range(100))
    out = digest_text(
        text, reply="", budget=30, tokenizer=O200K, item_id="r2", label="", names_budget=40
    )
    last = out.splitlines()[-1]
    assert last.startswith("also named: ")
    assert O200K.count(last) <= 40


def test_propose_digests_only_answered_outputs_and_only_once() -> None:
    items = call_and_result(1, pytest_log()) + call_and_result(2, pytest_log("test_two"))
    config = DigestConfig(max_tokens=150, names_tokens=0, tokenizer=O200K)
    edits = digest.propose(config, view_of(items))
    assert [e.remove for e in edits] == [("r1",)]  # r2 is not answered yet
    (new,) = edits[0].insert
    assert new.id == "r1~digest"
    assert new.tool_results[0].call_id == "c1"  # still answers its call
    assert count(new) < count(items[1]) / 5
    after = [new if i.id == "r1" else i for i in items]
    assert digest.propose(config, view_of(after)) == ()  # frozen: never digested again


def test_small_outputs_and_pinned_outputs_are_left_alone() -> None:
    items = call_and_result(1, "ok") + call_and_result(2, pytest_log())
    items[3] = items[3].with_(pinned=True)
    items.append(Item(id="a3", role="assistant", component=HISTORY, parts=(TextPart(text="done"),)))
    assert digest.propose(DigestConfig(tokenizer=O200K), view_of(items)) == ()


def test_digest_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        DigestConfig(max_tokens=5)
    with pytest.raises(ConfigError, match="tokenizer is not set"):
        digest.propose(DigestConfig(), view_of(call_and_result(1, "x")))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=200), st.integers(20, 200))
def test_a_digest_is_made_of_the_outputs_own_lines(lines: list[str], budget: int) -> None:
    text = "\n".join(lines)
    out = digest_text(text, reply="", budget=budget, tokenizer=O200K, item_id="x", label="")
    header, *kept = out.splitlines() or [""]
    assert header.startswith("[digest")
    originals = {line.rstrip() for line in text.splitlines()}
    assert all(line in originals for line in kept)
    assert O200K.count("\n".join(kept)) <= budget + len(kept)


# -- shortening the agent's own messages ---------------------------------------------------


def test_shorten_keeps_commands_and_named_lines_verbatim() -> None:
    text = "\n".join(
        [
            "Let me think about what is going on here and what to try next.",
            "It seems that the problem might be related to the way things are set up.",
            "The failure is in src/pkg/io.py at parse_header, line 88.",
            "```bash",
            "sed -i 's/size=0/size=1/' src/pkg/io.py",
            "and then some plain words inside the block",
            "```",
            "I am fairly confident this is going to work out well for us.",
        ]
    )
    out = shorten_text(text, item_id="a7")
    assert "The failure is in src/pkg/io.py at parse_header, line 88." in out
    assert "sed -i 's/size=0/size=1/' src/pkg/io.py" in out
    assert "and then some plain words inside the block" in out  # a command block is whole
    assert "fairly confident" not in out
    assert 'recall("a7")' in out


def test_shorten_never_touches_the_latest_message_nor_tool_calls() -> None:
    prose = "\n".join(["This is a long line of plain reasoning without any names."] * 20)
    call = ToolCallPart(id="c1", name="bash", arguments='{"cmd": "ls"}')
    first = Item(id="a1", role="assistant", component=HISTORY, parts=(TextPart(text=prose), call))
    result = Item(
        id="r1", role="tool", component=RESULTS, parts=(ToolResultPart(call_id="c1", content="x"),)
    )
    latest = Item(id="a2", role="assistant", component=HISTORY, parts=(TextPart(text=prose),))
    edits = shorten.propose(ShortenConfig(), view_of([first, result, latest]))
    assert [e.remove for e in edits] == [("a1",)]
    (new,) = edits[0].insert
    assert new.tool_calls == first.tool_calls
    assert len(item_text(new)) < len(prose) / 4


# -- through the manager -------------------------------------------------------------------


def agent_turn(mgr: ContextManager, n: int, output: str) -> None:
    mgr.extend(
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Step {n}: running the tests."},
                    {"type": "tool_use", "id": f"t{n}", "name": "bash", "input": {"cmd": "pytest"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": output}],
            },
        ]
    )


def marked(body: dict[str, Any]) -> list[int]:
    """Indexes of the messages carrying a cache_control mark."""
    return [
        n
        for n, message in enumerate(body["messages"])
        if isinstance(message["content"], list)
        and any("cache_control" in block for block in message["content"])
    ]


def test_an_output_is_whole_until_answered_then_digested_and_recallable() -> None:
    mgr = ContextManager("claude-sonnet-4-5", policy="digest", clock=lambda: 0.0)
    mgr.set_system("You fix bugs. " * 300)
    mgr.set_tools([BASH])
    mgr.append({"role": "user", "content": "Fix the failing test in src/pkg/io.py."})
    agent_turn(mgr, 1, lint_log())
    first = mgr.prepare("anthropic")
    seen = first["messages"][-1]["content"][0]["content"]  # cleaned at the door
    assert "E0602 undefined name 'parse_header'" in seen
    assert 'recall("m3")' in seen
    # the rolling breakpoint stands before the output the next request will digest
    last = len(first["messages"]) - 1
    assert last not in marked(first)
    assert last - 1 in marked(first)
    agent_turn(mgr, 2, lint_log(2))
    second = mgr.prepare("anthropic")
    report = mgr.last_report
    assert report is not None
    (record,) = [r for r in report.records if r.strategy == "digest"]
    assert record.freed > 0
    digested = second["messages"][2]["content"][0]["content"]
    assert digested.startswith("[digest of bash")
    assert 'recall("m3")' in digested
    assert mgr.recall("m3").tool_results[0].content == lint_log()
    # the prefix up to the answered call is unchanged: the cache still reads it
    assert strip(second["messages"][:2]) == strip(first["messages"][:2])


def strip(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{k: v for k, v in b.items() if k != "cache_control"} for b in content]
        out.append({**message, "content": content})
    return out


def test_frozen_blocks_never_change_again() -> None:
    mgr = ContextManager("gpt-4o", policy="digest")
    mgr.set_tools([BASH])
    mgr.append({"role": "user", "content": "Fix it."})
    bodies = []
    for n in range(1, 6):
        agent_turn(mgr, n, pytest_log(f"test_{n}"))
        bodies.append(mgr.prepare("openai")["messages"])
    for before, after in itertools.pairwise(bodies):
        # everything but the previous request's last output is sent again byte-identical
        assert after[: len(before) - 1] == before[:-1]


# -- the recall tool -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "openai_responses", "anthropic"])
def test_recall_tool_schema_per_provider(provider: str) -> None:
    tool = ContextManager("gpt-4o").recall_tool(provider)  # type: ignore[arg-type]
    name = tool.get("name") or tool["function"]["name"]
    assert name == "recall"


def test_answer_recall_in_each_format_and_the_door_leaves_it_whole() -> None:
    mgr = ContextManager("gpt-4o", policy="digest")
    mgr.set_tools([BASH])
    mgr.append({"role": "user", "content": "Fix it."})
    big = pytest_log() * 3
    agent_turn(mgr, 1, big)
    assert mgr.log.recall("m2").tool_results[0].content == big
    chat = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "recall", "arguments": '{"id": "m2"}'},
    }
    answer = mgr.answer_recall(chat)
    assert answer == {"role": "tool", "tool_call_id": "call_1", "content": big}
    anthropic = {"type": "tool_use", "id": "toolu_9", "name": "recall", "input": {"id": "m2"}}
    assert mgr.answer_recall(anthropic)["tool_use_id"] == "toolu_9"
    responses = {"type": "function_call", "call_id": "fc_1", "name": "recall", "arguments": "{}"}
    missing = mgr.answer_recall(responses)
    assert missing["type"] == "function_call_output"
    assert "no item ''" in missing["output"]
    # appended as the model's call and its answer: the door does not cut the recalled text
    mgr.extend(
        [
            {"role": "assistant", "content": None, "tool_calls": [chat]},
            answer,
        ]
    )
    assert mgr.view.items[-1].tool_results[0].content == big


def test_answer_recall_refuses_other_tools() -> None:
    from ctxbudget.errors import UsageError

    call = {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {}}
    with pytest.raises(UsageError, match="not a call of the 'recall' tool"):
        ContextManager("gpt-4o").answer_recall(call)


def test_a_one_line_json_output_is_digested_field_by_field() -> None:
    records = [
        {"reservation_id": f"ZFA{n:03d}Y", "flight": f"HAT{170 + n}", "status": "confirmed"}
        for n in range(40)
    ]
    text = json.dumps({"user_id": "mia_li_3668", "reservations": records})
    out = digest_text(text, reply="", budget=200, tokenizer=O200K, item_id="r5", label="")
    kept = out.splitlines()[1:]
    assert '"user_id": "mia_li_3668",' in [line.strip() for line in kept]
    shown = {f"ZFA{n:03d}Y" for n in range(40)} | {f"HAT{170 + n}" for n in range(40)}
    assert sum(name in out for name in shown) >= 15  # whole fields, then the names line


def test_long_lines_are_cut_after_commas_to_choose_from() -> None:
    line = ", ".join(f"path/to/file_{n}.py" for n in range(200))
    out = digest_text(line, reply="", budget=100, tokenizer=O200K, item_id="r6", label="")
    assert "path/to/file_" in out
    assert O200K.count("\n".join(out.splitlines()[1:])) <= 100 + len(out.splitlines())


@pytest.mark.parametrize(("policy", "clears"), [("digest", False), ("agent", True)])
def test_digests_leave_small_outputs_alone_below_the_watermark(policy: str, clears: bool) -> None:
    """Under digests nothing is cleared because re-reading it has cost a rewrite: what is
    left is small and final, and clearing it would rewrite the cached suffix (the batched
    preset does clear). Only a component over its budget is still compacted."""
    clock = [0.0]
    mgr = ContextManager("claude-sonnet-4-5", policy=policy, clock=lambda: clock[0])
    mgr.set_system("You fix bugs. " * 300)
    mgr.set_tools([BASH])
    mgr.append({"role": "user", "content": "Fix the failing test."})
    for n in range(1, 150):  # distinct outputs under 480 tokens: never digested
        agent_turn(mgr, n, "\n".join(f"src/pkg/mod_{k}_{n}.py:{k}: ok {n}" for k in range(25)))
        clock[0] += 30
        mgr.prepare("anthropic")
    paid = [r for r in mgr.log.records() if r.reason.startswith("clearing pays")]
    assert bool(paid) is clears
