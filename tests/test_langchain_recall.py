"""ContextBudgetMiddleware offers ``recall`` and answers it: a real ``create_agent`` with a
real ChatOpenAI against the local provider server.

The session uses the ``digest`` policy: once the agent has read a second file, the first
file's output reaches the model as a digest naming its id. The scripted model then calls
``recall`` with that id; the middleware answers it and calls the model again, so the
agent's state never holds the recall call, and the agent goes on as usual.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from _require import require_module  # skips, or fails under CI, before the imports below

# ruff: noqa: E402
require_module("langchain.agents.middleware", "langchain")
require_module("langchain_openai", "test")

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from _scripted import listing
from ctxbudget.integrations.langchain import ContextBudgetMiddleware
from ctxbudget.integrations.recall import tool_name
from ctxbudget.manager import ContextManager
from provider_server import ProviderServer, Reply

MODEL = "gpt-4o-mini"
SYSTEM = "You fix bugs in /srv/app. Read files before you change them."
TASK = "Find the rounding bug in the billing service."
FINAL = "The rounding bug is in handler_billing_0_41."
_NAMED = re.compile(r'recall\("([^"]+)"\)')


def output(n: int) -> str:
    return listing(f"billing_{n}", 80)


@tool
def read_file(n: int) -> str:
    """Read billing file number `n`."""
    return output(n)


def named_id(body: dict[str, Any]) -> str:
    for message in body["messages"]:
        found = _NAMED.search(str(message.get("content")))
        if found:
            return found.group(1)
    raise AssertionError("no digest names an id in this request")


class Script:
    """The model's replies in order: ``("read", n)``, ``("recall",)``, ``("mixed", n)``
    (recall and read together) or ``("final",)``; keeps every body it got."""

    def __init__(self, *plan: tuple[Any, ...]) -> None:
        self.plan = list(plan)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        self.bodies.append(body)
        step = self.plan[len(self.bodies) - 1]
        if step[0] == "read":
            return Reply(tool_calls=[("read_file", {"n": step[1]})])
        if step[0] == "recall":
            return Reply(tool_calls=[("recall", {"id": named_id(body)})])
        if step[0] == "mixed":
            recall = ("recall", {"id": named_id(body)})
            return Reply(tool_calls=[recall, ("read_file", {"n": step[1]})])
        return Reply(text=FINAL)


@dataclass
class Agent:
    server: ProviderServer
    script: Script
    manager: ContextManager
    middleware: ContextBudgetMiddleware
    graph: Any

    def invoke(self, messages: list[Any], *, use_async: bool = False) -> dict[str, Any]:
        inputs: Any = {"messages": messages}
        if use_async:
            return dict(asyncio.run(self.graph.ainvoke(inputs)))
        return dict(self.graph.invoke(inputs))


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


def agent(server: ProviderServer, script: Script, **settings: Any) -> Agent:
    server.script = script
    manager = ContextManager(MODEL, policy="digest")
    middleware = ContextBudgetMiddleware(manager, **settings)
    model = ChatOpenAI(
        model=MODEL, base_url=server.openai_base_url, api_key=SecretStr("t"), max_retries=0
    )
    graph = create_agent(model, [read_file], system_prompt=SYSTEM, middleware=[middleware])
    return Agent(server, script, manager, middleware, graph)


def offered(body: dict[str, Any]) -> list[str | None]:
    return [tool_name(t) for t in body.get("tools") or ()]


def recall_calls(messages: list[Any]) -> list[Any]:
    return [
        call
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
        if call["name"] == "recall"
    ]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_the_agent_recalls_without_seeing_it(server: ProviderServer, use_async: bool) -> None:
    script = Script(("read", 0), ("read", 1), ("recall",), ("final",), ("final",))
    run = agent(server, script)
    state = run.invoke([{"role": "user", "content": TASK}], use_async=use_async)
    messages = state["messages"]
    assert messages[-1].content == FINAL
    # the agent's state holds its own turns only: no recall call, no recall answer
    assert not recall_calls(messages)
    assert [m.name for m in messages if isinstance(m, ToolMessage)] == ["read_file"] * 2
    assert len(script.bodies) == len(server.billed) == 4
    third, fourth = script.bodies[2:4]
    assert offered(third) == ["read_file", "recall"]
    asked = named_id(third)
    assert run.manager.recall(asked).tool_results[0].content == output(0)
    # the hidden round: the model's recall call, then the original, verbatim
    call, answer = fourth["messages"][-2:]
    assert [c["function"]["name"] for c in call["tool_calls"]] == ["recall"]
    assert answer == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"]} | {
        "content": output(0)
    }
    # every round's usage was observed
    assert run.manager.usage.input_tokens == sum(b.input_tokens for b in server.billed)
    assert run.manager.usage.output_tokens == sum(b.output_tokens for b in server.billed)
    assert run.middleware.unbilled == 0
    # the same thread goes on: the agent's list is extended, never rewritten
    state = run.invoke([*messages, {"role": "user", "content": "Thanks. Run the tests."}])
    assert state["messages"][-1].content == FINAL
    assert len(script.bodies) == 5
    assert len(script.bodies[4]["messages"]) == len(fourth["messages"]) + 2


def test_a_mixed_reply_reaches_the_agent_without_its_recall_call(server: ProviderServer) -> None:
    script = Script(("read", 0), ("read", 1), ("mixed", 2), ("final",))
    run = agent(server, script)
    state = run.invoke([{"role": "user", "content": TASK}])
    messages = state["messages"]
    assert messages[-1].content == FINAL
    assert not recall_calls(messages)
    mixed = [m for m in messages if isinstance(m, AIMessage)][2]
    assert [c["name"] for c in mixed.tool_calls] == ["read_file"]
    assert [m.content for m in messages if isinstance(m, ToolMessage)] == [
        output(0),
        output(1),
        output(2),
    ]
    # the model saw both calls and both results, paired (the server rejects orphans)
    last = script.bodies[-1]["messages"]
    assistant = next(m for m in reversed(last) if m["role"] == "assistant")
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["recall", "read_file"]
    assert last[-2]["content"] == output(0)
    assert last[-1]["tool_call_id"] == assistant["tool_calls"][1]["id"]
    assert len(server.billed) == 4


def test_recall_false_offers_nothing(server: ProviderServer) -> None:
    script = Script(("read", 0), ("read", 1), ("final",))
    run = agent(server, script, recall=False)
    state = run.invoke([{"role": "user", "content": TASK}])
    assert state["messages"][-1].content == FINAL
    assert all(offered(b) == ["read_file"] for b in script.bodies)


def test_three_rounds_at_most_then_the_agent_gets_the_call(server: ProviderServer) -> None:
    plan = [("read", 0), ("read", 1), *[("recall",)] * 4, ("final",)]
    script = Script(*plan)
    run = agent(server, script)
    state = run.invoke([{"role": "user", "content": TASK}])
    messages = state["messages"]
    assert messages[-1].content == FINAL
    assert len(script.bodies) == len(server.billed) == 7
    # the fourth recall reached the agent, whose tool node answered it with an error
    assert len(recall_calls(messages)) == 1
    (error,) = [m for m in messages if isinstance(m, ToolMessage) and m.status == "error"]
    assert "recall" in str(error.content)
    assert run.manager.usage.input_tokens == sum(b.input_tokens for b in server.billed)
