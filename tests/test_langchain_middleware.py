"""ContextBudgetMiddleware: a real LangChain agent, a real ChatOpenAI, the fake provider.

The agent reads thirty ~1.8k-token chunks through a tool with a 12k-token window, which
only works if every request the provider sees was compacted to fit and never split a tool
call from its result (the fake provider answers 400 to both, and with ``max_retries=0``
the agent would raise). The unit tests drive ``wrap_model_call`` with a stand-in handler.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from _require import require_module  # skips, or fails under CI, before the imports below

# ruff: noqa: E402
require_module("langchain.agents.middleware", "langchain")
require_module("langchain_openai", "test")

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import ProviderError
from ctxbudget.integrations.langchain import (
    ContextBudgetMiddleware,
    usage_from_langchain,
)
from ctxbudget.manager import ContextManager, PrepareReport
from ctxbudget.session.log import Appended
from provider_server import ProviderServer, Reply

MODEL = "gpt-4o-mini"
WINDOW = 12_000
OUTPUT = 1024
CALLS = 30
SYSTEM = "You read build logs and report what failed."
TASK = "Read every chunk of the build log, then say what failed."
FINAL = "All chunks read: the linker failed."
_WORDS = ("error", "warning", "linking", "compile", "object", "symbol", "undefined", "retry")


def _chunk(index: int) -> str:
    rng = random.Random(index)
    noise = " ".join(f"{rng.choice(_WORDS)}{rng.randint(0, 999)}" for _ in range(800))
    return f"chunk {index}: {noise}"


@tool
def read_chunk(index: int) -> str:
    """Read chunk number `index` of the build log."""
    return _chunk(index)


# -- a whole agent run against the fake provider ---------------------------------------------


@dataclass
class Run:
    server: ProviderServer
    manager: ContextManager
    state: dict[str, Any]
    reports: list[PrepareReport | None]
    """``manager.last_report`` as each request reached the provider."""


def _run_agent(*, cost_aware: bool, use_async: bool) -> Run:
    manager = ContextManager(
        MODEL, context_window=WINDOW, max_output_tokens=OUTPUT, cost_aware=cost_aware
    )
    calls = itertools.count()
    reports: list[PrepareReport | None] = []

    def script(api: str, body: dict[str, Any]) -> Reply:
        n = next(calls)
        reports.append(manager.last_report)
        if n < CALLS:
            return Reply(tool_calls=[("read_chunk", {"index": n})], reasoning_tokens=3)
        return Reply(text=FINAL, reasoning_tokens=3)

    with ProviderServer(script=script, context_windows={MODEL: WINDOW}) as server:
        model = ChatOpenAI(
            model=MODEL,
            base_url=server.openai_base_url,
            api_key="t",
            max_retries=0,
            max_tokens=OUTPUT,
        )
        agent = create_agent(
            model,
            [read_chunk],
            system_prompt=SYSTEM,
            middleware=[ContextBudgetMiddleware(manager)],
        )
        inputs: Any = {"messages": [{"role": "user", "content": TASK}]}
        state = asyncio.run(agent.ainvoke(inputs)) if use_async else agent.invoke(inputs)
    return Run(server=server, manager=manager, state=dict(state), reports=reports)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((True, False), id="sync-cost-aware"),
        pytest.param((False, False), id="sync-watermarks"),
        pytest.param((True, True), id="async"),
    ],
)
def run(request: pytest.FixtureRequest) -> Run:
    cost_aware, use_async = request.param
    return _run_agent(cost_aware=cost_aware, use_async=use_async)


def test_the_agent_finishes(run: Run) -> None:
    messages = run.state["messages"]
    assert messages[-1].content == FINAL
    assert sum(isinstance(m, ToolMessage) for m in messages) == CALLS
    assert len(run.server.requests) == len(run.server.billed) == CALLS + 1


def test_every_request_fits_the_window(run: Run) -> None:
    assert all(b.input_tokens + OUTPUT <= WINDOW for b in run.server.billed)
    assert all(r.get("max_completion_tokens") == OUTPUT for r in run.server.requests)
    # ...and without the middleware it could not have: the whole history is far larger
    full = {"model": MODEL, "messages": convert_to_openai_messages(run.state["messages"])}
    assert run.server.count_input("openai_chat", full) > 3 * WINDOW


def test_no_request_splits_a_tool_call_from_its_result(run: Run) -> None:
    for body in run.server.requests:
        asked: list[str] = []
        answered: list[str] = []
        for message in body["messages"]:
            if message["role"] == "assistant":
                assert set(asked) == set(answered), "a tool call lost its result"
                asked += [c["id"] for c in message.get("tool_calls") or []]
            elif message["role"] == "tool":
                assert message["tool_call_id"] in asked, "a tool result lost its call"
                answered.append(message["tool_call_id"])
            else:
                assert set(asked) == set(answered)
        assert set(asked) == set(answered)


def test_compaction_is_recorded_and_the_agent_state_is_untouched(run: Run) -> None:
    logged = run.manager.log.records()
    assert logged
    reported = [r for report in run.reports if report is not None for r in report.records]
    assert reported
    assert all(record in logged for record in reported)
    # the model saw compacted context...
    last = run.server.requests[-1]["messages"]
    shown = [m["content"] for m in last if m["role"] == "tool"]
    assert len(shown) < CALLS or any(c not in {_chunk(i) for i in range(CALLS)} for c in shown)
    # ...while the agent kept every tool result in full
    results = [m.content for m in run.state["messages"] if isinstance(m, ToolMessage)]
    assert results == [_chunk(i) for i in range(CALLS)]


def test_billed_usage_matches_the_provider(run: Run) -> None:
    billed = run.server.billed
    usage = run.manager.usage
    assert usage.input_tokens == sum(b.input_tokens for b in billed)
    assert usage.cache_read_tokens == sum(b.cache_read_tokens for b in billed)
    assert usage.cache_read_tokens > 0  # the prefix cache was hit, and the read mapped
    assert usage.cache_write_tokens == sum(b.cache_write_5m_tokens for b in billed)
    assert usage.output_tokens == sum(b.output_tokens for b in billed)
    assert usage.reasoning_tokens == sum(b.reasoning_tokens for b in billed) == 3 * (CALLS + 1)
    report = run.manager.last_report
    assert report is not None
    assert report.billed is not None
    assert report.billed.input_tokens == billed[-1].input_tokens


def test_each_message_enters_the_log_once(run: Run) -> None:
    appended = [e.item for e in run.manager.log if isinstance(e, Appended)]
    roles = Counter(item.role for item in appended)
    assert roles == {"system": 1, "user": 1, "assistant": CALLS + 1, "tool": CALLS}
    calls = [c.id for item in appended for c in item.tool_calls]
    assert len(calls) == len(set(calls)) == CALLS


# -- wrap_model_call with a stand-in handler ---------------------------------------------------


def _manager() -> ContextManager:
    return ContextManager(MODEL, context_window=WINDOW, max_output_tokens=OUTPUT)


def _request(messages: list[Any], system: SystemMessage | None = None) -> ModelRequest[Any]:
    model = GenericFakeChatModel(messages=iter(()))
    return ModelRequest(model=model, messages=messages, system_message=system, tools=[read_chunk])


def _usage(input_tokens: int, cached: int = 0) -> Any:
    return {
        "input_tokens": input_tokens,
        "output_tokens": 5,
        "total_tokens": input_tokens + 5,
        "input_token_details": {"cache_read": cached},
    }


class Handler:
    """Answers with the next scripted message; keeps every request it got."""

    def __init__(self, *replies: AIMessage) -> None:
        self.replies: Iterator[AIMessage] = iter(replies)
        self.requests: list[ModelRequest[Any]] = []

    def __call__(self, request: ModelRequest[Any]) -> ModelResponse[Any]:
        self.requests.append(request)
        return ModelResponse(result=[next(self.replies)])


def _plain(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in m.items() if k != "name"} for m in convert_to_openai_messages(messages)
    ]


def test_the_echoed_reply_is_not_appended_twice() -> None:
    manager = _manager()
    middleware = ContextBudgetMiddleware(manager)
    system = SystemMessage(SYSTEM)
    call = AIMessage(
        "",
        tool_calls=[{"name": "read_chunk", "args": {"index": 0}, "id": "call_1"}],
        usage_metadata=_usage(100),
    )
    done = AIMessage(FINAL, usage_metadata=_usage(300, cached=128))
    handler = Handler(call, done)
    human = HumanMessage(TASK)
    result = ToolMessage("short result", tool_call_id="call_1", name="read_chunk")

    middleware.wrap_model_call(_request([human], system), handler)
    middleware.wrap_model_call(_request([human, call, result], system), handler)
    middleware.wrap_model_call(_request([human, call, result, done], system), Handler(done))

    roles = [item.role for item in manager.view]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "assistant"]
    # the second call saw the history once, in order, with the system message kept apart
    second = handler.requests[1]
    assert second.system_message is system
    assert _plain(second.messages) == _plain([human, call, result])
    assert middleware.unbilled == 0
    assert manager.usage.input_tokens == 100 + 300 + 300
    assert manager.usage.cache_read_tokens == 256


def test_an_unchanged_system_message_reaches_the_model_as_given() -> None:
    blocks: list[str | dict[str, Any]] = [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]
    system = SystemMessage(content=blocks)
    handler = Handler(AIMessage("hi"))
    ContextBudgetMiddleware(_manager()).wrap_model_call(
        _request([HumanMessage(TASK)], system), handler
    )
    assert handler.requests[0].system_message is system


def test_no_system_message_stays_none() -> None:
    manager = _manager()
    handler = Handler(AIMessage("hi"))
    ContextBudgetMiddleware(manager).wrap_model_call(_request([HumanMessage(TASK)]), handler)
    assert handler.requests[0].system_message is None
    assert [item.role for item in manager.view] == ["user", "assistant"]


def test_a_reply_without_usage_is_recorded_but_not_billed() -> None:
    manager = _manager()
    middleware = ContextBudgetMiddleware(manager)
    middleware.wrap_model_call(_request([HumanMessage(TASK)]), Handler(AIMessage("hi")))
    assert middleware.unbilled == 1
    assert manager.usage == Usage(input_tokens=0)
    assert manager.last_report is not None
    assert manager.last_report.billed is None
    assert [item.role for item in manager.view] == ["user", "assistant"]


def test_async_path_records_like_the_sync_path() -> None:
    manager = _manager()
    middleware = ContextBudgetMiddleware(manager)
    handler = Handler(AIMessage("hi", usage_metadata=_usage(42)))

    async def ahandler(request: ModelRequest[Any]) -> ModelResponse[Any]:
        return handler(request)

    asyncio.run(middleware.awrap_model_call(_request([HumanMessage(TASK)]), ahandler))
    assert manager.usage.input_tokens == 42
    assert [item.role for item in manager.view] == ["user", "assistant"]


def test_an_edited_last_message_is_followed_exactly() -> None:
    """The caller replaced its last message (and dropped the reply): the model gets exactly
    the new list, nothing of the old turn."""
    manager = _manager()
    middleware = ContextBudgetMiddleware(manager)
    handler = Handler(AIMessage("one"), AIMessage("two"))
    middleware.wrap_model_call(_request([HumanMessage("first question")]), handler)
    middleware.wrap_model_call(_request([HumanMessage("another conversation")]), handler)
    assert _plain(handler.requests[-1].messages) == [
        {"role": "user", "content": "another conversation"}
    ]
    assert [r.strategy for r in manager.log.records()][-1] == "retract"


def test_function_tools_are_offered_and_provider_tools_skipped() -> None:
    manager = _manager()
    lookup = {
        "type": "function",
        "function": {"name": "lookup", "description": "Look up a word.", "parameters": {}},
    }
    request = _request([HumanMessage(TASK)]).override(
        tools=[read_chunk, lookup, {"type": "web_search"}]
    )
    ContextBudgetMiddleware(manager).wrap_model_call(request, Handler(AIMessage("hi")))
    assert [t.name for t in manager.accountant.tools] == [
        "read_chunk",
        "lookup",
        "recall",
    ]  # recall: offered by the middleware


# -- usage_metadata mapping --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param(  # langchain-openai: prompt_tokens passed through, cached inside
            {
                "input_tokens": 1000,
                "output_tokens": 50,
                "total_tokens": 1050,
                "input_token_details": {"audio": 0, "cache_read": 768},
                "output_token_details": {"audio": 0, "reasoning": 20},
            },
            Usage(input_tokens=1000, cache_read_tokens=768, output_tokens=50, reasoning_tokens=20),
            id="openai",
        ),
        pytest.param(  # langchain-anthropic with the TTL split (generic key zeroed)
            {
                "input_tokens": 1500,
                "output_tokens": 10,
                "total_tokens": 1510,
                "input_token_details": {
                    "cache_read": 200,
                    "cache_creation": 0,
                    "ephemeral_5m_input_tokens": 300,
                    "ephemeral_1h_input_tokens": 900,
                },
            },
            Usage(
                input_tokens=1500,
                cache_read_tokens=200,
                cache_write_5m_tokens=300,
                cache_write_1h_tokens=900,
                output_tokens=10,
            ),
            id="anthropic-ttl-split",
        ),
        pytest.param(  # older langchain-anthropic: only the generic cache_creation
            {
                "input_tokens": 1500,
                "output_tokens": 10,
                "total_tokens": 1510,
                "input_token_details": {"cache_read": 200, "cache_creation": 1200},
            },
            Usage(
                input_tokens=1500,
                cache_read_tokens=200,
                cache_write_5m_tokens=1200,
                output_tokens=10,
            ),
            id="anthropic-generic",
        ),
        pytest.param(
            {"input_tokens": 7, "output_tokens": 1, "total_tokens": 8},
            Usage(input_tokens=7, output_tokens=1),
            id="no-details",
        ),
    ],
)
def test_usage_from_langchain(metadata: dict[str, Any], expected: Usage) -> None:
    assert usage_from_langchain(metadata) == expected


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"output_tokens": 1, "total_tokens": 1}, id="no-input"),
        pytest.param({"input_tokens": "7", "output_tokens": 1}, id="not-an-int"),
        pytest.param(
            {"input_tokens": 7, "output_tokens": 1, "input_token_details": {"cache_read": 9}},
            id="cache-over-input",
        ),
        pytest.param({"input_tokens": 7, "input_token_details": [1]}, id="details-not-object"),
    ],
)
def test_unreadable_usage_raises(metadata: dict[str, Any]) -> None:
    with pytest.raises(ProviderError, match="usage_metadata"):
        usage_from_langchain(metadata)


# -- an optional dependency --------------------------------------------------------------------


def test_without_langchain_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "ctxbudget.integrations.langchain")
    monkeypatch.setitem(sys.modules, "langchain.agents.middleware", None)
    with pytest.raises(ImportError, match=r"pip install 'ctxbudget\[langchain\]'"):
        importlib.import_module("ctxbudget.integrations.langchain")


def test_ctxbudget_does_not_import_langchain() -> None:
    code = (
        "import sys, ctxbudget, ctxbudget.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain', 'langchain_core', 'langgraph') or m.endswith('integrations.langchain')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
