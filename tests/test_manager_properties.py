"""ContextManager.prepare under random conversations: fits, never orphans, never loses.

Every prepared body is checked with an independent count (a fresh counter reading the
rendered body back), against both providers' pairing rules, for verbatim fixed and pinned
content, and every appended original must stay recallable.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxbudget.budget.accounting import counter_for
from ctxbudget.convert.request import read_request
from ctxbudget.errors import ContextOverflow
from ctxbudget.manager import ContextManager
from ctxbudget.session.exchanges import find_orphans

WORDS = ["alpha", "beta", "gamma", "src/app.py", "Error:", "42", "déjà", "写代码", "🙂", "x" * 12]


@st.composite
def text(draw: st.DrawFn, max_words: int = 60) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=max_words))
    return " ".join(words)


@st.composite
def turn(draw: st.DrawFn, index: int, thinking: bool) -> list[dict[str, Any]]:
    """A user message, or an assistant turn with 0-3 parallel calls and their results."""
    if draw(st.booleans()):
        return [{"role": "user", "content": draw(text())}]
    calls = draw(st.integers(0, 3))
    blocks: list[dict[str, Any]] = []
    if thinking:
        blocks.append({"type": "thinking", "thinking": draw(text(20)), "signature": "sig"})
    blocks.append({"type": "text", "text": draw(text(20))})
    ids = [f"toolu_{index}_{k}" for k in range(calls)]
    blocks += [
        {"type": "tool_use", "id": i, "name": "bash", "input": {"cmd": draw(text(5))}} for i in ids
    ]
    out: list[dict[str, Any]] = [{"role": "assistant", "content": blocks}]
    if ids:
        huge = draw(st.integers(1, 40)) == 1
        results = [
            {
                "type": "tool_result",
                "tool_use_id": i,
                "content": draw(text(60)) * (200 if huge else draw(st.integers(1, 30))),
            }
            for i in ids
        ]
        out.append({"role": "user", "content": results})
    return out


@st.composite
def session(draw: st.DrawFn) -> tuple[int, list[tuple[list[dict[str, Any]], bool]]]:
    window = draw(st.integers(3_000, 24_000))
    thinking = draw(st.booleans())
    turns = [
        (draw(turn(i, thinking)), draw(st.integers(1, 25)) == 1)
        for i in range(draw(st.integers(1, 40)))
    ]
    return window, turns


def anthropic_pairs_ok(body: dict[str, Any]) -> bool:
    """Every tool_use is answered in the very next user message, and vice versa."""
    messages = body["messages"]
    for index, message in enumerate(messages):
        content = message["content"] if isinstance(message["content"], list) else []
        uses = {b["id"] for b in content if b.get("type") == "tool_use"}
        if uses:
            nxt = messages[index + 1]["content"] if index + 1 < len(messages) else []
            answered = {
                b["tool_use_id"]
                for b in nxt
                if isinstance(b, dict) and b.get("type") == "tool_result"
            }
            if uses != answered:
                return False
        if message["role"] == "user" and any(b.get("type") == "tool_result" for b in content):
            prev = messages[index - 1]["content"] if index else []
            calls = {b["id"] for b in prev if isinstance(b, dict) and b.get("type") == "tool_use"}
            if not {b["tool_use_id"] for b in content if b.get("type") == "tool_result"} <= calls:
                return False
    return messages[0]["role"] == "user"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    session(),
    st.sampled_from(["openai", "anthropic"]),
    st.sampled_from(["agent", "digest", "digest-lean"]),
)
def test_every_prepared_request_fits_pairs_and_keeps_originals(
    data: tuple[int, list[tuple[list[dict[str, Any]], bool]]], provider: str, policy: str
) -> None:
    window, turns = data
    mgr = ContextManager("gpt-4o", context_window=window, max_output_tokens=500, policy=policy)
    system = "You are careful. Never delete tests. Always run them."
    mgr.set_system(system)
    mgr.set_tools(
        [
            {
                "name": "bash",
                "description": "Run a command.",
                "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            }
        ]
    )
    independent = counter_for(mgr.model)
    appended = []
    pinned_texts: list[str] = []
    for messages, wants_pin in turns:
        pin = wants_pin and messages[0]["role"] == "user" and len(messages) == 1
        appended += mgr.extend(messages, pinned=pin)
        if pin:
            pinned_texts.append(messages[0]["content"])
        for item in appended:  # every original so far, before and after any overflow
            assert mgr.recall(item.id) == item
        try:
            body = mgr.prepare(provider)  # type: ignore[arg-type]
        except ContextOverflow:
            # only allowed when what must stay verbatim cannot fit; the session goes on
            # (later turns are appended and must stay recallable too)
            must = sum(
                independent.count_item(i).tokens for i in mgr.view if i.pinned or i.role == "system"
            )
            assert must + 400 > mgr.accountant.ledger.allocation.usable
            continue
        fmt = "openai_chat" if provider == "openai" else "anthropic"
        request = read_request(body, format=fmt)
        counted = independent.count_request(request.items, request.tools)
        allocation = mgr.accountant.ledger.allocation
        assert counted.tokens <= allocation.usable
        assert counted.tokens + allocation.output_reserve <= window
        assert not find_orphans(request.items, allow_pending_tail=False)
        if provider == "anthropic":
            assert anthropic_pairs_ok(body)
            assert body["system"] == system
        else:
            assert body["messages"][0] == {"role": "system", "content": system}
        rendered = json.dumps(body, ensure_ascii=False)
        for pinned in pinned_texts:
            assert json.dumps(pinned, ensure_ascii=False)[1:-1] in rendered
    for item in appended:  # and at the end, after the last prepare
        assert mgr.recall(item.id) == item
