"""The prompt-cache layer: fingerprints, the bust detector, breakpoints and predictions.

Unit tests on synthetic fingerprints, then the manager's prepared bodies, then the
prediction against what the fake provider (``provider_server``) actually bills.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

import ctxbudget
from _scripted import listing, markers
from ctxbudget import CacheBustWarning, ContextManager
from ctxbudget.cache import (
    Block,
    CacheState,
    Fingerprint,
    Fingerprinter,
    cache_rules,
    choose_breakpoints,
    find_bust,
    place_anthropic_breakpoints,
)
from ctxbudget.cache.rules import CacheRules
from ctxbudget.tokens.counter import TokenCounter
from provider_server import ProviderServer, Reply

GPT = "gpt-4o"
CLAUDE = "claude-opus-4-1"  # caches from 1,024 tokens
HAIKU = "claude-haiku-4-5"  # caches from 4,096 tokens
SYSTEM = "You are a careful coding agent. Read before you edit and run the tests after. " * 8

READ_FILE = {
    "name": "read_file",
    "description": "Read a file of the repository.",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
}
GREP = {
    "name": "grep",
    "description": "Search the repository.",
    "input_schema": {"type": "object", "properties": {"pattern": {"type": "string"}}},
}


def chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool["name"],
            "description": tool["description"],
            "parameters": tool["input_schema"],
        },
    }


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return ContextManager(GPT).accountant.counter


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


class Clock:
    """A hand-driven clock (seconds) for the manager's cache entries."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- conversations fed straight to a manager ------------------------------------------------


def anthropic_turn(manager: ContextManager, n: int, lines: int = 60) -> None:
    manager.append(
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": f"I should read file {n}.", "signature": "c2ln"},
                {
                    "type": "tool_use",
                    "id": f"toolu_{n}",
                    "name": "read_file",
                    "input": {"path": f"f{n}.py"},
                },
            ],
        }
    )
    manager.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": f"toolu_{n}",
                    "content": listing(f"m{n}", lines),
                }
            ],
        }
    )


def chat_turn(manager: ContextManager, n: int, lines: int = 60) -> None:
    manager.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {
                        "name": "read_file",
                        "arguments": json.dumps({"path": f"f{n}.py"}),
                    },
                }
            ],
        }
    )
    manager.append(
        {"role": "tool", "tool_call_id": f"call_{n}", "content": listing(f"m{n}", lines)}
    )


def session(model: str, provider: str, turns: int = 3, **settings: Any) -> ContextManager:
    manager = ContextManager(model, **settings)
    if provider == "anthropic":
        manager.set_tools([READ_FILE])
        manager.set_system(SYSTEM)
        manager.append({"role": "user", "content": "Find the rounding bug."})
        for n in range(turns):
            anthropic_turn(manager, n)
    else:
        manager.set_tools([chat_tool(READ_FILE)])
        manager.append({"role": "system", "content": SYSTEM})
        manager.append({"role": "user", "content": "Find the rounding bug."})
        for n in range(turns):
            chat_turn(manager, n)
    return manager


# --- fingerprints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider"),
    [(GPT, "openai"), (GPT, "openai_responses"), (CLAUDE, "anthropic")],
)
def test_same_state_renders_the_same_bytes(model: str, provider: Any) -> None:
    one = session(model, "anthropic" if provider == "anthropic" else "openai")
    two = session(model, "anthropic" if provider == "anthropic" else "openai")
    first = json.dumps(one.prepare(provider), sort_keys=False)
    second = json.dumps(two.prepare(provider), sort_keys=False)
    assert first == second
    assert one.last_report is not None
    assert two.last_report is not None
    assert one.last_report.cache is not None
    assert two.last_report.cache is not None
    assert one.last_report.cache.fingerprint == two.last_report.cache.fingerprint
    # the same manager again, nothing new: the same bytes, no prefix change
    again = json.dumps(one.prepare(provider), sort_keys=False)
    assert again == first
    assert one.last_report.cache.prefix_change is None


def anthropic_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": CLAUDE,
        "max_tokens": 1000,
        "tools": [READ_FILE, GREP],
        "system": SYSTEM,
        "messages": [
            {"role": "user", "content": "Find the rounding bug."},
            {"role": "assistant", "content": [{"type": "text", "text": "Reading billing.py."}]},
            {"role": "user", "content": listing("billing", 30)},
        ],
    }
    body.update(changes)
    return body


def test_extension_is_not_a_bust(counter: TokenCounter) -> None:
    fingerprinter = Fingerprinter(counter)
    before = fingerprinter.fingerprint(anthropic_body(), "anthropic")
    longer = anthropic_body()
    longer["messages"] = [
        *longer["messages"],
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "Fix it."},
    ]
    after = fingerprinter.fingerprint(longer, "anthropic")
    assert find_bust(before, after) is None
    assert after.common_prefix(before) == len(before.blocks)
    assert after.chain[: len(before.chain)] == before.chain


def test_cache_markers_do_not_change_the_fingerprint(counter: TokenCounter) -> None:
    fingerprinter = Fingerprinter(counter)
    plain = fingerprinter.fingerprint(anthropic_body(), "anthropic")
    marked_body = anthropic_body()
    marked_body["messages"][2] = {
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": listing("billing", 30),
                "cache_control": {"type": "ephemeral"},
            }
        ],
    }
    marked_body["tools"] = [READ_FILE, {**GREP, "cache_control": {"type": "ephemeral"}}]
    marked = Fingerprinter(counter).fingerprint(marked_body, "anthropic")
    assert marked.chain[:2] == plain.chain[:2]  # tools and system
    assert (
        find_bust(plain, Fingerprinter(counter).fingerprint(anthropic_body(), "anthropic")) is None
    )


def test_system_prompt_edit_is_named(counter: TokenCounter) -> None:
    fingerprinter = Fingerprinter(counter)
    before = fingerprinter.fingerprint(anthropic_body(), "anthropic")
    edited = SYSTEM.replace("careful", "hasty", 1)
    after = fingerprinter.fingerprint(anthropic_body(system=edited), "anthropic")
    bust = find_bust(before, after)
    assert bust is not None
    assert (bust.index, bust.label) == (1, "system")
    assert "content differs" in bust.change
    assert "careful" in bust.change
    assert "hasty" in bust.change
    assert bust.lost_tokens == before.tokens - before.tokens_before(1)
    assert "system" in bust.describe()


@pytest.mark.parametrize(
    ("tools", "change"),
    [
        (
            [READ_FILE, {**GREP, "input_schema": {"type": "object", "properties": {}}}],
            "schema of tool 'grep' changed",
        ),
        ([READ_FILE, {**GREP, "description": "Search."}], "schema of tool 'grep' changed"),
        ([READ_FILE], "tool 'grep' removed"),
        ([READ_FILE, GREP, {**GREP, "name": "run_tests"}], "tool 'run_tests' added"),
        ([GREP, READ_FILE], "tool order changed"),
    ],
)
def test_tool_change_names_the_tool(
    counter: TokenCounter, tools: list[dict[str, Any]], change: str
) -> None:
    fingerprinter = Fingerprinter(counter)
    before = fingerprinter.fingerprint(anthropic_body(), "anthropic")
    after = fingerprinter.fingerprint(anthropic_body(tools=tools), "anthropic")
    bust = find_bust(before, after)
    assert bust is not None
    assert (bust.index, bust.label) == (0, "tools")
    assert bust.change == change
    assert bust.lost_tokens == before.tokens


def test_openai_tool_change_names_the_tool(counter: TokenCounter) -> None:
    def body(tools: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": GPT,
            "tools": [chat_tool(t) for t in tools],
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}],
        }

    fingerprinter = Fingerprinter(counter)
    before = fingerprinter.fingerprint(body([READ_FILE, GREP]), "openai_chat")
    changed = {**READ_FILE, "input_schema": {"type": "object"}}
    after = fingerprinter.fingerprint(body([changed, GREP]), "openai_chat")
    bust = find_bust(before, after)
    assert bust is not None
    assert bust.change == "schema of tool 'read_file' changed"


def test_message_edit_and_removal_are_located(counter: TokenCounter) -> None:
    fingerprinter = Fingerprinter(counter)
    before = fingerprinter.fingerprint(anthropic_body(), "anthropic")
    messages = anthropic_body()["messages"]
    edited = [messages[0], {"role": "assistant", "content": "Reading rounding.py."}, messages[2]]
    bust = find_bust(
        before, fingerprinter.fingerprint(anthropic_body(messages=edited), "anthropic")
    )
    assert bust is not None
    assert (bust.index, bust.label) == (3, "messages[1] (assistant)")
    assert bust.lost_tokens == before.tokens - before.tokens_before(3)
    shorter = find_bust(
        before, fingerprinter.fingerprint(anthropic_body(messages=messages[:2]), "anthropic")
    )
    assert shorter is not None
    assert shorter.label == "messages[2] (user)"
    assert shorter.change.startswith("removed")


def test_responses_instructions_are_a_block(counter: TokenCounter) -> None:
    body = {"model": GPT, "instructions": SYSTEM, "input": [{"role": "user", "content": "hi"}]}
    fingerprinter = Fingerprinter(counter)
    before = fingerprinter.fingerprint(body, "openai_responses")
    assert [b.label for b in before.blocks] == ["instructions", "input[0] (user)"]
    after = fingerprinter.fingerprint({**body, "instructions": "Be brief."}, "openai_responses")
    bust = find_bust(before, after)
    assert bust is not None
    assert bust.label == "instructions"


# --- the bust warning -----------------------------------------------------------------------


def test_changing_tools_mid_session_warns() -> None:
    manager = session(CLAUDE, "anthropic")
    manager.prepare("anthropic")
    manager.append({"role": "assistant", "content": "Let me search."})
    manager.append({"role": "user", "content": "Go on."})
    manager.set_tools([READ_FILE, GREP])
    with pytest.warns(CacheBustWarning, match="tool 'grep' added"):
        manager.prepare("anthropic")
    report = manager.last_report
    assert report is not None
    assert report.cache is not None
    assert report.cache.bust is not None
    assert report.cache.bust.label == "tools"
    assert manager.cache.busts == 1


def test_changing_tools_through_the_wrapper_warns(server: ProviderServer) -> None:
    server.script = lambda api, body: Reply(text="ok")
    manager = ContextManager(GPT)
    client = ctxbudget.wrap(
        openai.OpenAI(api_key="t", base_url=server.openai_base_url, max_retries=0), manager
    )
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": listing("task", 80)},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheBustWarning)
        client.chat.completions.create(model=GPT, messages=messages, tools=[chat_tool(READ_FILE)])
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
        client.chat.completions.create(model=GPT, messages=messages, tools=[chat_tool(READ_FILE)])
    messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "grep it"}]
    with pytest.warns(CacheBustWarning, match="tool 'grep' added"):
        client.chat.completions.create(
            model=GPT, messages=messages, tools=[chat_tool(READ_FILE), chat_tool(GREP)]
        )
    assert manager.cache.busts == 1


@pytest.mark.parametrize(("model", "provider"), [(GPT, "openai"), (CLAUDE, "anthropic")])
def test_planned_compaction_does_not_warn(model: str, provider: Any) -> None:
    kind = "anthropic" if provider == "anthropic" else "openai"
    manager = session(model, kind, turns=0, context_window=12_000, max_output_tokens=1000)
    planned = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheBustWarning)
        for n in range(16):
            (anthropic_turn if kind == "anthropic" else chat_turn)(manager, n)
            manager.prepare(provider)
            report = manager.last_report
            assert report is not None
            assert report.cache is not None
            if report.cache.prefix_change is not None:
                assert report.records  # a prefix change only comes with a compaction
                assert report.cache.planned
                assert report.cache.bust is None
                planned += 1
    assert planned >= 2
    assert manager.cache.busts == 0


# --- Anthropic breakpoints --------------------------------------------------------------------


def test_short_prompt_gets_no_breakpoints() -> None:
    manager = ContextManager(CLAUDE)
    manager.set_system("Be brief.")
    manager.append({"role": "user", "content": "hi"})
    body = manager.prepare("anthropic")
    assert manager.last_report is not None
    assert manager.last_report.cache is not None
    assert manager.last_report.cache.breakpoints == ()
    assert markers(body) == 0
    assert manager.last_report.predicted is not None
    assert manager.last_report.predicted.cache_write_tokens == 0


def test_breakpoints_honor_the_models_minimum() -> None:
    """About 2,500 tokens: enough for Opus 4.1 (1,024), not for Haiku 4.5 (4,096)."""
    prompts = {}
    for model in (CLAUDE, HAIKU):
        manager = ContextManager(model)
        manager.set_system(SYSTEM)
        manager.append({"role": "user", "content": listing("task", 100)})
        body = manager.prepare("anthropic")
        report = manager.last_report
        assert report is not None
        assert report.cache is not None
        prompts[model] = (report.cache.breakpoints, markers(body), report.input_tokens.tokens)
    assert 1024 < prompts[CLAUDE][2] < 4096
    assert prompts[CLAUDE][0]
    assert prompts[CLAUDE][1] == len(prompts[CLAUDE][0])
    assert prompts[HAIKU][0] == ()
    assert prompts[HAIKU][1] == 0


def test_at_most_four_breakpoints_never_on_thinking() -> None:
    manager = session(CLAUDE, "anthropic", turns=0, context_window=12_000, max_output_tokens=1000)
    manager.set_system(SYSTEM * 8)  # a cacheable stable prefix of its own
    counts = []
    for n in range(16):
        anthropic_turn(manager, n)
        body = manager.prepare("anthropic")
        report = manager.last_report
        assert report is not None
        assert report.cache is not None
        assert markers(body) == len(report.cache.breakpoints) <= 4
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else ():
                if block["type"] in ("thinking", "redacted_thinking"):
                    assert "cache_control" not in block
        counts.append(len(report.cache.breakpoints))
    assert max(counts) >= 3


def test_breakpoint_choice_is_capped_in_order_of_value(counter: TokenCounter) -> None:
    fp = Fingerprinter(counter).fingerprint(
        anthropic_body(
            system=SYSTEM * 8,
            messages=[
                {"role": "user" if i % 2 == 0 else "assistant", "content": listing(f"m{i}", 20)}
                for i in range(9)
            ],
        ),
        "anthropic",
    )
    rules = cache_rules(ctxbudget.resolve_model(CLAUDE))
    everything = choose_breakpoints(fp, rules, stable_end=1, boundary=4, previous_end=7)
    last = len(fp.blocks) - 1
    assert everything == (1, 4, 7, last)
    two = CacheRules(mode="explicit", min_tokens=1024, max_breakpoints=2, lookback_blocks=20)
    assert choose_breakpoints(fp, two, stable_end=1, boundary=4, previous_end=7) == (7, last)
    automatic = cache_rules(ctxbudget.resolve_model(GPT))
    assert choose_breakpoints(fp, automatic, stable_end=1) == ()


def test_marker_skips_thinking_blocks(counter: TokenCounter) -> None:
    thinking = {"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"}
    redacted = {"type": "redacted_thinking", "data": "ZW5j"}
    body = anthropic_body(
        messages=[
            {"role": "user", "content": listing("task", 80)},
            {"role": "assistant", "content": [{"type": "text", "text": "Reading."}, thinking]},
            {"role": "user", "content": "go on"},
            {"role": "assistant", "content": [thinking, redacted]},
        ]
    )
    fp = Fingerprinter(counter).fingerprint(body, "anthropic")
    marked = place_anthropic_breakpoints(body, fp, (3, 5))
    assert marked["messages"][1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in marked["messages"][1]["content"][1]
    assert markers(marked["messages"][3]) == 0
    assert markers(body) == 0  # the input body is not changed
    hour = place_anthropic_breakpoints(body, fp, (3,), ttl="1h")
    assert hour["messages"][1]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


# --- CacheState predictions -------------------------------------------------------------------


def fingerprint(*blocks: tuple[str, int], parts: int = 1) -> Fingerprint:
    """A synthetic fingerprint: (name, tokens) per block; equal names, equal prefixes."""
    made = tuple(
        Block(f"messages[{i}]", name, tokens, parts, name)
        for i, (name, tokens) in enumerate(blocks)
    )
    chain = tuple("|".join(name for name, _ in blocks[: i + 1]) for i in range(len(blocks)))
    cumulative, total = [], 0
    for _, tokens in blocks:
        total += tokens
        cumulative.append(total)
    return Fingerprint(made, chain, tuple(cumulative))


AUTOMATIC = CacheRules(mode="automatic", min_tokens=1024, step_tokens=128)
EXPLICIT = cache_rules(ctxbudget.resolve_model(CLAUDE))


def test_automatic_reads_the_longest_prefix_in_128_token_steps() -> None:
    state = CacheState(AUTOMATIC)
    first = fingerprint(("a", 600), ("b", 900))
    assert state.predict(first, now=0).read_tokens == 0  # nothing cached yet
    state.commit(first, now=0)
    second = fingerprint(("a", 600), ("b", 900), ("c", 400))
    prediction = state.predict(second, now=10)
    assert prediction.read_tokens == 1024 + 3 * 128  # 1,500 rounded down to a step
    assert prediction.write_tokens == 0
    assert prediction.input_tokens == 1900
    state.commit(second, now=10)
    assert (
        state.predict(fingerprint(("a", 600), ("b", 900), ("c", 400), ("d", 5)), now=20).read_tokens
        == 1792
    )
    # a different start shares nothing
    assert state.predict(fingerprint(("x", 600), ("b", 900)), now=20).read_tokens == 0


def test_automatic_needs_the_minimum() -> None:
    state = CacheState(AUTOMATIC)
    short = fingerprint(("a", 500), ("b", 500))
    state.commit(short, now=0)
    assert len(state) == 0
    assert state.predict(fingerprint(("a", 500), ("b", 500), ("c", 900)), now=1).read_tokens == 0


def test_automatic_entries_expire() -> None:
    state = CacheState(AUTOMATIC)
    state.commit(fingerprint(("a", 2000)), now=0)
    longer = fingerprint(("a", 2000), ("b", 10))
    assert state.predict(longer, now=299).read_tokens == 1920
    assert state.is_warm(299)
    assert state.predict(longer, now=300).read_tokens == 0
    assert not state.is_warm(300)


def test_explicit_reads_and_writes_at_breakpoints() -> None:
    state = CacheState(EXPLICIT)
    first = fingerprint(("a", 2000), ("b", 500))
    prediction = state.predict(first, now=0, breakpoints=(1,))
    assert (prediction.read_tokens, prediction.write_tokens) == (0, 2500)
    state.commit(first, now=0, breakpoints=(1,))
    second = fingerprint(("a", 2000), ("b", 500), ("c", 700))
    prediction = state.predict(second, now=60, breakpoints=(2,))
    assert (prediction.read_tokens, prediction.write_tokens) == (2500, 700)
    usage = prediction.as_usage()
    assert usage.cache_write_5m_tokens == 700
    assert usage.uncached_input_tokens == 0
    # without a breakpoint nothing is read or written
    assert state.predict(second, now=60).read_tokens == 0


def test_explicit_lookback_is_twenty_blocks() -> None:
    state = CacheState(EXPLICIT)
    head = [("a", 2000)]
    state.commit(fingerprint(*head), now=0, breakpoints=(0,))
    near = fingerprint(*head, *[(f"n{i}", 10) for i in range(19)])
    far = fingerprint(*head, *[(f"n{i}", 10) for i in range(25)])
    assert state.predict(near, now=1, breakpoints=(len(near.blocks) - 1,)).read_tokens == 2000
    assert state.predict(far, now=1, breakpoints=(len(far.blocks) - 1,)).read_tokens == 0
    # a breakpoint at the previous request's end still reaches it
    both = state.predict(far, now=1, breakpoints=(0, len(far.blocks) - 1))
    assert (both.read_tokens, both.write_tokens) == (2000, 250)


def test_explicit_below_minimum_is_neither_read_nor_written() -> None:
    state = CacheState(EXPLICIT)
    small = fingerprint(("a", 500))
    assert state.predict(small, now=0, breakpoints=(0,)).write_tokens == 0
    state.commit(small, now=0, breakpoints=(0,))
    assert len(state) == 0


def test_explicit_ttls() -> None:
    five = CacheState(EXPLICIT)
    hour = CacheState(EXPLICIT)
    fp = fingerprint(("a", 2000))
    five.commit(fp, now=0, breakpoints=(0,), ttl="5m")
    hour.commit(fp, now=0, breakpoints=(0,), ttl="1h")
    later = fingerprint(("a", 2000), ("b", 100))
    assert five.predict(later, now=299, breakpoints=(1,)).read_tokens == 2000
    assert five.predict(later, now=301, breakpoints=(1,)).read_tokens == 0
    assert hour.predict(later, now=3000, breakpoints=(1,), ttl="1h").read_tokens == 2000
    prediction = hour.predict(later, now=3601, breakpoints=(1,), ttl="1h")
    assert prediction.read_tokens == 0
    assert prediction.as_usage().cache_write_1h_tokens == 2100


@pytest.mark.parametrize(("ttl", "seconds"), [("5m", 300), ("1h", 3600)])
def test_manager_predictions_follow_its_clock(ttl: Any, seconds: int) -> None:
    clock = Clock()
    manager = session(CLAUDE, "anthropic", turns=4, cache_ttl=ttl, clock=clock)

    def next_turn(n: int, after: float) -> ctxbudget.Usage:
        clock.now += after
        anthropic_turn(manager, n)
        body = manager.prepare("anthropic")
        if ttl == "1h":
            assert {"type": "ephemeral", "ttl": "1h"} in [
                b.get("cache_control")
                for m in body["messages"]
                for b in m["content"]
                if isinstance(b, dict)
            ]
        assert manager.last_report is not None
        assert manager.last_report.predicted is not None
        return manager.last_report.predicted

    first = manager.prepare("anthropic")
    assert markers(first) > 0
    warm = next_turn(10, seconds - 1)
    assert warm.cache_read_tokens > 0
    written = warm.cache_write_1h_tokens if ttl == "1h" else warm.cache_write_5m_tokens
    assert 0 < written < warm.input_tokens
    cold = next_turn(11, seconds + 1)
    assert cold.cache_read_tokens == 0
    rewritten = cold.cache_write_1h_tokens if ttl == "1h" else cold.cache_write_5m_tokens
    # all of it written again, up to the rolling breakpoint (the newest tool output, which
    # the next request digests, is sent uncached)
    assert 0 < rewritten <= cold.input_tokens


# --- prediction against the provider's bill ---------------------------------------------------


def test_prediction_matches_billing_on_a_short_conversation(server: ProviderServer) -> None:
    answers = iter(
        [
            Reply(tool_calls=[("read_file", {"path": "src/app/billing.py"})]),
            Reply(tool_calls=[("read_file", {"path": "src/app/rounding.py"})]),
            Reply(text="The bug is in round_half_up."),
        ]
    )
    server.script = lambda api, body: next(answers)
    # the cache layer against the bill, on the batched policy (digests change the content
    # mix the estimate was calibrated on, which the next observed call corrects)
    manager = ContextManager(CLAUDE, policy="agent")
    client = ctxbudget.wrap(
        anthropic.Anthropic(api_key="t", base_url=server.anthropic_base_url, max_retries=0),
        manager,
    )
    messages: list[Any] = [
        {"role": "user", "content": "Fix the rounding bug. Context:\n" + listing("ctx", 60)}
    ]
    reports = []
    for _ in range(3):
        response = client.messages.create(
            model=CLAUDE, max_tokens=1000, system=SYSTEM, messages=messages, tools=[READ_FILE]
        )
        reports.append(manager.last_report)
        messages.append({"role": "assistant", "content": response.content})
        uses = [b for b in response.content if b.type == "tool_use"]
        if uses:
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": u.id,
                            "content": listing(str(u.input), 50),
                        }
                        for u in uses
                    ],
                }
            )
    for turn, report in enumerate(reports):
        assert report is not None
        predicted, billed = report.predicted, report.billed
        assert predicted is not None
        assert billed is not None
        # the first turn: nothing to read, everything written, on both sides
        if turn == 0:
            assert predicted.cache_read_tokens == billed.cache_read_tokens == 0
            assert predicted.cache_write_tokens == predicted.input_tokens
            assert billed.cache_write_tokens == billed.input_tokens
            continue
        # once calibrated, tokens and dollars within 10% of the bill
        assert billed.cache_read_tokens > 0
        assert abs(predicted.input_tokens - billed.input_tokens) <= 0.1 * billed.input_tokens
        cached = predicted.cache_read_tokens + predicted.cache_write_tokens
        billed_cached = billed.cache_read_tokens + billed.cache_write_tokens
        assert abs(cached - billed_cached) <= 0.1 * billed_cached
        assert report.predicted_cost is not None
        assert report.billed_cost is not None
        assert abs(report.predicted_cost.input - report.billed_cost.input) <= (
            report.billed_cost.input / 10
        )


def test_fingerprint_counts_follow_calibration() -> None:
    manager = session(CLAUDE, "anthropic", turns=2)
    manager.prepare("anthropic")
    estimate = manager.last_report.input_tokens.tokens if manager.last_report else 0
    manager.observe_usage(ctxbudget.Usage(input_tokens=estimate * 3 // 4))  # we overcounted
    anthropic_turn(manager, 5)
    body = manager.prepare("anthropic")
    report = manager.last_report
    assert report is not None
    assert report.cache is not None
    fresh = Fingerprinter(manager.accountant.counter).fingerprint(body, "anthropic")
    assert [b.tokens for b in report.cache.fingerprint.blocks] == [b.tokens for b in fresh.blocks]
