"""Acceptance: a 200-turn agent loop through each wrapped SDK client, on a small window.

The loop behaves like a real agent: it keeps its own full message list, resends all of it
on every call, appends the SDK's reply (the SDK object, or what it rebuilt from a stream)
and then the tool results. The fake provider (``provider_server``) enforces the context
window and tool pairing and bills every call with prompt caching; the wrapper must keep
every request valid and inside the window, compact many times, and account for exactly
what the provider billed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

import ctxbudget
from _scripted import billed_usage, markers
from ctxbudget import ContextManager, PrepareReport
from ctxbudget.billing.cost import ZERO
from provider_server import ProviderServer, Reply

TURNS = 200
WINDOW = 16_000
MAX_OUTPUT = 1024
GPT = "gpt-4o"
CLAUDE = "claude-opus-4-1"

SYSTEM = (
    "You are a careful coding agent working in the repository at /srv/app. Read files "
    "before editing them, run the tests after each change and report what you did. "
) * 6
TASK = "Find why tests/test_billing.py::test_invoice_rounding fails and fix it."

FUNCTIONS: list[dict[str, Any]] = [
    {
        "name": "read_file",
        "description": "Read a file of the repository.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    },
    {
        "name": "grep",
        "description": "Search the repository for a regular expression.",
        "parameters": {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
            "required": ["pattern"],
        },
    },
    {
        "name": "run_tests",
        "description": "Run pytest on a path and return its output.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    },
]
CHAT_TOOLS = [{"type": "function", "function": f} for f in FUNCTIONS]
RESPONSES_TOOLS = [{"type": "function", **f} for f in FUNCTIONS]
ANTHROPIC_TOOLS = [
    {"name": f["name"], "description": f["description"], "input_schema": f["parameters"]}
    for f in FUNCTIONS
]


# --- the fake model and the fake tools -----------------------------------------------------


def model_reply(turn: int) -> Reply:
    """Tool calls on two turns of three (two in parallel on some), text on the third."""
    module = f"src/app/billing/module_{turn % 17}.py"
    if turn % 3 == 0:
        return Reply(tool_calls=[("read_file", {"path": module})])
    if turn % 3 == 1:
        return Reply(
            tool_calls=[
                ("grep", {"pattern": f"def invoice_{turn}", "path": "src/app"}),
                ("run_tests", {"path": f"tests/test_billing_{turn % 5}.py"}),
            ]
        )
    return Reply(text=f"Step {turn}: the rounding happens in {module}; checking the callers next.")


def tool_output(name: str, arguments: str, turn: int) -> str:
    """A deterministic tool result of a few hundred to a few thousand tokens."""
    rng = random.Random(f"{name}|{arguments}|{turn}")
    lines = rng.choice((12, 30, 60, 110))
    out = [f"$ {name} {arguments}"]
    for i in range(lines):
        ident = f"handle_{name}_{turn}_{i}"
        out.append(
            f"src/app/service_{rng.randrange(40)}/module_{i % 23}.py:{rng.randrange(1, 2000)}: "
            f"def {ident}(request_id: int, amount: Decimal) -> Invoice:  "
            f"# ticket BILL-{rng.randrange(1000, 9999)} owner=@dev{rng.randrange(30)}"
        )
    return "\n".join(out)


class Model:
    """The server's script: the reply for each call, by call number within one loop."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        reply = model_reply(self.calls)
        self.calls += 1
        return reply


# --- bookkeeping shared by the three loops -------------------------------------------------


@dataclass
class Run:
    """What one loop saw: a report per call and every tool result it sent, by call id."""

    manager: ContextManager
    reports: list[PrepareReport] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def note(self) -> None:
        report = self.manager.last_report
        assert report is not None
        self.reports.append(report)


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer(context_windows={GPT: WINDOW, CLAUDE: WINDOW}) as running:
        yield running


def manager(model: str) -> ContextManager:
    return ContextManager(model, context_window=WINDOW, max_output_tokens=MAX_OUTPUT)


def requested_output(api: str, body: dict[str, Any]) -> int:
    key = {
        "openai_chat": "max_completion_tokens",
        "openai_responses": "max_output_tokens",
        "anthropic": "max_tokens",
    }[api]
    value = body[key]
    assert isinstance(value, int)
    return value


def check_run(
    server: ProviderServer, run: Run, api: str, start: int, *, min_compactions: int = 20
) -> None:
    """The assertions (a)-(e) of the acceptance test, over the calls since ``start``."""
    requests = server.requests[start:]
    billed = server.billed[start:]
    # (a) every request was answered: no overflow, no orphan 400, nothing retried ...
    assert len(requests) == len(billed) == len(run.reports) == TURNS
    # ... and by the server's own count, every request fit the window with its output
    for body, bill in zip(requests, billed, strict=True):
        assert bill.api == api
        assert bill.input_tokens + requested_output(api, body) <= WINDOW
        assert server.count_input(api, body) == bill.input_tokens

    # (b) each report carries exactly what the provider billed for its call
    usages = [billed_usage(b) for b in billed]
    for turn, (report, usage) in enumerate(zip(run.reports, usages, strict=True)):
        assert report.billed == usage, f"turn {turn}"
        assert report.billed_cost == ctxbudget.price(usage, run.manager.model.prices)

    # (c) the session totals are the sums of the billed usage, priced at the model's prices
    mgr = run.manager
    prices = mgr.model.prices
    assert prices is not None
    total = sum(usages[1:], usages[0])
    assert mgr.usage == total
    costs = [ctxbudget.price(u, prices) for u in usages]
    assert all(c is not None for c in costs)
    expected = sum((c for c in costs if c is not None), ZERO)
    assert mgr.cost == expected
    assert mgr.cost == ctxbudget.price(total, prices)
    assert mgr.cost is not None
    assert mgr.cost.total > 0

    # (d) compaction happened many times, and what it cleared is still recallable
    records = [r for report in run.reports for r in report.records]
    assert len([r for r in records if r.strategy != "truncate"]) >= min_compactions
    assert sum(r.freed for r in records) > WINDOW
    in_view = {item.id for item in mgr.view.items}
    inserted = {i.id for r in records for e in r.edits for i in e.insert}
    recalled = 0
    for record in records:
        for edit in record.edits:
            for item_id in edit.remove:
                if item_id in in_view or item_id in inserted:
                    continue  # still shown, or itself a placeholder / truncation
                original = mgr.recall(item_id)
                assert original.id == item_id
                for result in original.tool_results:
                    if result.call_id in run.outputs:
                        assert result.content == run.outputs[result.call_id]
                        recalled += 1
    assert recalled > 0

    # (e) the provider's cache was used, and every prefix change was a planned compaction
    assert mgr.cache.busts == 0
    assert sum(b.cache_read_tokens for b in billed) > 0
    # (the newest tool output is never read from the cache: it is digested once answered)
    assert sum(b.cache_read_tokens for b in billed) > sum(b.input_tokens for b in billed) // 5
    if api == "anthropic":
        assert all(markers(body) <= 4 for body in requests)
        assert any(markers(body) > 0 for body in requests)


# --- OpenAI Chat Completions, sync, streaming every other turn -----------------------------


def chat_from_stream(stream: Any) -> dict[str, Any]:
    """The assistant message an agent rebuilds from chat chunks."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in stream:
        assert chunk.choices, "the usage-only chunk must be hidden from this caller"
        delta = chunk.choices[0].delta
        if delta.content:
            text.append(delta.content)
        for call in delta.tool_calls or ():
            slot = calls.setdefault(
                call.index,
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            slot["id"] = call.id or slot["id"]
            if call.function is not None:
                slot["function"]["name"] += call.function.name or ""
                slot["function"]["arguments"] += call.function.arguments or ""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message


def test_openai_chat_loop(server: ProviderServer) -> None:
    server.script = Model()
    start = len(server.requests)
    run = Run(manager(GPT))
    client = ctxbudget.wrap(
        openai.OpenAI(api_key="t", base_url=server.openai_base_url, max_retries=0), run.manager
    )
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": TASK},
    ]
    for turn in range(TURNS):
        stream = turn % 2 == 1
        response = client.chat.completions.create(
            model=GPT,
            messages=messages,
            tools=CHAT_TOOLS,
            max_completion_tokens=MAX_OUTPUT,
            stream=stream,
        )
        if stream:
            message: Any = chat_from_stream(response)
            calls = [
                (c["id"], c["function"]["name"], c["function"]["arguments"])
                for c in message.get("tool_calls") or ()
            ]
        else:
            message = response.choices[0].message  # the SDK object, as agents append it
            calls = [
                (c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()
            ]
        run.note()
        messages.append(message)
        for call_id, name, arguments in calls:
            output = tool_output(name, arguments, turn)
            run.outputs[call_id] = output
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        if not calls:
            messages.append({"role": "user", "content": "Continue with the next step."})
    check_run(server, run, "openai_chat", start)


# --- OpenAI Responses, async client, streaming every third turn ----------------------------


async def responses_loop(server: ProviderServer, run: Run) -> None:
    client = ctxbudget.wrap(
        openai.AsyncOpenAI(api_key="t", base_url=server.openai_base_url, max_retries=0),
        run.manager,
    )
    items: list[Any] = [{"role": "user", "content": TASK}]
    for turn in range(TURNS):
        options: dict[str, Any] = {
            "model": GPT,
            "instructions": SYSTEM,
            "input": items,
            "tools": RESPONSES_TOOLS,
            "max_output_tokens": MAX_OUTPUT,
        }
        if turn % 3 == 2:
            stream = await client.responses.create(**options, stream=True)
            completed = [e async for e in stream if e.type == "response.completed"]
            assert len(completed) == 1
            output = completed[0].response.output
        else:
            output = (await client.responses.create(**options)).output
        run.note()
        items += [o.model_dump(exclude_none=True) for o in output]
        calls = [o for o in output if o.type == "function_call"]
        for call in calls:
            text = tool_output(call.name, call.arguments, turn)
            run.outputs[call.call_id] = text
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": text})
        if not calls:
            items.append({"role": "user", "content": "Continue with the next step."})


def test_openai_responses_async_loop(server: ProviderServer) -> None:
    server.script = Model()
    start = len(server.requests)
    run = Run(manager(GPT))
    asyncio.run(responses_loop(server, run))
    check_run(server, run, "openai_responses", start)


# --- Anthropic Messages, streaming every other turn; sync and async clients ----------------


async def events_of(stream: Any) -> AsyncIterator[Any]:
    """A sync or async SDK stream's events."""
    if hasattr(stream, "__aiter__"):
        async for event in stream:
            yield event
    else:
        for event in stream:
            yield event


async def anthropic_from_stream(stream: Any) -> list[dict[str, Any]]:
    """The content blocks an agent rebuilds from Messages stream events."""
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    async for event in events_of(stream):
        if event.type == "content_block_start":
            blocks[event.index] = event.content_block.model_dump(exclude_none=True)
            partial[event.index] = ""
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta":
                blocks[event.index]["text"] += event.delta.text
            elif event.delta.type == "input_json_delta":
                partial[event.index] += event.delta.partial_json
    for index, block in blocks.items():
        if block["type"] == "tool_use":
            block["input"] = json.loads(partial[index]) if partial[index] else {}
    return [blocks[i] for i in sorted(blocks)]


async def anthropic_loop(client: Any, run: Run) -> None:
    """The agent loop over a wrapped Anthropic or AsyncAnthropic client."""
    messages: list[Any] = [{"role": "user", "content": TASK}]
    for turn in range(TURNS):
        stream = turn % 2 == 1
        response = client.messages.create(
            model=CLAUDE,
            system=SYSTEM,
            messages=messages,
            tools=ANTHROPIC_TOOLS,
            max_tokens=MAX_OUTPUT,
            stream=stream,
        )
        if inspect.isawaitable(response):
            response = await response
        if stream:
            content: Any = await anthropic_from_stream(response)
            calls = [
                (b["id"], b["name"], json.dumps(b["input"]))
                for b in content
                if b["type"] == "tool_use"
            ]
        else:
            content = response.content  # SDK blocks, appended as Anthropic's docs do
            calls = [(b.id, b.name, json.dumps(b.input)) for b in content if b.type == "tool_use"]
        run.note()
        messages.append({"role": "assistant", "content": content})
        if calls:
            results = []
            for call_id, name, arguments in calls:
                text = tool_output(name, arguments, turn)
                run.outputs[call_id] = text
                results.append({"type": "tool_result", "tool_use_id": call_id, "content": text})
            messages.append({"role": "user", "content": results})
        else:
            messages.append({"role": "user", "content": "Continue with the next step."})


def test_anthropic_loop(server: ProviderServer) -> None:
    server.script = Model()
    start = len(server.requests)
    run = Run(manager(CLAUDE))
    sdk = anthropic.Anthropic(api_key="t", base_url=server.anthropic_base_url, max_retries=0)
    asyncio.run(anthropic_loop(ctxbudget.wrap(sdk, run.manager), run))
    check_run(server, run, "anthropic", start)


def test_anthropic_async_loop(server: ProviderServer) -> None:
    server.script = Model()
    start = len(server.requests)
    run = Run(manager(CLAUDE))
    sdk = anthropic.AsyncAnthropic(api_key="t", base_url=server.anthropic_base_url, max_retries=0)
    asyncio.run(anthropic_loop(ctxbudget.wrap(sdk, run.manager), run))
    check_run(server, run, "anthropic", start)
