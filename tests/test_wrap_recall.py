"""``wrap()`` offers the manager's ``recall`` tool and answers it in hidden rounds.

The real OpenAI and Anthropic SDK clients talk to the local provider server. The session
uses the ``digest`` policy, so the first request already carries a digest naming its
original's id; the scripted model reads that id out of the request it gets, calls
``recall`` with it, and answers once the original is back. The caller's loop is an
ordinary one: it never sees the recall call, and its list goes on being extended.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import ctxbudget
from _scripted import billed_usage, listing, without_markers
from ctxbudget import ContextManager, Usage, price
from ctxbudget.integrations.recall import tool_name
from ctxbudget.spend import SpendGuard, Tags, open_ledger
from provider_server import ProviderServer, Reply

GPT = "gpt-4o"
CLAUDE = "claude-opus-4-1"
SYSTEM = "You are a coding agent in /srv/app. Read before you edit; run the tests after."
FINAL = "The rounding bug is in handler_billing0_41; fixing it with Decimal.quantize."
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string"}},
    "required": ["path"],
}
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {"name": "read_file", "description": "Read a file.", "parameters": SCHEMA},
    }
]
RESPONSES_TOOLS = [
    {"type": "function", "name": "read_file", "description": "Read a file.", "parameters": SCHEMA}
]
ANTHROPIC_TOOLS = [{"name": "read_file", "description": "Read a file.", "input_schema": SCHEMA}]
_NAMED = re.compile(r'recall\("([^"]+)"\)')


def output(n: int) -> str:
    return listing(f"billing{n}", 80)


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


def texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from texts(v)


def named_id(body: dict[str, Any]) -> str:
    """The id the first digest or placeholder of a request names."""
    for text in texts(body.get("messages") or body.get("input")):
        found = _NAMED.search(text)
        if found:
            return found.group(1)
    raise AssertionError("no digest names an id in this request")


class Recaller:
    """The scripted model: ``rounds`` replies calling recall (with ``also`` calls of the
    caller's tools alongside), then the final answer; keeps every body it got."""

    def __init__(self, rounds: int = 1, also: tuple[tuple[str, dict[str, Any]], ...] = ()):
        self.rounds, self.also = rounds, also
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        self.bodies.append(body)
        if len(self.bodies) <= self.rounds:
            return Reply(tool_calls=[("recall", {"id": named_id(body)}), *self.also])
        return Reply(text=FINAL)


def chat_history() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Find the rounding bug in the billing service."},
    ]
    for n in range(2):
        args = json.dumps({"path": f"src/app/billing_{n}.py"})
        function = {"name": "read_file", "arguments": args}
        call = {"id": f"call_{n}", "type": "function", "function": function}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{n}", "content": output(n)})
    messages.append({"role": "user", "content": "Now fix it."})
    return messages


def anthropic_history() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Find the rounding bug in the billing service."}
    ]
    for n in range(2):
        path = {"path": f"src/app/billing_{n}.py"}
        use = {"type": "tool_use", "id": f"toolu_{n}", "name": "read_file", "input": path}
        messages.append({"role": "assistant", "content": [use]})
        result = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": output(n)}
        messages.append({"role": "user", "content": [result]})
    messages.append({"role": "user", "content": "Now fix it."})
    return messages


def client_for(server: ProviderServer, api: str, mode: str, **settings: Any) -> Any:
    model = CLAUDE if api == "anthropic" else GPT
    manager = ContextManager(model, policy="digest")
    if api == "anthropic":
        cls: Any = anthropic.AsyncAnthropic if mode == "async" else anthropic.Anthropic
        sdk = cls(api_key="t", base_url=server.anthropic_base_url, max_retries=0)
    else:
        cls = openai.AsyncOpenAI if mode == "async" else openai.OpenAI
        sdk = cls(api_key="t", base_url=server.openai_base_url, max_retries=0)
    return ctxbudget.wrap(sdk, manager, **settings)


async def create(client: Any, api: str, messages: list[Any], **options: Any) -> Any:
    """One call as an ordinary agent makes it (``tools=None``: the call has none)."""
    tools = options.pop("tools", {"chat": CHAT_TOOLS, "anthropic": ANTHROPIC_TOOLS}.get(api))
    if tools is not None:
        options["tools"] = tools
    if api == "anthropic":
        result = client.messages.create(
            model=CLAUDE, system=SYSTEM, max_tokens=1024, messages=messages, **options
        )
    elif api == "responses":
        result = client.responses.create(model=GPT, instructions=SYSTEM, input=messages, **options)
    else:
        result = client.chat.completions.create(model=GPT, messages=messages, **options)
    return await result if asyncio.iscoroutine(result) else result


def drive(scenario: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return asyncio.run(scenario(*args, **kwargs))


def answer_text(response: Any, api: str) -> str:
    if api == "anthropic":
        return "".join(b.text for b in response.content if b.type == "text")
    return str(response.choices[0].message.content or "")


def reply_message(response: Any, api: str) -> dict[str, Any]:
    """The reply as the caller appends it to its list."""
    if api == "anthropic":
        return {"role": "assistant", "content": [b.model_dump() for b in response.content]}
    return dict(response.choices[0].message.model_dump(exclude_none=True))


def recall_answer(body: dict[str, Any], api: str) -> Any:
    """The content of the tool result the last message of a request carries."""
    last = without_markers(body["messages"][-1])
    if api == "anthropic":
        (block,) = last["content"]
        assert block["type"] == "tool_result"
        return block["content"]
    assert last["role"] == "tool"
    return last["content"]


def offered(body: dict[str, Any]) -> list[str | None]:
    return [tool_name(t) for t in body.get("tools") or ()]


# --- one recall round, each provider, sync and async ---------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("api", ["chat", "anthropic"])
def test_a_recall_round_is_answered_inside_and_the_caller_goes_on(
    server: ProviderServer, api: str, mode: str
) -> None:
    model = Recaller()
    server.script = model
    client = client_for(server, api, mode)
    manager: ContextManager = client.manager
    messages = chat_history() if api == "chat" else anthropic_history()
    billed = len(server.billed)

    async def scenario() -> Any:
        response = await create(client, api, messages)
        usage = manager.usage
        messages.append(reply_message(response, api))
        messages.append({"role": "user", "content": "Good. Now run the tests."})
        later = await create(client, api, messages)  # the list goes on: no "rewritten"
        return response, usage, later

    untouched = list(messages)
    response, usage, later = drive(scenario)
    assert answer_text(response, api) == FINAL
    first, second, third = model.bodies
    # the tool was offered next to the caller's, once
    assert offered(first) == ["read_file", "recall"]
    asked = named_id(first)
    assert manager.recall(asked).tool_results[0].content == output(0)
    # the answer reached the model verbatim, after its own recall call
    assert recall_answer(second, api) == output(0)
    assert len(second["messages"]) == len(first["messages"]) + 2
    # both rounds were billed and observed
    usages = [billed_usage(b) for b in server.billed[billed:]]
    assert usage == usages[0] + usages[1]
    assert manager.usage == usages[0] + usages[1] + usages[2]
    # the caller's list never held the hidden turn; the next request has it once, in order
    assert messages[: len(untouched)] == untouched
    assert len(third["messages"]) == len(second["messages"]) + 2
    assert answer_text(later, api) == FINAL  # the script's last answer, again
    assert [b.api for b in server.billed[billed:]] == [model_api(api)] * 3


def model_api(api: str) -> str:
    return {"chat": "openai_chat", "anthropic": "anthropic", "responses": "openai_responses"}[api]


def test_responses_recall_round(server: ProviderServer) -> None:
    model = Recaller()
    server.script = model
    client = client_for(server, "responses", "sync")
    items: list[Any] = [{"role": "user", "content": "Find the rounding bug."}]
    for n in range(2):
        args = json.dumps({"path": f"src/app/billing_{n}.py"})
        items.append(
            {"type": "function_call", "call_id": f"c{n}", "name": "read_file", "arguments": args}
        )
        items.append({"type": "function_call_output", "call_id": f"c{n}", "output": output(n)})
    items.append({"role": "user", "content": "Now fix it."})
    response = drive(create, client, "responses", items, tools=RESPONSES_TOOLS)
    assert response.output_text == FINAL
    first, second = model.bodies
    assert offered(first) == ["read_file", "recall"]
    assert second["input"][-1]["type"] == "function_call_output"
    assert second["input"][-1]["output"] == output(0)
    items += [o.model_dump(exclude_none=True) for o in response.output]
    items.append({"role": "user", "content": "Run the tests."})
    drive(create, client, "responses", items, tools=RESPONSES_TOOLS)
    assert len(model.bodies) == 3


def normalized(bodies: list[dict[str, Any]]) -> str:
    """Bodies with the server's random ids replaced by their order of first appearance."""
    names: dict[str, str] = {}
    ids = re.compile(r"\b(?:call|toolu|chatcmpl-)_?[0-9a-f]{16,}\b")
    text = json.dumps(bodies, sort_keys=True)
    return ids.sub(lambda m: names.setdefault(m.group(0), f"id{len(names)}"), text)


def test_sync_and_async_send_identical_bodies(server: ProviderServer) -> None:
    bodies = []
    for mode in ("sync", "async"):
        model = Recaller(rounds=2)
        server.script = model
        drive(create, client_for(server, "chat", mode), "chat", chat_history())
        assert len(model.bodies) == 3
        bodies.append(normalized(model.bodies))
    assert bodies[0] == bodies[1]


# --- the bound, the switch, a tool of the caller's own, no tools -------------------------


@pytest.mark.parametrize("api", ["chat", "anthropic"])
def test_at_most_three_rounds_then_the_reply_is_returned_as_it_is(
    server: ProviderServer, api: str
) -> None:
    model = Recaller(rounds=10)
    server.script = model
    client = client_for(server, api, "sync")
    manager: ContextManager = client.manager
    billed = len(server.billed)
    messages = chat_history() if api == "chat" else anthropic_history()
    response = drive(create, client, api, messages)
    assert len(model.bodies) == 4
    usages = [billed_usage(b) for b in server.billed[billed:]]
    assert manager.usage == sum(usages[1:], usages[0])
    if api == "chat":
        (call,) = response.choices[0].message.tool_calls
        assert call.function.name == "recall"
        call_dict = call.model_dump()
    else:
        (call,) = [b for b in response.content if b.type == "tool_use"]
        assert call.name == "recall"
        call_dict = call.model_dump()
    # the caller can answer it with the manager and go on
    messages.append(reply_message(response, api))
    answer = manager.answer_recall(call_dict)
    messages.append(answer if api == "chat" else {"role": "user", "content": [answer]})
    server.script = Recaller(rounds=0)
    assert answer_text(drive(create, client, api, messages), api) == FINAL


@pytest.mark.parametrize("api", ["chat", "anthropic"])
def test_recall_false_offers_nothing(server: ProviderServer, api: str) -> None:
    model = Recaller(rounds=0)
    server.script = model
    messages = chat_history() if api == "chat" else anthropic_history()
    drive(create, client_for(server, api, "sync", recall=False), api, messages)
    drive(create, client_for(server, api, "sync", recall=False), api, messages, tools=None)
    with_tools, without = model.bodies
    assert offered(with_tools) == ["read_file"]
    assert "tools" not in without  # nothing of ours, even when the caller has no tools


def test_a_call_without_tools_still_offers_recall(server: ProviderServer) -> None:
    model = Recaller()
    server.script = model
    client = client_for(server, "chat", "sync")
    response = drive(create, client, "chat", chat_history(), tools=None)
    assert response.choices[0].message.content == FINAL
    assert [offered(b) for b in model.bodies] == [["recall"], ["recall"]]


def test_a_tool_of_the_callers_own_named_recall_is_left_to_the_caller(
    server: ProviderServer,
) -> None:
    model = Recaller()
    server.script = model
    client = client_for(server, "chat", "sync")
    own = {
        "type": "function",
        "function": {"name": "recall", "description": "Recall a memory.", "parameters": {}},
    }
    response = drive(create, client, "chat", chat_history(), tools=[*CHAT_TOOLS, own])
    assert len(model.bodies) == 1
    assert offered(model.bodies[0]) == ["read_file", "recall"]
    assert model.bodies[0]["tools"][1]["function"]["description"] == "Recall a memory."
    assert response.choices[0].message.tool_calls[0].function.name == "recall"


# --- a reply that also calls the caller's tools ---------------------------------------------


@pytest.mark.parametrize("api", ["chat", "anthropic"])
def test_a_mixed_reply_reaches_the_caller_without_its_recall_calls(
    server: ProviderServer, api: str
) -> None:
    model = Recaller(also=(("read_file", {"path": "src/app/rounding.py"}),))
    server.script = model
    client = client_for(server, api, "sync")
    manager: ContextManager = client.manager
    billed = len(server.billed)
    messages = chat_history() if api == "chat" else anthropic_history()
    response = drive(create, client, api, messages)
    assert len(model.bodies) == 1
    message = reply_message(response, api)
    if api == "chat":
        calls = [(c["id"], c["function"]["name"]) for c in message["tool_calls"]]
    else:
        calls = [(b["id"], b["name"]) for b in message["content"] if b["type"] == "tool_use"]
    ((call_id, name),) = calls
    assert name == "read_file"
    assert manager.usage == billed_usage(server.billed[billed])
    # the caller runs its tool as usual; the next request pairs every call with its result
    messages.append(message)
    result = "def round_half_up(x): return round(x)"
    if api == "chat":
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
    else:
        block = {"type": "tool_result", "tool_use_id": call_id, "content": result}
        messages.append({"role": "user", "content": [block]})
    assert answer_text(drive(create, client, api, messages), api) == FINAL
    second = without_markers(model.bodies[1])
    rendered = json.dumps(second)
    assert json.dumps(output(0))[1:-1] in rendered  # the recall answer, whole
    assert json.dumps(result)[1:-1] in rendered
    if api == "chat":
        assistant = second["messages"][-3]
        assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["recall", "read_file"]
        assert [m["role"] for m in second["messages"][-2:]] == ["tool", "tool"]
    else:
        assistant, results = second["messages"][-2:]
        uses = [b["name"] for b in assistant["content"] if b["type"] == "tool_use"]
        assert uses == ["recall", "read_file"]
        assert [b["type"] for b in results["content"]] == ["tool_result", "tool_result"]


# --- streams ----------------------------------------------------------------------------------


def test_streams_offer_the_tool_only_once_a_plain_call_did(server: ProviderServer) -> None:
    model = Recaller(rounds=0)
    server.script = model
    client = client_for(server, "chat", "sync")
    messages: list[Any] = chat_history()
    for stream in (True, False, True):
        response = drive(create, client, "chat", messages, stream=stream)
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in response if c.choices)
        else:
            text = response.choices[0].message.content
        messages.append({"role": "assistant", "content": text})
        messages.append({"role": "user", "content": "continue"})
    assert [offered(b) for b in model.bodies] == [
        ["read_file"],
        ["read_file", "recall"],
        ["read_file", "recall"],  # kept: the cached tool prefix does not flip back
    ]
    assert client.manager.cache.busts <= 1


# --- spend --------------------------------------------------------------------------------------


def test_each_round_is_reserved_and_settled(server: ProviderServer, tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'spend.db'}")
    guard = SpendGuard(ledger, Tags(team="t", session="s"))
    model = Recaller(rounds=2)
    server.script = model
    client = client_for(server, "chat", "sync", spend=guard)
    billed = len(server.billed)
    drive(create, client, "chat", chat_history())
    rows = [t for b, t in ledger.totals().items() if b.scope == "team" and b.period == "day"]
    assert sum(t.calls for t in rows) == 3
    assert sum((t.reserved for t in rows), Decimal(0)) == 0
    prices = client.manager.model.prices
    costs = [price(billed_usage(b), prices) for b in server.billed[billed:]]
    expected = sum((c.total for c in costs if c is not None), Decimal(0))
    spent = sum((t.spent for t in rows), Decimal(0))
    assert spent == pytest.approx(expected, abs=Decimal("1e-8"))
    assert client.manager.usage != Usage(input_tokens=0)
