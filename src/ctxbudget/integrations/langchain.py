"""LangChain v1 agent middleware: one line keeps a ``create_agent`` loop within its budget.

    agent = create_agent(model, tools, middleware=[ContextBudgetMiddleware(manager)])

Before each model call the middleware turns the request (system message, messages, tool
schemas) into OpenAI chat dicts, feeds what is new into the manager (each message once,
through :class:`~ctxbudget.integrations.history.HistorySync`), lets the manager prepare
the request (compacted when needed, always within the window) and hands the model the
prepared messages instead of the full history. After the call the billed usage (from the
reply's ``usage_metadata``) and the reply itself are recorded. The agent's own state is
left alone: it keeps the whole conversation; only what the model sees is budgeted.

This module needs LangChain (``pip install 'ctxbudget[langchain]'``); nothing else in
ctxbudget imports it.
"""

from __future__ import annotations

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
from ctxbudget.errors import ProviderError
from ctxbudget.integrations.history import HistorySync
from ctxbudget.manager import ContextManager

__all__ = ["ContextBudgetMiddleware", "usage_from_langchain"]

_SYSTEM_ROLES = ("system", "developer")


class ContextBudgetMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Budgets every model call of a LangChain agent with one :class:`ContextManager`.

    One middleware (and one manager) follows one conversation: the agent's message list
    must grow by appending, as it does in ``create_agent`` (also across invocations of the
    same thread). Use a new manager and middleware for a new conversation.
    """

    def __init__(self, manager: ContextManager) -> None:
        super().__init__()
        self.manager = manager
        """The manager that holds the session log and prepares every request."""
        self.history = HistorySync(manager, "openai_chat")
        """Which of the agent's messages the manager already holds."""
        self.unbilled = 0
        """Replies that carried no ``usage_metadata`` (``manager.usage`` misses them)."""

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Call the model with the manager's prepared context, then record the reply."""
        response = handler(self._prepared(request))
        self._record(response)
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """The async twin of :meth:`wrap_model_call` (same preparation and recording)."""
        response = await handler(self._prepared(request))
        self._record(response)
        return response

    # -- the two halves, shared by the sync and async paths ---------------------------------

    def _prepared(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The request with the manager's view in place of the full history."""
        system = request.system_message
        content = _openai_message(system)["content"] if system is not None else None
        self.history.sync(
            [_openai_message(m) for m in request.messages],
            system=content,
            tools=_function_tools(request.tools),
        )
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

    def _record(self, response: ModelResponse[Any]) -> None:
        """Billed usage first (it reconciles the prepared request), then the reply."""
        replies = [m for m in response.result if isinstance(m, AIMessage)]
        usages = [usage_from_langchain(m.usage_metadata) for m in replies if m.usage_metadata]
        if usages:
            total = usages[0]
            for usage in usages[1:]:
                total = total + usage
            self.manager.observe_usage(total)
        elif replies:
            self.unbilled += 1
        if replies:
            # Only the model's own message: anything else in ``result`` (e.g. a structured
            # output ToolMessage) reaches the agent state and is synced with the next call.
            self.history.record_reply([_openai_message(replies[0])])


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
