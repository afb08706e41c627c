"""LangChain v1 agent middleware: one line keeps a ``create_agent`` loop within its budget.

    agent = create_agent(model, tools, middleware=[ContextBudgetMiddleware(manager)])

Before each model call the middleware turns the request (system message, messages, tool
schemas) into OpenAI chat dicts, feeds what is new into the manager (each message once,
through :class:`~ctxbudget.integrations.history.HistorySync`), lets the manager prepare
the request (compacted when needed, always within the window) and hands the model the
prepared messages instead of the full history. After the call the billed usage (from the
reply's ``usage_metadata``) and the reply itself are recorded. The agent's own state is
left alone: it keeps the whole conversation; only what the model sees is budgeted.

The middleware also offers the manager's ``recall`` tool (digests and placeholders name
the original's id) and answers the model's recall calls itself, calling the model again
(:mod:`~ctxbudget.integrations.recall`), so the agent's loop and its state never see them.

This module needs LangChain (``pip install 'ctxbudget[langchain]'``); nothing else in
ctxbudget imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

try:
    from langchain.agents.middleware import (
        AgentMiddleware,
        AgentState,
        ModelRequest,
        ModelResponse,
    )
    from langchain_core.messages import (
        AIMessage,
        AnyMessage,
        BaseMessage,
        SystemMessage,
        convert_to_messages,
        convert_to_openai_messages,
    )
    from langchain_core.tools import BaseTool
    from langchain_core.utils.function_calling import convert_to_openai_tool
except ImportError as exc:
    raise ImportError(
        "ctxbudget.integrations.langchain needs LangChain v1 (langchain, langchain-core): "
        "pip install 'ctxbudget[langchain]'"
    ) from exc

from ctxbudget.billing.usage import Usage
from ctxbudget.engine.recall import RECALL_TOOL
from ctxbudget.errors import ProviderError
from ctxbudget.integrations.history import HistorySync
from ctxbudget.integrations.recall import (
    MAX_RECALL_ROUNDS,
    answer_messages,
    is_recall_call,
    reply_calls,
    tool_name,
)
from ctxbudget.manager import ContextManager

__all__ = ["ContextBudgetMiddleware", "usage_from_langchain"]

_SYSTEM_ROLES = ("system", "developer")


class ContextBudgetMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Budgets every model call of a LangChain agent with one :class:`ContextManager`.

    One middleware (and one manager) follows one conversation: the agent's message list
    must grow by appending, as it does in ``create_agent`` (also across invocations of the
    same thread). Use a new manager and middleware for a new conversation.

    ``recall``: add the manager's ``recall`` tool to every model call (unless the agent has
    a tool of its own named ``recall``: then ours is not offered) and answer it here. When
    the model's reply calls only ``recall``, the reply and the answers
    (``manager.answer_recall``) go into the manager's log and the model is called again,
    at most three such rounds per model call; the reply after the third is returned as it
    is (the agent's tool node answers its unknown ``recall`` call with an error message).
    A reply that calls ``recall`` and the agent's tools too reaches the agent without its
    recall calls, which are answered here and logged with their answers. Each round's
    usage is observed. With ``stream_mode="messages"`` the hidden rounds' tokens are
    streamed too (LangChain streams from inside the model call).
    """

    def __init__(self, manager: ContextManager, *, recall: bool = True) -> None:
        super().__init__()
        self.manager = manager
        """The manager that holds the session log and prepares every request."""
        self.history = HistorySync(manager, "openai_chat")
        """Which of the agent's messages the manager already holds."""
        self.recall = recall
        """Offer the recall tool and answer its calls (see the class docstring)."""
        self.unbilled = 0
        """Replies that carried no ``usage_metadata`` (``manager.usage`` misses them)."""

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Call the model with the manager's prepared context, then record the reply."""
        request, answering = self._offered(request)
        response = handler(self._prepared(request))
        for _ in range(MAX_RECALL_ROUNDS if answering else 0):
            done = self._answered(response)
            if done is not None:
                return done
            response = handler(self._view(request))
        self._record(response)
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """The async twin of :meth:`wrap_model_call` (same preparation and recording)."""
        request, answering = self._offered(request)
        response = await handler(self._prepared(request))
        for _ in range(MAX_RECALL_ROUNDS if answering else 0):
            done = self._answered(response)
            if done is not None:
                return done
            response = await handler(self._view(request))
        self._record(response)
        return response

    # -- the steps, shared by the sync and async paths ---------------------------------------

    def _offered(self, request: ModelRequest[Any]) -> tuple[ModelRequest[Any], bool]:
        """The request with the recall tool added, and whether recall calls are answered."""
        if not self.recall or any(tool_name(t) == RECALL_TOOL for t in request.tools):
            return request, False
        tools = [*request.tools, self.manager.recall_tool("openai")]
        return request.override(tools=tools), True

    def _prepared(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """Take in what is new in the agent's request, then :meth:`_view`."""
        system = request.system_message
        content = _openai_message(system)["content"] if system is not None else None
        self.history.sync(
            [_openai_message(m) for m in request.messages],
            system=content,
            tools=_function_tools(request.tools),
        )
        return self._view(request)

    def _view(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The request with the manager's view in place of the full history."""
        system = request.system_message
        content = _openai_message(system)["content"] if system is not None else None
        body = self.manager.prepare("openai")
        wire: list[Mapping[str, Any]] = body["messages"]
        lead = 0
        while lead < len(wire) and wire[lead].get("role") in _SYSTEM_ROLES:
            lead += 1
        messages = cast(list[AnyMessage], convert_to_messages([dict(m) for m in wire[lead:]]))
        prepared = _system_text([m.get("content") for m in wire[:lead]]) if lead else None
        if prepared is None:
            system = None
        elif content is None or prepared != _system_text([content]):
            system = SystemMessage(content=prepared)
        # else the caller's own object: it keeps provider-specific blocks (cache_control)
        return request.override(messages=messages, system_message=system)

    def _answered(self, response: ModelResponse[Any]) -> ModelResponse[Any] | None:
        """The response for the agent, recorded; None when it called only ``recall`` (then
        its calls are answered in the log and the model must be called again)."""
        replies = [m for m in response.result if isinstance(m, AIMessage)]
        reply = [_openai_message(replies[0])] if replies else []
        calls = reply_calls(reply, "openai_chat")
        recalls = [c for c in calls if is_recall_call(c)]
        if not recalls:
            self._record(response)
            return response
        self._observe(replies)
        answers = answer_messages([self.manager.answer_recall(c) for c in recalls], "openai_chat")
        if len(recalls) == len(calls):
            self.history.record_hidden([*reply, *answers])
            return None
        self.history.record_reply(reply)
        self.history.record_hidden(answers)
        result = [_without_recall(replies[0]) if m is replies[0] else m for m in response.result]
        return dataclasses.replace(response, result=result)

    def _record(self, response: ModelResponse[Any]) -> None:
        """Billed usage first (it reconciles the prepared request), then the reply."""
        replies = [m for m in response.result if isinstance(m, AIMessage)]
        self._observe(replies)
        if replies:
            # Only the model's own message: anything else in ``result`` (e.g. a structured
            # output ToolMessage) reaches the agent state and is synced with the next call.
            self.history.record_reply([_openai_message(replies[0])])

    def _observe(self, replies: Sequence[AIMessage]) -> None:
        usages = [usage_from_langchain(m.usage_metadata) for m in replies if m.usage_metadata]
        if usages:
            total = usages[0]
            for usage in usages[1:]:
                total = total + usage
            self.manager.observe_usage(total)
        elif replies:
            self.unbilled += 1


def _without_recall(message: AIMessage) -> AIMessage:
    """``message`` without its recall calls (in ``tool_calls``, the provider's raw
    ``additional_kwargs`` and any ``tool_use`` / ``function_call`` content blocks)."""
    extra = dict(message.additional_kwargs)
    if isinstance(extra.get("tool_calls"), list):
        extra["tool_calls"] = [c for c in extra["tool_calls"] if not is_recall_call(c)]
    content = message.content
    if isinstance(content, list):
        content = [b for b in content if not is_recall_call(b)]
    calls = [c for c in message.tool_calls if c["name"] != RECALL_TOOL]
    return message.model_copy(
        update={"tool_calls": calls, "additional_kwargs": extra, "content": content}
    )


def usage_from_langchain(metadata: Mapping[str, Any]) -> Usage:
    """An ``AIMessage.usage_metadata`` as :class:`Usage`.

    LangChain's ``input_tokens`` already include cache reads and writes (langchain-openai
    passes ``prompt_tokens`` through; langchain-anthropic adds the cache counts to
    Anthropic's uncached ``input_tokens``). ``input_token_details`` gives ``cache_read``
    and ``cache_creation``, or the 5-minute / 1-hour split
    (``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``) when the provider
    reports it; ``output_token_details.reasoning`` the reasoning tokens.
    """
    data = dict(metadata)
    details = _details(data, "input_token_details")
    output = _details(data, "output_token_details")
    five_min = _count(details, "ephemeral_5m_input_tokens")
    one_hour = _count(details, "ephemeral_1h_input_tokens")
    if five_min + one_hour == 0:
        five_min = _count(details, "cache_creation")
    try:
        return Usage(
            input_tokens=_count(data, "input_tokens", required=True),
            cache_read_tokens=_count(details, "cache_read"),
            cache_write_5m_tokens=five_min,
            cache_write_1h_tokens=one_hour,
            output_tokens=_count(data, "output_tokens"),
            reasoning_tokens=_count(output, "reasoning"),
        )
    except ProviderError as exc:
        raise ProviderError(f"LangChain usage_metadata: {exc}") from exc


def _openai_message(message: BaseMessage) -> dict[str, Any]:
    converted = convert_to_openai_messages(message)
    if not isinstance(converted, dict):  # pragma: no cover - one message gives one dict
        raise ProviderError(f"cannot convert {type(message).__name__} to an OpenAI message")
    return converted


def _function_tools(tools: Sequence[BaseTool | dict[str, Any]]) -> list[dict[str, Any]]:
    """The agent's tools as OpenAI function tools; provider built-in tools are skipped."""
    schemas: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, BaseTool):
            schemas.append(convert_to_openai_tool(tool))
        elif tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
            schemas.append(tool)
    return schemas


def _system_text(contents: Sequence[Any]) -> str:
    """System contents (strings or lists of text blocks) as one text."""
    texts: list[str] = []
    for content in contents:
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, Sequence):
            texts.extend(
                str(b["text"]) for b in content if isinstance(b, Mapping) and b.get("text")
            )
    return "\n\n".join(texts)


def _details(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ProviderError(f"LangChain usage_metadata: {key} is not an object: {value!r}")
    return value


def _count(data: Mapping[str, Any], key: str, *, required: bool = False) -> int:
    value = data.get(key)
    if value is None:
        if required:
            raise ProviderError(f"LangChain usage_metadata has no {key!r}")
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderError(f"LangChain usage_metadata {key}={value!r} is not a token count")
    return value
